import path from 'node:path';
import { Connection } from '@temporalio/client';
import { searchAttributeFlags } from '../search-attributes';
import { type ManagedProcess, spawnService, waitUntilHealthy } from './process';

export interface TemporalDevServerOptions {
  binary: string;
  port: number;
  /** Web UI port; `undefined` runs headless. */
  uiPort?: number;
  /** The codec server the Web UI calls from the browser to show payloads decoded. */
  uiCodecEndpoint?: string;
  host?: string;
  /** SQLite file: history survives restarts of the server. */
  dbFile: string;
  logFile: string;
  namespace?: string;
  startTimeoutMs?: number;
  ownProcessGroup?: boolean;
  /** Aborting it stops the server while it is still starting. */
  signal?: AbortSignal;
}

export interface TemporalDevServer {
  readonly address: string;
  readonly namespace: string;
  readonly uiUrl?: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * `temporal server start-dev` with the project's search attributes, waited on until it answers gRPC
 * (and, with a UI port, until the Web UI answers HTTP).
 */
export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const host = options.host ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(options.port),
    '--db-filename',
    path.resolve(options.dbFile),
    // SQLite's default (rollback journal, fsync at every commit) capped the dev server at about two
    // deployment starts a second on a busy machine; a write-ahead log synced at checkpoints gives
    // 12/s and still keeps every commit if the server is killed (only an OS crash may lose the last).
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
    '--namespace',
    namespace,
    '--log-format',
    'json',
    '--log-level',
    'warn',
    ...(options.uiPort === undefined ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
    ...(options.uiPort !== undefined && options.uiCodecEndpoint
      ? ['--ui-codec-endpoint', options.uiCodecEndpoint]
      : []),
    ...searchAttributeFlags().flatMap((flag) => ['--search-attribute', flag]),
  ];
  const child = spawnService({
    name: 'temporal',
    command: options.binary,
    args,
    logFile: options.logFile,
    ownProcessGroup: options.ownProcessGroup,
  });
  const address = `${host}:${options.port}`;
  const uiUrl = options.uiPort === undefined ? undefined : `http://${host}:${options.uiPort}`;
  const wait = { timeoutMs: options.startTimeoutMs ?? 60_000, process: child, signal: options.signal };
  try {
    await waitUntilHealthy('Temporal dev server', () => temporalAnswers(address), wait);
    if (uiUrl !== undefined) {
      await waitUntilHealthy('Temporal Web UI', async () => (await fetch(uiUrl)).ok, wait);
    }
  } catch (err) {
    await child.stop(1_000);
    throw err;
  }
  return {
    address,
    namespace,
    uiUrl,
    process: child,
    stop: () => child.stop(),
  };
}

/** True once the frontend at `address` answers gRPC (throws while it does not). */
export async function temporalAnswers(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1_000 });
  try {
    await connection.workflowService.getSystemInfo({});
    return true;
  } finally {
    await connection.close();
  }
}
