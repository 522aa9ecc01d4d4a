import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { EmulatorAdminClient, startEmulator, writeEmulatorCredentials } from '../../src/emulator';
import { type EventOutcome, pubsubClientConfig } from '../../src/events';
import { createGcpClient, everyApiAt } from '../../src/gcp';
import { tokenLine } from '../../src/http/auth';
import { startFakeGcs } from '../../src/local-stack/fake-gcs';
import { findFreePort } from '../../src/local-stack/process';
import { startPstest } from '../../src/local-stack/pstest';
import { requireTool } from '../../src/local-stack/tools';
import { createStorage } from '../../src/storage';
import { workerTracingOptions } from '../../src/tracing';
import { FAST_ACTIVITY_OPTIONS, FAST_TIMING } from '../activities/env';
import { cliCommand } from '../harness/built-cli';
import { createTestBucket, getTestEnv, uniqueTaskQueue, workflowBundle } from '../harness/env';
import { eventually } from '../harness/eventually';

/**
 * The storage-event stack of one test file, each server on a port of its own: pstest (Google's Pub/Sub
 * fake) with a topic and a subscription; a fake-gcs-server of its own publishing its object events
 * there (the harness's has no event flags); the Vertex emulator and a worker reading that
 * fake-gcs-server; and `garden-deploy serve` (the built CLI) pulling the subscription into the
 * storage-event pipeline. pstest, the emulator and serve bind port 0 and say which port they got;
 * fake-gcs-server (its object URLs name its port) and serve's metrics address (the exporter does not
 * say what it bound) still take a free port picked here, which another process could take first.
 */

export const PUBSUB_PROJECT = 'events-project';
export const TOPIC = 'gcs-events';
export const SUBSCRIPTION = `projects/${PUBSUB_PROJECT}/subscriptions/garden-deploy`;

export interface EventStack {
  storage: Storage;
  bucket: string;
  admin: EmulatorAdminClient;
  pubsub: PubSub;
  /** pstest's `host:port` (PUBSUB_EMULATOR_HOST). */
  pubsubAddress: string;
  taskQueue: string;
  /** The storage events serve logged (one JSON line each). */
  events(): Array<Record<string, unknown>>;
  /** How many of them had `outcome`. */
  count(outcome: EventOutcome): number;
  /** serve's Prometheus endpoint (GARDEN_DEPLOY_METRICS_ADDRESS). */
  metricsUrl: string;
  stop(): Promise<void>;
}

export async function startEventStack(): Promise<EventStack> {
  const { nativeConnection, namespace, temporalAddress } = await getTestEnv();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'garden-deploy-events-'));
  const stops: Array<() => Promise<unknown>> = [() => rm(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => undefined);
  };
  try {
    // Port 0: pstest binds a free port itself and prints it (no port picked here to race for).
    const pstest = await startPstest({
      binary: requireTool('pstest'),
      logFile: path.join(dir, 'pstest.log'),
    });
    stops.push(() => pstest.stop());
    const pubsub = new PubSub(pubsubClientConfig(PUBSUB_PROJECT, pstest.address));
    stops.push(() => pubsub.close());
    // fake-gcs-server publishes to an existing topic only.
    const [topic] = await pubsub.createTopic(TOPIC);
    await topic.createSubscription(SUBSCRIPTION.split('/').pop()!, { ackDeadlineSeconds: 10 });

    const gcs = await startFakeGcs({
      binary: requireTool('fakeGcs'),
      port: await findFreePort(),
      rootDir: path.join(dir, 'gcs'),
      logFile: path.join(dir, 'fake-gcs.log'),
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

    const metricsUrl = `http://127.0.0.1:${await findFreePort()}/metrics`;
    const serve = await startServe(dir, {
      GARDEN_DEPLOY_METRICS_ADDRESS: new URL(metricsUrl).host,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: namespace,
      GARDEN_DEPLOY_TASK_QUEUE: taskQueue,
      STORAGE_EMULATOR_HOST: gcs.endpoint,
      PUBSUB_EMULATOR_HOST: pstest.address,
      GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION: SUBSCRIPTION,
      GARDEN_DEPLOY_EVENTS_BUCKETS: bucket,
      GARDEN_DEPLOY_EVENTS_PREFIX: 'models/',
    });
    stops.push(() => serve.stop());
    const events = () =>
      serve.stdout
        .filter((line) => line.includes('"msg":"storage event"'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    return {
      storage,
      bucket,
      admin: new EmulatorAdminClient(emulator.url),
      pubsub,
      pubsubAddress: pstest.address,
      taskQueue,
      events,
      count: (outcome) => events().filter((line) => line.outcome === outcome).length,
      metricsUrl,
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

interface Serve {
  /** Its stdout, line by line. */
  stdout: string[];
  stop(): Promise<void>;
}

/** `garden-deploy serve` with `env` until it listens and pulls; stop() sends SIGTERM and waits. */
async function startServe(dir: string, env: Record<string, string>): Promise<Serve> {
  const tokensFile = path.join(dir, 'tokens.txt');
  await writeFile(tokensFile, `${tokenLine('ci', randomUUID())}\n`, { mode: 0o600 });
  const cli = cliCommand('serve', '--listen', '127.0.0.1:0');
  const child: ChildProcess = spawn(cli.command, cli.args, {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TEMPORAL_CONFIG_FILE: path.join(dir, 'none.toml'),
      GARDEN_DEPLOY_SERVE_TOKEN_FILE: tokensFile,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    stdout.push(...lines.filter(Boolean));
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await eventually('serve pulling the subscription', async () => {
      if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${stderr}`);
      return stdout.some((line) => line.includes('storage events: pulling'));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { stdout, stop };
}
