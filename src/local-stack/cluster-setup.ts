import { setTimeout as delay } from 'node:timers/promises';
import { Connection, type ConnectionOptions, isGrpcServiceError } from '@temporalio/client';
// Neither is re-exported from the package root; @temporalio/* are pinned to one exact version.
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { msToTs } from '@temporalio/common/lib/time';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { SEARCH_ATTRIBUTES } from '../search-attributes';

const GRPC_NOT_FOUND = 5;
const GRPC_ALREADY_EXISTS = 6;

/** History of finished deployments stays inspectable this long on a cluster we set up. */
export const NAMESPACE_RETENTION = '7 days';

export class SearchAttributeConflictError extends Error {
  override readonly name = 'SearchAttributeConflictError';
}

/** Creates `namespace` unless it exists; returns whether it created it. */
export async function ensureNamespace(connection: Connection, namespace: string): Promise<boolean> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return false;
  } catch (err) {
    if (!isGrpcServiceError(err) || err.code !== GRPC_NOT_FOUND) throw err;
  }
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(NAMESPACE_RETENTION),
    });
    return true;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === GRPC_ALREADY_EXISTS) return false;
    throw err;
  }
}

/**
 * Creates the project's custom search attributes (src/search-attributes.ts) in `namespace` where
 * missing, so deployments are filterable on a cluster that is not the dev server (which gets them
 * from `--search-attribute`). Idempotent; returns the names it created.
 */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing: Record<string, number> = {};
  for (const key of SEARCH_ATTRIBUTES) {
    const wanted = encodeSearchAttributeIndexedValueType(key.type);
    if (wanted === undefined) throw new Error(`no server type for search attribute type ${key.type}`);
    const existing = customAttributes?.[key.name];
    if (existing === undefined || existing === null) {
      missing[key.name] = wanted;
    } else if (existing !== wanted) {
      throw new SearchAttributeConflictError(
        `search attribute ${key.name} exists in namespace ${namespace} with another type (server type ` +
          `${existing}, garden-deploy needs ${key.type}); remove it (temporal operator search-attribute ` +
          `remove --name ${key.name}) or use another namespace`,
      );
    }
  }
  const names = Object.keys(missing);
  if (names.length > 0)
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  return names;
}

export interface SetUpClusterOptions {
  connectionOptions: ConnectionOptions;
  namespace: string;
  /** Keep trying this long while the server is not ready (default 180 s). */
  timeoutMs?: number;
  log?: (message: string) => void;
}

/**
 * The namespace and the project's search attributes on a cluster, retried while a freshly started
 * server is not ready yet. Idempotent. Run by the docker-compose `temporal-setup` job (below) and
 * by the native test cluster (cluster.ts).
 */
export async function setUpCluster(options: SetUpClusterOptions): Promise<void> {
  const { namespace, log = () => undefined } = options;
  const deadline = Date.now() + (options.timeoutMs ?? 180_000);
  for (let attempt = 1; ; attempt++) {
    try {
      const connection = await Connection.connect(options.connectionOptions);
      try {
        if (await ensureNamespace(connection, namespace)) log(`created namespace ${namespace}`);
        const created = await registerSearchAttributes(connection, namespace);
        log(
          created.length > 0
            ? `created search attributes in ${namespace}: ${created.join(', ')}`
            : `search attributes already present in ${namespace}`,
        );
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (err instanceof SearchAttributeConflictError || Date.now() > deadline) throw err;
      log(`attempt ${attempt}: ${err instanceof Error ? err.message : String(err)}; retrying`);
      await delay(3_000);
    }
  }
}

/**
 * Entry point of the docker-compose `temporal-setup` job: connects like every Temporal client
 * (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS/API-key variables).
 */
async function main(): Promise<void> {
  const { connectionOptions, namespace = 'default' } = loadClientConnectConfig();
  await setUpCluster({ connectionOptions, namespace, log });
}

function log(message: string): void {
  process.stdout.write(`temporal-setup: ${message}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`temporal-setup: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
