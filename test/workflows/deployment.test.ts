import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  abandonCleanup,
  cancelDeployment,
  retryCleanup,
  rollbackDeployment,
  scaleDeployment,
  startDeployment,
  teardownDeployment,
} from '../../src/client';
import type { DeploymentSpecInput } from '../../src/spec';
import { progressQuery } from '../../src/workflows/messages';
import type { DeployProgress, DeploymentSettings } from '../../src/workflows/types';
import {
  Gate,
  type Script,
  type ScriptedWorker,
  publicSpec,
  startScriptedWorker,
  uniqueName,
  withoutRetries,
} from '../client/scripted-worker';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import { refusal } from '../harness/refusal';

/**
 * The durable deployment alone, on the real Temporal dev server with scripted activities: its
 * life (deploy, attach, refuse, scale, rollback, teardown), its Updates accepted or refused in each
 * state, blocked cleanup and the operator's way out, idempotent requests and continue-as-new.
 */

let worker: ScriptedWorker;

beforeAll(async () => {
  worker = await startScriptedWorker(uniqueTaskQueue('entity'), {
    callDetails: true,
    dedicatedEndpointDns: 'llama.us-central1-1.prediction.vertexai.goog',
  });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await closeTestEnv();
});

const SETTINGS: DeploymentSettings = {
  heartbeatTimeoutMs: 2_000,
  cleanupAttempts: 2,
  cleanupRetryMs: 100,
  lateResourceGraceMs: 200,
};

const privateSpec = (name: string): DeploymentSpecInput => ({
  ...publicSpec(name),
  access: {
    type: 'private',
    projectAllowlist: ['consumer-project'],
    consumerProject: 'consumer-project',
    network: 'projects/consumer-project/global/networks/vpc',
    subnetwork: 'projects/consumer-project/regions/us-central1/subnetworks/sub',
  },
});

async function deploy(spec: DeploymentSpecInput, script: Partial<Script> = {}, settings = SETTINGS) {
  const { client } = await getTestEnv();
  const registered = worker.script(spec, script);
  const started = await startDeployment(client, spec, { taskQueue: worker.taskQueue, settings });
  return { client, script: registered, started, handle: client.workflow.getHandle(started.workflowId) };
}

async function progressOf(workflowId: string): Promise<DeployProgress> {
  const { client } = await getTestEnv();
  return client.workflow.getHandle(workflowId).query(progressQuery);
}

const untilCalled = (script: Script, name: string) =>
  eventually(`${name} to be called`, async () => script.calls.some((c) => c.startsWith(name)));

const vertexCleanup = ['undeployModels', 'deleteEndpoint', 'deleteModel'];

describe.concurrent('the durable deployment', () => {
  it('deploys, serves and stays; the same spec attaches, another spec is refused naming what differs', async () => {
    const spec = publicSpec(uniqueName('serve'));
    const { client, script, started, handle } = await deploy(spec);
    expect(started.started).toBe(true);
    const result = await started.result();
    expect(result).toMatchObject({
      outcome: 'serving',
      inferenceUrl: 'https://llama.us-central1-1.prediction.vertexai.goog',
      revision: { number: 1, state: 'serving', modelUri: spec.model.uri },
    });
    const name = spec.name;
    expect(script.calls).toEqual([
      'validateWeights',
      'checkServingQuota',
      `startDeploy:${name}`,
      `finishDeploy:${name}`,
      'waitForReplicas',
      'configureDeployedModel',
      'runSmokeTests:dedicated',
    ]);
    const description = await handle.describe();
    expect(description.status.name).toBe('RUNNING');
    expect(description.searchAttributes).toMatchObject({ DeployStage: ['SERVING'], DeploymentName: [name] });
    const progress = await progressOf(started.workflowId);
    expect(progress.identity).toMatchObject({ name, workflowId: started.workflowId, revision: 1 });
    expect(progress.identity?.incarnation).toBe(started.runId);
    expect(progress.ownership?.fingerprints?.endpointCreateTime).toBeDefined();
    expect(progress.resources.deployOperation).toMatch(/operations\/deploy-/);

    const again = await startDeployment(client, spec, { taskQueue: worker.taskQueue, settings: SETTINGS });
    expect(again).toMatchObject({ started: false, runId: started.runId });
    expect((await again.result()).outcome).toBe('serving');

    // Another endpoint cannot be had by upgrading (other weights can: test/workflows/upgrade.test.ts).
    const message = await refusal(
      startDeployment(
        client,
        { ...spec, endpoint: { id: 'other-endpoint' } },
        { taskQueue: worker.taskQueue },
      ),
    );
    expect(message).toContain(
      `deployment ${started.workflowId} already exists (stage SERVING) with another spec`,
    );
    expect(message).toContain(`endpoint.id: unset → "other-endpoint"`);
    expect(message).toContain(`garden-deploy teardown ${started.workflowId}`);
    const replicas = await refusal(
      startDeployment(client, { ...spec, replicas: { min: 2 } }, { taskQueue: worker.taskQueue }),
    );
    expect(replicas).toContain(
      `garden-deploy scale ${name}\` (--min, --max, --autoscaling, --container-logging)`,
    );
    expect(script.calls).toHaveLength(7); // nothing ran for the refused specs
    expect((await progressOf(started.workflowId)).revision?.modelUri).toBe(spec.model.uri);
  });

  it('teardown removes a serving private deployment (Vertex and PSC side by side) and ends it', async () => {
    const spec = privateSpec(uniqueName('teardown'));
    const { client, script, started, handle } = await deploy(spec);
    await started.result();
    const request = await teardownDeployment(client, started.workflowId, { reason: 'retired' });
    expect(request.stage).toBe('SERVING');
    const result = await request.result();
    expect(result).toMatchObject({ outcome: 'torn-down', reason: 'retired' });
    const removal = script.calls.slice(10);
    expect(removal.filter((c) => vertexCleanup.includes(c))).toEqual(vertexCleanup);
    expect(removal.filter((c) => !vertexCleanup.includes(c))).toEqual([
      'deletePscForwardingRule',
      'releasePscAddress',
    ]);
    expect(await handle.result()).toMatchObject({ outcome: 'torn-down' });
    const progress = await progressOf(started.workflowId);
    expect(progress.stage).toBe('TORN_DOWN');
    expect(progress.revision?.state).toBe('retired');
    expect(progress.steps.some((s) => s.status === 'running')).toBe(false);
    expect(await refusal(teardownDeployment(client, started.workflowId))).toMatch(
      /already ended \(torn down\) .*; nothing is left to tear down/,
    );
  });

  it('smoke-tests a private deployment on its PSC address, checking TLS against access.tlsServerName', async () => {
    const base = privateSpec(uniqueName('tls'));
    const spec = {
      ...base,
      access: { ...(base.access as object), tlsServerName: 'llama.internal.example.com' },
    };
    const { script, started } = await deploy(spec as DeploymentSpecInput);
    expect((await started.result()).outcome).toBe('serving');
    expect(script.calls).toContain('runSmokeTests:psc@llama.internal.example.com');
  });

  it('cancel during the deploy stops it, cancels the operation, looks again for late resources', async () => {
    const gate = new Gate();
    const spec = publicSpec(uniqueName('cancel'));
    const { client, script, started } = await deploy(spec, { hold: { finishDeploy: { gate } } });
    await untilCalled(script, 'finishDeploy');
    const request = await cancelDeployment(client, started.workflowId, { reason: 'wrong weights' });
    expect(request.stage).toBe('DEPLOYING');
    const result = await request.result();
    expect(result).toMatchObject({ outcome: 'cancelled', reason: 'wrong weights' });
    expect(withoutRetries(script.calls.slice(4))).toEqual([
      'stopDeployOperation',
      ...vertexCleanup,
      ...vertexCleanup,
    ]);
    const progress = await progressOf(started.workflowId);
    expect(progress.stage).toBe('CANCELLED');
    expect(progress.steps.find((s) => s.name === 'deploy')?.status).toBe('compensated');
    expect(progress.steps.some((s) => s.status === 'running')).toBe(false);
    expect(progress.cleanup?.tasks.filter((t) => t.lateLook)).toHaveLength(3);
    expect(await client.workflow.getHandle(started.workflowId).result()).toMatchObject({
      outcome: 'cancelled',
    });
    expect(await refusal(cancelDeployment(client, started.workflowId))).toMatch(
      /already ended \(cancelled\).*nothing is left to cancel/,
    );
  });

  it('rollback within the window after success removes the deployment; outside it, it is refused', async () => {
    const { client, started } = await deploy({ ...publicSpec(uniqueName('window')), rollbackWindow: '1h' });
    expect((await started.result()).outcome).toBe('serving');
    expect((await progressOf(started.workflowId)).rollbackWindowEndsAt).toBeDefined();
    const result = await (
      await rollbackDeployment(client, started.workflowId, { reason: 'bad answers' })
    ).result();
    expect(result).toMatchObject({ outcome: 'rolled-back', reason: 'bad answers' });

    const closed = await deploy(publicSpec(uniqueName('nowindow')));
    await closed.started.result();
    expect(await refusal(rollbackDeployment(client, closed.started.workflowId))).toMatch(
      /serving outside its rollback window; remove it with `garden-deploy teardown/,
    );
  });

  it('a failed step fails the deployment after removing what it made; the deploy answers how it ended', async () => {
    const { started, handle, script } = await deploy(publicSpec(uniqueName('fail')), {
      fail: {
        waitForReplicas: () =>
          ApplicationFailure.nonRetryable('replicas never became ready', 'ReplicasNotReady'),
      },
    });
    const result = await started.result();
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/replicas never became ready/);
    // The container's lines are read for the root cause; the deploy had finished: no operation to
    // stop, nothing to look for later.
    expect(script.calls.slice(5)).toEqual(['diagnoseStart', ...vertexCleanup]);
    const error = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(error.cause?.message).toMatch(/replicas never became ready — rolled back: removed /);
  });

  it('scales in place; the same request id is answered once; the spec then says the new replicas', async () => {
    const spec = publicSpec(uniqueName('scale'));
    const { client, script, started } = await deploy(spec);
    await started.result();
    const first = await scaleDeployment(
      client,
      started.workflowId,
      { min: 2, max: 4 },
      { requestId: 'scale-1' },
    );
    expect(await first.result()).toEqual({
      deployment: spec.name,
      replicas: { min: 2, max: 4 },
      containerLogging: true,
      available: 2,
      changed: true,
    });
    const repeat = await scaleDeployment(
      client,
      started.workflowId,
      { min: 2, max: 4 },
      { requestId: 'scale-1' },
    );
    expect(await repeat.result()).toMatchObject({ replicas: { min: 2, max: 4 } });
    expect(script.calls.filter((c) => c === 'scaleDeployment')).toHaveLength(1);
    const progress = await progressOf(started.workflowId);
    expect(progress).toMatchObject({ stage: 'SERVING', scale: { min: 2, max: 4 } });
    expect(await refusal(scaleDeployment(client, started.workflowId, { min: 5, max: 3 }))).toMatch(
      /max replicas \(3\) must be at least min replicas \(5\)/,
    );
    // Autoscaling and container logging alone: the replicas stay, the spec records both.
    const tuned = await scaleDeployment(client, started.workflowId, {
      autoscaling: [{ metric: 'request_count', target: 600 }],
      containerLogging: false,
    });
    expect(await tuned.result()).toMatchObject({
      replicas: { min: 2, max: 4 },
      autoscaling: [{ metric: 'request_count', target: 600 }],
      containerLogging: false,
    });
    expect(
      await refusal(
        scaleDeployment(client, started.workflowId, {
          autoscaling: [{ metric: 'cpu/utilization', target: 150 }],
        }),
      ),
    ).toMatch(/target of cpu\/utilization must be a whole number from 1 to 100/);
    expect(await refusal(scaleDeployment(client, started.workflowId, { min: 0 }))).toMatch(
      /min 0 needs replicas.scaleToZero/,
    );
    expect(await refusal(startDeployment(client, spec, { taskQueue: worker.taskQueue }))).toContain(
      'replicas.max: 4 → 1',
    );
  });

  it('a compensation out of budget blocks the cleanup with its error; retryCleanup finishes it', async () => {
    const spec = privateSpec(uniqueName('blocked'));
    const fail: Script['fail'] = {
      deletePscForwardingRule: () =>
        ApplicationFailure.nonRetryable(
          "cannot delete forwarding rule fr: 403 PERMISSION_DENIED: Required 'compute.forwardingRules.delete' permission",
          'CleanupBlocked',
        ),
    };
    const { client, script, started } = await deploy(spec, { fail });
    await started.result();
    const blocked = await (await teardownDeployment(client, started.workflowId)).result();
    expect(blocked.outcome).toBe('cleanup-blocked');
    expect(blocked.blocked).toEqual([
      expect.objectContaining({
        task: 'deletePscForwardingRule',
        state: 'blocked',
        error: expect.stringMatching(/compute\.forwardingRules\.delete/),
      }),
    ]);
    // The billing chain did not wait for the PSC one.
    expect(script.calls).toEqual(expect.arrayContaining(vertexCleanup));
    expect(script.calls).not.toContain('releasePscAddress');
    const progress = await progressOf(started.workflowId);
    expect(progress.stage).toBe('CLEANUP_BLOCKED');
    expect(progress.lastError?.message).toMatch(
      /cleanup is blocked: deletePscForwardingRule .*garden-deploy retry-cleanup/,
    );
    expect((await client.workflow.getHandle(started.workflowId).describe()).searchAttributes).toMatchObject({
      DeployStage: ['CLEANUP_BLOCKED'],
    });
    for (const refused of [
      () => cancelDeployment(client, started.workflowId),
      () => rollbackDeployment(client, started.workflowId),
      () => teardownDeployment(client, started.workflowId),
      () => scaleDeployment(client, started.workflowId, { min: 2 }),
      () => startDeployment(client, spec, { taskQueue: worker.taskQueue }),
    ])
      expect(await refusal(refused())).toMatch(/CLEANUP_BLOCKED/);
    expect(await refusal(abandonCleanup(client, started.workflowId, { reason: ' ' }))).toMatch(/say why/);

    delete fail.deletePscForwardingRule;
    const retried = await (await retryCleanup(client, started.workflowId)).result();
    expect(retried.outcome).toBe('torn-down');
    expect(script.calls.slice(-2)).toEqual(['deletePscForwardingRule', 'releasePscAddress']);
    expect(await refusal(retryCleanup(client, started.workflowId))).toMatch(/already ended/);
  });

  it('abandonCleanup ends a blocked deployment, listing what it leaves', async () => {
    const { client, started } = await deploy(publicSpec(uniqueName('abandon')), {
      fail: { deleteModel: 'model is still used by another endpoint' },
    });
    await started.result();
    expect((await (await teardownDeployment(client, started.workflowId)).result()).outcome).toBe(
      'cleanup-blocked',
    );
    const result = await (
      await abandonCleanup(client, started.workflowId, { reason: 'deleted by hand' })
    ).result();
    expect(result.outcome).toBe('torn-down');
    expect(result.removed).toContainEqual({
      resource: expect.stringMatching(/\/models\//),
      outcome: 'abandoned',
      reason: 'abandoned by an operator: deleted by hand',
    });
  });

  it('refuses each request where it does not apply, with the reason', async () => {
    const gate = new Gate();
    const { client, script, started } = await deploy(publicSpec(uniqueName('refuse')), {
      hold: { waitForReplicas: { gate } },
    });
    await untilCalled(script, 'waitForReplicas');
    const id = started.workflowId;
    expect(await refusal(teardownDeployment(client, id))).toMatch(/still deploying .*garden-deploy cancel/);
    expect(await refusal(scaleDeployment(client, id, { min: 2 }))).toMatch(/still deploying/);
    expect(await refusal(retryCleanup(client, id))).toMatch(/no blocked cleanup to retry/);
    expect(await refusal(abandonCleanup(client, id, { reason: 'x' }))).toMatch(
      /no blocked cleanup to abandon/,
    );
    gate.open();
    await started.result();
    expect(await refusal(cancelDeployment(client, id))).toMatch(/is serving: there is no deploy to cancel/);
    const teardown = await teardownDeployment(client, id);
    expect(await refusal(scaleDeployment(client, id, { min: 2 }))).toMatch(/being removed|already ended/);
    expect(await refusal(teardownDeployment(client, id))).toMatch(/already being removed|already ended/);
    await teardown.result();
    for (const late of [
      () => cancelDeployment(client, id),
      () => rollbackDeployment(client, id),
      () => scaleDeployment(client, id, { min: 2 }),
    ])
      expect(await refusal(late())).toMatch(/already ended \(torn down\)/);
  });

  it('continues as new when its history grows, carrying its state; then tears down as usual', async () => {
    const { client, started } = await deploy(
      publicSpec(uniqueName('can')),
      {},
      { ...SETTINGS, maxHistoryEvents: 60 },
    );
    await started.result();
    for (let min = 2; min <= 5; min++)
      await (await scaleDeployment(client, started.workflowId, { min })).result();
    const handle = client.workflow.getHandle(started.workflowId);
    await eventually('a continued run', async () => (await handle.describe()).runId !== started.runId);
    const progress = await progressOf(started.workflowId);
    expect(progress).toMatchObject({
      stage: 'SERVING',
      scale: { min: 5 },
      identity: { incarnation: started.runId },
    });
    expect((await (await teardownDeployment(client, started.workflowId)).result()).outcome).toBe('torn-down');
  });

  it('a Temporal cancel of a serving deployment removes it and ends Canceled', async () => {
    const { client, script, started } = await deploy(publicSpec(uniqueName('tcancel')));
    await started.result();
    const handle = client.workflow.getHandle(started.workflowId);
    await handle.cancel();
    await handle.result().catch(() => undefined);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(script.calls.slice(-3)).toEqual(vertexCleanup);
  });
});
