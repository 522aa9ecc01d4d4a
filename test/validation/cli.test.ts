import { afterAll, describe, expect, it, vi } from 'vitest';
import { formatReport, runValidate } from '../../src/cli/commands/validate';
import { RULES, ValidationReportSchema, validateModel } from '../../src/validation';
import { captureOutput, inProcessCli } from '../cli/in-process';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';
import { removeTempFolders, sampleFolder, upload } from './folders';

const io = captureOutput();
afterAll(async () => {
  await removeTempFolders();
  await closeTestEnv();
});

const run = inProcessCli('validate');

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[`);

describe('garden-deploy validate', () => {
  it('validates a gs:// folder on fake-gcs-server via STORAGE_EMULATOR_HOST; --json prints the report', async () => {
    const { storage, gcsEndpoint } = await getTestEnv();
    const bucket = await createTestBucket(storage, 'validate-cli');
    const uri = await upload(storage, bucket, await sampleFolder({ family: 'qwen3' }), 'qwen3');
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcsEndpoint);
    const code = await run(uri, '--json');
    expect(code, io.err + io.out).toBe(0);
    const report = ValidationReportSchema.parse(JSON.parse(io.out));
    expect(report).toMatchObject({ location: uri, status: 'ok', model: { family: 'qwen3' } });
  });

  it('exit 1 with grouped, readable findings when the model has errors', async () => {
    const dir = await sampleFolder({ variant: 'missing-shard' });
    expect(await run(dir)).toBe(1);
    expect(io.out).toMatch(/^Errors \(\d+\)$/m);
    expect(io.out).toMatch(/✖ index\.missing-shard {2}model\.safetensors\.index\.json/);
    expect(io.out).toMatch(/Warnings|Info/);
    expect(io.out).toContain('fix them before deploying');
    expect(io.out).not.toMatch(ANSI);
  });

  it('exit 2 when the location cannot be read, with the reason', async () => {
    expect(await run('gs://Bad_Bucket/model')).toBe(2);
    expect(io.out).toContain('location.invalid-uri');
    io.out = '';
    expect(await run('/nonexistent/model/dir')).toBe(2);
    expect(io.out).toMatch(/location\.not-found[\s\S]*does not exist/);
  });

  it('exit 2 for invalid options, naming the option', async () => {
    const dir = await sampleFolder();
    expect(await run(dir, '--machine-type', 'g2-standard-12')).toBe(2);
    expect(io.err).toContain('--machine-type, --accelerator-type and --accelerator-count go together');
    io.err = '';
    expect(await run(dir, '--context-length', 'lots')).toBe(2);
    expect(io.err).toContain('--context-length must be a whole number');
    io.err = '';
    expect(await run(dir, '--family', 'falcon')).toBe(2);
    expect(io.err).toContain('--family must be one of');
  });

  it('checks the machine, context and chat options', async () => {
    const dir = await sampleFolder({ variant: 'no-chat-template' });
    expect(await run(dir, '--require-chat')).toBe(1);
    expect(io.out).toContain('tokenizer.chat-template-missing');
    io.out = '';
    const args = [
      '--machine-type',
      'g2-standard-96',
      '--accelerator-type',
      'NVIDIA_L4',
      '--accelerator-count',
      '8',
    ];
    expect(await run(dir, ...args)).toBe(1);
    expect(io.out).toContain('machine.tensor-parallel');
  });

  it('--rules lists the catalogue', async () => {
    expect(await run('--rules')).toBe(0);
    for (const id of Object.keys(RULES)) expect(io.out).toContain(id);
  });

  it('colours the human report only when asked', async () => {
    const report = await validateModel(await sampleFolder({ variant: 'truncated-shard' }));
    expect(formatReport(report, { color: true })).toMatch(ANSI);
    expect(formatReport(report, { color: false })).not.toMatch(ANSI);
  });

  it('runValidate without a location explains what to give', async () => {
    const errors: string[] = [];
    const code = await runValidate(undefined, {}, { stdout: () => undefined, stderr: (t) => errors.push(t) });
    expect(code).toBe(2);
    expect(errors.join('')).toContain('give a model location');
  });
});
