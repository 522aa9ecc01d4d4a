/**
 * Benchmark: pre-flight validation reads headers only, so its cost should not grow with model size.
 * Generates a ≥ 4 GiB model of ≥ 16 shards into a private fake-gcs-server (free port, temp data
 * dir, removed afterwards), validates it through a store that counts every byte read, then
 * downloads every byte as the baseline, and prints both measured in this one run.
 *
 *   npm run bench:validate [-- --gib 4 --shards 16 --concurrency 16]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startFakeGcs } from '../src/local-stack/fake-gcs';
import { findFreePort } from '../src/local-stack/process';
import { requireTool } from '../src/local-stack/tools';
import { generateSampleModel } from '../src/sample-model';
import { createStorage, openModelStore } from '../src/storage';
import { countingStore, validateStore } from '../src/validation';

const GIB = 1024 ** 3;

const ArgsSchema = z.object({
  gib: z.coerce.number().min(4, 'the benchmark needs at least 4 GiB').max(64).default(4),
  shards: z.coerce.number().int().min(16, 'the benchmark needs at least 16 shards').max(256).default(16),
  concurrency: z.coerce.number().int().min(1).max(64).default(16),
});

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { gib: { type: 'string' }, shards: { type: 'string' }, concurrency: { type: 'string' } },
  });
  const args = ArgsSchema.parse(values);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'garden-bench-validate-'));
  const gcs = await startFakeGcs({
    binary: requireTool('fakeGcs'),
    port: await findFreePort(),
    rootDir: path.join(dataDir, 'gcs'),
    logFile: path.join(dataDir, 'fake-gcs.log'),
  });
  try {
    const storage = createStorage({ endpoint: gcs.endpoint });
    await storage.createBucket('bench');
    const location = 'gs://bench/model/';

    process.stdout.write(
      `Generating a ${args.gib} GiB model in ${args.shards} shards into fake-gcs-server…\n`,
    );
    const generated = await generateSampleModel(
      { location, shards: args.shards, targetBytes: Math.ceil(args.gib * GIB), fill: 'zeros' },
      { storage },
    );

    const { store, stats } = countingStore(openModelStore(location, { storage }));
    let started = performance.now();
    const report = await validateStore(store, { concurrency: args.concurrency });
    const validateMs = performance.now() - started;
    if (report.status !== 'ok') {
      throw new Error(`the generated model did not validate: ${JSON.stringify(report.findings, null, 2)}`);
    }

    // Same shard count, ~1000× fewer bytes: validation cost should follow the file count only.
    const smallLocation = 'gs://bench/small-model/';
    const small = await generateSampleModel(
      {
        location: smallLocation,
        shards: args.shards,
        targetBytes: Math.ceil((args.gib * GIB) / 1024),
        fill: 'zeros',
      },
      { storage },
    );
    started = performance.now();
    const smallReport = await validateStore(openModelStore(smallLocation, { storage }), {
      concurrency: args.concurrency,
    });
    const smallMs = performance.now() - started;
    if (smallReport.status !== 'ok') throw new Error('the small model did not validate');

    // Baseline: what a validator that downloads the model (e.g. to hash or load it) costs.
    const objects = await openModelStore(location, { storage }).list();
    const bucket = storage.bucket('bench');
    started = performance.now();
    let downloaded = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: args.concurrency }, async () => {
        while (next < objects.length) {
          const object = objects[next++]!;
          for await (const chunk of bucket
            .file(`model/${object.name}`)
            .createReadStream({ validation: false })) {
            downloaded += (chunk as Buffer).length;
          }
        }
      }),
    );
    const downloadMs = performance.now() - started;

    const total = objects.reduce((sum, o) => sum + o.size, 0);
    const lines = [
      '',
      `model:           ${generated.shards} shards, ${objects.length} objects, ${(total / GIB).toFixed(2)} GiB (${total} bytes), ${report.model.tensorCount} tensors`,
      `validation:      read ${stats.bytesRead} bytes in ${stats.requests} requests, ${validateMs.toFixed(0)} ms`,
      `bytes read:      ${((100 * stats.bytesRead) / total).toFixed(5)} % of the model (target < 0.01 %)`,
      `same shards, ${(small.totalBytes / 1024 ** 2).toFixed(1)} MiB model: validation ${smallMs.toFixed(0)} ms (${(validateMs / smallMs).toFixed(2)} × for ${(total / small.totalBytes).toFixed(0)} × the bytes)`,
      `full download:   ${downloaded} bytes in ${downloadMs.toFixed(0)} ms`,
      `speed-up:        validation took ${(validateMs / downloadMs).toFixed(4)} × the download time (${(downloadMs / validateMs).toFixed(0)}× faster)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (downloaded !== total) throw new Error(`baseline downloaded ${downloaded} of ${total} bytes`);
  } finally {
    await gcs.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:validate: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
