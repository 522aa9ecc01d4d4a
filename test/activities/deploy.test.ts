import { CancelledFailure } from '@temporalio/activity';
import { ActivityCancellationDetails } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import type { ValidatedDeployment } from '../../src/activities/contract';
import { DEPLOYMENT_LABEL } from '../../src/constants';
import { readDeployResponse } from '../../src/gcp';
import type { DeploymentSpecInput } from '../../src/spec';
import {
  deployInput,
  failureOf,
  freshProject,
  heartbeatMatching,
  inActivity,
  ownershipOf,
  publicSpec,
  useSampleModel,
} from './env';

/**
 * The deploy step against the emulator: one endpoint whatever happens (crash, lost answer, retry),
 * adoption only of what is ours, and Google's failures mapped to what the workflow expects.
 */

const t = useSampleModel();

async function validated(spec: DeploymentSpecInput): Promise<ValidatedDeployment> {
  return inActivity().exec(t.activities.validateWeights, spec);
}

async function calls(project: string, route: string): Promise<number> {
  return (await t.admin.stats(project)).calls[route] ?? 0;
}

describe('deployToVertex', () => {
  it('deploys with the deployment’s ids, labels the endpoint and model, and reports what it created', async () => {
    const project = await freshProject('deploy');
    const v = await validated(publicSpec(project, t.modelUri, 'llama-ft'));
    const result = await inActivity().exec(t.activities.deployToVertex, deployInput(v));

    expect(result).toMatchObject({ adopted: false, attempt: 1 });
    expect(result.resources.endpoint).toMatch(/^projects\/\d+\/locations\/us-central1\/endpoints\/llama-ft$/);
    expect(result.resources.model).toMatch(/\/models\/llama-ft$/);
    expect(result.resources.deployedModelId).toBeTruthy();
    expect(result.resources.dedicatedEndpointDns).toMatch(
      /^llama-ft\.us-central1-\d+\.prediction\.vertexai\.goog$/,
    );
    const endpoint = await t.gcp.vertex.getEndpoint(result.resources.endpoint!);
    expect(endpoint.labels).toMatchObject({ [DEPLOYMENT_LABEL]: 'llama-ft', team: 'ml-platform' });
    const model = await t.gcp.vertex.getModel(result.resources.model!);
    expect(model.labels).toMatchObject({ [DEPLOYMENT_LABEL]: 'llama-ft' });

    const replicas = await inActivity().exec(t.activities.waitForReplicas, {
      endpoint: result.resources.endpoint!,
      deployedModelId: result.resources.deployedModelId,
      minReplicas: 1,
      deadline: Date.now() + 30_000,
    });
    expect(replicas).toMatchObject({
      available: 1,
      target: 1,
      deployedModelId: result.resources.deployedModelId,
    });
    expect(replicas.dedicatedEndpointDns).toBe(result.resources.dedicatedEndpointDns);
  });

  it('resumes the operation in its heartbeat after a crash: no second :deploy', async () => {
    const project = await freshProject('resume', { deployMs: 1_500 });
    const v = await validated(publicSpec(project, t.modelUri));
    const input = deployInput(v);
    // Attempt 1 dies (worker shutdown) once its heartbeat names the operation.
    const first = inActivity();
    const checkpoint = heartbeatMatching<{ operationName?: string }>(first, (d) => !!d.operationName);
    const dying = first.exec(t.activities.deployToVertex, input);
    const details = await checkpoint;
    first.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));
    await expect(dying).rejects.toBeInstanceOf(CancelledFailure);

    const second = await inActivity({ attempt: 2, heartbeatDetails: details }).exec(
      t.activities.deployToVertex,
      input,
    );
    expect(second).toMatchObject({ adopted: false, attempt: 2 });
    expect(second.resources.deployOperation).toBe(details.operationName);
    expect(await calls(project, 'vertex.deploy')).toBe(1);
    // The shutdown did not cancel Google's work: the operation succeeded.
    const op = await t.gcp.vertex.getOperation(details.operationName!);
    expect(readDeployResponse(op).endpoint).toBe(second.resources.endpoint);
    expect((await t.admin.resources(project)).endpoints).toHaveLength(1);
  });

  it('adopts exactly once when the :deploy answer is lost and the retry meets ALREADY_EXISTS', async () => {
    const project = await freshProject('lost');
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['drop-response'] }]);
    const v = await validated(publicSpec(project, t.modelUri));
    const result = await inActivity().exec(t.activities.deployToVertex, deployInput(v));

    expect(result.adopted).toBe(true);
    expect(result.resources.endpoint).toMatch(/\/endpoints\/tiny-llama$/);
    expect(result.resources.deployedModelId).toBeTruthy();
    expect(await calls(project, 'vertex.deploy')).toBe(2);
    const stats = await t.admin.stats(project);
    expect(stats.creations).toMatchObject({ endpoint: 1, model: 1, deployedModel: 1 });
    const endpoint = await t.gcp.vertex.getEndpoint(result.resources.endpoint!);
    expect(endpoint.labels[DEPLOYMENT_LABEL]).toBe('tiny-llama');
  });

  it('refuses a foreign endpoint with ResourceConflict, and the compensations leave it alone', async () => {
    const project = await freshProject('foreign');
    // Someone else's endpoint already uses the id this deployment derives.
    const op = await t.gcp.vertex.deploy({
      project,
      location: 'us-central1',
      gcsUri: t.modelUri,
      endpointUserId: 'tiny-llama',
      endpointDisplayName: 'team-b-endpoint',
      modelUserId: 'team-b-model',
      machine: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
    });
    for (;;) {
      if ((await t.gcp.vertex.getOperation(op.name)).done) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const v = await validated(publicSpec(project, t.modelUri));
    const ownership = ownershipOf(v);
    const failure = await failureOf(
      inActivity().exec(t.activities.deployToVertex, deployInput(v, ownership)),
    );
    expect(failure.type).toBe('ResourceConflict');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(
      /endpoint projects\/\d+\/locations\/us-central1\/endpoints\/tiny-llama already exists/,
    );
    expect(failure.message).toContain('display name "team-b-endpoint"');
    expect(failure.message).toMatch(/otherwise delete it .*or choose another endpoint\.id/);
    expect(failure.details?.[0]).toEqual({ attempt: 1 });
    expect(await calls(project, 'vertex.deploy')).toBe(1);

    const cleanup = { project, region: 'us-central1', ownership, ids: v.ids, resources: {} };
    const undeployed = await inActivity().exec(t.activities.undeployModels, cleanup);
    const deleted = await inActivity().exec(t.activities.deleteEndpoint, cleanup);
    const model = await inActivity().exec(t.activities.deleteModel, cleanup);
    const notOurs = {
      resource: expect.stringMatching(/endpoints\/tiny-llama$/),
      outcome: 'not-ours',
      reason: expect.stringContaining('display name "team-b-endpoint"'),
    };
    expect(undeployed.outcomes).toEqual([notOurs]);
    expect(deleted.outcomes).toEqual([notOurs]);
    expect(model.outcomes).toEqual([
      { resource: expect.stringMatching(/models\/tiny-llama$/), outcome: 'already-gone' },
    ]);
    const left = await t.admin.resources(project);
    expect(left.endpoints.map((e) => e.displayName)).toEqual(['team-b-endpoint']);
    expect(left.endpoints[0]!.deployedModels).toHaveLength(1);
  });

  it('fails a quota-exhausted operation with QuotaExhausted and the quota to raise; the compensations remove what it left', async () => {
    const project = await freshProject('quota');
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['quota'] }]);
    const v = await validated(publicSpec(project, t.modelUri));
    const ownership = ownershipOf(v);
    const failure = await failureOf(
      inActivity().exec(t.activities.deployToVertex, deployInput(v, ownership)),
    );
    expect(failure.type).toBe('QuotaExhausted');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('custom_model_serving_nvidia_l4_gpus');
    expect(failure.message).toMatch(/request an increase/i);

    // The operation created the endpoint and model before failing; they are unlabelled but ours.
    const before = await t.admin.resources(project);
    expect(before.endpoints).toHaveLength(1);
    const cleanup = { project, region: 'us-central1', ownership, ids: v.ids, resources: {} };
    for (const step of ['undeployModels', 'deleteEndpoint', 'deleteModel'] as const) {
      await inActivity().exec(t.activities[step], cleanup);
    }
    const after = await t.admin.resources(project);
    expect([after.endpoints, after.models]).toEqual([[], []]);
  });

  it('fails a 400 from :deploy at once as GcpPermanentError with Google’s message', async () => {
    const project = await freshProject('bad-request');
    await t.admin.addFaultRules([
      {
        route: 'vertex.deploy',
        project,
        action: { type: 'error', status: 400, message: 'machine_spec is not valid here' },
      },
    ]);
    const v = await validated(publicSpec(project, t.modelUri));
    const failure = await failureOf(inActivity().exec(t.activities.deployToVertex, deployInput(v)));
    expect(failure.type).toBe('GcpPermanentError');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('400 INVALID_ARGUMENT');
    expect(failure.message).toContain('machine_spec is not valid here');
    expect(await calls(project, 'vertex.deploy')).toBe(1);
  });

  it('cancels the running operation when the workflow cancels the step', async () => {
    const project = await freshProject('cancel', { deployMs: 30_000 });
    const v = await validated(publicSpec(project, t.modelUri));
    const env = inActivity();
    const started = heartbeatMatching<{ operationName?: string }>(env, (d) => !!d.operationName);
    const running = env.exec(t.activities.deployToVertex, deployInput(v));
    const { operationName } = await started;
    env.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    const op = await t.gcp.vertex.getOperation(operationName!);
    expect(op.done).toBe(true);
    expect(op.error?.status).toBe('CANCELLED');
  });

  it('fails past the deadline with DeployOperationFailed, cancelling the operation', async () => {
    const project = await freshProject('deadline', { deployMs: 30_000 });
    const v = await validated(publicSpec(project, t.modelUri));
    const failure = await failureOf(
      inActivity().exec(t.activities.deployToVertex, { ...deployInput(v), deadline: Date.now() + 500 }),
    );
    expect(failure.type).toBe('DeployOperationFailed');
    expect(failure.message).toMatch(/did not finish within timeouts\.deploy .*raise timeouts\.deploy/);
    const ops = (await t.admin.resources(project)).operations;
    expect(ops).toEqual([
      expect.objectContaining({ done: true, error: expect.objectContaining({ code: 1 }) }),
    ]);
  });
});

describe('waitForReplicas', () => {
  it('fails with ReplicasNotReady and the last status past the deadline', async () => {
    const project = await freshProject('never-ready');
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['never-ready'] }]);
    const v = await validated(publicSpec(project, t.modelUri));
    const { resources } = await inActivity().exec(t.activities.deployToVertex, deployInput(v));
    const beats: Array<{ available: number; target: number }> = [];
    const env = inActivity();
    env.on('heartbeat', (d: { available: number; target: number }) => beats.push(d));
    const failure = await failureOf(
      env.exec(t.activities.waitForReplicas, {
        endpoint: resources.endpoint!,
        deployedModelId: resources.deployedModelId,
        minReplicas: 1,
        deadline: Date.now() + 600,
      }),
    );
    expect(failure.type).toBe('ReplicasNotReady');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(
      /^only 0 of 1 replicas of projects\/\d+\/.*\/endpoints\/tiny-llama became available by the deadline/,
    );
    expect(beats).toContainEqual(expect.objectContaining({ available: 0, target: 1 }));
  });

  it('counts its budget from when it started: time spent queued before it is not taken from it', async () => {
    const project = await freshProject('queued', { replicaRampMs: 1_500 });
    const v = await validated(publicSpec(project, t.modelUri));
    const { resources } = await inActivity().exec(t.activities.deployToVertex, deployInput(v));
    // Scheduled a minute ago with a budget of a minute and 300 ms: it waited for a worker all but
    // 300 ms of it. Its own budget is still a minute and 300 ms, enough for the 1.5 s ramp.
    const scheduled = Date.now() - 60_000;
    const replicas = await inActivity({ scheduledTimestampMs: scheduled }).exec(
      t.activities.waitForReplicas,
      {
        endpoint: resources.endpoint!,
        deployedModelId: resources.deployedModelId,
        minReplicas: 1,
        deadline: scheduled + 60_300,
      },
    );
    expect(replicas.available).toBe(1);
  });

  it('resumes a wait from the previous attempt: its start, its checks and its backoff', async () => {
    const project = await freshProject('resumed-wait', { replicaRampMs: 1_500 });
    const v = await validated(publicSpec(project, t.modelUri));
    const { resources } = await inActivity().exec(t.activities.deployToVertex, deployInput(v));
    // Scheduled 20 s ago with a 15 s budget, but it first started only 2 s ago (queued 18 s) and
    // has since ended 7 attempts only to wait: 13 s of budget are left, the ramp needs 1.5 s.
    const scheduled = Date.now() - 20_000;
    const wait = { startedAt: Date.now() - 2_000, yields: 7, delayMs: 100 };
    const env = inActivity({
      attempt: 9,
      scheduledTimestampMs: scheduled,
      heartbeatDetails: { available: 0, target: 1, wait },
    });
    const replicas = await env.exec(t.activities.waitForReplicas, {
      endpoint: resources.endpoint!,
      deployedModelId: resources.deployedModelId,
      minReplicas: 1,
      deadline: scheduled + 15_000,
    });
    // The attempt the user sees leaves the 7 waits out: one real failure before this attempt.
    expect(replicas).toMatchObject({ available: 1, attempt: 2 });
  });
});
