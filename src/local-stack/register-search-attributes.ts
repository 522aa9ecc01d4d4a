import { Connection } from '@temporalio/client';
// Not re-exported from the package root; @temporalio/* are pinned to one exact version.
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { SEARCH_ATTRIBUTES } from '../search-attributes';

export class SearchAttributeConflictError extends Error {
  override readonly name = 'SearchAttributeConflictError';
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

/** Entry point of the docker-compose init job; connects like every Temporal client (TEMPORAL_ADDRESS, …). */
async function main(): Promise<void> {
  const { connectionOptions, namespace = 'default' } = loadClientConnectConfig();
  const connection = await Connection.connect(connectionOptions);
  try {
    const created = await registerSearchAttributes(connection, namespace);
    process.stdout.write(
      created.length > 0
        ? `created search attributes in ${namespace}: ${created.join(', ')}\n`
        : `search attributes already present in ${namespace}\n`,
    );
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`register-search-attributes: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
