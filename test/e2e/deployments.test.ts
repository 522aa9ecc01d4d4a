import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { getProgress, listDeployments, teardownDeployment } from '../../src/client';
import type { FaultRuleInput } from '../../src/emulator';
import type { DeploymentSpecInput } from '../../src/spec';
import type { DeployProgress, DeploymentResult } from '../../src/workflows/types';
import { freshProject, privateSpec, publicSpec, uploadModel } from '../activities/env';
import { getTestEnv } from '../harness/env';
import { eventually } from '../harness/eventually';
import {
  deploy,
  E2E_WAIT,
  expectNoTokensInHistories,
  expectNothingLeft,
  recordHistory,
  uniqueName,
  useWorkerAndModel,
} from './harness';

/**
 * Whole deployments on the dev server, fake GCS and the emulator: what users see when it works,
 * when the weights are bad, when Google is flaky or out of quota, and when a request is wrong.
 */

const t = useWorkerAndModel();

async function failureOf(result: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await result.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

/** Deploys `spec` (its history recorded as `label`), which must fail: how, and the progress it reports. */
async function failedDeployment(spec: DeploymentSpecInput, label: string) {
  const { client } = await getTestEnv();
  const started = await deploy(client, t.worker.taskQueue, spec, label);
  const failure = await failureOf(started.handle.result());
  return { client, started, failure, progress: failure.details?.[0] as DeployProgress };
}

const stepStatuses = (progress: DeployProgress) =>
  Object.fromEntries(progress.steps.map((s) => [s.name, s.status]));

/** About 30 % of every call of `project` fails: 15 % 429 (Retry-After 1 s), then 15 % of the rest 503. */
function flaky(project: string): FaultRuleInput[] {
  return [
    { route: '*', project, action: { type: 'error', status: 429, retryAfterSeconds: 1 }, probability: 0.15 },
    { route: '*', project, action: '503', probability: 0.18 },
  ];
}

describe.concurrent('deployments', () => {
  it('deploys a public endpoint: every step reported, findable by search attributes, then torn down', async () => {
    const project = await freshProject('e2e-public');
    const { client } = await getTestEnv();
    const name = uniqueName('public');
    const started = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(project, t.modelUri, name),
      'public-serving',
    );
    const result: DeploymentResult = await started.result();

    expect(result).toMatchObject({ outcome: 'serving', deployment: name, project, region: 'us-central1' });
    expect(result.inferenceUrl).toMatch(
      new RegExp(`^https://${name}\\.us-central1-\\d+\\.prediction\\.vertexai\\.goog$`),
    );
    expect(result.smoke).toEqual([
      expect.objectContaining({ passed: true, mode: 'chat', answerPreview: expect.any(String) }),
    ]);
    expect(result.resources).toMatchObject({
      endpoint: expect.stringMatching(new RegExp(`/endpoints/${name}$`)),
      model: expect.stringMatching(new RegExp(`/models/${name}$`)),
      deployedModelId: expect.any(String),
    });

    const status = await getProgress(client, started.workflowId);
    expect(status.progress?.stage).toBe('SERVING');
    expect(stepStatuses(status.progress!)).toEqual({
      validate: 'succeeded',
      deploy: 'succeeded',
      waitForReplicas: 'succeeded',
      psc: 'skipped',
      smoke: 'succeeded',
    });
    expect(status.progress!.steps.find((s) => s.name === 'deploy')).toMatchObject({ attempts: 1 });
    expect(status.progress!.replicas).toEqual({ available: 1, target: 1 });
    expect(status.progress!.validation).toMatchObject({ ok: true, family: 'llama' });

    const found = await eventually(
      'the deployment in visibility',
      async () => {
        const list = await listDeployments(client, { name, project, stage: 'SERVING', scope: 'all' });
        return list.length > 0 ? list : undefined;
      },
      E2E_WAIT,
    );
    expect(found).toEqual([
      expect.objectContaining({
        workflowId: started.workflowId,
        region: 'us-central1',
        modelUri: t.modelUri,
      }),
    ]);

    const teardown = await teardownDeployment(client, started.workflowId);
    const removed = await teardown.result();
    expect(removed.outcome).toBe('torn-down');
    expect(removed.removed.filter((r) => r.outcome === 'removed').map((r) => r.resource)).toEqual([
      expect.stringMatching(/\/deployedModels\//),
      expect.stringMatching(/\/endpoints\//),
      expect.stringMatching(/\/models\//),
    ]);
    await started.handle.result();
    await recordHistory(client, started, 'public-serving-teardown');
    await expectNothingLeft(project);
  });

  it('deploys a private endpoint and connects it through PSC; smoke tests run on the PSC address', async () => {
    const [project, consumer] = await Promise.all([
      freshProject('e2e-private'),
      freshProject('e2e-consumer'),
    ]);
    const { client } = await getTestEnv();
    const name = uniqueName('private');
    const started = await deploy(
      client,
      t.worker.taskQueue,
      privateSpec(project, consumer, t.modelUri, name),
      'private-serving',
    );
    const result: DeploymentResult = await started.result();

    expect(result.outcome).toBe('serving');
    expect(result.resources).toMatchObject({
      serviceAttachment: expect.stringMatching(/serviceAttachments\//),
      pscAddress: expect.stringMatching(
        new RegExp(`^projects/${consumer}/regions/us-central1/addresses/${name}-[0-9a-f]{8}-psc-ip$`),
      ),
      pscForwardingRule: expect.stringMatching(
        new RegExp(`^projects/${consumer}/regions/us-central1/forwardingRules/${name}-[0-9a-f]{8}-psc-fr$`),
      ),
    });
    expect(result.inferenceUrl).toBe(`https://${result.resources.pscIpAddress}`);
    expect(result.smoke).toEqual([expect.objectContaining({ passed: true })]);
    const status = await getProgress(client, started.workflowId);
    expect(stepStatuses(status.progress!)).toMatchObject({ psc: 'succeeded', smoke: 'succeeded' });
    expect(status.progress!.steps.find((s) => s.name === 'psc')!.detail).toMatch(/^ACCEPTED at 10\./);

    expect((await (await teardownDeployment(client, started.workflowId)).result()).outcome).toBe('torn-down');
    await started.handle.result();
    await recordHistory(client, started, 'private-serving-teardown');
    await expectNothingLeft(project, consumer);
  });

  it('fails broken weights at validation, before any Google call', async () => {
    const project = await freshProject('e2e-broken');
    const broken = await uploadModel({ variant: 'missing-tokenizer' });
    const { client, started, failure, progress } = await failedDeployment(
      publicSpec(project, broken, uniqueName('broken')),
      'broken-weights',
    );

    expect(failure.type).toBe('WeightValidationFailed');
    expect(failure.message).toContain('tokenizer.missing');
    expect(failure.message).toContain('nothing was left behind');
    expect(progress).toMatchObject({ stage: 'FAILED', validation: { ok: false } });
    expect(stepStatuses(progress)).toMatchObject({ validate: 'failed', deploy: 'pending' });
    expect(progress.steps[0]).toMatchObject({ attempts: 1 });
    await expectNothingLeft(project);
    expect((await t.admin.stats(project)).calls).toEqual({});
    await recordHistory(client, started, 'broken-weights');
  });

  it('completes public and private deployments while 30 % of Google calls fail with 429/503', async () => {
    const [project, consumer] = await Promise.all([freshProject('e2e-flaky'), freshProject('e2e-flaky-c')]);
    await t.admin.addFaultRules([...flaky(project), ...flaky(consumer)]);
    const { client } = await getTestEnv();
    const [pub, priv] = await Promise.all([
      deploy(
        client,
        t.worker.taskQueue,
        publicSpec(project, t.modelUri, uniqueName('flaky-pub')),
        'flaky-public',
      ),
      deploy(
        client,
        t.worker.taskQueue,
        privateSpec(project, consumer, t.modelUri, uniqueName('flaky-priv')),
        'flaky-private',
      ),
    ]);
    const results: DeploymentResult[] = await Promise.all([pub.result(), priv.result()]);
    expect(results.map((r) => r.outcome)).toEqual(['serving', 'serving']);
    const stats = await t.admin.stats(project);
    const calls = Object.values(stats.calls).reduce((a, b) => a + b, 0);
    expect(calls).toBeGreaterThan(20);
    // Retries never duplicated anything.
    expect(stats.creations).toEqual({ endpoint: 2, model: 2, deployedModel: 2 });
    expect((await t.admin.stats(consumer)).creations).toEqual({ address: 1, forwardingRule: 1 });
    await t.admin.clearFaults({ project });
    await t.admin.clearFaults({ project: consumer });
    await recordHistory(client, pub, 'flaky-public');
  });

  it('fails an operation that runs out of GPU quota with the quota to raise, and removes what it created', async () => {
    const project = await freshProject('e2e-quota');
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['quota'] }]);
    const { client, started, failure, progress } = await failedDeployment(
      publicSpec(project, t.modelUri, uniqueName('quota')),
      'quota-exhausted',
    );

    expect(failure.type).toBe('QuotaExhausted');
    expect(failure.message).toContain('aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus');
    expect(failure.message).toMatch(/request an increase/i);
    expect(failure.message).toMatch(/rolled back: removed .*endpoints\/.*models\//);
    expect(stepStatuses(progress)).toMatchObject({ validate: 'succeeded', deploy: 'compensated' });
    expect(progress.lastError).toMatchObject({ type: 'QuotaExhausted' });
    await expectNothingLeft(project);
    await recordHistory(client, started, 'quota-exhausted');
  });

  it('fails a request Google refuses with 400 on the first attempt', async () => {
    const project = await freshProject('e2e-400');
    await t.admin.addFaultRules([
      {
        route: 'vertex.deploy',
        project,
        action: {
          type: 'error',
          status: 400,
          message: 'Model Garden does not support this base model in us-central1.',
        },
      },
    ]);
    const { failure, progress } = await failedDeployment(
      publicSpec(project, t.modelUri, uniqueName('bad')),
      'bad-request',
    );

    expect(failure.type).toBe('GcpPermanentError');
    expect(failure.message).toContain('400 INVALID_ARGUMENT');
    expect(failure.message).toContain('Model Garden does not support this base model');
    expect(progress.steps.find((s) => s.name === 'deploy')).toMatchObject({
      status: 'compensated',
      attempts: 1,
    });
    expect((await t.admin.stats(project)).calls['vertex.deploy']).toBe(1);
    await expectNothingLeft(project);
  });
});

describe('histories', () => {
  it('hold no access token', async () => {
    const { client } = await getTestEnv();
    expect(await expectNoTokensInHistories(client)).toBeGreaterThan(0);
  });
});
