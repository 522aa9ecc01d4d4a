import { ApplicationFailure, CancelledFailure, activityInfo, cancellationSignal } from '@temporalio/activity';
import { GcpApiError, InvalidRequestError } from '../gcp';
import { StorageAccessError } from '../storage';
import { type ActivityFailureDetails, NON_RETRYABLE_ERRORS } from './contract';
import { yieldsSoFar } from './wait-state';

/**
 * How activities fail. Every failure is an `ApplicationFailure` whose `details[0]` is
 * `{ attempt, ... }` (the workflow's progress shows attempts from it); permanent failures carry a
 * `NON_RETRYABLE_ERRORS` type and say what to change, transient ones let Temporal retry (after
 * Google's `Retry-After` when it sent one).
 */

type NonRetryableType = (typeof NON_RETRYABLE_ERRORS)[keyof typeof NON_RETRYABLE_ERRORS];

/** Bound on failure messages: they travel through workflow history and the progress query. */
const MAX_MESSAGE_CHARS = 2_000;

/** `text` cut to `max` characters (an ellipsis marks the cut). */
export function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The attempt number the user sees: attempts that ended only to wait are not counted. */
export function currentAttempt(): number {
  return activityInfo().attempt - yieldsSoFar();
}

function details(extra: Omit<ActivityFailureDetails, 'attempt'> = {}): [ActivityFailureDetails] {
  return [{ attempt: currentAttempt(), ...extra }];
}

/** A failure retrying cannot fix: the user must change the spec, the model, quota or permissions. */
export function permanentFailure(
  type: NonRetryableType,
  message: string,
  extra?: Omit<ActivityFailureDetails, 'attempt'>,
): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message: bounded(message, MAX_MESSAGE_CHARS),
    nonRetryable: true,
    details: details(extra),
  });
}

/** A failure the next attempt may not meet (rate limit, 5xx, network). */
export function transientFailure(
  message: string,
  options: { type?: string; retryAfterMs?: number } = {},
): ApplicationFailure {
  return ApplicationFailure.create({
    type: options.type ?? 'TransientError',
    message: bounded(message, MAX_MESSAGE_CHARS),
    nonRetryable: false,
    ...(options.retryAfterMs !== undefined ? { nextRetryDelay: Math.max(1, options.retryAfterMs) } : {}),
    details: details(),
  });
}

export function isCancellation(err: unknown): boolean {
  return err instanceof CancelledFailure;
}

/** A Google API failure that the same call may not meet again. */
export function isTransientGcpError(err: unknown): err is GcpApiError {
  return err instanceof GcpApiError && err.retryable;
}

/**
 * Maps whatever a step threw to what the activity throws. `context` says what was being done
 * (e.g. `deploying llama-ft`); Google's message and hint follow it.
 */
export function toActivityFailure(err: unknown, context: string): unknown {
  if (err instanceof ApplicationFailure || isCancellation(err)) return err;
  // A call cut short by the cancellation fails with its own error: report the cancellation.
  if (cancellationSignal().aborted) return new CancelledFailure(`${context}: cancelled`);
  if (err instanceof GcpApiError) {
    const message = `${context}: ${err.message}`;
    if (err.retryable) {
      return transientFailure(message, {
        type: 'GcpTransientError',
        ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
      });
    }
    return permanentFailure(
      err.status === 'RESOURCE_EXHAUSTED'
        ? NON_RETRYABLE_ERRORS.quotaExhausted
        : NON_RETRYABLE_ERRORS.gcpPermanent,
      message,
    );
  }
  if (err instanceof InvalidRequestError) {
    return permanentFailure(NON_RETRYABLE_ERRORS.gcpPermanent, `${context}: ${err.message}`);
  }
  if (err instanceof StorageAccessError && err.kind === 'unavailable') {
    return transientFailure(`${context}: ${err.message}`, { type: 'StorageUnavailable' });
  }
  const error = err instanceof Error ? err : new Error(String(err));
  return transientFailure(`${context}: ${error.message}`, { type: error.name });
}

/** Google answers no retry can change: an operator must grant a permission or fix the request. */
const BLOCKING_STATUSES = new Set(['PERMISSION_DENIED', 'UNAUTHENTICATED', 'INVALID_ARGUMENT']);

/**
 * Why a compensation could not remove something, saying what blocks it so an operator can unblock
 * it. The workflow retries it within its budget; a permission or request error is not retried, as
 * only an operator can fix it (then `retryCleanup`). `budgeted` is false for 0.1 workflows.
 */
export function cleanupFailure(err: unknown, what: string, budgeted: boolean): unknown {
  if (isCancellation(err)) return err;
  const reason = err instanceof GcpApiError ? err.message : err instanceof Error ? err.message : String(err);
  // 0.1 workflows retry compensations forever and rely on them never failing for good.
  if (!budgeted) {
    return transientFailure(`cannot ${what} yet, retrying until it succeeds: ${reason}`, {
      type: NON_RETRYABLE_ERRORS.cleanupBlocked,
      ...(err instanceof GcpApiError && err.retryAfterMs !== undefined
        ? { retryAfterMs: err.retryAfterMs }
        : {}),
    });
  }
  const message = `cannot ${what}: ${reason}`;
  if (err instanceof GcpApiError && BLOCKING_STATUSES.has(err.status)) {
    return ApplicationFailure.create({
      type: NON_RETRYABLE_ERRORS.cleanupBlocked,
      message: bounded(message, MAX_MESSAGE_CHARS),
      nonRetryable: true,
      details: details(),
    });
  }
  return transientFailure(message, {
    type: NON_RETRYABLE_ERRORS.cleanupBlocked,
    ...(err instanceof GcpApiError && err.retryAfterMs !== undefined
      ? { retryAfterMs: err.retryAfterMs }
      : {}),
  });
}
