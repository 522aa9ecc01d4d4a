import { CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { cancelDeployment, rollbackDeployment } from '../../src/client';
import type { DeploymentResult } from '../../src/workflows/types';
import { freshProject, privateSpec, publicSpec } from '../activities/env';
import { getTestEnv, uniqueTaskQueue } from '../harness/env';
import {
  deploy,
  expectNoTokensInHistories,
  expectNothingLeft,
  recordHistory,
  startTestWorker,
  uniqueName,
  untilStage,
  useWorkerAndModel,
} from './harness';

/**
 * Cancel at every stage, Temporal's own cancellation, and rollback after success: each leaves
 * no endpoint, model, address or forwarding rule behind (the emulator's state says so).
 */

const t = useWorkerAndModel();

const runningDeployOperation = async (project: string) =>
  (await t.admin.resources(project)).operations.some((op) => op.done !== true);

describe.concurrent('cancel and rollback', () => {
  it('cancel before validation has run: nothing is created', async () => {
    const project = await freshProject('e2e-cancel-val');
    const { client } = await getTestEnv();
    // Nobody polls this queue yet, so the cancel is in the workflow's first task.
    const taskQueue = uniqueTaskQueue('e2e-late');
    const started = await deploy(client, taskQueue, publicSpec(project, t.modelUri, uniqueName('c-val')));
    // An Update is accepted by a worker: the cancel waits for the first one.
    const cancelling = cancelDeployment(client, started.workflowId, { reason: 'changed my mind' });
    const late = await startTestWorker(taskQueue);
    try {
      expect((await (await cancelling).result()).outcome).toBe('cancelled');
      const result: DeploymentResult = await started.handle.result();
      expect(result).toMatchObject({ outcome: 'cancelled', reason: 'changed my mind', removed: [] });
    } finally {
      await late.stop();
    }
    await expectNothingLeft(project);
  });

  it('cancel while the deploy operation runs: the operation is cancelled and its endpoint and model removed', async () => {
    const project = await freshProject('e2e-cancel-dep', { deployMs: 60_000 });
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(project, t.modelUri, uniqueName('c-dep')),
      'cancel-deploying',
    );
    await untilStage(started, 'DEPLOYING', async () => {
      const { endpoints } = await t.admin.resources(project);
      return endpoints.length > 0 && (await runningDeployOperation(project));
    });
    await cancelDeployment(client, started.workflowId, { reason: 'wrong model' });
    const result: DeploymentResult = await started.handle.result();

    expect(result.outcome).toBe('cancelled');
    // The deploy activity cancels the operation as it stops (or stopDeployOperation does, after it).
    const removed = result.removed.filter((r) => r.outcome === 'removed').map((r) => r.resource);
    expect(removed.filter((r) => !r.includes('/operations/'))).toEqual([
      expect.stringMatching(/\/endpoints\//),
      expect.stringMatching(/\/models\//),
    ]);
    const [op] = (await t.admin.resources(project)).operations.filter((o) =>
      String(o.name).includes('/operations/'),
    );
    expect(op).toMatchObject({ done: true, error: { code: 1 } });
    await expectNothingLeft(project);
    await recordHistory(client, started, 'cancel-deploying');
  });

  it('cancel while waiting for replicas: undeployed, endpoint and model deleted', async () => {
    const project = await freshProject('e2e-cancel-rep', { replicaRampMs: 120_000 });
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(project, t.modelUri, uniqueName('c-rep')),
    );
    await untilStage(started, 'WAITING_FOR_REPLICAS');
    await cancelDeployment(client, started.workflowId);
    const result: DeploymentResult = await started.handle.result();
    expect(result.outcome).toBe('cancelled');
    expect(result.removed.filter((r) => r.outcome === 'removed')).toHaveLength(3);
    await expectNothingLeft(project);
  });

  it('cancel while the PSC connection is pending: forwarding rule and address go too', async () => {
    const [project, consumer] = await Promise.all([
      freshProject('e2e-cancel-psc'),
      freshProject('e2e-cancel-psc-c', { pscAcceptMs: 120_000 }),
    ]);
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      privateSpec(project, consumer, t.modelUri, uniqueName('c-psc')),
    );
    await untilStage(
      started,
      'CONNECTING_PSC',
      async () => (await t.admin.resources(consumer)).forwardingRules.length > 0,
    );
    await cancelDeployment(client, started.workflowId);
    const result: DeploymentResult = await started.handle.result();
    expect(result.outcome).toBe('cancelled');
    const removed = result.removed.filter((r) => r.outcome === 'removed').map((r) => r.resource);
    // The billing chain and the PSC chain run side by side, each in its order.
    expect(removed.filter((r) => !/forwardingRules|addresses/.test(r))).toEqual([
      expect.stringMatching(/deployedModels\//),
      expect.stringMatching(/endpoints\//),
      expect.stringMatching(/models\//),
    ]);
    expect(removed.filter((r) => /forwardingRules|addresses/.test(r))).toEqual([
      expect.stringMatching(/forwardingRules\//),
      expect.stringMatching(/addresses\//),
    ]);
    await expectNothingLeft(project, consumer);
  });

  it('cancel during the smoke test: everything removed', async () => {
    const project = await freshProject('e2e-cancel-smoke');
    await t.admin.addFaultRules([{ route: 'inference.chatCompletions', project, action: 'latency:15000' }]);
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(project, t.modelUri, uniqueName('c-smoke')),
    );
    await untilStage(started, 'SMOKE_TESTING');
    await cancelDeployment(client, started.workflowId);
    const result: DeploymentResult = await started.handle.result();
    expect(result.outcome).toBe('cancelled');
    await expectNothingLeft(project);
  });

  it('Temporal cancellation of the workflow also cleans up, and the run ends Canceled', async () => {
    const project = await freshProject('e2e-tcancel', { replicaRampMs: 120_000 });
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(project, t.modelUri, uniqueName('t-cancel')),
      'temporal-cancel',
    );
    await untilStage(started, 'WAITING_FOR_REPLICAS');
    await started.handle.cancel();
    const err = await started.handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    await expectNothingLeft(project);
    await recordHistory(client, started, 'temporal-cancel');
  });

  it('rollback within the rollback window after success removes the serving deployment', async () => {
    const project = await freshProject('e2e-rollback');
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      { ...publicSpec(project, t.modelUri, uniqueName('rollback')), rollbackWindow: '1h' },
      'rollback-after-success',
    );
    const serving = await untilStage(started, 'SERVING');
    expect(serving.rollbackWindowEndsAt).toBeDefined();
    expect((await t.admin.resources(project)).endpoints).toHaveLength(1);
    await rollbackDeployment(client, started.workflowId, { reason: 'bad answers in production' });
    const result: DeploymentResult = await started.handle.result();
    expect(result).toMatchObject({ outcome: 'rolled-back', reason: 'bad answers in production' });
    expect(result.removed.filter((r) => r.outcome === 'removed')).toHaveLength(3);
    await expectNothingLeft(project);
    await recordHistory(client, started, 'rollback-after-success');
  });
});

describe('histories', () => {
  it('hold no access token', async () => {
    const { client } = await getTestEnv();
    expect(await expectNoTokensInHistories(client)).toBeGreaterThan(0);
  });
});
