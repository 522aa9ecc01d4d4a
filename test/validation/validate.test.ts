import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleModel, SAMPLE_FAMILIES } from '../../src/sample-model';
import { type ModelStore, openModelStore, StorageAccessError } from '../../src/storage';
import {
  InvalidValidationOptionsError,
  type ValidationPhase,
  ValidationReportSchema,
  validateModel,
  validateStore,
} from '../../src/validation';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';
import { put, removeTempFolders, sampleFolder, shardTensors, upload } from './folders';

let bucket: string;
beforeAll(async () => {
  const { storage } = await getTestEnv();
  bucket = await createTestBucket(storage, 'validate');
});
afterAll(async () => {
  await removeTempFolders();
  await closeTestEnv();
});

/** Wraps a store to record every ranged read and how many run at once. */
function recording(store: ModelStore) {
  const reads: Array<{ name: string; start: number; end: number }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const track = async <T>(fn: () => Promise<T>): Promise<T> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      // Yield to the event loop so concurrent reads really overlap.
      await new Promise((resolve) => setImmediate(resolve));
      return await fn();
    } finally {
      inFlight--;
    }
  };
  const wrapped: ModelStore = {
    uri: store.uri,
    list: (o) => store.list(o),
    readRange: (name, start, end) => {
      reads.push({ name, start, end });
      return track(() => store.readRange(name, start, end));
    },
    readSmall: (name, max) => {
      reads.push({ name, start: 0, end: -1 });
      return track(() => store.readSmall(name, max));
    },
  };
  return { store: wrapped, reads, maxInFlight: () => maxInFlight };
}

describe('valid sample models', () => {
  for (const family of SAMPLE_FAMILIES) {
    it(`${family}: no errors, family detected, weights counted, through fake-gcs-server`, async () => {
      const { storage } = await getTestEnv();
      const dir = await sampleFolder({ family, shards: 3 });
      const uri = await upload(storage, bucket, dir, `valid-${family}`);
      const report = await validateModel(uri, {}, { storage });
      expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
      expect(report.status).toBe('ok');
      expect(report.model.family).toBe(family);
      expect(report.model.weightFormat).toBe('safetensors');
      expect(report.model.weightFiles).toBe(3);
      expect(report.model.dtype).toBe('BF16');
      let tensorBytes = 0;
      for (const shard of ['model-00001-of-00003', 'model-00002-of-00003', 'model-00003-of-00003']) {
        for (const t of await shardTensors(dir, `${shard}.safetensors`))
          tensorBytes += t.shape.reduce((a, b) => a * b, 2);
      }
      expect(report.model.weightBytes).toBe(tensorBytes);
      // Every object carries the GCS generation later steps pin.
      expect(report.objects.length).toBe(report.stats.objectsListed);
      for (const object of report.objects) expect(object.generation).toMatch(/^\d+$/);
      expect(report.sizing?.recommended?.machine.type).toBe('g2-standard-12');
      expect(ValidationReportSchema.parse(JSON.parse(JSON.stringify(report)))).toEqual(report);
    });
  }
});

describe('reads', () => {
  it('never reads tensor data: safetensors reads stop at 8 + header length', async () => {
    const { storage } = await getTestEnv();
    const dir = await sampleFolder({ shards: 4, targetBytes: 2 * 1024 * 1024 });
    const uri = await upload(storage, bucket, dir, 'reads');
    const rec = recording(openModelStore(uri, { storage }));
    const report = await validateStore(rec.store);
    expect(report.status).toBe('ok');
    const objects = new Map(report.objects.map((o) => [o.name, o]));
    const shardReads = rec.reads.filter((r) => r.name.endsWith('.safetensors'));
    expect(new Set(shardReads.map((r) => r.name)).size).toBe(4);
    for (const read of shardReads) {
      const size = objects.get(read.name)!.size;
      const headerEnd = 8 + Number((await readFile(`${dir}/${read.name}`)).readBigUInt64LE(0));
      expect(read.end).toBeLessThanOrEqual(headerEnd);
      expect(read.end).toBeLessThan(size);
    }
    const shardBytes = report.objects
      .filter((o) => o.name.endsWith('.safetensors'))
      .reduce((n, o) => n + o.size, 0);
    expect(report.stats.bytesRead).toBeLessThan(shardBytes / 20);
  });

  it('keeps at most `concurrency` reads in flight', async () => {
    const dir = await sampleFolder({ shards: 8, layers: 4 });
    const rec = recording(openModelStore(dir));
    const report = await validateStore(rec.store, { concurrency: 2 });
    expect(report.status).toBe('ok');
    expect(rec.maxInFlight()).toBeLessThanOrEqual(2);
    expect(rec.maxInFlight()).toBe(2);
  });

  it('reports progress per header and stops on abort without starting new reads', async () => {
    const dir = await sampleFolder({ shards: 6, layers: 4 });
    const phases: ValidationPhase[] = [];
    const headerProgress: number[] = [];
    await validateModel(dir, {
      onProgress: (p) => {
        if (phases.at(-1) !== p.phase) phases.push(p.phase);
        if (p.phase === 'weights') headerProgress.push(p.done!);
      },
    });
    expect(phases).toEqual(['listing', 'config', 'weights', 'sizing', 'done']);
    expect(headerProgress.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);

    const controller = new AbortController();
    const rec = recording(openModelStore(dir));
    const run = validateStore(rec.store, {
      concurrency: 1,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'weights' && p.done === 2) controller.abort(new Error('deployment cancelled'));
      },
    });
    await expect(run).rejects.toThrow('deployment cancelled');
    const readsAtAbort = rec.reads.length;
    await new Promise((resolve) => setImmediate(resolve));
    expect(rec.reads.length).toBe(readsAtAbort);
    expect(
      new Set(rec.reads.filter((r) => r.name.endsWith('.safetensors')).map((r) => r.name)).size,
    ).toBeLessThan(6);
  });
});

describe('findings a user acts on', () => {
  it('suggests the right prefix when the model sits one folder down', async () => {
    const { storage } = await getTestEnv();
    const dir = await sampleFolder({ variant: 'nested-folder' });
    const uri = await upload(storage, bucket, dir, 'nested');
    const report = await validateModel(uri, {}, { storage });
    expect(report.findings[0]?.message).toContain(`found it under ${uri}checkpoint-100/ — use that prefix`);
  });

  it('names the missing shard and the truncated sizes', async () => {
    const missing = await validateModel(await sampleFolder({ variant: 'missing-shard', shards: 3 }));
    const finding = missing.findings.find((f) => f.rule === 'index.missing-shard');
    expect(finding?.message).toContain('model-00003-of-00003.safetensors');
    // The tensors of the missing shard are not reported again one by one.
    expect(missing.findings.map((f) => f.rule)).not.toContain('tensors.missing');

    const truncated = await validateModel(await sampleFolder({ variant: 'truncated-shard' }));
    expect(truncated.findings.find((f) => f.rule === 'safetensors.truncated')?.message).toMatch(
      /model-00002-of-00002\.safetensors is truncated: expected \d+ bytes, object has \d+/,
    );
  });

  it('caps findings per rule and counts the rest', async () => {
    const dir = await sampleFolder();
    for (let i = 0; i < 7; i++) await put(dir, `stray-${i}.safetensors`, Buffer.alloc(16));
    const report = await validateModel(dir, { maxFindingsPerRule: 3 });
    expect(report.findings.filter((f) => f.rule === 'index.unlisted-file')).toHaveLength(3);
    expect(report.omitted).toContainEqual({ rule: 'index.unlisted-file', severity: 'warning', count: 4 });
    expect(report.summary.warnings).toBeGreaterThanOrEqual(7);
  });

  it('stays a bounded Temporal payload when the prefix holds thousands of long names', async () => {
    const dir = await sampleFolder();
    const deep = `${'a'.repeat(200)}/${'b'.repeat(200)}/${'c'.repeat(150)}`;
    await Promise.all(
      Array.from({ length: 1500 }, (_, i) => put(dir, `${deep}/${'x'.repeat(40)}-${i}.txt`, '')),
    );
    const report = await validateModel(dir);
    expect(report.stats.objectsListed).toBeGreaterThan(1500);
    expect(report.objectsOmitted).toBeGreaterThan(0);
    expect(report.objects.length + report.objectsOmitted).toBe(report.stats.objectsListed);
    expect(report.objects[0]?.name).toBe('config.json');
    expect(JSON.stringify(report).length).toBeLessThan(512 * 1024);
    expect(() => ValidationReportSchema.parse(report)).not.toThrow();
  });

  it('a 403 names the Vertex service agent; a 503 is thrown so the caller retries', async () => {
    const dir = await sampleFolder();
    const failing = (kind: 'forbidden' | 'unavailable'): ModelStore => ({
      uri: 'gs://b/m/',
      list: () => Promise.reject(new StorageAccessError(kind, `simulated ${kind}`)),
      readRange: () => Promise.reject(new Error('unused')),
      readSmall: () => Promise.reject(new Error('unused')),
    });
    const forbidden = await validateStore(failing('forbidden'));
    expect(forbidden.status).toBe('unreadable');
    expect(forbidden.findings[0]?.message).toContain('gcp-sa-aiplatform.iam.gserviceaccount.com');
    await expect(validateStore(failing('unavailable'))).rejects.toBeInstanceOf(StorageAccessError);
    expect((await validateModel(dir)).status).toBe('ok');
  });

  it('rejects bad options with a specific message', async () => {
    await expect(validateModel('/tmp', { expectedFamily: 'falcon' })).rejects.toThrow(
      InvalidValidationOptionsError,
    );
    await expect(validateModel('/tmp', { concurrency: 0 })).rejects.toThrow(/concurrency/);
  });

  it('an empty gs:// prefix is unreadable, not an error in the model', async () => {
    const { storage } = await getTestEnv();
    const report = await validateModel(`gs://${bucket}/nothing-here/`, {}, { storage });
    expect(report.status).toBe('unreadable');
    expect(report.findings[0]?.rule).toBe('location.not-found');
  });

  it('a missing chat template is a warning unless chat is required', async () => {
    const dir = await sampleFolder({ variant: 'no-chat-template' });
    expect((await validateModel(dir)).status).toBe('ok');
    expect((await validateModel(dir, { requireChat: true })).status).toBe('errors');
  });

  it('checks a chosen machine and records its fit', async () => {
    const { storage } = await getTestEnv();
    const location = `gs://${bucket}/chosen/`;
    await generateSampleModel({ location }, { storage });
    const report = await validateModel(
      location,
      { machine: { type: 'g2-standard-24', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 } },
      { storage },
    );
    expect(report.status).toBe('ok');
    expect(report.sizing?.chosen).toMatchObject({ fits: true, machine: { type: 'g2-standard-24' } });
  });
});
