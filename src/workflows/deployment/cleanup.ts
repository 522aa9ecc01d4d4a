import { isCancellation, sleep } from '@temporalio/workflow';
import type { CleanupOutcome } from '../../activities/contract';
import { summarizeFailure } from '../failures';
import { countCompensation } from '../metrics';
import type { CleanupProgress, CleanupTaskName, CleanupTaskProgress, UndoKind } from '../types';

/**
 * The removal of what a deployment created, as a plan of compensations in two chains that run side
 * by side: the Vertex chain (stop the deploy operation, undeploy, delete endpoint, delete model:
 * what stops GPU billing) never waits behind the PSC chain (forwarding rule, address). Within a
 * chain each task runs after the one before. A task whose activity spends its retry budget is
 * `blocked` with the error, and its chain stops there; the plan then reports blocked until an
 * operator retries it (blocked and pending tasks run again) or abandons it.
 */

export interface CleanupPlanOptions {
  kind: UndoKind;
  reason: string;
  /** `:deploy` may have been sent: an endpoint and model may exist. */
  vertex: boolean;
  /** A deploy operation was submitted: stop it before removing what it made. */
  deployOperation: boolean;
  /** The operation may still have been running: look again after a grace period for late resources. */
  lateLook: boolean;
  /** PSC consumer resources may exist. */
  psc: boolean;
  /** An upgrade to this revision was cut short: its staging endpoint and Model may exist too. */
  revision?: number;
  at: string;
}

export function planCleanup(options: CleanupPlanOptions): CleanupProgress {
  const task = (
    name: CleanupTaskName,
    chain: 'vertex' | 'psc',
    lateLook = false,
    revision?: number,
  ): CleanupTaskProgress => ({
    task: name,
    chain,
    state: 'pending',
    attempts: 0,
    ...(lateLook ? { lateLook } : {}),
    ...(revision ? { revision } : {}),
  });
  const revision = options.revision;
  const vertexTasks = (lateLook = false, of?: number) =>
    (['undeployModels', 'deleteEndpoint', 'deleteModel'] as const).map((name) =>
      task(name, 'vertex', lateLook, of),
    );
  const pscTasks = (of?: number) =>
    (['deletePscForwardingRule', 'releasePscAddress'] as const).map((name) => task(name, 'psc', false, of));
  return {
    kind: options.kind,
    reason: options.reason,
    state: 'running',
    startedAt: options.at,
    tasks: [
      ...(options.vertex && options.deployOperation ? [task('stopDeployOperation', 'vertex')] : []),
      ...(options.vertex ? vertexTasks() : []),
      ...(options.vertex && options.lateLook ? vertexTasks(true) : []),
      ...(options.psc ? pscTasks() : []),
      ...(revision ? [...vertexTasks(false, revision), ...(options.psc ? pscTasks(revision) : [])] : []),
    ],
  };
}

export interface CleanupRunner {
  /** Runs one compensation's activity (with its retry budget); returns what it did. */
  run(task: CleanupTaskProgress): Promise<{ outcomes: CleanupOutcome[]; attempt: number }>;
  /** Called after every change of the plan (progress, UI details). */
  changed(plan: CleanupProgress, outcomes: CleanupOutcome[]): void;
  /** Wait before the second look for late resources. */
  graceMs: number;
}

/** Runs the pending tasks of `plan` (mutated in place); `done` or `blocked` when both chains stop. */
export async function runCleanup(
  plan: CleanupProgress,
  runner: CleanupRunner,
  now: () => string,
): Promise<'done' | 'blocked'> {
  plan.state = 'running';
  delete plan.blockedAt;
  runner.changed(plan, []);
  const chain = async (name: 'vertex' | 'psc') => {
    for (const task of plan.tasks.filter((t) => t.chain === name)) {
      if (task.state !== 'pending') continue;
      const first = plan.tasks.find((t) => t.lateLook);
      if (task === first) await sleep(runner.graceMs);
      task.state = 'running';
      runner.changed(plan, []);
      try {
        const { outcomes, attempt } = await runner.run(task);
        task.state = 'done';
        task.attempts += attempt;
        delete task.error;
        for (const { outcome } of outcomes) countCompensation('deployment', task.task, outcome);
        runner.changed(plan, outcomes);
      } catch (err) {
        if (isCancellation(err)) throw err;
        const failure = summarizeFailure(err);
        task.state = 'blocked';
        task.attempts += failure.attempt ?? 1;
        task.error = failure.message;
        countCompensation('deployment', task.task, 'blocked');
        runner.changed(plan, []);
        return;
      }
    }
  };
  await Promise.all([chain('vertex'), chain('psc')]);
  const blocked = plan.tasks.some((t) => t.state === 'blocked');
  plan.state = blocked ? 'blocked' : 'done';
  if (blocked) plan.blockedAt = now();
  runner.changed(plan, []);
  return blocked ? 'blocked' : 'done';
}

/** Blocked tasks run again on `retryCleanup`. */
export function retryBlocked(plan: CleanupProgress): void {
  for (const task of plan.tasks) if (task.state === 'blocked') task.state = 'pending';
}

/** `abandonCleanup`: what was not removed stays, for the operator; returns it as outcomes. */
export function abandonRemaining(
  plan: CleanupProgress,
  reason: string,
  resources: string[],
): CleanupOutcome[] {
  for (const task of plan.tasks)
    if (task.state === 'blocked' || task.state === 'pending') task.state = 'abandoned';
  plan.state = 'abandoned';
  countCompensation('deployment', 'abandonCleanup', 'abandoned', resources.length);
  return resources.map((resource) => ({ resource, outcome: 'abandoned' as const, reason }));
}

/** A one-line account of what blocks the removal, for errors and the Temporal UI. */
export function blockedSummary(plan: CleanupProgress): string {
  return plan.tasks
    .filter((t) => t.state === 'blocked')
    .map(
      (t) => `${t.task} (after ${t.attempts} attempt${t.attempts === 1 ? '' : 's'}): ${t.error ?? 'failed'}`,
    )
    .join('; ');
}
