import { randomUUID } from 'node:crypto';
import type { Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SearchAttributeConflictError,
  ensureNamespace,
  registerSearchAttributes,
} from '../../src/local-stack/cluster-setup';
import { waitUntilHealthy } from '../../src/local-stack/process';
import { SEARCH_ATTRIBUTES } from '../../src/search-attributes';
import { closeTestEnv, getTestEnv } from '../harness/env';

afterAll(closeTestEnv);

/** A new namespace: unlike the dev server's own, it starts without our search attributes. */
async function freshNamespace(connection: Connection): Promise<string> {
  const namespace = `setup-${randomUUID().slice(0, 8)}`;
  expect(await ensureNamespace(connection, namespace)).toBe(true);
  // The server caches "not found" for a second: wait until the new namespace is served.
  await waitUntilHealthy(
    `namespace ${namespace}`,
    () => customAttributes(connection, namespace).then(() => true),
    {
      timeoutMs: 15_000,
    },
  );
  return namespace;
}

async function customAttributes(connection: Connection, namespace: string) {
  const response = await connection.operatorService.listSearchAttributes({ namespace });
  return response.customAttributes ?? {};
}

describe('cluster setup (docker-compose temporal-setup job)', () => {
  it('creates a missing namespace once', async () => {
    const { connection } = await getTestEnv();
    const namespace = await freshNamespace(connection);
    const { config } = await connection.workflowService.describeNamespace({ namespace });
    expect(Number(config?.workflowExecutionRetentionTtl?.seconds)).toBe(7 * 24 * 3600);
    expect(await ensureNamespace(connection, namespace)).toBe(false);
    expect(await ensureNamespace(connection, 'default')).toBe(false);
  });

  it('creates every project search attribute with its type, and is a no-op the second time', async () => {
    const { connection } = await getTestEnv();
    const namespace = await freshNamespace(connection);
    const names = SEARCH_ATTRIBUTES.map((key) => key.name);

    expect(await registerSearchAttributes(connection, namespace)).toEqual(names);
    const attributes = await customAttributes(connection, namespace);
    for (const key of SEARCH_ATTRIBUTES) {
      expect(attributes[key.name], key.name).toBe(encodeSearchAttributeIndexedValueType(key.type));
    }

    expect(await registerSearchAttributes(connection, namespace)).toEqual([]);
  });

  it('refuses an existing attribute of another type, naming it and the fix, and adds nothing', async () => {
    const { connection } = await getTestEnv();
    const namespace = await freshNamespace(connection);
    const [first, ...others] = SEARCH_ATTRIBUTES;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: { [first!.name]: encodeSearchAttributeIndexedValueType('TEXT')! },
    });

    const attempt = registerSearchAttributes(connection, namespace);
    await expect(attempt).rejects.toThrow(SearchAttributeConflictError);
    await expect(attempt).rejects.toThrow(
      `search attribute ${first!.name} exists in namespace ${namespace} with another type`,
    );
    await expect(attempt).rejects.toThrow(`temporal operator search-attribute remove --name ${first!.name}`);
    const attributes = await customAttributes(connection, namespace);
    for (const key of others) expect(attributes[key.name], key.name).toBeUndefined();
  });
});
