import path from 'node:path';
import { setUpCluster } from './cluster-setup';
import { startPostgres, type RunningPostgres } from './postgres';
import { type ManagedProcess, findFreePort, findFreePorts, spawnService, startService } from './process';
import { temporalAnswers } from './temporal';
import { requireTool } from './tools';

/**
 * The cluster's configuration, shared with docker-compose.yml: the server's YAML, its dynamic
 * config, the schema job and the server's start script (config/temporal/).
 */
export const CLUSTER_CONFIG_DIR = path.resolve(__dirname, '../../config/temporal');

/** The variables config/temporal/cluster.yaml reads for each port, in the order they are picked. */
const PORT_VARIABLES = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_HTTP_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
] as const;

export interface TemporalClusterOptions {
  /** One log per service: postgresql.log, temporal-schema.log, temporal-server.log, temporal-ui.log. */
  logDir: string;
  namespace?: string;
  /** Also run the Temporal Web UI server (the pinned `temporalUi` tool). */
  ui?: boolean;
  host?: string;
  /** Where the pinned tools are looked up (GARDEN_DEPLOY_TOOLS_DIR, XDG_CACHE_HOME). */
  env?: NodeJS.ProcessEnv;
  /** Per service (default 120 s: a first start creates the schema and the shards). */
  startTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface TemporalCluster {
  /** The frontend's gRPC `host:port`. */
  readonly address: string;
  readonly namespace: string;
  readonly uiUrl?: string;
  readonly postgres: RunningPostgres;
  /** The Temporal server process now running (another one after a restart). */
  readonly server: ManagedProcess;
  /**
   * Stops the Temporal server (SIGTERM: it shuts down in order) and starts it again on the same
   * ports and databases: clients and workers reconnect to the same address.
   */
  restartServer(): Promise<void>;
  /** Stops the UI, the server and PostgreSQL, and removes the databases. */
  stop(): Promise<void>;
}

/**
 * The production cluster's parts on this machine, each on free ports: PostgreSQL (a throwaway
 * cluster), Temporal's two databases created by the server's own SQL tool, the Temporal server
 * 1.29.1 with SQL visibility on config/temporal/, the namespace and the project's search
 * attributes, and optionally the Web UI server. Needs `./scripts/install-tools.sh` (the server,
 * its SQL tool, the UI server and PostgreSQL).
 */
export async function startTemporalCluster(options: TemporalClusterOptions): Promise<TemporalCluster> {
  const env = options.env ?? process.env;
  const host = options.host ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const serverBinary = requireTool('temporalServer', env);
  const sqlTool = requireTool('temporalSqlTool', env);
  const uiBinary = options.ui ? requireTool('temporalUi', env) : undefined;
  const log = (name: string) => path.join(options.logDir, `${name}.log`);

  const postgres = await startPostgres({
    port: await findFreePort(host),
    host,
    logFile: log('postgresql'),
    startTimeoutMs: timeoutMs,
    signal: options.signal,
  });
  const started: Array<{ stop(): Promise<void> }> = [postgres];
  const stopStarted = async () => {
    for (const part of [...started].reverse()) await part.stop();
  };
  try {
    await createSchemas(postgres, sqlTool, log('temporal-schema'));

    const ports = await findFreePorts(PORT_VARIABLES.length, host);
    const serverEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      TEMPORAL_SERVER: serverBinary,
      BIND_ON_IP: host,
      POSTGRES_SEEDS: postgres.host,
      DB_PORT: String(postgres.port),
      POSTGRES_USER: postgres.user,
      POSTGRES_PWD: postgres.password,
      LOG_LEVEL: 'warn',
      ...Object.fromEntries(PORT_VARIABLES.map((name, i) => [name, String(ports[i])])),
    };
    const address = `${host}:${serverEnv.FRONTEND_GRPC_PORT}`;
    const startServer = () =>
      startService({
        name: 'temporal-server',
        command: 'sh',
        args: [path.join(CLUSTER_CONFIG_DIR, 'start-server.sh')],
        env: serverEnv,
        logFile: log('temporal-server'),
        healthy: () => temporalAnswers(address),
        what: 'Temporal server',
        timeoutMs,
        signal: options.signal,
      });
    let server = await startServer();
    const serverPart = { stop: () => server.stop(20_000) };
    started.push(serverPart);
    await setUpCluster({ connectionOptions: { address }, namespace, timeoutMs });

    let uiUrl: string | undefined;
    if (uiBinary !== undefined) {
      const uiPort = await findFreePort(host);
      uiUrl = `http://${host}:${uiPort}`;
      const url = uiUrl;
      const ui = await startService({
        name: 'temporal-ui',
        command: uiBinary,
        args: ['--root', CLUSTER_CONFIG_DIR, '--config', '.', '--env', 'ui', 'start'],
        env: {
          TEMPORAL_ADDRESS: address,
          TEMPORAL_UI_HOST: host,
          TEMPORAL_UI_PORT: String(uiPort),
          TEMPORAL_DEFAULT_NAMESPACE: namespace,
        },
        logFile: log('temporal-ui'),
        healthy: async () => (await fetch(url)).ok,
        what: 'Temporal Web UI server',
        timeoutMs,
        signal: options.signal,
      });
      started.push(ui);
    }

    return {
      address,
      namespace,
      uiUrl,
      postgres,
      get server() {
        return server;
      },
      async restartServer() {
        await server.stop(20_000);
        server = await startServer();
      },
      stop: stopStarted,
    };
  } catch (err) {
    await stopStarted();
    throw err;
  }
}

/** config/temporal/setup-schema.sh with the SQL tool we built: both databases at the current schema. */
async function createSchemas(postgres: RunningPostgres, sqlTool: string, logFile: string): Promise<void> {
  const job = spawnService({
    name: 'temporal-schema',
    command: 'sh',
    args: [path.join(CLUSTER_CONFIG_DIR, 'setup-schema.sh')],
    env: {
      PATH: process.env.PATH,
      TEMPORAL_SQL_TOOL: sqlTool,
      POSTGRES_SEEDS: postgres.host,
      DB_PORT: String(postgres.port),
      POSTGRES_USER: postgres.user,
      SQL_PASSWORD: postgres.password,
    },
    logFile,
  });
  const { code, signal } = await job.exited;
  if (code !== 0) {
    throw new Error(`creating Temporal's databases failed (exit ${code ?? signal}); see ${logFile}`);
  }
}
