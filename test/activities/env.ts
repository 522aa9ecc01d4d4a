import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure, type Info } from '@temporalio/activity';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { type ActivityOptionsInput, createActivities } from '../../src/activities';
import type {
  DeployToVertexInput,
  DeploymentActivities,
  OwnershipProof,
  ValidatedDeployment,
} from '../../src/activities/contract';
import { EmulatorAdminClient, writeEmulatorCredentials } from '../../src/emulator';
import type { TimingInput } from '../../src/emulator';
import { type GcpClient, createGcpClient, everyApiAt } from '../../src/gcp';
import { type SampleModelOptions, generateSampleModel } from '../../src/sample-model';
import type { DeploymentSpecInput } from '../../src/spec';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';

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
      ...everyApiAt(emulatorUrl),
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

/** `publicSpec` served privately: a PSC endpoint in `consumer`'s network, which its allowlist names. */
export function privateSpec(
  project: string,
  consumer: string,
  modelUri: string,
  name = 'tiny-llama',
): DeploymentSpecInput {
  return {
    ...publicSpec(project, modelUri, name),
    access: {
      type: 'private',
      projectAllowlist: [consumer],
      consumerProject: consumer,
      network: `projects/${consumer}/global/networks/vpc`,
      subnetwork: `projects/${consumer}/regions/us-central1/subnetworks/models`,
    },
  };
}

export interface ModelTestEnv extends ActivityTestEnv {
  /** A sample model uploaded for the test file. */
  modelUri: string;
}

/**
 * For a test file of activities on one sample model: the environment and the model are ready
 * once its `beforeAll` has run (use the result inside tests); the harness is closed after.
 */
export function useSampleModel(): ModelTestEnv {
  const env = {} as ModelTestEnv;
  beforeAll(async () => {
    Object.assign(env, await getActivityTestEnv(), { modelUri: await uploadModel() });
  });
  afterAll(closeTestEnv);
  return env;
}

/** What the workflow passes to deployToVertex to prove the resources it finds are its own. */
export function ownershipOf({ spec, ids }: ValidatedDeployment, notBefore = Date.now()): OwnershipProof {
  return {
    deploymentLabel: spec.name,
    endpointDisplayName: ids.endpointDisplayName,
    modelDisplayName: ids.modelDisplayName,
    notBefore,
  };
}

export function deployInput(v: ValidatedDeployment, ownership = ownershipOf(v)): DeployToVertexInput {
  return { spec: v.spec, ids: v.ids, ownership, deadline: Date.now() + 60_000 };
}

/** `MockActivityEnvironment` whose `exec` keeps the activity's result type. */
export class ActivityEnvironment extends MockActivityEnvironment {
  exec<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
    return this.run(fn, ...args) as Promise<R>;
  }
}

/**
 * Runs one activity the way a worker would (its own context: attempt, heartbeat details,
 * cancellation), scheduled now as the server would have it (a step's budget counts from its start).
 */
export function inActivity(info: Partial<Info> = {}): ActivityEnvironment {
  const now = Date.now();
  return new ActivityEnvironment(
    {
      workflowExecution: { workflowId: `deploy/test/${randomUUID()}`, runId: randomUUID() },
      scheduledTimestampMs: now,
      currentAttemptScheduledTimestampMs: now,
      ...info,
    },
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

/** The ApplicationFailure an activity run rejected with. */
export async function failureOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}
