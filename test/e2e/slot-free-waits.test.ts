import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardownDeployment } from '../../src/client';
import { progressQuery } from '../../src/workflows/messages';
import { freshProject, getActivityTestEnv, publicSpec, uploadModel } from '../activities/env';
import { closeTestEnv, getTestEnv } from '../harness/env';
import { eventually } from '../harness/eventually';
import {
  type TestWorker,
  deploy,
  expectNothingLeft,
  recordHistory,
  startTestWorker,
  uniqueName,
  untilStage,
} from './harness';

/**
 * Waiting on Google costs no worker slot: a wait ends its activity attempt and Temporal runs the
 * next check later, so a worker with two activity slots still moves four deployments at once, and
 * a long wait adds no events to the deployment's history.
 */

let worker: TestWorker;
let modelUri: string;

beforeAll(async () => {
  [worker, modelUri] = await Promise.all([startTestWorker(undefined, { activitySlots: 2 }), uploadModel()]);
});

afterAll(async () => {
  await worker?.stop();
  await closeTestEnv();
});

describe('waits', () => {
  it('with two activity slots, four deployments all send :deploy while the first operation still runs; histories stay short', async () => {
    // Operations long enough that a worker holding a slot per wait could not submit the third :deploy
    // (a long poll of an operation holds a slot for at most LONG_POLL_MS, 10 s).
    const project = await freshProject('slots', { deployMs: 60_000, replicaRampMs: 3_000 });
    const { client } = await getTestEnv();
    const { admin } = await getActivityTestEnv();
    const started = await Promise.all(
      [1, 2, 3, 4].map((n) =>
        deploy(client, worker.taskQueue, publicSpec(project, modelUri, uniqueName(`s${n}`))),
      ),
    );

    await eventually(
      'four deploy operations running at once',
      async () => {
        const { operations } = await admin.resources(project);
        // Once one has ended the moment can no longer come: fail now, saying so.
        if (operations.some((op) => op.done === true))
          throw new Error('a deploy operation ended before all four ran');
        const running = operations.filter((op) => op.done !== true);
        return running.length === 4 ? running : undefined;
      },
      { timeoutMs: 120_000 },
    );

    // Each deploy operation takes a minute.
    await Promise.all(started.map((s) => untilStage(s, 'SERVING', undefined, { timeoutMs: 180_000 })));

    await recordHistory(client, started[0]!, 'slot-free-waits');
    for (const s of started) {
      const history = await client.workflow.getHandle(s.workflowId, s.runId).fetchHistory();
      const events = history.events ?? [];
      expect(events.length, `events in ${s.workflowId}`).toBeLessThanOrEqual(150);
      // The deploy and replica waits checked many times, each check an attempt of the same activity.
      const attempts = events
        .map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0)
        .reduce((a, b) => Math.max(a, b), 0);
      expect(attempts, `checks of the longest wait in ${s.workflowId}`).toBeGreaterThan(2);
      // Those checks are not failures: the progress counts each step's attempts without them.
      const progress = await s.handle.query(progressQuery);
      for (const step of progress.steps) expect(step.attempts, step.name).toBeLessThanOrEqual(1);
    }

    await Promise.all(started.map(async (s) => (await teardownDeployment(client, s.workflowId)).result()));
    await expectNothingLeft(project);
  }, 300_000);
});
