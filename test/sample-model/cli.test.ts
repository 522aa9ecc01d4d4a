import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../src/cli/main';
import { openModelStore } from '../../src/storage';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';
import { expectConsistentModel, inspect } from './inspect';

afterAll(closeTestEnv);

let out: string;
let err: string;
beforeEach(() => {
  out = '';
  err = '';
  process.exitCode = undefined;
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk);
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  process.exitCode = undefined;
});

async function run(...args: string[]): Promise<number> {
  await (await buildProgram()).exitOverride().parseAsync(['node', 'garden-deploy', 'sample-model', ...args]);
  return Number(process.exitCode ?? 0);
}

describe('garden-deploy sample-model', () => {
  it('writes into fake-gcs-server when STORAGE_EMULATOR_HOST is set and prints what it wrote', async () => {
    const { storage, gcsEndpoint } = await getTestEnv();
    const bucket = await createTestBucket(storage, 'sample-cli');
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcsEndpoint);
    const uri = `gs://${bucket}/models/qwen3`;
    expect(await run(uri, '--family', 'qwen3', '--shards', '3', '--json')).toBe(0);
    const printed = JSON.parse(out) as { uri: string; files: Array<{ name: string }>; shards: number };
    expect(printed).toMatchObject({ uri: `${uri}/`, shards: 3 });
    const inspection = await inspect(openModelStore(uri, { storage }));
    expect(printed.files.map((f) => f.name)).toEqual(inspection.objects.map((o) => o.name));
    await expectConsistentModel(inspection);
  });

  it('human output names the files and what a validator should report', async () => {
    const { storage, gcsEndpoint } = await getTestEnv();
    const bucket = await createTestBucket(storage, 'sample-cli');
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcsEndpoint);
    expect(await run(`gs://${bucket}/m`, '--variant', 'missing-shard', '--target-bytes', '1MiB')).toBe(0);
    expect(out).toMatch(/Wrote a missing-shard llama sample model \(LlamaForCausalLM\)/);
    expect(out).toMatch(/model\.safetensors\.index\.json/);
    expect(out).toMatch(/A validator should report: error: the index references a shard/);
  });

  it.each([
    [['--shards', 'two'], /--shards: "two" is not a whole number/],
    [['--target-bytes', 'lots'], /--target-bytes: "lots" is not a size/],
    [['--family', 'falcon'], /family: Invalid option/],
    [['--hidden-size', '96'], /multiple of 64/],
  ])('bad flags %j exit with code 2 and say why', async (flags, message) => {
    expect(await run('/tmp/never-written-sample', ...flags)).toBe(2);
    expect(err).toMatch(message);
    expect(out).toBe('');
  });

  it('a malformed gs:// URI is a bad option too', async () => {
    expect(await run('gs://Not_A_Bucket/x')).toBe(2);
    expect(err).toMatch(/not a valid bucket name/);
  });

  it('lists the variants with the expected findings', async () => {
    expect(await run('--list-variants', '--json')).toBe(0);
    const variants = JSON.parse(out) as Record<string, { expectedFinding: string }>;
    expect(variants['truncated-shard']?.expectedFinding).toMatch(/truncated/);
  });
});
