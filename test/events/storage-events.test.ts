import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardownDeployment } from '../../src/client';
import {
  type MarkerStatus,
  SubscriptionNotFoundError,
  eventsConfig,
  markerOf,
  readMarkerStatus,
  startPullSubscriber,
} from '../../src/events';
import { tokenLine } from '../../src/http/auth';
import type { EventsServerDeps } from '../../src/http/routes/events';
import { healthOf } from '../../src/http/health';
import { type ServerDeps, createServer } from '../../src/http/server';
import { generateSampleModel } from '../../src/sample-model';
import { progressQuery } from '../../src/workflows/messages';
import { E2E_WAIT, uniqueName } from '../e2e/harness';
import { cliCommand } from '../harness/built-cli';
import { closeTestEnv, getTestEnv } from '../harness/env';
import { eventually } from '../harness/eventually';
import { type EventStack, PUBSUB_PROJECT, TOPIC, fastProject, startEventStack } from './stack';

/**
 * Storage events end to end: fake-gcs-server publishes its object events to pstest, which
 * `garden-deploy serve` pulls into the storage-event pipeline, which starts deployments on the real
 * Temporal dev server, served by the Vertex emulator. Uploading a model folder and then its marker
 * deploys it; the same event again or the same spec re-uploaded starts nothing new; a new marker
 * with other weights upgrades it; a bad marker starts nothing and is reported.
 */

let s: EventStack;
beforeAll(async () => {
  s = await startEventStack();
}, 120_000);
afterAll(async () => {
  await s?.stop();
  await closeTestEnv();
});

const MARKER = 'garden-deploy.yaml';

function markerYaml(name: string, project: string, extra: string[] = []): string {
  return [
    `name: ${name}`,
    `project: ${project}`,
    'region: us-central1',
    'machine: { type: g2-standard-12, acceleratorType: NVIDIA_L4, acceleratorCount: 1 }',
    // An upgrade in one step with gates that need no traffic: seconds, not minutes.
    'strategy: allAtOnce',
    'gates: { interval: 200ms, minRequests: 0, onIdle: promote }',
    ...extra,
  ].join('\n');
}

/** A sample model in `models/<folder>/`, then its marker, written last; the marker's generation. */
async function uploadFolder(folder: string, marker: string): Promise<string> {
  await generateSampleModel(
    { location: `gs://${s.bucket}/models/${folder}/`, shards: 1 },
    { storage: s.storage },
  );
  return writeMarker(folder, marker);
}

async function writeMarker(folder: string, marker: string): Promise<string> {
  const file = s.storage.bucket(s.bucket).file(`models/${folder}/${MARKER}`);
  await file.save(marker, { resumable: false, contentType: 'application/yaml' });
  const [metadata] = await file.getMetadata();
  return String(metadata.generation);
}

/** The folder's status object once it records `generation`. */
function statusOf(folder: string, generation: string): Promise<MarkerStatus> {
  const marker = markerOf(s.bucket, `models/${folder}/${MARKER}`, eventsConfig({ prefix: 'models/' }))!;
  return eventually(
    `the status object of models/${folder} for generation ${generation}`,
    async () => {
      const status = await readMarkerStatus(s.storage, marker);
      return status?.generation === generation ? status : undefined;
    },
    E2E_WAIT,
  );
}

/** garden_deploy_storage_events_total{outcome} as serve's Prometheus endpoint reports it. */
async function storageEventsMetric(outcome: string): Promise<number> {
  const text = await (await fetch(s.metricsUrl)).text();
  return text
    .split('\n')
    .filter(
      (line) =>
        line.startsWith('garden_deploy_storage_events_total{') && line.includes(`outcome="${outcome}"`),
    )
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** A marker's OBJECT_FINALIZE published again, as a redelivery would bring it. */
async function republish(folder: string, generation: string): Promise<void> {
  const object = `models/${folder}/${MARKER}`;
  await s.pubsub.topic(TOPIC).publishMessage({
    json: { kind: 'storage#object', bucket: s.bucket, name: object, generation },
    attributes: {
      eventType: 'OBJECT_FINALIZE',
      payloadFormat: 'JSON_API_V1',
      bucketId: s.bucket,
      objectId: object,
      objectGeneration: generation,
    },
  });
}

async function runsOf(workflowId: string): Promise<number> {
  const { client } = await getTestEnv();
  let runs = 0;
  for await (const _ of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs++;
  return runs;
}

describe('storage events, end to end', { timeout: 240_000 }, () => {
  it('a model folder and then its marker deploy it; redelivery and re-upload start nothing new; new weights upgrade it', async () => {
    const { client } = await getTestEnv();
    const project = `ev-${randomUUID().slice(0, 8)}`;
    await fastProject(s.admin, project);
    const name = uniqueName('ev');
    const yaml = markerYaml(name, project);

    const generation = await uploadFolder(name, yaml);
    const status = await statusOf(name, generation);
    expect(status).toMatchObject({
      marker: `gs://${s.bucket}/models/${name}/${MARKER}`,
      outcome: 'started',
      deployment: { workflowId: `deploy/${project}/us-central1/${name}` },
      event: { transport: 'pubsub', type: 'OBJECT_FINALIZE' },
    });
    const workflowId = status.deployment!.workflowId;
    const handle = client.workflow.getHandle(workflowId);
    await eventually(
      'the deployment to serve',
      async () => (await handle.query(progressQuery)).stage === 'SERVING',
      E2E_WAIT,
    );
    // The weights and the status object were events too: not markers, ignored.
    expect(s.count('ignored')).toBeGreaterThan(0);
    expect((await s.admin.stats(project)).calls['vertex.deploy']).toBe(1);

    // The same event published again (as a redelivery would bring it): nothing new.
    const duplicates = s.count('duplicate');
    await republish(name, generation);
    await eventually('the duplicate to be handled', async () => s.count('duplicate') > duplicates, E2E_WAIT);

    // The same spec uploaded again (a new generation): attaches to the running deployment.
    const again = await writeMarker(name, yaml);
    expect(again).not.toBe(generation);
    expect(await statusOf(name, again)).toMatchObject({ outcome: 'attached', deployment: { workflowId } });
    expect(await runsOf(workflowId)).toBe(1);
    expect((await s.admin.stats(project)).calls['vertex.deploy']).toBe(1);

    // The next fine-tune in its own folder, with the same deployment name: an upgrade to revision 2.
    const next = await uploadFolder(`${name}-v2`, yaml);
    const upgradedStatus = {
      outcome: 'upgraded',
      deployment: { workflowId, upgrade: { revision: 2, from: 1 } },
    };
    expect(await statusOf(`${name}-v2`, next)).toMatchObject(upgradedStatus);
    const upgradedMetric = await storageEventsMetric('upgraded');
    expect(upgradedMetric).toBeGreaterThan(0);

    // Its redelivery after the status object was lost (as if the first delivery died before writing
    // it): the run's upgrade carries this generation's request id, so it is a duplicate, not a second
    // upgrade in the metric; the status object is written again as the first delivery would have.
    const upgradeStatus = s.storage.bucket(s.bucket).file(`models/${name}-v2/garden-deploy.status.json`);
    await upgradeStatus.delete();
    const beforeRedelivery = s.count('duplicate');
    await republish(`${name}-v2`, next);
    await eventually(
      'the redelivery to be handled',
      async () => s.count('duplicate') > beforeRedelivery,
      E2E_WAIT,
    );
    expect(await statusOf(`${name}-v2`, next)).toMatchObject(upgradedStatus);
    expect(s.events().filter((e) => e.outcome === 'upgraded' && e.generation === next)).toHaveLength(1);
    expect(await storageEventsMetric('upgraded')).toBe(upgradedMetric);
    await eventually(
      'revision 2 to serve',
      async () => {
        const progress = await handle.query(progressQuery);
        return progress.revisions?.find((r) => r.number === 2)?.state === 'serving';
      },
      E2E_WAIT,
    );
    expect(await runsOf(workflowId)).toBe(1);

    const teardown = await teardownDeployment(client, workflowId);
    expect((await teardown.result()).outcome).toBe('torn-down');
  });

  it('a bad marker starts nothing: its status object lists the issues, the metric and the log count it', async () => {
    const project = `ev-bad-${randomUUID().slice(0, 8)}`;
    const folder = uniqueName('bad');
    const invalid = s.count('invalid');
    const generation = await uploadFolder(
      folder,
      [`name: Not A Name`, `project: ${project}`, 'region: us-central1', 'replicas: { min: -1 }'].join('\n'),
    );
    const status = await statusOf(folder, generation);
    expect(status).toMatchObject({
      outcome: 'invalid',
      message: expect.stringContaining('nothing was started'),
    });
    expect(status.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(['name', 'replicas.min']));
    expect(status.deployment).toBe(undefined);
    // serve logs it (and counts it in garden_deploy_storage_events_total) once the status is written.
    const line = await eventually('serve’s log line of the invalid marker', async () =>
      s.events().find((l) => l.generation === generation),
    );
    expect(s.count('invalid')).toBe(invalid + 1);
    expect(await storageEventsMetric('invalid')).toBe(invalid + 1);
    expect(line).toMatchObject({ msg: 'storage event', outcome: 'invalid', object: status.marker });

    // Nothing reached Temporal or Google for it.
    const { client } = await getTestEnv();
    let runs = 0;
    for await (const _ of client.workflow.list({ query: `WorkflowId STARTS_WITH "deploy/${project}/"` }))
      runs++;
    expect(runs).toBe(0);
    expect((await s.admin.stats(project)).calls).toEqual({});
  });

  it('the subscriber names a subscription that does not exist', async () => {
    const { client } = await getTestEnv();
    const subscription = `projects/${PUBSUB_PROJECT}/subscriptions/missing`;
    const starting = startPullSubscriber({
      subscription,
      apiEndpoint: s.pubsubAddress,
      deps: { client, storage: s.storage, config: eventsConfig(), taskQueue: s.taskQueue },
    });
    await expect(starting).rejects.toThrow(SubscriptionNotFoundError);
    await expect(starting).rejects.toThrow(`${subscription} does not exist`);
  });

  it('a subscription deleted while the server pulls it turns /healthz into 503, saying why', async () => {
    const { client, storage } = await getTestEnv();
    const name = `doomed-${randomUUID().slice(0, 8)}`;
    const [subscription] = await s.pubsub.topic(TOPIC).createSubscription(name);
    const log: string[] = [];
    const deps: ServerDeps & EventsServerDeps = {
      client,
      taskQueue: s.taskQueue,
      bodyLimit: 64 * 1024,
      rateLimit: { perMinute: 6_000, burst: 1_000 },
      auth: { tokens: [{ name: 'ci', digest: Buffer.alloc(32) }] },
      log: (line) => log.push(line),
      events: {
        storage,
        config: eventsConfig({ buckets: [s.bucket], prefix: 'models/' }),
        subscription: `projects/${PUBSUB_PROJECT}/subscriptions/${name}`,
        subscriptionCheckMs: 100,
        pubsubEndpoint: s.pubsubAddress,
      },
    };
    const app = await createServer(deps);
    try {
      await app.ready();
      expect(log.some((line) => line.includes('storage events: pulling'))).toBe(true);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });

      await subscription.delete();
      const answer = await eventually('/healthz failing', async () => {
        const reply = await app.inject({ method: 'GET', url: '/healthz' });
        return reply.statusCode === 503 && reply;
      });
      const { error } = answer.json() as { error: { code: string; message: string } };
      expect(error.code).toBe('unavailable');
      expect(error.message).toContain(`not pulling projects/${PUBSUB_PROJECT}/subscriptions/${name}`);
      expect(error.message).toContain('no longer exists');
      expect(log.some((line) => line.includes('"msg":"pubsub subscriber stopped"'))).toBe(true);
      // What `serve` waits on to stop with exit 1.
      expect(await healthOf(app).failed).toBe(error.message);
    } finally {
      await app.close();
    }
  });

  it('serve refuses a subscription that does not exist at start (exit 2), without a metadata-server warning', async () => {
    const { temporalAddress, namespace } = await getTestEnv();
    const subscription = `projects/${PUBSUB_PROJECT}/subscriptions/missing`;
    const cli = cliCommand('serve', '--listen', '127.0.0.1:0', '--pubsub-subscription', subscription);
    const child = spawn(cli.command, cli.args, {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        TEMPORAL_ADDRESS: temporalAddress,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_CONFIG_FILE: path.join(os.tmpdir(), `none-${randomUUID()}.toml`),
        GARDEN_DEPLOY_SERVE_TOKENS: tokenLine('ci', randomUUID()),
        PUBSUB_EMULATOR_HOST: s.pubsubAddress,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain(`${subscription} does not exist`);
    expect(stderr).toContain('--pubsub-subscription (GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION)');
    expect(stderr).not.toContain('MetadataLookupWarning');
  });
});
