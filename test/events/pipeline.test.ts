import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventOutcome,
  type StorageEvent,
  type StorageEventDeps,
  eventsConfig,
  handleCloudEvent,
  handlePubsubPush,
  handleStorageEvent,
  markerRequestId,
} from '../../src/events';
import { REQUEST_ID_PATTERN } from '../../src/client';
import { readObjectGeneration } from '../../src/storage';
import { closeTestEnv, createTestBucket, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { finalizeAttributes } from './envelope';

/**
 * The pipeline's answers short of a deployment, on the harness's fake-gcs-server: what is no
 * trigger, a stale or deleted marker, a marker too large, Temporal unreachable (retry, 503), and a
 * request that is no event (400). The deployments themselves: storage-events.test.ts.
 */

let bucket: string;
let deps: StorageEventDeps;
let unreachable: Connection;
const outcomes: EventOutcome[] = [];

beforeAll(async () => {
  const { client, storage } = await getTestEnv();
  bucket = await createTestBucket(storage, 'pipeline');
  deps = {
    client,
    storage,
    config: eventsConfig({ prefix: 'models/', maxMarkerBytes: 1024 }),
    taskQueue: 'unused-task-queue',
    metrics: { handled: (_t, outcome) => outcomes.push(outcome) },
  };
  // Nothing listens on port 1: every call fails as when Temporal is down.
  unreachable = Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 500 });
});
afterAll(async () => {
  await unreachable.close();
  await closeTestEnv();
});

async function put(object: string, text: string): Promise<string> {
  const file = deps.storage.bucket(bucket).file(object);
  await file.save(text, { resumable: false });
  return String((await file.getMetadata())[0].generation);
}

const event = (
  object: string,
  generation: string,
  kind: StorageEvent['kind'] = 'finalized',
): StorageEvent => ({
  transport: 'pubsub',
  id: 'm1',
  kind,
  type: kind === 'finalized' ? 'OBJECT_FINALIZE' : 'OBJECT_DELETE',
  bucket,
  object,
  generation,
});

describe('the storage-event pipeline', () => {
  it('ignores what is no marker, and a marker’s other events', async () => {
    expect((await handleStorageEvent(event('models/a/config.json', '1'), deps)).outcome).toBe('ignored');
    expect((await handleStorageEvent(event('models/a/garden-deploy.status.json', '1'), deps)).outcome).toBe(
      'ignored',
    );
    expect(
      (
        await handleStorageEvent(
          { ...event('models/a/garden-deploy.yaml', '1'), kind: 'metadataUpdated' },
          deps,
        )
      ).outcome,
    ).toBe('ignored');
    expect(
      (await handleStorageEvent(event('models/a/garden-deploy.yaml', '1', 'deleted'), deps)).outcome,
    ).toBe('deleted');
  });

  it('acks a stale generation and a deleted marker without acting or writing a status', async () => {
    const object = 'models/stale/garden-deploy.yaml';
    const first = await put(object, 'name: one');
    const second = await put(object, 'name: two');
    expect(await handleStorageEvent(event(object, first), deps)).toMatchObject({
      outcome: 'stale',
      message: expect.stringContaining(`now generation ${second}`),
    });
    await deps.storage.bucket(bucket).file(object).delete();
    expect((await handleStorageEvent(event(object, second), deps)).outcome).toBe('deleted');
    const [status] = await deps.storage
      .bucket(bucket)
      .file('models/stale/garden-deploy.status.json')
      .exists();
    expect(status).toBe(false);
  });

  it('reports a marker above the size bound as invalid, reading none of it', async () => {
    const object = 'models/large/garden-deploy.yaml';
    const generation = await put(object, `# ${'x'.repeat(2000)}\nname: big`);
    const result = await handleStorageEvent(event(object, generation), deps);
    expect(result).toMatchObject({
      outcome: 'invalid',
      issues: [{ path: '', message: expect.stringContaining('at most 1024') }],
    });
    const [text] = await deps.storage
      .bucket(bucket)
      .file('models/large/garden-deploy.status.json')
      .download();
    expect(JSON.parse(text.toString())).toMatchObject({ outcome: 'invalid', generation });
    // Handled before: the same generation again is a duplicate.
    expect((await handleStorageEvent(event(object, generation), deps)).outcome).toBe('duplicate');
  });

  it('reads a generation only while it is current', async () => {
    const object = 'models/read/garden-deploy.yaml';
    const generation = await put(object, 'name: x');
    expect(await readObjectGeneration(deps.storage, bucket, object, generation, 100)).toEqual({
      state: 'current',
      data: Buffer.from('name: x'),
    });
    expect((await readObjectGeneration(deps.storage, bucket, object, '1', 100)).state).toBe('stale');
    expect(
      await readObjectGeneration(deps.storage, bucket, 'models/none/garden-deploy.yaml', '1', 100),
    ).toEqual({
      state: 'missing',
    });
  });

  it('asks for a redelivery when Temporal cannot be reached (push: 503), and starts nothing', async () => {
    const object = 'models/down/garden-deploy.yaml';
    const generation = await put(
      object,
      'name: down\nproject: my-project\nregion: us-central1\nmachine: { type: g2-standard-12, acceleratorType: NVIDIA_L4, acceleratorCount: 1 }',
    );
    // The deadline bounds the client's own retries (~20 s against a closed port).
    const down = { ...deps, client: new Client({ connection: unreachable }), temporalDeadlineMs: 1_000 };
    const envelope = {
      message: {
        attributes: finalizeAttributes(bucket, object, generation),
        messageId: '5',
      },
    };
    const answer = await handlePubsubPush(envelope, { id: 'oidc:push@p.iam.gserviceaccount.com' }, down);
    expect(answer).toMatchObject({
      status: 503,
      body: { outcome: 'retry', message: expect.stringContaining('Temporal did not answer within 1 s') },
    });
    const [status] = await deps.storage.bucket(bucket).file('models/down/garden-deploy.status.json').exists();
    expect(status).toBe(false);
  });

  it('answers 400 to a body that is no event, 200 to an event of no interest', async () => {
    expect(await handlePubsubPush({ nope: 1 }, undefined, deps)).toMatchObject({
      status: 400,
      body: { outcome: 'bad-request' },
    });
    expect(await handleCloudEvent({ 'content-type': 'application/json' }, {}, undefined, deps)).toMatchObject(
      {
        status: 400,
      },
    );
    const answer = await handleCloudEvent(
      {
        'ce-id': '1',
        'ce-source': 's',
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.audit.log.v1.written',
      },
      {},
      undefined,
      deps,
    );
    expect(answer).toMatchObject({ status: 200, body: { outcome: 'ignored' } });
  });

  it('a redelivery after the status was lost is still a duplicate: the run records the generation’s request id', async () => {
    const { client } = await getTestEnv();
    const project = `pipe-${randomUUID().slice(0, 8)}`;
    const object = 'models/lost/garden-deploy.yaml';
    const generation = await put(
      object,
      `name: lost\nproject: ${project}\nregion: us-central1\n` +
        'machine: { type: g2-standard-12, acceleratorType: NVIDIA_L4, acceleratorCount: 1 }',
    );
    // No worker polls this queue: the deployment is started and waits, which is all this needs.
    const d = {
      ...deps,
      config: eventsConfig({ prefix: 'models/' }),
      taskQueue: uniqueTaskQueue('pipeline'),
    };
    const first = await handleStorageEvent(event(object, generation), d);
    const workflowId = `deploy/${project}/us-central1/lost`;
    try {
      expect(first).toMatchObject({ outcome: 'started', workflowId });
      // As if the first delivery died before writing its status object.
      await deps.storage.bucket(bucket).file('models/lost/garden-deploy.status.json').delete();
      expect(await handleStorageEvent(event(object, generation), d)).toMatchObject({
        outcome: 'duplicate',
        workflowId,
      });
      const [text] = await deps.storage
        .bucket(bucket)
        .file('models/lost/garden-deploy.status.json')
        .download();
      expect(JSON.parse(text.toString())).toMatchObject({
        outcome: 'started',
        generation,
        deployment: { workflowId, requestId: markerRequestId(event(object, generation)) },
      });
      let runs = 0;
      for await (const _ of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs++;
      expect(runs).toBe(1);
    } finally {
      await client.workflow.getHandle(workflowId).terminate('test over');
    }
  });

  it('a redelivery after the status was lost and the run ended starts no second deployment', async () => {
    const { client } = await getTestEnv();
    const project = `pipe-${randomUUID().slice(0, 8)}`;
    const object = 'models/ended/garden-deploy.yaml';
    const generation = await put(
      object,
      `name: ended\nproject: ${project}\nregion: us-central1\n` +
        'machine: { type: g2-standard-12, acceleratorType: NVIDIA_L4, acceleratorCount: 1 }',
    );
    const d = {
      ...deps,
      config: eventsConfig({ prefix: 'models/' }),
      taskQueue: uniqueTaskQueue('pipeline'),
    };
    const workflowId = `deploy/${project}/us-central1/ended`;
    expect(await handleStorageEvent(event(object, generation), d)).toMatchObject({
      outcome: 'started',
      workflowId,
    });
    // The run ends (as a deploy that fails fast would) and the first delivery's status is lost.
    await client.workflow.getHandle(workflowId).terminate('ended before the redelivery');
    await deps.storage.bucket(bucket).file('models/ended/garden-deploy.status.json').delete();
    expect(await handleStorageEvent(event(object, generation), d)).toMatchObject({
      outcome: 'duplicate',
      workflowId,
    });
    let runs = 0;
    for await (const _ of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs++;
    expect(runs).toBe(1);
  });

  it('names a marker generation’s deploy request in the form request ids take', () => {
    const id = markerRequestId({
      bucket: 'b',
      object: `models/${'x'.repeat(1000)}/garden-deploy.yaml`,
      generation: '1712345678901234',
    });
    expect(id).toMatch(REQUEST_ID_PATTERN);
    expect(id).toMatch(/^gcs:[0-9a-f]{24}:1712345678901234$/);
    expect(markerRequestId({ bucket: 'b', object: 'o', generation: '2' })).not.toBe(
      markerRequestId({ bucket: 'b', object: 'o', generation: '3' }),
    );
  });
});
