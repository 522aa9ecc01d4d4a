import { type ManagedProcess, startService } from './process';

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
  /** Publish object events to Pub/Sub (the topic must exist first), as a bucket notification would. */
  events?: FakeGcsEvents;
}

/** fake-gcs-server's `-event.*` flags; it publishes with Pub/Sub's Go client, so to `pubsubEmulatorHost`. */
export interface FakeGcsEvents {
  /** `host:port` of a Pub/Sub emulator (PUBSUB_EMULATOR_HOST of the server). */
  pubsubEmulatorHost: string;
  projectId: string;
  topic: string;
  /** Only this bucket's objects (default all). */
  bucket?: string;
  /** Only objects under this prefix (default all). */
  objectPrefix?: string;
  /** Default `['finalize']`; also `delete`, `metadataUpdate`. */
  list?: Array<'finalize' | 'delete' | 'metadataUpdate'>;
}

function eventArgs(events: FakeGcsEvents | undefined): string[] {
  if (!events) return [];
  return [
    '-event.pubsub-project-id',
    events.projectId,
    '-event.pubsub-topic',
    events.topic,
    ...(events.bucket ? ['-event.bucket', events.bucket] : []),
    ...(events.objectPrefix ? ['-event.object-prefix', events.objectPrefix] : []),
    '-event.list',
    (events.list ?? ['finalize']).join(','),
  ];
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
    ...eventArgs(options.events),
  ];
  const child = await startService({
    name: 'fake-gcs-server',
    command: options.binary,
    args,
    logFile: options.logFile,
    ownProcessGroup: options.ownProcessGroup,
    ...(options.events
      ? { env: { ...process.env, PUBSUB_EMULATOR_HOST: options.events.pubsubEmulatorHost } }
      : {}),
    what: 'fake-gcs-server',
    healthy: async () => (await fetch(`${endpoint}/storage/v1/b?project=local-project`)).ok,
    timeoutMs: options.startTimeoutMs ?? 30_000,
    signal: options.signal,
  });
  return { endpoint, process: child, stop: () => child.stop() };
}
