import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Info } from '@temporalio/activity';
import { inject } from 'vitest';
import { type ActivityOptionsInput, createActivities } from '../../src/activities';
import type { DeploymentActivities } from '../../src/activities/contract';
import { EmulatorAdminClient, writeEmulatorCredentials } from '../../src/emulator';
import type { TimingInput } from '../../src/emulator';
import { type GcpClient, createGcpClient } from '../../src/gcp';
import { type SampleModelOptions, generateSampleModel } from '../../src/sample-model';
import type { DeploymentSpecInput } from '../../src/spec';
import { createTestBucket, getTestEnv } from '../harness/env';

/** Emulator timings that keep each deployment to about a second while every state stays observable. */
export const FAST_TIMING: Partial<TimingInput> = {
  deployMs: 300,
  importMs: 50,
  replicaRampMs: 200,
  undeployMs: 50,
  deleteMs: 50,
  computeOperationMs: 50,
  pscAcceptMs: 100,
};

/** Polls every 50–250 ms instead of Google's 1–20 s. */
export const FAST_ACTIVITY_OPTIONS: ActivityOptionsInput = {
  poll: { initialMs: 50, factor: 1.5, maxMs: 250 },
  transientRetries: 6,
};

export interface ActivityTestEnv {
  gcp: GcpClient;
  admin: EmulatorAdminClient;
  activities: DeploymentActivities;
  emulatorUrl: string;
  credentialsFile: string;
}

let shared: Promise<ActivityTestEnv> | undefined;

/**
 * The harness emulator reached through the real ADC path (an `external_account` credentials file
 * whose token exchange is the emulator's STS), and the activities over it.
 */
export function getActivityTestEnv(): Promise<ActivityTestEnv> {
  shared ??= (async () => {
    const { storage } = await getTestEnv();
    const emulatorUrl = inject('emulatorUrl');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'garden-deploy-adc-'));
    const credentialsFile = await writeEmulatorCredentials(dir, emulatorUrl);
    const gcp = createGcpClient({
      vertexBaseUrl: emulatorUrl,
      computeBaseUrl: emulatorUrl,
      predictionBaseUrl: emulatorUrl,
      credentialsFile,
    });
    return {
      gcp,
      admin: new EmulatorAdminClient(emulatorUrl),
      activities: createActivities({ gcp, storage, options: FAST_ACTIVITY_OPTIONS }),
      emulatorUrl,
      credentialsFile,
    };
  })();
  return shared;
}

/** A project of its own (the emulator's state is per project), with fast timings. */
export async function freshProject(label: string, timing: Partial<TimingInput> = {}): Promise<string> {
  const project = `${label}-${randomUUID().slice(0, 8)}`;
  const { admin } = await getActivityTestEnv();
  await admin.setTiming(project, { ...FAST_TIMING, ...timing });
  return project;
}

/** Writes a sample model (or a broken variant) to a fresh bucket; returns its gs:// folder. */
export async function uploadModel(options: Omit<SampleModelOptions, 'location'> = {}): Promise<string> {
  const { storage } = await getTestEnv();
  const bucket = await createTestBucket(storage, 'act');
  const result = await generateSampleModel(
    { location: `gs://${bucket}/models/tiny/`, shards: 1, ...options },
    { storage },
  );
  return result.modelUri;
}

export function publicSpec(project: string, modelUri: string, name = 'tiny-llama'): DeploymentSpecInput {
  return {
    name,
    project,
    region: 'us-central1',
    model: { uri: modelUri },
    machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
    labels: { team: 'ml-platform' },
  };
}

/** `MockActivityEnvironment` whose `exec` keeps the activity's result type. */
export class ActivityEnvironment extends MockActivityEnvironment {
  exec<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
    return this.run(fn, ...args) as Promise<R>;
  }
}

/** Runs one activity the way a worker would (its own context: attempt, heartbeat details, cancellation). */
export function inActivity(info: Partial<Info> = {}): ActivityEnvironment {
  return new ActivityEnvironment(
    { workflowExecution: { workflowId: `deploy/test/${randomUUID()}`, runId: randomUUID() }, ...info },
    { logger: quietLogger },
  );
}

/** Failures are what these tests assert; the SDK's warning per failed activity is noise here. */
export const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

/** Resolves with the first heartbeat whose details satisfy `match`. */
export function heartbeatMatching<T>(
  env: MockActivityEnvironment,
  match: (details: T) => boolean,
): Promise<T> {
  return new Promise((resolve) => {
    const listener = (details: T) => {
      if (details !== undefined && match(details)) {
        env.off('heartbeat', listener);
        resolve(details);
      }
    };
    env.on('heartbeat', listener);
  });
}
