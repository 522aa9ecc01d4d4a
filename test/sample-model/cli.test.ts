import { afterAll, describe, expect, it, vi } from 'vitest';
import { openModelStore } from '../../src/storage';
import { captureOutput, inProcessCli } from '../cli/in-process';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';
import { expectConsistentModel, inspect } from './inspect';

afterAll(closeTestEnv);

const io = captureOutput();

const run = inProcessCli('sample-model');

describe('garden-deploy sample-model', () => {
  it('writes into fake-gcs-server when STORAGE_EMULATOR_HOST is set and prints what it wrote', async () => {
    const { storage, gcsEndpoint } = await getTestEnv();
    const bucket = await createTestBucket(storage, 'sample-cli');
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcsEndpoint);
    const uri = `gs://${bucket}/models/qwen3`;
    expect(await run(uri, '--family', 'qwen3', '--shards', '3', '--json')).toBe(0);
    const printed = JSON.parse(io.out) as { uri: string; files: Array<{ name: string }>; shards: number };
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
    expect(io.out).toMatch(/Wrote a missing-shard llama sample model \(LlamaForCausalLM\)/);
    expect(io.out).toMatch(/model\.safetensors\.index\.json/);
    expect(io.out).toMatch(/A validator should report: error: the index references a shard/);
  });

  it.each([
    [['--shards', 'two'], /--shards: "two" is not a whole number/],
    [['--target-bytes', 'lots'], /--target-bytes: "lots" is not a size/],
    [['--family', 'falcon'], /family: Invalid option/],
    [['--hidden-size', '96'], /multiple of 64/],
  ])('bad flags %j exit with code 2 and say why', async (flags, message) => {
    expect(await run('/tmp/never-written-sample', ...flags)).toBe(2);
    expect(io.err).toMatch(message);
    expect(io.out).toBe('');
  });

  it('a malformed gs:// URI is a bad option too', async () => {
    expect(await run('gs://Not_A_Bucket/x')).toBe(2);
    expect(io.err).toMatch(/not a valid bucket name/);
  });

  it('lists the variants with the expected findings', async () => {
    expect(await run('--list-variants', '--json')).toBe(0);
    const variants = JSON.parse(io.out) as Record<string, { expectedFinding: string }>;
    expect(variants['truncated-shard']?.expectedFinding).toMatch(/truncated/);
  });
});
