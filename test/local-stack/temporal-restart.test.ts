import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/local-stack/process';
import { type TemporalDevServer, startTemporalDevServer } from '../../src/local-stack/temporal';
import { requireTool } from '../../src/local-stack/tools';
import { DeployStage } from '../../src/search-attributes';

let dataDir: string | undefined;
let server: TemporalDevServer | undefined;

afterAll(async () => {
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A private dev server (not the shared harness one) on a free port, over `dbFile`. */
async function startServer(dbFile: string): Promise<TemporalDevServer> {
  return startTemporalDevServer({
    binary: requireTool('temporal'),
    port: await findFreePort(),
    dbFile,
    logFile: path.join(path.dirname(dbFile), 'temporal.log'),
  });
}

describe('Temporal dev server on a SQLite file', () => {
  it('still knows a completed workflow, its result and search attributes after a restart', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'garden-restart-test-'));
    const dbFile = path.join(dataDir, 'temporal.db');
    const workflowId = 'restart-test';

    server = await startServer(dbFile);
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const connection = await Connection.connect({ address: server.address });
    try {
      const worker = await Worker.create({
        connection: nativeConnection,
        taskQueue: 'restart-test',
        workflowsPath: require.resolve('../harness/workflows/echo.ts'),
      });
      const client = new Client({ connection });
      const result = await worker.runUntil(
        client.workflow.execute('echo', {
          taskQueue: 'restart-test',
          workflowId,
          args: ['before restart'],
          typedSearchAttributes: [{ key: DeployStage, value: 'done' }],
        }),
      );
      expect(result).toBe('echo: before restart');
    } finally {
      await Promise.all([connection.close(), nativeConnection.close()]);
    }
    await server.stop();

    // Another process and another port: only the database file carries the history over.
    server = await startServer(dbFile);
    const reconnected = await Connection.connect({ address: server.address });
    try {
      const handle = new Client({ connection: reconnected }).workflow.getHandle(workflowId);
      const description = await handle.describe();
      expect(description.status.name).toBe('COMPLETED');
      expect(description.typedSearchAttributes.get(DeployStage)).toBe('done');
      expect(await handle.result()).toBe('echo: before restart');
    } finally {
      await reconnected.close();
    }
  });
});
