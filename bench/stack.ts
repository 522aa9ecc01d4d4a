import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, bundleWorkflowCode } from '@temporalio/worker';
import { EmulatorAdminClient, startEmulator, writeEmulatorCredentials } from '../src/emulator';
import { type GcpClient, createGcpClient, everyApiAt } from '../src/gcp';
import { startTemporalCluster } from '../src/local-stack/cluster';
import { startFakeGcs } from '../src/local-stack/fake-gcs';
import { type ManagedProcess, findFreePort } from '../src/local-stack/process';
import { envForStack } from '../src/local-stack/stack';
import { startTemporalDevServer } from '../src/local-stack/temporal';
import { requireTool } from '../src/local-stack/tools';
import { startLocalWorker } from '../src/local-stack/worker';
import { generateSampleModel } from '../src/sample-model';
import { createStorage } from '../src/storage';
import { type WorkerConfig, emulatorBaseUrlEnv, loadWorkerConfig } from '../src/worker/config';

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
  /** Where the servers are, for a worker process (`startWorkerProcess`). */
  temporalAddress: string;
  gcsEndpoint: string;
  emulatorUrl: string;
  /** ADC file whose token exchange is the emulator's STS. */
  credentialsFile: string;
  /** The temporary directory (server data, logs); `close()` removes it. */
  dir: string;
  /** The servers' child processes (their CPU time; none may run after `close()`). */
  pids: { temporal: number; fakeGcs: number; postgres?: number };
  close(): Promise<void>;
}

/**
 * Which Temporal: the pinned CLI's dev server (SQLite, one history shard; the default), or the
 * production cluster's parts (`npm run test:cluster`'s: temporal-server on PostgreSQL, 4 shards).
 */
export type BenchTemporal = 'dev' | 'cluster';

async function startTemporal(kind: BenchTemporal, dir: string) {
  if (kind === 'cluster') {
    const cluster = await startTemporalCluster({ logDir: dir });
    return {
      address: cluster.address,
      namespace: cluster.namespace,
      pids: { temporal: cluster.server.pid, postgres: cluster.postgres.process.pid },
      stop: () => cluster.stop(),
    };
  }
  const server = await startTemporalDevServer({
    binary: requireTool('temporal'),
    port: await findFreePort(),
    dbFile: path.join(dir, 'temporal.db'),
    logFile: path.join(dir, 'temporal.log'),
  });
  return {
    address: server.address,
    namespace: server.namespace,
    pids: { temporal: server.process.pid },
    stop: () => server.stop(),
  };
}

export async function startBenchStack(
  label: string,
  temporalKind: BenchTemporal = 'dev',
): Promise<BenchStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `garden-bench-${label}-`));
  const [temporal, gcs] = await Promise.all([
    startTemporal(temporalKind, dir),
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
    temporalAddress: temporal.address,
    gcsEndpoint: gcs.endpoint,
    emulatorUrl: emulator.url,
    credentialsFile,
    dir,
    pids: { ...temporal.pids, fakeGcs: gcs.process.pid },
    async close() {
      await connection.close();
      await native.close();
      await emulator.close();
      await Promise.allSettled([temporal.stop(), gcs.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface BenchWorker {
  /** The worker's own process (node itself, not a wrapper): its /proc entry is the worker's memory. */
  process: ManagedProcess;
  /** The configuration the worker reads from its environment, as `garden-deploy worker` loads it. */
  config: WorkerConfig;
}

const REPO = path.resolve(__dirname, '..');
/** The built worker (`npm run build`, which every bench script runs first): what production runs. */
const WORKER_MAIN = path.join(REPO, 'dist/worker/main.js');

/**
 * `garden-deploy worker` (dist/worker/main.js) as a child process on the stack, configured by env
 * like in production (`overrides` on top, e.g. the rate limit), with the stack's prebuilt workflow
 * bundle so it does not bundle at start; resolves once it polls both task queues. The built code,
 * not the sources through tsx: tsx's compiler and caches added about 80 MiB to the worker's RSS.
 */
export async function startWorkerProcess(
  stack: BenchStack,
  taskQueue: string,
  overrides: Record<string, string> = {},
): Promise<BenchWorker> {
  const bundle = path.join(stack.dir, 'workflow-bundle.js');
  if (!existsSync(bundle)) await writeFile(bundle, stack.workflowCode);
  const env = envForStack({
    TEMPORAL_ADDRESS: stack.temporalAddress,
    TEMPORAL_NAMESPACE: stack.namespace,
    STORAGE_EMULATOR_HOST: stack.gcsEndpoint,
    GOOGLE_APPLICATION_CREDENTIALS: stack.credentialsFile,
    ...emulatorBaseUrlEnv(stack.emulatorUrl),
    // A developer's `garden-deploy dev` (its stack.json) stays out of the picture.
    GARDEN_DEPLOY_DATA_DIR: stack.dir,
    GARDEN_DEPLOY_TASK_QUEUE: taskQueue,
    GARDEN_DEPLOY_WORKFLOW_BUNDLE: bundle,
    ...overrides,
  });
  // Refused here with the variable's name rather than as a worker that exits at start.
  const config = loadWorkerConfig(env);
  if (!existsSync(WORKER_MAIN)) throw new Error(`${WORKER_MAIN} is missing: run \`npm run build\` first`);
  const child = await startLocalWorker({
    command: process.execPath,
    args: [WORKER_MAIN],
    env,
    temporalAddress: stack.temporalAddress,
    namespace: stack.namespace,
    taskQueue,
    logFile: path.join(stack.dir, `worker-${taskQueue}.log`),
  });
  return { process: child, config };
}

/**
 * Samples a process's resident memory (VmRSS in /proc/PID/status) every `intervalMs`; `stop()`
 * returns the largest sample and the kernel's own high-water mark (VmHWM), which also catches
 * peaks between samples. Linux only.
 */
export function sampleRss(pid: number, intervalMs = 500) {
  let peakSample = 0;
  let hwm = 0;
  const read = async () => {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const kib = (field: string) =>
        Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
      peakSample = Math.max(peakSample, kib('VmRSS') * 1024);
      hwm = Math.max(hwm, kib('VmHWM') * 1024);
    } catch {
      // the process has exited: the last reading stands
    }
  };
  void read();
  const timer = setInterval(() => void read(), intervalMs);
  return {
    /** The largest sample so far, in bytes. */
    current: () => peakSample,
    async stop(): Promise<{ peakSampleBytes: number; hwmBytes: number }> {
      clearInterval(timer);
      await read();
      return { peakSampleBytes: peakSample, hwmBytes: hwm };
    },
  };
}

/** Runs `work` over `items` with at most `limit` at a time; results in the items' order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc/PID/stat. Linux only. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may hold spaces) in parentheses; utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

/** True while a process with this id exists. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A median, a quantile, and a duration for humans. */
export function median(values: number[]): number {
  return quantile(values, 0.5);
}

export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

export function fmt(ms: number): string {
  return `${Math.round(ms)} ms`;
}
