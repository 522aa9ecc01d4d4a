import { metricMeter } from '@temporalio/workflow';
import type { CleanupOutcome } from '../activities/contract';
import { METRICS } from '../metrics';
import type { GateReport } from '../rollout/gates';
import type { DeployStage, DeploymentOutcome, StepName, UpgradeOutcome } from './types';

/**
 * The deployment's product metrics (names in `src/metrics.ts`), emitted from workflow code through
 * the SDK's workflow `metricMeter`: nothing reaches the exporter while a workflow replays, so a
 * worker that rebuilds a deployment from its history (restart, cache eviction) does not count its
 * past again; only a workflow task that fails and runs again could count twice. Metric objects are
 * made at each use: the workflow meter may only be used inside a workflow, and its objects are
 * plain descriptors (the worker caches the real ones).
 */

const counter = (metric: { name: string; description: string }) =>
  metricMeter.createCounter(metric.name, undefined, metric.description);

/** Which kind of run started: a first deploy, or the teardown of an earlier run (`recover`). */
export function countDeploymentStarted(kind: 'deploy' | 'recovery'): void {
  counter(METRICS.deploymentsStarted).add(1, { kind });
}

export function countDeploymentEnded(outcome: DeploymentOutcome): void {
  counter(METRICS.deploymentsEnded).add(1, { outcome });
}

export function countStage(stage: DeployStage): void {
  counter(METRICS.stageTransitions).add(1, { stage });
}

/** A first-deploy step's time in workflow time (retries and waits included). */
export function recordStep(step: StepName, status: 'succeeded' | 'failed' | 'cancelled', ms: number): void {
  const { name, unit, description } = METRICS.stepDuration;
  metricMeter
    .createHistogram(name, 'float', unit, description)
    .record(Math.max(0, ms) / 1000, { step, status });
}

export function countUpgradeEnded(outcome: UpgradeOutcome): void {
  counter(METRICS.upgradesEnded).add(1, { outcome });
}

export function countGateEvaluation(report: GateReport): void {
  counter(METRICS.gateEvaluations).add(1, { verdict: report.verdict });
  const checks = counter(METRICS.gateChecks);
  for (const check of report.checks) checks.add(1, { gate: check.gate, verdict: check.verdict });
}

/** What one removal task of the deployment did: each resource's outcome, or `blocked`. */
export function countCompensation(
  scope: 'deployment' | 'upgrade',
  task: string,
  outcome: CleanupOutcome['outcome'] | 'done' | 'blocked',
  count = 1,
): void {
  if (count > 0) counter(METRICS.compensations).add(count, { scope, task, outcome });
}
