import { type ManagedProcess, spawnService, waitUntilHealthy } from './process';

export interface FakeGcsOptions {
  binary: string;
  port: number;
  host?: string;
  /** Filesystem backend root: objects survive restarts. */
  rootDir: string;
  logFile: string;
  startTimeoutMs?: number;
  ownProcessGroup?: boolean;
  /** Aborting it stops the server while it is still starting. */
  signal?: AbortSignal;
}

export interface FakeGcsServer {
  /** Base URL for `@google-cloud/storage` (`apiEndpoint`) and `STORAGE_EMULATOR_HOST`. */
  readonly endpoint: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/** fake-gcs-server over plain HTTP on loopback with its filesystem backend. */
export async function startFakeGcs(options: FakeGcsOptions): Promise<FakeGcsServer> {
  const host = options.host ?? '127.0.0.1';
  const endpoint = `http://${host}:${options.port}`;
  const args = [
    '-scheme',
    'http',
    '-host',
    host,
    '-port',
    String(options.port),
    '-backend',
    'filesystem',
    '-filesystem-root',
    options.rootDir,
    '-public-host',
    `${host}:${options.port}`,
    '-external-url',
    endpoint,
    '-log-level',
    'warn',
  ];
  const child = spawnService({
    name: 'fake-gcs-server',
    command: options.binary,
    args,
    logFile: options.logFile,
    ownProcessGroup: options.ownProcessGroup,
  });
  try {
    await waitUntilHealthy(
      'fake-gcs-server',
      async () => (await fetch(`${endpoint}/storage/v1/b?project=local-project`)).ok,
      { timeoutMs: options.startTimeoutMs ?? 30_000, process: child, signal: options.signal },
    );
  } catch (err) {
    await child.stop(1_000);
    throw err;
  }
  return { endpoint, process: child, stop: () => child.stop() };
}
