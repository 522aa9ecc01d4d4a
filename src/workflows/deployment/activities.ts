import { patched, proxyActivities } from '@temporalio/workflow';
import type { DeploymentActivities } from '../../activities/contract';
import { NON_RETRYABLE_ERRORS } from '../../activities/contract';
import type { DeploymentSettings } from '../types';

/** The defaults of `DeploymentSettings`, in one place. */
export const DEFAULT_SETTINGS: Required<DeploymentSettings> = {
  heartbeatTimeoutMs: 60_000,
  cleanupAttempts: 8,
  cleanupRetryMs: 2_000,
  lateResourceGraceMs: 60_000,
  stopWaitMs: 30 * 60_000,
  maxHistoryEvents: 10_000,
  modelUriSearchAttribute: true,
};

/** Steps' retries: backoff to a minute; permanent failures (the user must change something) are not retried. */
export const TRANSIENT_RETRY = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  nonRetryableErrorTypes: Object.values(NON_RETRYABLE_ERRORS),
} as const;

/**
 * Waits end their attempt instead of holding a worker slot while Google works, and Temporal runs
 * the next check later (`pollUntil` in activities/runtime.ts): those attempts must not use up an
 * attempt limit. The activity bounds its failed attempts and its budget itself.
 */
export const SLOT_FREE_WAITS = 'slot-free-waits';

/**
 * Activity stubs with retry policies and timeouts matched to each kind of step:
 * - `short`: quick calls whose result the workflow must always receive (submitting `:deploy`);
 * - `wait(budget)`: waits on Google, each check an attempt of its own (no attempt limit, see
 *   SLOT_FREE_WAITS); on cancel the workflow waits for the activity to stop
 *   (WAIT_CANCELLATION_COMPLETED): with TRY_CANCEL the SDK never tells a running activity, which
 *   would keep polling (and hold a slot) after the deployment moved on. The heartbeat throttle
 *   (`GARDEN_DEPLOY_HEARTBEAT_THROTTLE`, 1 s) bounds how long the activity takes to hear it;
 * - `cleanup`: compensations, each with a bounded budget: when it is spent the deployment reports
 *   CLEANUP_BLOCKED instead of retrying silently forever.
 */
export function deploymentActivities(settings: Required<DeploymentSettings>) {
  const transient = TRANSIENT_RETRY;
  const waitRetry = patched(SLOT_FREE_WAITS) ? transient : { ...transient, maximumAttempts: 20 };
  return {
    validate: proxyActivities<DeploymentActivities>({
      startToCloseTimeout: '15m',
      heartbeatTimeout: settings.heartbeatTimeoutMs,
      retry: { ...transient, maximumAttempts: 5 },
    }),
    short: proxyActivities<DeploymentActivities>({
      startToCloseTimeout: '5m',
      heartbeatTimeout: settings.heartbeatTimeoutMs,
      retry: { ...transient, maximumAttempts: 20 },
    }),
    wait: (budgetMs: number) =>
      proxyActivities<DeploymentActivities>({
        startToCloseTimeout: budgetMs + 10 * 60_000,
        heartbeatTimeout: settings.heartbeatTimeoutMs,
        retry: waitRetry,
        cancellationType: 'WAIT_CANCELLATION_COMPLETED',
      }),
    smoke: (budgetMs: number) =>
      proxyActivities<DeploymentActivities>({
        startToCloseTimeout: budgetMs,
        heartbeatTimeout: settings.heartbeatTimeoutMs,
        retry: { ...transient, maximumAttempts: 5 },
        cancellationType: 'WAIT_CANCELLATION_COMPLETED',
      }),
    cleanup: proxyActivities<DeploymentActivities>({
      // Stopping a cancelled operation may wait that long for it to end.
      startToCloseTimeout: settings.stopWaitMs + 5 * 60_000,
      heartbeatTimeout: settings.heartbeatTimeoutMs,
      retry: {
        initialInterval: settings.cleanupRetryMs,
        backoffCoefficient: 2,
        maximumInterval: '1m',
        maximumAttempts: settings.cleanupAttempts,
      },
    }),
  };
}

export type DeploymentActivityStubs = ReturnType<typeof deploymentActivities>;
