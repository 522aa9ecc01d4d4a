import { randomUUID } from 'node:crypto';
import type { Storage } from '@google-cloud/storage';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import { createStorage } from '../../src/storage';

export interface TestEnv {
  client: Client;
  connection: Connection;
  nativeConnection: NativeConnection;
  storage: Storage;
  temporalAddress: string;
  namespace: string;
  gcsEndpoint: string;
  /** Base URL of the Vertex AI + Compute emulator (admin API under /_emulator). */
  emulatorUrl: string;
}

let env: Promise<TestEnv> | undefined;

/** Connections to the servers the global setup started; created once per test file. */
export function getTestEnv(): Promise<TestEnv> {
  env ??= (async () => {
    const temporalAddress = inject('temporalAddress');
    const namespace = inject('temporalNamespace');
    const gcsEndpoint = inject('gcsEndpoint');
    const connection = await Connection.connect({ address: temporalAddress });
    const nativeConnection = await NativeConnection.connect({ address: temporalAddress });
    return {
      client: new Client({ connection, namespace }),
      connection,
      nativeConnection,
      storage: createStorage({ endpoint: gcsEndpoint }),
      temporalAddress,
      namespace,
      gcsEndpoint,
      emulatorUrl: inject('emulatorUrl'),
    };
  })();
  return env;
}

export async function closeTestEnv(): Promise<void> {
  if (!env) return;
  const { connection, nativeConnection } = await env;
  env = undefined;
  await Promise.all([connection.close(), nativeConnection.close()]);
}

/** A fresh bucket with a unique name, so test files never see each other's objects. */
export async function createTestBucket(storage: Storage, label = 'test'): Promise<string> {
  const name = `${label}-${randomUUID().slice(0, 12)}`.toLowerCase();
  await storage.createBucket(name);
  return name;
}

/** The workflow code, bundled once by the global setup, for `Worker.create` and replays. */
export function workflowBundle(): { codePath: string } {
  return { codePath: inject('workflowBundlePath') };
}

export function uniqueTaskQueue(label = 'test'): string {
  return `${label}-${randomUUID()}`;
}
