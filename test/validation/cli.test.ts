import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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

describe('garden-deploy validate --spec', () => {
  const RESERVATION = {
    type: 'SPECIFIC_RESERVATION',
    key: 'compute.googleapis.com/reservation-name',
    values: ['projects/my-project-123/zones/us-central1-a/reservations/gpus'],
  };
  const spec = (overrides: Record<string, unknown> = {}) => ({
    name: 'demo',
    project: 'my-project-123',
    region: 'us-central1',
    model: { uri: 'gs://models-bucket/demo/' },
    machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
    container: {
      image: 'us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:latest',
      args: ['--max-model-len=8192', '--tensor-parallel-size=2'],
    },
    capacity: { spot: true, reservation: RESERVATION },
    validation: { contextLength: 2048 },
    ...overrides,
  });
  const specDirs: string[] = [];
  afterAll(() => Promise.all(specDirs.map((dir) => rm(dir, { recursive: true, force: true }))));
  async function specFile(document: unknown): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'garden-validate-spec-'));
    specDirs.push(dir);
    const file = path.join(dir, 'spec.yaml');
    // JSON is YAML.
    await writeFile(file, JSON.stringify(document, null, 2));
    return file;
  }

  it("checks the folder with the spec's machine, context and serving settings; the corrected spec passes", async () => {
    const dir = await sampleFolder();
    expect(await run(dir, '--spec', await specFile(spec()))).toBe(1);
    for (const rule of [
      'vllm.max-model-len-exceeds-model',
      'vllm.parallel-size',
      'capacity.spot-reservation',
    ])
      expect(io.out).toContain(rule);
    io.out = '';
    const corrected = spec({
      container: {
        image: 'us-docker.pkg.dev/x/vllm:1',
        args: ['--max-model-len=4096', '--tensor-parallel-size=1'],
      },
      capacity: { spot: false, reservation: RESERVATION },
    });
    expect(await run(dir, '--spec', await specFile(corrected), '--json'), io.out).toBe(0);
    const report = ValidationReportSchema.parse(JSON.parse(io.out));
    expect(report.sizing?.requirement.contextTokens).toBe(2048);
    expect(report.sizing?.chosen?.machine.type).toBe('g2-standard-12');
  });

  it('a --tensor-parallel-size in the args is the parallelism judged, not the machine’s GPU count', async () => {
    const dir = await sampleFolder();
    const eightL4 = { type: 'g2-standard-96', acceleratorType: 'NVIDIA_L4', acceleratorCount: 8 };
    const image = 'us-docker.pkg.dev/x/vllm:1';
    // 8 GPUs do not divide the sample's 4 heads; TP 2 × PP 2 does, leaving GPUs idle (a warning).
    const explicit = spec({
      machine: eightL4,
      container: {
        image,
        args: ['--max-model-len=2048', '--tensor-parallel-size=2', '--pipeline-parallel-size=2'],
      },
      capacity: {},
    });
    expect(await run(dir, '--spec', await specFile(explicit)), io.out).toBe(0);
    expect(io.out).not.toContain('machine.tensor-parallel');
    expect(io.out).toContain('vllm.parallel-size');
    io.out = '';
    const implicit = spec({
      machine: eightL4,
      container: { image, args: ['--max-model-len=2048'] },
      capacity: {},
    });
    expect(await run(dir, '--spec', await specFile(implicit))).toBe(1);
    expect(io.out).toContain('machine.tensor-parallel');
  });

  it("validates the spec's model.uri when no location is given", async () => {
    const { storage, gcsEndpoint } = await getTestEnv();
    const bucket = await createTestBucket(storage, 'validate-spec');
    const uri = await upload(storage, bucket, await sampleFolder(), 'model');
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcsEndpoint);
    const file = await specFile(
      spec({ model: { uri }, machine: 'auto', container: undefined, capacity: {} }),
    );
    expect(await run('--spec', file, '--json'), io.err).toBe(0);
    expect(ValidationReportSchema.parse(JSON.parse(io.out)).location).toBe(uri);
  });

  it('exit 2 for a spec that cannot be read or used, or machine options beside it', async () => {
    const dir = await sampleFolder();
    expect(await run(dir, '--spec', path.join(os.tmpdir(), 'no-such-spec.yaml'))).toBe(2);
    expect(io.err).toContain('cannot read the spec file');
    io.err = '';
    expect(await run(dir, '--spec', await specFile(spec({ project: 'X' })))).toBe(2);
    expect(io.err).toMatch(/invalid deployment spec[\s\S]*project/);
    io.err = '';
    const args = [
      '--machine-type',
      'g2-standard-12',
      '--accelerator-type',
      'NVIDIA_L4',
      '--accelerator-count',
      '1',
    ];
    expect(await run(dir, '--spec', await specFile(spec()), ...args)).toBe(2);
    expect(io.err).toContain('--spec takes the machine from the spec');
  });
});
