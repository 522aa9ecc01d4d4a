import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect } from 'vitest';
import { createActivities } from '../../src/activities';
import type { GcpClient } from '../../src/gcp';
import { type Tracing, workerTracingOptions } from '../../src/tracing';
import { type StartedDeployment, startDeployment } from '../../src/client';
import type { EmulatorResources } from '../../src/emulator/admin-client';
import type { DeploymentSpecInput } from '../../src/spec';
import { progressQuery } from '../../src/workflows/messages';
import type { DeployProgress, DeployStage } from '../../src/workflows/types';
import { FAST_ACTIVITY_OPTIONS, type ModelTestEnv, getActivityTestEnv, uploadModel } from '../activities/env';
import { closeTestEnv, getTestEnv, uniqueTaskQueue, workflowBundle } from '../harness/env';
import { eventually } from '../harness/eventually';

/**
 * End-to-end plumbing: the real workflows and activities on the real Temporal dev server, with
 * fake-gcs-server holding the model and the Vertex/Compute emulator behind the Google client.
 */

// Workers log every state change at INFO; the assertions say what matters. Installed before any connection.
Runtime.install({ logger: new DefaultLogger('WARN') });

/** Heartbeat timeout given to deployments in these tests: a dead worker is noticed within seconds. */
export const HEARTBEAT_TIMEOUT_MS = 2_000;

/** Deployment tuning for these tests: seconds where production waits minutes. */
export const E2E_SETTINGS = {
  heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
  cleanupAttempts: 3,
  cleanupRetryMs: 200,
  lateResourceGraceMs: 1_000,
} as const;

export interface TestWorker {
  taskQueue: string;
  stop(): Promise<void>;
}

/** A worker in this process with the real activities over the emulator, on its own task queue. */
export async function startTestWorker(
  taskQueue = uniqueTaskQueue('e2e'),
  options: { activitySlots?: number; tracing?: Tracing; gcp?: GcpClient } = {},
): Promise<TestWorker> {
  const { nativeConnection, namespace, storage } = await getTestEnv();
  const gcp = options.gcp ?? (await getActivityTestEnv()).gcp;
  const worker = await Worker.create({
    // The bundle holds the tracing workflow interceptors, which need their sink even with tracing off.
    ...workerTracingOptions(options.tracing),
    connection: nativeConnection,
    namespace,
    taskQueue,
    workflowBundle: workflowBundle(),
    activities: createActivities({ gcp, storage, options: FAST_ACTIVITY_OPTIONS }),
    ...(options.activitySlots ? { maxConcurrentActivityTaskExecutions: options.activitySlots } : {}),
  });
  const running = worker.run();
  return {
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

export interface E2ETestEnv extends ModelTestEnv {
  /** The file's worker: the real activities over the emulator. */
  worker: TestWorker;
}

/**
 * For an end-to-end test file: the activity environment, a worker and a sample model, ready once
 * its `beforeAll` has run (use the result inside tests); the worker stops and the harness closes after.
 */
export function useWorkerAndModel(): E2ETestEnv {
  const env = {} as E2ETestEnv;
  beforeAll(async () => {
    const [activityEnv, worker, modelUri] = await Promise.all([
      getActivityTestEnv(),
      startTestWorker(),
      uploadModel(),
    ]);
    Object.assign(env, activityEnv, { worker, modelUri });
  });
  afterAll(async () => {
    await env.worker?.stop();
    await closeTestEnv();
  });
  return env;
}

/** Every deployment a test file started, for the history checks at its end. */
export const startedWorkflows: Array<{ workflowId: string; runId: string; name: string }> = [];

export async function deploy(
  client: Client,
  taskQueue: string,
  spec: DeploymentSpecInput,
  label = spec.name,
): Promise<StartedDeployment> {
  const started = await startDeployment(client, spec, { taskQueue, settings: E2E_SETTINGS });
  startedWorkflows.push({ workflowId: started.workflowId, runId: started.runId, name: label });
  return started;
}

export function uniqueName(label: string): string {
  return `${label}-${randomUUID().slice(0, 6)}`;
}

/** How long e2e tests wait for a condition: whole deployments on a loaded machine take tens of seconds. */
export const E2E_WAIT = { timeoutMs: 60_000 };

/** Waits until the deployment's progress query reports `stage` (and, optionally, more). */
export async function untilStage(
  started: StartedDeployment,
  stage: DeployStage,
  also: (progress: DeployProgress) => boolean | Promise<boolean> = () => true,
  wait: { timeoutMs: number } = E2E_WAIT,
): Promise<DeployProgress> {
  return eventually(
    `stage ${stage} of ${started.workflowId}`,
    async () => {
      const progress = await started.handle.query(progressQuery);
      return progress.stage === stage && (await also(progress)) ? progress : undefined;
    },
    wait,
  );
}

/** Asserts the emulator holds nothing billable (or linkable) for these projects. */
export async function expectNothingLeft(...projects: string[]): Promise<void> {
  const { admin } = await getActivityTestEnv();
  for (const project of projects) {
    const left: EmulatorResources = await admin.resources(project);
    expect(
      {
        endpoints: left.endpoints.map((r) => r.name),
        models: left.models.map((r) => r.name),
        addresses: left.addresses.map((r) => r.name),
        forwardingRules: left.forwardingRules.map((r) => r.name),
      },
      `resources left in ${project}`,
    ).toEqual({ endpoints: [], models: [], addresses: [], forwardingRules: [] });
  }
}

/** Every string in a history, with payload bytes decoded as UTF-8 (JSON payloads are UTF-8 text). */
function* textsOf(value: unknown, depth = 0): Generator<string> {
  if (depth > 64) return;
  if (typeof value === 'string') yield value;
  else if (value instanceof Uint8Array) yield Buffer.from(value).toString('utf8');
  else if (Array.isArray(value)) for (const item of value) yield* textsOf(item, depth + 1);
  else if (value && typeof value === 'object') {
    for (const key of Object.keys(value)) yield* textsOf((value as Record<string, unknown>)[key], depth + 1);
  }
}

/**
 * No access token the emulator ever issued (nor anything shaped like a bearer credential) appears
 * in the histories of the workflows this file started: inputs, results, failures, heartbeats.
 */
export async function expectNoTokensInHistories(client: Client): Promise<number> {
  const { admin } = await getActivityTestEnv();
  const tokens = (await admin.tokens()).map((t) => t.accessToken);
  expect(tokens.length, 'the emulator issued tokens to the activities').toBeGreaterThan(0);
  let events = 0;
  for (const { workflowId, runId } of startedWorkflows) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    events += history.events?.length ?? 0;
    const text = [...textsOf(history), historyToJSON(history)].join('\n');
    for (const token of tokens)
      expect(text.includes(token), `a token in the history of ${workflowId}`).toBe(false);
    expect(text).not.toMatch(/\b(?:Bearer|bearer)\s+[A-Za-z0-9._~+/-]{16,}/);
    expect(text).not.toMatch(/"(?:access_token|refresh_token|subject_token)"/);
  }
  return events;
}

/** With GARDEN_DEPLOY_RECORD_HISTORIES=1, saves the run's history as a replay fixture. */
export async function recordHistory(
  client: Client,
  started: { workflowId: string; runId: string },
  name: string,
) {
  if (!process.env.GARDEN_DEPLOY_RECORD_HISTORIES) return;
  const history = await client.workflow.getHandle(started.workflowId, started.runId).fetchHistory();
  const dir = path.resolve(__dirname, '../histories');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `${name}.json`), `${historyToJSON(history)}\n`);
}
