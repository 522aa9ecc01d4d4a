/**
 * The product's metrics (single source): their names, labels and histogram buckets. They go out
 * through the Temporal SDK's metric meter, so the worker's one Prometheus endpoint
 * (`GARDEN_DEPLOY_METRICS_ADDRESS`) serves them next to the SDK's own (`temporal_*`): workflow code
 * emits the deployment's (replay-safe: the SDK drops them while a workflow replays), the worker the
 * calls to Google and the waits for API budget. Imported by workflow code: plain data only.
 *
 * Labels stay few-valued on purpose: no project, deployment, endpoint or resource name (a series per
 * deployment would grow without bound; those are in the progress query and the search attributes).
 * Counters are exported with a `_total` suffix.
 */

export interface MetricDefinition {
  name: string;
  kind: 'counter' | 'histogram';
  /** The labels it carries besides the SDK's (`namespace`, `taskQueue`, and `workflowType` from workflows). */
  labels: readonly string[];
  description: string;
  unit?: string;
  /** Histogram bucket bounds. */
  buckets?: readonly number[];
}

/** Steps wait on Google for seconds to an hour (`:deploy` of a large model). */
const STEP_BUCKETS = [0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
/** 0 counts the calls that did not wait at all. */
const WAIT_BUCKETS = [0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const METRICS = {
  deploymentsStarted: {
    name: 'garden_deploy_deployments_started',
    kind: 'counter',
    labels: ['kind'],
    description:
      'Deployments started: kind "deploy" (a first deploy) or "recovery" (the teardown of an earlier run)',
  },
  deploymentsEnded: {
    name: 'garden_deploy_deployments_ended',
    kind: 'counter',
    labels: ['outcome'],
    description: 'Deployments ended, by outcome: torn-down, cancelled, rolled-back or failed',
  },
  stageTransitions: {
    name: 'garden_deploy_stage_transitions',
    kind: 'counter',
    labels: ['stage'],
    description: 'Deployments entering a stage (the DeployStage search attribute)',
  },
  stepDuration: {
    name: 'garden_deploy_step_duration_seconds',
    kind: 'histogram',
    unit: 's',
    labels: ['step', 'status'],
    description:
      'First-deploy steps from start to end, retries and waits included, by step and status (succeeded, failed, cancelled)',
    buckets: STEP_BUCKETS,
  },
  upgradesEnded: {
    name: 'garden_deploy_upgrades_ended',
    kind: 'counter',
    labels: ['outcome'],
    description: 'Upgrades ended, by outcome: completed, rolled-back or unchanged',
  },
  gateEvaluations: {
    name: 'garden_deploy_upgrade_gate_evaluations',
    kind: 'counter',
    labels: ['verdict'],
    description: 'Upgrade gate evaluations, by overall verdict: pass, fail or idle',
  },
  gateChecks: {
    name: 'garden_deploy_upgrade_gate_checks',
    kind: 'counter',
    labels: ['gate', 'verdict'],
    description: 'The checks of upgrade gate evaluations, by gate and verdict (pass, fail, skipped)',
  },
  compensations: {
    name: 'garden_deploy_compensations',
    kind: 'counter',
    labels: ['scope', 'task', 'outcome'],
    description:
      'Compensations. scope "deployment": each resource a removal task handled (removed, already-gone, not-ours, ' +
      'abandoned) and each task that spent its retry budget (blocked); scope "upgrade": each undo done, and each ' +
      'failed round before it is tried again (blocked)',
  },
  gcpCalls: {
    name: 'garden_deploy_gcp_calls',
    kind: 'counter',
    labels: ['service', 'method', 'status'],
    description:
      'HTTP exchanges with Google APIs, by service (vertex, prediction, compute, monitoring, quotas, logging), ' +
      'method (HTTP method and route, ids replaced by *) and status (HTTP code, or network, timeout, cancelled)',
  },
  apiBudgetWait: {
    name: 'garden_deploy_api_budget_wait_seconds',
    kind: 'histogram',
    unit: 's',
    labels: ['service'],
    description: 'How long calls waited for their API budget (GARDEN_DEPLOY_API_BUDGET_*), by service',
    buckets: WAIT_BUCKETS,
  },
  storageEvents: {
    name: 'garden_deploy_storage_events',
    kind: 'counter',
    labels: ['transport', 'outcome'],
    description:
      'Storage events handled (transport pubsub or cloudevent), by outcome: started, upgraded, attached, ' +
      'duplicate, invalid, refused, ignored, stale, deleted, retry',
  },
} as const satisfies Record<string, MetricDefinition>;

export type MetricKey = keyof typeof METRICS;
