import * as activity from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CleanupInput, DeploymentActivities, SmokeInput } from '../../src/activities/contract';
import { type DeploymentSpecInput, parseDeploymentSpec } from '../../src/spec';
import { deploymentIds } from '../../src/spec/ids';
import { cancelSignal, progressQuery, rollbackSignal } from '../../src/workflows/messages';
import type { DeployModelInput, DeploymentResult } from '../../src/workflows/types';
import { closeTestEnv, getTestEnv, uniqueTaskQueue, workflowBundle } from '../harness/env';

/**
 * The orchestration alone, on the real Temporal dev server, with scripted activities: ordering,
 * compensation, signals, cancellation and progress. Activities against the emulator are tested
 * end to end elsewhere.
 */

/** One worker for the file; each workflow's activities follow the script registered for its id. */
const scripts = new Map<string, Script>();
const taskQueue = uniqueTaskQueue('wf');
let worker: Worker | undefined;
let workerRun: Promise<void> | undefined;

beforeAll(async () => {
  const { nativeConnection, namespace } = await getTestEnv();
  worker = await Worker.create({
    connection: nativeConnection,
    namespace,
    taskQueue,
    workflowBundle: workflowBundle(),
    activities: scriptedActivities(),
  });
  workerRun = worker.run();
}, 120_000);

afterAll(async () => {
  worker?.shutdown();
  await workerRun;
  await closeTestEnv();
});

const publicSpec: DeploymentSpecInput = {
  name: 'llama-ft',
  project: 'my-project',
  region: 'us-central1',
  model: { uri: 'gs://models-bucket/llama-ft/' },
  machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
};

const privateSpec: DeploymentSpecInput = {
  ...publicSpec,
  name: 'llama-private',
  access: {
    type: 'private',
    projectAllowlist: ['consumer-project'],
    consumerProject: 'consumer-project',
    network: 'projects/consumer-project/global/networks/vpc',
    subnetwork: 'projects/consumer-project/regions/us-central1/subnetworks/sub',
  },
};

interface Script {
  calls: string[];
  /** Per activity: throw this instead of succeeding. */
  fail?: Partial<Record<keyof DeploymentActivities, () => Error>>;
  /** Activities that wait (heartbeating) until cancelled. */
  block?: Array<keyof DeploymentActivities>;
  smokePasses?: boolean;
}

/** Activities that follow their workflow's script and record what the workflow asked for. */
function scriptedActivities(): DeploymentActivities {
  const attempt = () => activity.activityInfo().attempt;
  const run = async <T>(
    name: keyof DeploymentActivities,
    value: () => T,
    detail = '',
  ): Promise<T & { attempt: number }> => {
    const script = scriptOf();
    script.calls.push(detail ? `${name}:${detail}` : name);
    const failure = script.fail?.[name];
    if (failure) throw failure();
    if (script.block?.includes(name)) {
      for (;;) {
        activity.heartbeat();
        await activity.sleep(100); // throws CancelledFailure once the workflow cancels us
      }
    }
    return { ...value(), attempt: attempt() };
  };
  const cleanup = (name: keyof DeploymentActivities) => (input: CleanupInput) =>
    run(name, () => ({
      outcomes: [
        {
          resource: `${name}(${input.ids?.endpointId ?? input.resources.endpoint})`,
          outcome: 'removed' as const,
        },
      ],
    }));
  return {
    validateWeights: (raw) =>
      run('validateWeights', () => {
        const spec = parseDeploymentSpec(raw);
        if (spec.machine === 'auto') throw new Error('tests give a machine');
        return {
          spec: { ...spec, machine: spec.machine },
          ids: deploymentIds(spec),
          validation: {
            ok: true,
            family: 'llama',
            sizeGuess: 'Llama-tiny',
            errors: 0,
            warnings: 0,
            highlights: [],
          },
        };
      }),
    deployToVertex: (input) =>
      run(
        'deployToVertex',
        () => ({
          adopted: false,
          resources: {
            endpoint: `projects/1/locations/${input.spec.region}/endpoints/${input.ids.endpointId}`,
            model: `projects/1/locations/${input.spec.region}/models/${input.ids.modelId}`,
            deployedModelId: '42',
          },
        }),
        input.ids.endpointId,
      ),
    waitForReplicas: (input) =>
      run('waitForReplicas', () => ({
        available: input.minReplicas,
        target: input.minReplicas,
        dedicatedEndpointDns: 'llama.us-central1-1.prediction.vertexai.goog',
        serviceAttachment: 'projects/tenant/regions/us-central1/serviceAttachments/sa',
        deployedModelId: '42',
      })),
    reservePscAddress: () =>
      run('reservePscAddress', () => ({
        address: 'projects/consumer-project/regions/us-central1/addresses/a',
        ipAddress: '10.0.0.7',
      })),
    createPscForwardingRule: (input) =>
      run('createPscForwardingRule', () => ({
        forwardingRule: 'fr',
        ipAddress: input.address.ipAddress,
        status: 'PENDING',
      })),
    waitForPscConnection: (input) =>
      run('waitForPscConnection', () => ({ ...input.connection, status: 'ACCEPTED' })),
    runSmokeTests: (input: SmokeInput) =>
      run(
        'runSmokeTests',
        () => ({
          results: input.tests.map((test) => ({
            name: test.name,
            mode: test.mode,
            passed: scriptOf().smokePasses ?? true,
            failure: scriptOf().smokePasses === false ? 'answer did not match /hello/' : undefined,
            answerPreview: 'Hi',
          })),
        }),
        input.target.kind,
      ),
    deletePscForwardingRule: cleanup('deletePscForwardingRule'),
    releasePscAddress: cleanup('releasePscAddress'),
    undeployModels: cleanup('undeployModels'),
    deleteEndpoint: cleanup('deleteEndpoint'),
    deleteModel: cleanup('deleteModel'),
  };
}

function scriptOf(): Script {
  const script = scripts.get(activity.activityInfo().workflowExecution?.workflowId ?? '');
  if (!script) throw new Error('no script for this workflow');
  return script;
}

let started = 0;
async function start(script: Script, spec: DeployModelInput['spec']) {
  const { client } = await getTestEnv();
  const workflowId = `${taskQueue}-${++started}`;
  scripts.set(workflowId, script);
  return client.workflow.start('deployModel', {
    taskQueue,
    workflowId,
    args: [{ spec, settings: { heartbeatTimeoutMs: 2_000 } } satisfies DeployModelInput],
  });
}

async function waitForCall(script: Script, name: string): Promise<void> {
  for (let i = 0; i < 200 && !script.calls.some((c) => c.startsWith(name)); i++)
    await new Promise((r) => setTimeout(r, 50));
  expect(script.calls.some((c) => c.startsWith(name))).toBe(true);
}

const cleanupOrder = ['undeployModels', 'deleteEndpoint', 'deleteModel'];

describe.concurrent('deployModel workflow', () => {
  it('runs every step of a public deployment in order and reports progress', async () => {
    const script: Script = { calls: [] };
    {
      const handle = await start(script, publicSpec);
      const result = (await handle.result()) as DeploymentResult;
      expect(result.outcome).toBe('serving');
      expect(result.inferenceUrl).toBe('https://llama.us-central1-1.prediction.vertexai.goog');
      expect(script.calls).toEqual([
        'validateWeights',
        'deployToVertex:llama-ft',
        'waitForReplicas',
        'runSmokeTests:dedicated',
      ]);
      const progress = await handle.query(progressQuery);
      expect(progress.stage).toBe('SERVING');
      expect(progress.percent).toBe(100);
      expect(progress.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
        ['validate', 'succeeded', 1],
        ['deploy', 'succeeded', 1],
        ['waitForReplicas', 'succeeded', 1],
        ['psc', 'skipped', 0],
        ['smoke', 'succeeded', 1],
      ]);
      expect(progress.resources.endpoint).toMatch(/endpoints\/llama-ft$/);
      const description = await handle.describe();
      expect(description.searchAttributes).toMatchObject({
        DeployStage: ['SERVING'],
        DeploymentName: ['llama-ft'],
      });
    }
  });

  it('connects PSC for a private endpoint and smoke-tests through it', async () => {
    const script: Script = { calls: [] };
    {
      const result = (await (await start(script, privateSpec)).result()) as DeploymentResult;
      expect(result.inferenceUrl).toBe('https://10.0.0.7');
      expect(script.calls).toEqual([
        'validateWeights',
        'deployToVertex:llama-private',
        'waitForReplicas',
        'reservePscAddress',
        'createPscForwardingRule',
        'waitForPscConnection',
        'runSmokeTests:psc',
      ]);
    }
  });

  it('fails at validation without creating or cleaning anything', async () => {
    const script: Script = {
      calls: [],
      fail: {
        validateWeights: () =>
          ApplicationFailure.create({
            message: 'tokenizer.json is missing',
            type: 'WeightValidationFailed',
            nonRetryable: true,
            details: [
              {
                attempt: 1,
                validation: { ok: false, errors: 1, warnings: 0, highlights: ['tokenizer.missing'] },
              },
            ],
          }),
      },
    };
    {
      const handle = await start(script, publicSpec);
      const error = await handle.result().catch((err: unknown) => err);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      expect(String((error as WorkflowFailedError).cause?.message)).toMatch(
        /tokenizer.json is missing — nothing was left behind/,
      );
      expect(script.calls).toEqual(['validateWeights']);
      const progress = await handle.query(progressQuery);
      expect(progress.stage).toBe('FAILED');
      expect(progress.validation?.highlights).toEqual(['tokenizer.missing']);
      expect(progress.steps[0]).toMatchObject({ status: 'failed', detail: 'tokenizer.json is missing' });
    }
  });

  it('compensates in reverse order when a later step fails', async () => {
    const script: Script = {
      calls: [],
      fail: {
        waitForReplicas: () =>
          ApplicationFailure.nonRetryable('replicas never became ready', 'ReplicasNotReady'),
      },
    };
    {
      const handle = await start(script, privateSpec);
      const error = (await handle.result().catch((err: unknown) => err)) as WorkflowFailedError;
      expect(error.cause?.message).toMatch(
        /replicas never became ready — rolled back: removed undeployModels/,
      );
      expect(script.calls.slice(3)).toEqual(cleanupOrder);
      const progress = await handle.query(progressQuery);
      expect(progress.stage).toBe('FAILED');
      expect(progress.steps.find((s) => s.name === 'deploy')?.status).toBe('compensated');
      expect(progress.removed).toHaveLength(3);
    }
  });

  it('undoes PSC before Vertex resources when a private deployment fails its smoke test', async () => {
    const script: Script = { calls: [], smokePasses: false };
    {
      const error = (await (
        await start(script, privateSpec)
      )
        .result()
        .catch((err: unknown) => err)) as WorkflowFailedError;
      expect(error.cause?.message).toMatch(/smoke test "smoke-1": answer did not match/);
      expect(script.calls.slice(7)).toEqual([
        'deletePscForwardingRule',
        'releasePscAddress',
        ...cleanupOrder,
      ]);
    }
  });

  it('keeps a deployment whose smoke test failed when the spec says keep', async () => {
    const script: Script = { calls: [], smokePasses: false };
    {
      const handle = await start(script, { ...publicSpec, smoke: { onFailure: 'keep' } });
      const result = (await handle.result()) as DeploymentResult;
      expect(result.outcome).toBe('serving');
      expect(result.smoke[0]?.passed).toBe(false);
      expect((await handle.query(progressQuery)).lastError?.message).toMatch(/kept/);
    }
  });

  it('stops the running step on a cancel signal and removes what was created', async () => {
    const script: Script = { calls: [], block: ['waitForReplicas'] };
    {
      const handle = await start(script, publicSpec);
      await waitForCall(script, 'waitForReplicas');
      await handle.signal(cancelSignal, 'wrong model');
      const result = (await handle.result()) as DeploymentResult;
      expect(result).toMatchObject({ outcome: 'cancelled', reason: 'wrong model' });
      expect(result.removed.map((r) => r.outcome)).toEqual(['removed', 'removed', 'removed']);
      expect(script.calls.slice(3)).toEqual(cleanupOrder);
      const progress = await handle.query(progressQuery);
      expect(progress.stage).toBe('CANCELLED');
      expect(progress.abort).toMatchObject({ kind: 'cancel', reason: 'wrong model' });
    }
  });

  it('ends Canceled and cleans up when the workflow itself is cancelled', async () => {
    const script: Script = { calls: [], block: ['deployToVertex'] };
    {
      const handle = await start(script, publicSpec);
      await waitForCall(script, 'deployToVertex');
      await handle.cancel();
      const error = (await handle.result().catch((err: unknown) => err)) as WorkflowFailedError;
      expect(error).toBeInstanceOf(WorkflowFailedError);
      expect((await handle.describe()).status.name).toBe('CANCELLED');
      expect(script.calls.slice(2)).toEqual(cleanupOrder);
    }
  });

  it('rolls back within the rollback window after success', async () => {
    const script: Script = { calls: [] };
    {
      const handle = await start(script, { ...publicSpec, rollbackWindow: '1h' });
      for (let i = 0; i < 200; i++) {
        if ((await handle.query(progressQuery)).stage === 'SERVING') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const serving = await handle.query(progressQuery);
      expect(serving.stage).toBe('SERVING');
      expect(serving.rollbackWindowEndsAt).toBeDefined();
      await handle.signal(rollbackSignal, 'bad answers in prod');
      const result = (await handle.result()) as DeploymentResult;
      expect(result).toMatchObject({ outcome: 'rolled-back', reason: 'bad answers in prod' });
      expect(script.calls.slice(4)).toEqual(cleanupOrder);
    }
  });
});
