import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { EmulatorAdminClient, startEmulator, writeEmulatorCredentials } from '../../src/emulator';
import {
  type EventOutcome,
  type PullSubscriber,
  type StorageEventMetrics,
  eventsConfig,
  startPullSubscriber,
} from '../../src/events';
import { createGcpClient, everyApiAt } from '../../src/gcp';
import { startFakeGcs } from '../../src/local-stack/fake-gcs';
import { findFreePort } from '../../src/local-stack/process';
import { startPstest } from '../../src/local-stack/pstest';
import { requireTool } from '../../src/local-stack/tools';
import { createStorage } from '../../src/storage';
import { workerTracingOptions } from '../../src/tracing';
import { FAST_ACTIVITY_OPTIONS, FAST_TIMING } from '../activities/env';
import { E2E_SETTINGS } from '../e2e/harness';
import { createTestBucket, getTestEnv, uniqueTaskQueue, workflowBundle } from '../harness/env';

/**
 * The storage-event stack of one test file, each server on a free port: pstest (Google's Pub/Sub
 * fake) with a topic and a subscription; a fake-gcs-server of its own publishing its object events
 * there (the harness's has no event flags); the Vertex emulator and a worker reading that
 * fake-gcs-server; and the pull subscriber `serve` runs, feeding the storage-event pipeline.
 */

export const PUBSUB_PROJECT = 'events-project';
export const TOPIC = 'gcs-events';
export const SUBSCRIPTION = `projects/${PUBSUB_PROJECT}/subscriptions/garden-deploy`;

export interface EventStack {
  storage: Storage;
  bucket: string;
  admin: EmulatorAdminClient;
  pubsub: PubSub;
  taskQueue: string;
  /** Storage events handled, by outcome (what the metric counts). */
  counts: Map<EventOutcome, number>;
  /** The pipeline's JSON log lines. */
  logs: string[];
  /** fake-gcs-server's log file (its publish errors land there). */
  gcsLog: string;
  stop(): Promise<void>;
}

export async function startEventStack(): Promise<EventStack> {
  const { client, nativeConnection, namespace } = await getTestEnv();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'garden-deploy-events-'));
  const stops: Array<() => Promise<unknown>> = [() => rm(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => undefined);
  };
  try {
    const pstest = await startPstest({
      binary: requireTool('pstest'),
      port: await findFreePort(),
      logFile: path.join(dir, 'pstest.log'),
    });
    stops.push(() => pstest.stop());
    const pubsub = new PubSub({ projectId: PUBSUB_PROJECT, apiEndpoint: pstest.address });
    stops.push(() => pubsub.close());
    // fake-gcs-server publishes to an existing topic only.
    const [topic] = await pubsub.createTopic(TOPIC);
    await topic.createSubscription(SUBSCRIPTION.split('/').pop()!, { ackDeadlineSeconds: 10 });

    const gcsLog = path.join(dir, 'fake-gcs.log');
    const gcs = await startFakeGcs({
      binary: requireTool('fakeGcs'),
      port: await findFreePort(),
      rootDir: path.join(dir, 'gcs'),
      logFile: gcsLog,
      events: { pubsubEmulatorHost: pstest.address, projectId: PUBSUB_PROJECT, topic: TOPIC },
    });
    stops.push(() => gcs.stop());
    const storage = createStorage({ endpoint: gcs.endpoint });
    const bucket = await createTestBucket(storage, 'events');

    const emulator = await startEmulator({ port: 0, gcsEndpoint: gcs.endpoint, log: () => undefined });
    stops.push(() => emulator.close());
    const credentialsFile = await writeEmulatorCredentials(dir, emulator.url);
    const gcp = createGcpClient({ ...everyApiAt(emulator.url), credentialsFile });

    const taskQueue = uniqueTaskQueue('events');
    const worker = await Worker.create({
      ...workerTracingOptions(undefined),
      connection: nativeConnection,
      namespace,
      taskQueue,
      workflowBundle: workflowBundle(),
      activities: createActivities({ gcp, storage, options: FAST_ACTIVITY_OPTIONS }),
    });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running;
    });

    const counts = new Map<EventOutcome, number>();
    const metrics: StorageEventMetrics = {
      handled: (_transport, outcome) => counts.set(outcome, (counts.get(outcome) ?? 0) + 1),
    };
    const logs: string[] = [];
    const subscriber: PullSubscriber = await startPullSubscriber({
      subscription: SUBSCRIPTION,
      apiEndpoint: pstest.address,
      retryDelayMs: 100,
      deps: {
        client,
        storage,
        config: eventsConfig({ buckets: [bucket], prefix: 'models/', taskQueue }),
        settings: E2E_SETTINGS,
        metrics,
        log: (line) => logs.push(line),
      },
    });
    stops.push(() => subscriber.stop());
    return {
      storage,
      bucket,
      admin: new EmulatorAdminClient(emulator.url),
      pubsub,
      taskQueue,
      counts,
      logs,
      gcsLog,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The emulator's project timings for a deployment of about a second. */
export async function fastProject(admin: EmulatorAdminClient, project: string): Promise<void> {
  await admin.setTiming(project, { ...FAST_TIMING, deployModelMs: 300 });
}
