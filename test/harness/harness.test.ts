import { Worker } from '@temporalio/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { openModelStore, openModelWriter } from '../../src/storage';
import { closeTestEnv, createTestBucket, getTestEnv, uniqueTaskQueue } from './env';

afterAll(closeTestEnv);

describe('test harness: real parts', () => {
  it('runs a workflow on the Temporal dev server', async () => {
    const { client, nativeConnection, namespace } = await getTestEnv();
    const taskQueue = uniqueTaskQueue('harness');
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace,
      taskQueue,
      workflowsPath: require.resolve('./workflows/echo.ts'),
    });
    const result = await worker.runUntil(
      client.workflow.execute('echo', { taskQueue, workflowId: taskQueue, args: ['hello'] }),
    );
    expect(result).toBe('echo: hello');
  });

  it('writes an object and reads byte ranges back through fake-gcs-server', async () => {
    const { storage } = await getTestEnv();
    const bucket = await createTestBucket(storage, 'harness');
    const writer = await openModelWriter(`gs://${bucket}/folder/`, { storage });
    const payload = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    await writer.write('blob.bin', payload);

    const store = openModelStore(`gs://${bucket}/folder`, { storage });
    const [object] = await store.list();
    expect(object).toMatchObject({ name: 'blob.bin', size: 1000 });
    expect(object?.generation).toMatch(/^\d+$/);
    expect(await store.readRange('blob.bin', 10, 20)).toEqual(payload.subarray(10, 20));
    expect(await store.readRange('blob.bin', 990, 1000)).toEqual(payload.subarray(990));
  });
});
