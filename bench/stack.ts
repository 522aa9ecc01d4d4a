import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, bundleWorkflowCode } from '@temporalio/worker';
import { EmulatorAdminClient, startEmulator, writeEmulatorCredentials } from '../src/emulator';
import { type GcpClient, createGcpClient, everyApiAt } from '../src/gcp';
import { startFakeGcs } from '../src/local-stack/fake-gcs';
import { findFreePort } from '../src/local-stack/process';
import { startTemporalDevServer } from '../src/local-stack/temporal';
import { requireTool } from '../src/local-stack/tools';
import { generateSampleModel } from '../src/sample-model';
import { createStorage } from '../src/storage';

/**
 * The whole local stack for one benchmark, on free ports in a temporary directory: the Temporal
 * dev server, fake-gcs-server with a sample model, the emulator, the Google client over it (real
 * ADC through the emulator's STS) and the workflow bundle; `close()` removes it all.
 */
export interface BenchStack {
  client: Client;
  native: NativeConnection;
  namespace: string;
  admin: EmulatorAdminClient;
  gcp: GcpClient;
  storage: Storage;
  /** A tiny valid model in fake GCS. */
  modelUri: string;
  /** Uploads another copy of the sample model (a new fine-tune) and returns its folder. */
  uploadModel(label: string): Promise<string>;
  workflowCode: string;
  close(): Promise<void>;
}

export async function startBenchStack(label: string): Promise<BenchStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `garden-bench-${label}-`));
  const [temporal, gcs] = await Promise.all([
    findFreePort().then((port) =>
      startTemporalDevServer({
        binary: requireTool('temporal'),
        port,
        dbFile: path.join(dir, 'temporal.db'),
        logFile: path.join(dir, 'temporal.log'),
      }),
    ),
    findFreePort().then((port) =>
      startFakeGcs({
        binary: requireTool('fakeGcs'),
        port,
        rootDir: path.join(dir, 'gcs'),
        logFile: path.join(dir, 'gcs.log'),
      }),
    ),
  ]);
  const emulator = await startEmulator({ port: 0, gcsEndpoint: gcs.endpoint, log: () => undefined });
  const connection = await Connection.connect({ address: temporal.address });
  const native = await NativeConnection.connect({ address: temporal.address });
  const storage = createStorage({ endpoint: gcs.endpoint });
  await storage.createBucket('bench');
  const uploadModel = async (name: string) =>
    (await generateSampleModel({ location: `gs://bench/models/${name}/`, shards: 1 }, { storage })).modelUri;
  const [modelUri, credentialsFile, bundle] = await Promise.all([
    uploadModel('tiny'),
    writeEmulatorCredentials(dir, emulator.url),
    bundleWorkflowCode({
      workflowsPath: path.resolve(__dirname, '../src/workflows/index.ts'),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    }),
  ]);
  const gcp = createGcpClient({
    ...everyApiAt(emulator.url),
    credentialsFile,
  });
  return {
    client: new Client({ connection, namespace: temporal.namespace }),
    native,
    namespace: temporal.namespace,
    admin: new EmulatorAdminClient(emulator.url),
    gcp,
    storage,
    modelUri,
    uploadModel,
    workflowCode: bundle.code,
    async close() {
      await connection.close();
      await native.close();
      await emulator.close();
      await Promise.allSettled([temporal.stop(), gcs.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A median, and a duration for humans. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function fmt(ms: number): string {
  return `${Math.round(ms)} ms`;
}
