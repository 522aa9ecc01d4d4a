import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardownDeployment } from '../../src/client';
import { progressQuery } from '../../src/workflows/messages';
import { freshProject, getActivityTestEnv, publicSpec, uploadModel } from '../activities/env';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import { E2E_WAIT, deploy, expectNothingLeft, uniqueName, untilStage } from './harness';
import { workerProcesses } from './worker-process';

/**
 * The per-project API budget, shared by three workers on one task queue: a project's many
 * deployments never send more Vertex calls in a second than its budget, and another project's
 * deployments are not held behind them.
 */

const BUDGET = 5;
const WORKERS = 3;
let modelUri: string;
let taskQueue: string;
const workers = workerProcesses('budget');

beforeAll(async () => {
  taskQueue = uniqueTaskQueue('budget');
  // Three worker processes sharing a budget of 5 calls/s per project and service.
  const env = {
    GARDEN_DEPLOY_API_BUDGET_VERTEX: String(BUDGET),
    GARDEN_DEPLOY_API_BUDGET_COMPUTE: String(BUDGET),
    GARDEN_DEPLOY_API_BUDGET_PREDICTION: String(BUDGET),
    GARDEN_DEPLOY_API_BUDGET_WORKERS: String(WORKERS),
    // Google's pace of reads rather than the tests' fast one: the budget, not polling, sets the time.
    GARDEN_DEPLOY_POLL_INITIAL_MS: '1000',
    GARDEN_DEPLOY_POLL_MAX_MS: '3000',
  };
  [modelUri] = await Promise.all([
    uploadModel(),
    ...Array.from({ length: WORKERS }, () => workers.start(taskQueue, env)),
  ]);
}, 120_000);

afterAll(async () => {
  await workers.stop();
  await closeTestEnv();
});

describe('API budget', () => {
  it('three workers keep a busy project within its budget; a second project is not held behind it', async () => {
    const busy = await freshProject('busy');
    const quiet = await freshProject('quiet');
    const { client } = await getTestEnv();
    const { admin } = await getActivityTestEnv();
    const many = await Promise.all(
      Array.from({ length: 10 }, (_, n) =>
        deploy(client, taskQueue, publicSpec(busy, modelUri, uniqueName(`b${n}`))),
      ),
    );
    const few = await Promise.all(
      [1, 2].map((n) => deploy(client, taskQueue, publicSpec(quiet, modelUri, uniqueName(`q${n}`)))),
    );

    // The quiet project's deployments serve while most of the busy project's still queue for calls.
    await Promise.all(few.map((s) => untilStage(s, 'SERVING')));
    const stages = await Promise.all(many.map(async (s) => (await s.handle.query(progressQuery)).stage));
    expect(stages.filter((stage) => stage !== 'SERVING').length).toBeGreaterThan(many.length / 2);

    await Promise.all(many.map((s) => untilStage(s, 'SERVING')));
    const [vertex] = await admin.callRates({ project: busy, service: 'vertex' });
    expect(vertex!.total).toBeGreaterThan(many.length * 5);
    expect(vertex!.peakPerSecond).toBeLessThanOrEqual(BUDGET);

    await Promise.all(
      [...many, ...few].map(async (s) => (await teardownDeployment(client, s.workflowId)).result()),
    );
    await eventually('nothing left', async () => (await expectNothingLeft(busy, quiet), true), E2E_WAIT);
  }, 300_000);
});
