import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getProgress, teardownDeployment, upgradeDeployment } from '../../src/client';
import type { DeploymentResult } from '../../src/workflows/types';
import {
  type ActivityTestEnv,
  freshProject,
  getActivityTestEnv,
  publicSpec,
  uploadModel,
} from '../activities/env';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import {
  deploy,
  E2E_WAIT,
  expectNoTokensInHistories,
  expectNothingLeft,
  recordHistory,
  uniqueName,
  untilStage,
} from './harness';
import { type WorkerProcess, workerProcesses } from './worker-process';

/**
 * The worker as users run it (`garden-deploy worker`, configured by env) is
 * SIGKILLed in the middle of the deploy operation and again while waiting for replicas. Each time
 * a new worker process picks the deployment up: the deploy resumes the operation it had started,
 * and the deployment completes with exactly one `:deploy` call and one endpoint. The same for an
 * upgrade, killed while staging and during its canary bake.
 */

let t: ActivityTestEnv;
let modelUri: string;
const workers = workerProcesses('crash');

beforeAll(async () => {
  t = await getActivityTestEnv();
  modelUri = await uploadModel();
}, 120_000);

afterAll(async () => {
  await workers.stop();
  await closeTestEnv();
});

async function kill(worker: WorkerProcess): Promise<void> {
  worker.child.kill('SIGKILL');
  await worker.exited;
}

describe('worker process killed mid-deployment', () => {
  it('resumes after SIGKILL during the deploy operation and during waitForReplicas: one :deploy, one endpoint', async () => {
    // The ramp leaves room for the second worker to start and resume the deploy on a loaded machine
    // (seconds each) before the replicas are up; otherwise waitForReplicas could finish before it can
    // be killed.
    const project = await freshProject('e2e-crash', { deployMs: 3_000, replicaRampMs: 45_000 });
    const taskQueue = uniqueTaskQueue('e2e-crash');
    const { client } = await getTestEnv();

    const first = await workers.start(taskQueue);
    const started = await deploy(
      client,
      taskQueue,
      publicSpec(project, modelUri, uniqueName('crash')),
      'worker-crash',
    );
    // Kill once the deploy activity's heartbeat has recorded the operation it started.
    const operation = await eventually(
      'the deploy heartbeat naming the operation',
      async () => {
        const status = await getProgress(client, started.workflowId);
        return status.activities.find((a) => a.activityType === 'finishDeploy')?.operationName;
      },
      E2E_WAIT,
    );
    await kill(first);

    const second = await workers.start(taskQueue);
    await untilStage(started, 'WAITING_FOR_REPLICAS', async () => {
      const status = await getProgress(client, started.workflowId);
      return status.activities.some((a) => a.activityType === 'waitForReplicas' && a.lastHeartbeatAt);
    });
    await kill(second);

    const third = await workers.start(taskQueue);
    const result: DeploymentResult = await started.result();
    expect(result.outcome).toBe('serving');
    expect(result.resources.deployOperation).toBe(operation);

    const stats = await t.admin.stats(project);
    expect(stats.calls['vertex.deploy']).toBe(1);
    expect(stats.creations).toEqual({ endpoint: 1, model: 1, deployedModel: 1 });
    expect((await t.admin.resources(project)).endpoints).toHaveLength(1);
    // Attempts are not asserted: a kill during a check fails that attempt, but a kill between two
    // checks costs none (the wait held nothing; the next check simply runs on the next worker).
    await recordHistory(client, started, 'worker-crash');

    // The worker that finished the deployment also removes it (the teardown's compensations).
    expect((await (await teardownDeployment(client, started.workflowId)).result()).outcome).toBe('torn-down');
    await expectNothingLeft(project);

    // SIGTERM: the worker drains and exits 0.
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);

    // Neither the histories nor the worker's logs carry a credential.
    await expectNoTokensInHistories(client);
    const tokens = (await t.admin.tokens()).map((token) => token.accessToken);
    const output = workers.logs.join('');
    expect(output).toContain('"message":"garden-deploy worker stopped"');
    for (const token of tokens) expect(output.includes(token)).toBe(false);
  }, 180_000);

  it('an upgrade resumes after SIGKILL while staging and during the canary: one staging :deploy, one deployModel, r1 retired', async () => {
    const project = await freshProject('e2e-crash-upg');
    const taskQueue = uniqueTaskQueue('e2e-crash-upg');
    const { client } = await getTestEnv();
    const first = await workers.start(taskQueue);
    const spec = {
      ...publicSpec(project, modelUri, uniqueName('crash-upg')),
      // No traffic here: the canary passes as idle (onIdle: promote) once its bake ends.
      strategy: { canary: { percent: 10, bake: '8s' } },
      gates: { interval: '500ms', minRequests: 0, onIdle: 'promote' as const },
    };
    const started = await deploy(client, taskQueue, spec, 'worker-crash-upgrade');
    expect((await started.result()).outcome).toBe('serving');
    await t.admin.setTiming(project, { deployMs: 3_000 });
    const upgrade = await upgradeDeployment(client, { ...spec, model: { uri: await uploadModel() } });
    await eventually(
      'the staging deploy heartbeat naming its operation',
      async () => {
        const status = await getProgress(client, started.workflowId);
        return status.activities.find((a) => a.activityType === 'finishDeploy')?.operationName;
      },
      E2E_WAIT,
    );
    await kill(first);

    const second = await workers.start(taskQueue);
    await eventually(
      'the canary bake',
      async () => (await getProgress(client, started.workflowId)).progress?.upgrade?.step?.percent === 10,
      E2E_WAIT,
    );
    await kill(second);

    const third = await workers.start(taskQueue);
    expect((await upgrade.result()).outcome).toBe('completed');
    const stats = await t.admin.stats(project);
    expect(stats.calls['vertex.deploy']).toBe(2); // r1, and r2 on its staging endpoint
    expect(stats.creations).toEqual({ endpoint: 2, model: 2, deployedModel: 3 });
    const left = await t.admin.resources(project);
    expect(left.endpoints).toHaveLength(1);
    expect(left.models.map((m) => m.name.split('/').pop())).toEqual([`${spec.name}-r2`]);
    expect((await (await teardownDeployment(client, started.workflowId)).result()).outcome).toBe('torn-down');
    await expectNothingLeft(project);
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  }, 180_000);
});
