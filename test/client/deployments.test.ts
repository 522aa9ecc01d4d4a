import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AmbiguousDeploymentError,
  DeploymentFailedError,
  DeploymentNotFoundError,
  DeploymentStateError,
  type DeploymentStatus,
  InvalidFilterError,
  RequestAlreadyDoneError,
  cancelDeployment,
  getProgress,
  listDeployments,
  rollbackDeployment,
  startDeployment,
  teardownDeployment,
  watchDeployment,
} from '../../src/client';
import { InvalidSpecError } from '../../src/spec';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import {
  Gate,
  type ScriptedWorker,
  expectNoWorkflow,
  publicSpec,
  startScriptedWorker,
  uniqueName,
  workflowIdOf,
} from './scripted-worker';

/**
 * The library against the real Temporal dev server, with a worker running the real workflows and
 * scripted activities.
 */

let worker: ScriptedWorker;
const settings = { heartbeatTimeoutMs: 2_000 }; // cancellation reaches held activities quickly
const fast = { intervalMs: 200 };

beforeAll(async () => {
  worker = await startScriptedWorker(uniqueTaskQueue('client'));
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await closeTestEnv();
});

const start = async (spec: ReturnType<typeof publicSpec>) => {
  const { client } = await getTestEnv();
  return startDeployment(client, spec, { taskQueue: worker.taskQueue, settings });
};

describe.concurrent('client library', () => {
  it('attaches to the deployment instead of starting it twice, and refuses another spec', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('attach'));
    const gate = new Gate();
    const script = worker.script(spec, { hold: { validateWeights: { gate, heartbeat: {} } } });

    const first = await start(spec);
    const again = await start(spec);
    expect(first).toMatchObject({ started: true, workflowId: workflowIdOf(spec), waitingForWorker: false });
    expect(again).toMatchObject({ started: false, runId: first.runId });
    const changed = await start({ ...spec, replicas: { min: 2 } }).catch((err: unknown) => err);
    expect(changed).toBeInstanceOf(DeploymentStateError);
    expect((changed as Error).message).toMatch(/with another spec.*replicas\.min: 1 → 2/);

    const description = await client.workflow.getHandle(first.workflowId).describe();
    expect(await description.staticSummary()).toBe(
      `Deploy ${spec.name} → us-central1 (gs://models-bucket/${spec.name}/)`,
    );
    expect(await description.staticDetails()).toMatch(
      /\| Machine \| g2-standard-12, 1× NVIDIA_L4 \|[\s\S]*```yaml/,
    );

    gate.open();
    const [result, attached] = await Promise.all([first.result(), again.result()]);
    expect(result.outcome).toBe('serving');
    expect(attached).toEqual(result);
    expect(await watchDeployment(client, first.workflowId, undefined, fast)).toMatchObject({
      outcome: 'serving',
    });
    expect(script.calls.filter((call) => call === 'validateWeights')).toHaveLength(1);
  });

  it('rejects a bad spec with every field error and starts nothing', async () => {
    const { client } = await getTestEnv();
    const name = uniqueName('bad');
    const error = await startDeployment(client, {
      ...publicSpec(name),
      region: 'Moon',
      replicas: { min: 0 },
      extra: true,
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InvalidSpecError);
    expect((error as InvalidSpecError).issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining(['region', 'replicas.min', '']),
    );
    await expectNoWorkflow(client, `deploy/my-project/Moon/${name}`);
  });

  it("merges the running step's heartbeat, attempt and last failure into the progress", async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('progress'));
    const deploying = new Gate();
    const waiting = new Gate();
    worker.script(spec, {
      hold: {
        finishDeploy: {
          gate: deploying,
          heartbeat: {
            operationName: 'projects/1/locations/us-central1/operations/77',
            status: 'waiting for the deploy operation',
          },
        },
        waitForReplicas: { gate: waiting, heartbeat: { available: 1, target: 2, message: 'scaling up' } },
      },
      flaky: { waitForReplicas: { attempts: 1, message: '503 the service is unavailable' } },
    });
    const { workflowId } = await start({ ...spec, replicas: { min: 2 } });

    const deploy = await eventually('the deploy heartbeat', async () => {
      const status = await getProgress(client, workflowId);
      return status.steps.find((step) => step.name === 'deploy' && step.activity?.operationName);
    });
    expect(deploy).toMatchObject({
      status: 'running',
      activity: {
        activityType: 'finishDeploy',
        attempt: 1,
        operationName: 'projects/1/locations/us-central1/operations/77',
        phase: 'waiting for the deploy operation',
      },
    });

    deploying.open();
    const status = await eventually('the replicas heartbeat', async () => {
      const current = await getProgress(client, workflowId);
      return current.replicas ? current : undefined;
    });
    expect(status).toMatchObject({
      status: 'RUNNING',
      stage: 'WAITING_FOR_REPLICAS',
      deployment: spec.name,
      replicas: { available: 1, target: 2, message: 'scaling up' },
      notes: [],
    });
    expect(status.steps.find((step) => step.name === 'waitForReplicas')?.activity).toMatchObject({
      attempt: 2,
      lastFailure: '503 the service is unavailable',
    });

    waiting.open();
    const final: DeploymentStatus[] = [];
    const result = await watchDeployment(client, workflowId, (s) => void final.push(s), fast);
    expect(result.outcome).toBe('serving');
    expect(final.at(-1)).toMatchObject({ status: 'RUNNING', stage: 'SERVING', percent: 100 });
  });

  it('starts without a worker, and falls back to the server and search attributes for progress', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('noworker'));
    const { workflowId, handle, waitingForWorker } = await startDeployment(client, spec, {
      taskQueue: uniqueTaskQueue('idle'),
    });
    expect(waitingForWorker).toBe(true);
    try {
      const status = await getProgress(client, workflowId);
      expect(status).toMatchObject({
        status: 'RUNNING',
        stage: 'VALIDATING',
        deployment: spec.name,
        region: 'us-central1',
        modelUri: spec.model.uri,
        progress: undefined,
        steps: [],
      });
      expect(status.notes.join(' ')).toMatch(
        /no worker polls task queue "idle-[^"]+".*`garden-deploy worker`/,
      );
    } finally {
      await handle.terminate('test over');
    }
  });

  it('reports a failed deployment with its failure message, also after it closed', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('fails'));
    worker.script(spec, { fail: { validateWeights: 'tokenizer.json is missing' } });
    const { workflowId, result } = await start(spec);
    expect(await result()).toMatchObject({ outcome: 'failed', reason: 'tokenizer.json is missing' });
    const error = await watchDeployment(client, workflowId, undefined, fast).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DeploymentFailedError);
    expect((error as DeploymentFailedError).message).toMatch(
      new RegExp(`^${workflowId} ended FAILED: tokenizer.json is missing — nothing was left behind`),
    );
    const status = await getProgress(client, workflowId);
    expect(status).toMatchObject({ status: 'FAILED', stage: 'FAILED' });
    expect(status.steps[0]).toMatchObject({ name: 'validate', status: 'failed' });
  });

  it('starts nothing for a retried request whose run has ended; a new request id deploys again', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('retried'));
    worker.script(spec, { fail: { validateWeights: 'tokenizer.json is missing' } });
    const options = { taskQueue: worker.taskQueue, settings, requestId: 'deploy-once-1' };
    const first = await startDeployment(client, spec, options);
    expect(await first.result()).toMatchObject({ outcome: 'failed' });
    await eventually('the failed run to close', async () =>
      (await first.handle.describe()).status.name === 'FAILED' ? true : undefined,
    );

    const retry = await startDeployment(client, spec, options).catch((err: unknown) => err);
    expect(retry).toBeInstanceOf(RequestAlreadyDoneError);
    expect(retry).toMatchObject({ workflowId: first.workflowId, runId: first.runId, status: 'FAILED' });
    expect((await first.handle.describe()).runId).toBe(first.runId);

    worker.script(spec, {});
    const again = await startDeployment(client, spec, { ...options, requestId: 'deploy-once-2' });
    expect(again.started).toBe(true);
    expect(again.runId).not.toBe(first.runId);
    expect(await again.result()).toMatchObject({ outcome: 'serving' });
  });

  it('cancels a running deployment, removing what it created, and refuses a second cancel', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('cancel'));
    const gate = new Gate();
    const script = worker.script(spec, {
      hold: { waitForReplicas: { gate, heartbeat: { available: 0, target: 1 } } },
    });
    const { workflowId } = await start(spec);
    await eventually('waitForReplicas to run', async () => script.calls.includes('waitForReplicas'));

    const request = await cancelDeployment(client, workflowId, {
      reason: 'wrong checkpoint',
      requestId: 'c-1',
    });
    expect(request).toMatchObject({ workflowId, stage: 'WAITING_FOR_REPLICAS', requestId: 'c-1' });
    const result = await request.result();
    expect(result).toMatchObject({ outcome: 'cancelled', reason: 'wrong checkpoint' });
    expect(await watchDeployment(client, workflowId, undefined, fast)).toEqual(result);
    expect(script.calls.slice(-3)).toEqual(['undeployModels', 'deleteEndpoint', 'deleteModel']);

    const { closedAt } = await getProgress(client, workflowId);
    const again = await cancelDeployment(client, workflowId).catch((err: unknown) => err);
    expect(again).toBeInstanceOf(DeploymentStateError);
    expect((again as Error).message).toBe(
      `${workflowId} already ended (cancelled) at ${closedAt}; nothing is left to cancel`,
    );
  });

  it('rolls back within the rollback window, and points to teardown once it has closed', async () => {
    const { client } = await getTestEnv();
    const windowed = publicSpec(uniqueName('window'));
    worker.script(windowed);
    const { workflowId } = await start({ ...windowed, rollbackWindow: '1h' });
    await eventually('SERVING', async () => (await getProgress(client, workflowId)).stage === 'SERVING');
    await rollbackDeployment(client, workflowId, { reason: 'bad answers' });
    expect(await watchDeployment(client, workflowId, undefined, fast)).toMatchObject({
      outcome: 'rolled-back',
      reason: 'bad answers',
    });

    const closed = publicSpec(uniqueName('closed'));
    worker.script(closed);
    const started = await start(closed);
    await watchDeployment(client, started.workflowId, undefined, fast);
    const error = await rollbackDeployment(client, started.workflowId).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DeploymentStateError);
    expect((error as Error).message).toMatch(
      /is serving outside its rollback window; remove it with `garden-deploy teardown deploy\//,
    );
  });

  it('tears down a serving deployment, once; refuses while it still deploys', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('teardown'));
    const gate = new Gate();
    const script = worker.script(spec, { hold: { runSmokeTests: { gate, heartbeat: {} } } });
    const { workflowId } = await start(spec);
    await eventually('smoke tests to run', async () => script.calls.includes('runSmokeTests'));

    const whileRunning = await teardownDeployment(client, workflowId).catch((err: unknown) => err);
    expect(whileRunning).toBeInstanceOf(DeploymentStateError);
    expect((whileRunning as Error).message).toMatch(
      /still deploying \(stage SMOKE_TESTING\).*garden-deploy cancel/,
    );

    gate.open();
    await watchDeployment(client, workflowId, undefined, fast);
    const teardown = await teardownDeployment(client, workflowId);
    expect(teardown).toMatchObject({ workflowId, stage: 'SERVING' });
    const result = await teardown.result();
    expect(result.removed.map((r) => r.resource)).toEqual(
      expect.arrayContaining([`deleteEndpoint(projects/1/locations/us-central1/endpoints/${spec.name})`]),
    );
    await expect(teardownDeployment(client, workflowId)).rejects.toThrow(
      /already ended \(torn down\) at .*; nothing is left to tear down/,
    );
    expect(await getProgress(client, workflowId)).toMatchObject({ status: 'COMPLETED', stage: 'TORN_DOWN' });
  });

  it('refuses to tear down a deployment that removed everything itself', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('nothing'));
    worker.script(spec, { fail: { waitForReplicas: 'replicas never became ready' } });
    const { workflowId } = await start(spec);
    await watchDeployment(client, workflowId, undefined, fast).catch(() => undefined);
    await expect(teardownDeployment(client, workflowId)).rejects.toThrow(
      /ended FAILED at .* and removed what it had created; nothing is left to tear down/,
    );
  });

  it('lists deployments by search attributes, and resolves bare names', async () => {
    const { client } = await getTestEnv();
    const bucket = uniqueName('list');
    const inCentral = { ...publicSpec(uniqueName('central')), model: { uri: `gs://${bucket}/a/` } };
    const inEurope = {
      ...publicSpec(inCentral.name),
      region: 'europe-west4',
      model: { uri: `gs://${bucket}/b/` },
    };
    for (const spec of [inCentral, inEurope]) {
      worker.script(spec);
      await (await start(spec)).result();
    }

    // Visibility is eventually consistent: the search attributes follow the workflows by a moment.
    const both = await eventually('both deployments in visibility, serving', async () => {
      const found = await listDeployments(client, { modelUri: `gs://${bucket}/` });
      return found.length === 2 && found.every((d) => d.stage === 'SERVING') ? found : undefined;
    });
    expect(both.map((d) => d.region).sort()).toEqual(['europe-west4', 'us-central1']);
    expect(both[0]).toMatchObject({ deployment: inCentral.name, stage: 'SERVING', status: 'RUNNING' });

    const europe = await listDeployments(client, { modelUri: `gs://${bucket}/`, region: 'europe-west4' });
    expect(europe.map((d) => d.workflowId)).toEqual([workflowIdOf(inEurope)]);
    expect(
      await listDeployments(client, { modelUri: `gs://${bucket}/`, stage: 'FAILED', scope: 'all' }),
    ).toEqual([]);
    expect(await listDeployments(client, { modelUri: `gs://${bucket}/`, scope: 'closed' })).toEqual([]);

    // Same name in two regions: a bare name is ambiguous until narrowed by the workflow id.
    await expect(getProgress(client, inCentral.name)).rejects.toThrow(AmbiguousDeploymentError);
    await expect(getProgress(client, 'no-such-deployment')).rejects.toThrow(DeploymentNotFoundError);

    // Torn down deployments leave the default (active) list but stay in --all.
    await (await teardownDeployment(client, workflowIdOf(inEurope))).result();
    const active = await eventually('the torn down deployment to leave the active list', async () => {
      const found = await listDeployments(client, { modelUri: `gs://${bucket}/` });
      return found.length === 1 ? found : undefined;
    });
    expect(active[0]?.region).toBe('us-central1');
    const all = await listDeployments(client, { modelUri: `gs://${bucket}/`, scope: 'all' });
    expect(all.find((d) => d.region === 'europe-west4')).toMatchObject({
      status: 'COMPLETED',
      stage: 'TORN_DOWN',
    });

    await expect(listDeployments(client, { region: "x' OR 1=1" })).rejects.toThrow(InvalidFilterError);
  });

  it('resolves a bare deployment name once visibility has it', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('named'));
    worker.script(spec);
    const { workflowId, result } = await start(spec);
    await result();
    const status = await eventually('the name in visibility', () =>
      getProgress(client, spec.name).catch(() => undefined),
    );
    expect(status).toMatchObject({ workflowId, stage: 'SERVING' });
  });
});
