import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentSpecInput } from '../../src/spec';
import { cancelSignal, rollbackSignal } from '../../src/workflows/legacy/signals';
import { progressQuery } from '../../src/workflows/messages';
import type { DeployModelInput, DeploymentResult } from '../../src/workflows/types';
import { Gate, type ScriptedWorker, type Script, startScriptedWorker } from '../client/scripted-worker';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';

/**
 * The orchestration alone, on the real Temporal dev server, with scripted activities: ordering,
 * compensation, signals, cancellation and progress. Activities against the emulator are tested
 * end to end elsewhere.
 */

/** One worker for the file; each workflow's activities follow the script registered for its id. */
const taskQueue = uniqueTaskQueue('wf');
let worker: ScriptedWorker;

beforeAll(async () => {
  worker = await startScriptedWorker(taskQueue, {
    callDetails: true,
    dedicatedEndpointDns: 'llama.us-central1-1.prediction.vertexai.goog',
  });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
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

let started = 0;
async function start(script: Script, spec: DeployModelInput['spec']) {
  const { client } = await getTestEnv();
  const workflowId = `${taskQueue}-${++started}`;
  worker.scriptWorkflow(workflowId, script);
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
    const script: Script = { calls: [], smokeFailure: 'answer did not match /hello/' };
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
    const script: Script = { calls: [], smokeFailure: 'answer did not match /hello/' };
    {
      const handle = await start(script, { ...publicSpec, smoke: { onFailure: 'keep' } });
      const result = (await handle.result()) as DeploymentResult;
      expect(result.outcome).toBe('serving');
      expect(result.smoke[0]?.passed).toBe(false);
      expect((await handle.query(progressQuery)).lastError?.message).toMatch(/kept/);
    }
  });

  it('stops the running step on a cancel signal and removes what was created', async () => {
    const script: Script = { calls: [], hold: { waitForReplicas: { gate: new Gate() } } };
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
    const script: Script = { calls: [], hold: { deployToVertex: { gate: new Gate() } } };
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
