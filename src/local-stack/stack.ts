import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { UI_URL_ENV } from '../client';
import {
  AesGcmCodec,
  CODEC_ENV_VARIABLES,
  CODEC_KEY_FILE_ENV,
  type RunningCodecServer,
  loadKeyringFile,
  localUiOrigins,
  startCodecServer,
  writeNewKeyringFile,
} from '../codec';
import { type RunningEmulator, startEmulator, writeEmulatorCredentials } from '../emulator';
import { type FakeGcsServer, startFakeGcs } from './fake-gcs';
import type { ManagedProcess } from './process';
import type { StackInfo } from './stack-file';
import { type TemporalDevServer, startTemporalDevServer } from './temporal';
import { requireTool } from './tools';
import { startLocalWorker } from './worker';
import { emulatorBaseUrlEnv } from '../worker/config';

export interface LocalStackOptions {
  /** Holds `temporal.db`, the fake-gcs filesystem (`gcs/`) and `logs/`; created if missing. */
  dataDir: string;
  temporalPort: number;
  /** Temporal Web UI port; `undefined` runs Temporal headless. */
  uiPort?: number;
  gcsPort: number;
  emulatorPort: number;
  /**
   * Encrypted payloads: the keyring `<dataDir>/codec-keys.json` (made if missing), a codec server
   * on `codecPort` that the Web UI calls, and the worker and the printed environment using the keys.
   */
  encryption?: { codecPort: number };
  host?: string;
  namespace?: string;
  /**
   * How to run `garden-deploy worker` (executable and arguments), started last with the stack's
   * environment; omitted, the stack runs without a worker.
   */
  worker?: { command: string; args: string[]; taskQueue: string };
  /** Aborting it stops whatever has started and rejects. */
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
}

export interface ServiceExit {
  name: string;
  logFile: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LocalStack {
  /** Addresses, processes and env vars of the running stack (what `stack.json` holds). */
  readonly info: StackInfo;
  /** Resolves when a service exits on its own, i.e. not through `stop()`: the stack is then broken. */
  readonly serviceExited: Promise<ServiceExit>;
  /** Stops every service, last started first. */
  stop(): Promise<void>;
  /** For `process.on('exit')`: SIGKILLs whatever still runs, synchronously. */
  killNow(): void;
}

/**
 * Starts the local stack and waits until every service is healthy: as supervised child processes,
 * each in its own process group, the Temporal dev server (SQLite file, so history survives
 * restarts, project search attributes, Web UI) and fake-gcs-server (filesystem backend); in this
 * process, the Vertex/Compute emulator (state file in the data dir, weights read from fake-gcs).
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  // Both resolved before anything is created or started: a missing tool changes nothing.
  const binaries = { temporal: requireTool('temporal'), fakeGcs: requireTool('fakeGcs') };
  const dataDir = path.resolve(options.dataDir);
  const logDir = path.join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const progress = options.onProgress ?? (() => undefined);
  const temporalLog = path.join(logDir, 'temporal.log');
  const gcsLog = path.join(logDir, 'fake-gcs.log');

  // First: the Web UI is started with the codec server's address.
  const codec = options.encryption
    ? await startStackCodecServer(dataDir, options.encryption.codecPort, options, progress)
    : undefined;
  progress(`starting Temporal dev server (log: ${temporalLog})`);
  progress(`starting fake-gcs-server (log: ${gcsLog})`);
  const [temporal, gcs] = await settleAll<[TemporalDevServer, FakeGcsServer]>([
    startTemporalDevServer({
      binary: binaries.temporal,
      host: options.host,
      port: options.temporalPort,
      uiPort: options.uiPort,
      ...(codec ? { uiCodecEndpoint: codec.server.url } : {}),
      namespace: options.namespace,
      dbFile: path.join(dataDir, 'temporal.db'),
      logFile: temporalLog,
      ownProcessGroup: true,
      signal: options.signal,
    }),
    startFakeGcs({
      binary: binaries.fakeGcs,
      host: options.host,
      port: options.gcsPort,
      rootDir: path.join(dataDir, 'gcs'),
      logFile: gcsLog,
      ownProcessGroup: true,
      signal: options.signal,
    }),
  ]).catch(async (err: unknown) => {
    await codec?.server.close();
    throw err;
  });
  const emulatorLog = path.join(logDir, 'emulator.log');
  progress(`starting the Vertex/Compute emulator (log: ${emulatorLog})`);
  const emulatorLogStream = createWriteStream(emulatorLog, { flags: 'a' });
  let emulator: RunningEmulator;
  let credentialsFile: string;
  try {
    emulator = await startEmulator({
      host: options.host,
      port: options.emulatorPort,
      gcsEndpoint: gcs.endpoint,
      stateFile: path.join(dataDir, 'emulator-state.json'),
      log: (line) => emulatorLogStream.write(`${line}\n`),
    });
    credentialsFile = await writeEmulatorCredentials(path.join(dataDir, 'emulator'), emulator.url);
  } catch (err) {
    emulatorLogStream.end();
    await Promise.all([gcs.stop(), temporal.stop(), codec?.server.close()]);
    throw err;
  }
  const env: Record<string, string> = {
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    STORAGE_EMULATOR_HOST: gcs.endpoint,
    // google-auth-library ADC then gets its tokens from the emulator.
    GOOGLE_APPLICATION_CREDENTIALS: credentialsFile,
    ...emulatorBaseUrlEnv(emulator.url),
    ...(temporal.uiUrl ? { [UI_URL_ENV]: temporal.uiUrl } : {}),
    ...(options.worker ? { GARDEN_DEPLOY_TASK_QUEUE: options.worker.taskQueue } : {}),
    // The CLI and the worker encrypt with the keys; `temporal` (its own variable) decodes through the codec server.
    ...(codec ? { [CODEC_KEY_FILE_ENV]: codec.keyFile, TEMPORAL_CODEC_ENDPOINT: codec.server.url } : {}),
  };
  let worker: ManagedProcess | undefined;
  // In dependency order: the worker uses everything; the emulator reads from fake-gcs-server.
  const stopStarted = async () => {
    await worker?.stop(15_000);
    await emulator.close();
    emulatorLogStream.end();
    await gcs.stop();
    await temporal.stop();
    await codec?.server.close();
  };

  if (options.worker) {
    const workerLog = path.join(logDir, 'worker.log');
    progress(
      `starting the garden-deploy worker on task queue ${options.worker.taskQueue} (log: ${workerLog})`,
    );
    try {
      worker = await startLocalWorker({
        command: options.worker.command,
        args: options.worker.args,
        // A short drain: deployments resume from their heartbeats when the stack restarts.
        env: envForStack(env, { GARDEN_DEPLOY_SHUTDOWN_GRACE: '5s', ...process.env }),
        temporalAddress: temporal.address,
        namespace: temporal.namespace,
        taskQueue: options.worker.taskQueue,
        logFile: workerLog,
        signal: options.signal,
      });
    } catch (err) {
      await stopStarted();
      throw err;
    }
  }
  const processes = [temporal.process, gcs.process, ...(worker ? [worker] : [])];

  let stopping = false;
  const running = new Set(processes);
  const serviceExited = new Promise<ServiceExit>((resolve) => {
    for (const child of processes) {
      void child.exited
        .catch(() => ({ code: null, signal: null }))
        .then(({ code, signal }) => {
          running.delete(child);
          if (!stopping) resolve({ name: child.name, logFile: child.logFile, code, signal });
        });
    }
  });

  const info: StackInfo = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    dataDir,
    temporal: { address: temporal.address, namespace: temporal.namespace, uiUrl: temporal.uiUrl },
    gcs: { endpoint: gcs.endpoint },
    emulator: { url: emulator.url, logFile: emulatorLog },
    ...(codec ? { codec: { url: codec.server.url, keyFile: codec.keyFile } } : {}),
    services: processes.map((child) => ({ name: child.name, pid: child.pid, logFile: child.logFile })),
    env,
  };

  return {
    info,
    serviceExited,
    async stop() {
      stopping = true;
      await stopStarted();
    },
    killNow() {
      stopping = true;
      // Only children not seen exiting: a recorded pid may already belong to another process.
      for (const child of running) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

/** The stack's keyring file: the keys its worker, CLI and codec server share. */
export function stackKeyringFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'codec-keys.json');
}

/** The codec server for the Web UI on the stack's keyring, made on first use (owner-only). */
async function startStackCodecServer(
  dataDir: string,
  port: number,
  options: LocalStackOptions,
  progress: (message: string) => void,
): Promise<{ server: RunningCodecServer; keyFile: string }> {
  const keyFile = stackKeyringFile(dataDir);
  if (!existsSync(keyFile)) {
    writeNewKeyringFile(keyFile);
    progress(
      `made a keyring for encrypted payloads: ${keyFile} (keep it: without it the history cannot be read)`,
    );
  }
  const keyring = loadKeyringFile(keyFile, progress);
  const logFile = path.join(dataDir, 'logs', 'codec.log');
  progress(`starting the codec server (log: ${logFile})`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const host = options.host ?? '127.0.0.1';
  let server: RunningCodecServer;
  try {
    server = await startCodecServer({
      codec: new AesGcmCodec(keyring),
      host,
      port,
      corsOrigins: options.uiPort === undefined ? [] : localUiOrigins(options.uiPort, host),
      log: (line) => log.write(`${new Date().toISOString()} ${line}\n`),
    });
  } catch (err) {
    log.end();
    throw err;
  }
  return {
    keyFile,
    server: {
      ...server,
      close: async () => {
        await server.close();
        log.end();
      },
    },
  };
}

/** Like `Promise.all`, but when one start fails it stops the services that did start, then rethrows. */
async function settleAll<T extends Array<{ stop(): Promise<void> }>>(starts: {
  [K in keyof T]: Promise<T[K]>;
}): Promise<T> {
  const results = await Promise.allSettled(starts);
  const failure = results.find((result) => result.status === 'rejected');
  if (!failure) return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as T;
  await Promise.all(
    results.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)),
  );
  throw failure.reason;
}

/**
 * The environment of a process that uses the stack: `base` minus Temporal's own variables (a shell
 * set up for a remote cluster must not point it there: API key, TLS, profile) and payload keys
 * (the stack's, with `--encrypt`, or none), plus the stack's.
 */
export function envForStack(
  stackEnv: Record<string, string>,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const dropped = (name: string) =>
    name.startsWith('TEMPORAL_') || (CODEC_ENV_VARIABLES as readonly string[]).includes(name);
  const kept = Object.entries(base).filter(([name]) => !dropped(name));
  return { ...Object.fromEntries(kept), ...stackEnv };
}
