import { ApplicationFailureCategory } from '@temporalio/common';
import { ApplicationFailure, Context, activityInfo, cancellationDetails, sleep } from '@temporalio/activity';
import type { CallOptions } from '../gcp';
import { NON_RETRYABLE_ERRORS, STILL_WAITING } from './contract';
import type { ActivityContext } from './deps';
import { isTransientGcpError, permanentFailure } from './failures';
import { type WaitState, currentWaitState, waitState } from './wait-state';

/**
 * Activity-side plumbing shared by every step: heartbeats that always repeat the latest progress,
 * cancellation-aware waits that never outlast the heartbeat timeout, in-place retries of transient
 * API failures, and the poll loop of long operations.
 */

const lastDetails = new WeakMap<Context, unknown>();

/**
 * Heartbeats with `details` (or, without, the latest details again: a bare heartbeat would erase
 * what a retry resumes from). A waiting activity's state rides along under `wait`.
 */
export function beat(details?: unknown): void {
  const context = Context.current();
  if (details !== undefined) lastDetails.set(context, details);
  const latest = lastDetails.get(context);
  const wait = currentWaitState(context);
  if (
    !wait ||
    (latest !== undefined && (typeof latest !== 'object' || latest === null || Array.isArray(latest)))
  ) {
    context.heartbeat(latest);
    return;
  }
  context.heartbeat({ ...(latest as object | undefined), wait });
}

/** The activity's cancellation signal for every HTTP call it makes. */
export function callOptions(): CallOptions {
  return { signal: Context.current().cancellationSignal };
}

/** True when the workflow asked for the cancellation (not a worker shutdown or a timeout). */
export function cancelRequestedByWorkflow(): boolean {
  return cancellationDetails()?.cancelRequested === true;
}

/**
 * How often a waiting activity heartbeats at most a second apart: a cancellation reaches an activity
 * only in the answer to a heartbeat, and the worker sends them at most once per throttle interval
 * (`GARDEN_DEPLOY_HEARTBEAT_THROTTLE`), so a cancel lands within about two seconds. Heartbeats are
 * local calls; the worker's throttle bounds what reaches the server.
 */
const MAX_HEARTBEAT_GAP_MS = 1_000;

function heartbeatEvery(heartbeatTimeout: number): number {
  return Math.max(50, Math.min(MAX_HEARTBEAT_GAP_MS, Math.floor(heartbeatTimeout / 3)));
}

/** Waits `ms` (cancellation-aware), heartbeating often enough that a long wait never times out. */
export async function pause(ms: number): Promise<void> {
  const heartbeatTimeout = activityInfo().heartbeatTimeoutMs;
  let left = Math.max(1, ms);
  // Without a heartbeat timeout there is nothing to keep alive: one sleep (never a 0 ms slice).
  const slice = heartbeatTimeout ? heartbeatEvery(heartbeatTimeout) : left;
  while (left > 0) {
    const step = Math.min(slice, left);
    await sleep(step);
    left -= step;
    if (left > 0) beat();
  }
}

/**
 * Runs `work` while heartbeating every third of the heartbeat timeout, so a slow call (a long
 * generation, a slow read) is not mistaken for a dead worker and a cancellation still reaches it.
 */
export async function keepAlive<T>(work: () => Promise<T>): Promise<T> {
  const heartbeatTimeout = activityInfo().heartbeatTimeoutMs;
  if (!heartbeatTimeout) return work();
  const timer = setInterval(() => beat(), heartbeatEvery(heartbeatTimeout));
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** Backoff delay before retry `n` (0-based) of a transient failure; Google's Retry-After wins. */
function retryDelay(ctx: ActivityContext, n: number, retryAfterMs: number | undefined): number {
  const backoff = Math.min(ctx.options.poll.initialMs * 2 ** n, ctx.options.poll.maxMs);
  return Math.max(backoff, retryAfterMs ?? 0);
}

/**
 * Runs one API call, retrying transient failures (429, 5xx, network) in place a few times before
 * letting the attempt fail. Only for calls that are safe to repeat: reads, deletes, and creates
 * whose fixed ids make a duplicate detectable.
 */
export async function retryTransient<T>(ctx: ActivityContext, call: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await keepAlive(call);
    } catch (err) {
      if (!isTransientGcpError(err) || retry >= ctx.options.transientRetries) throw err;
      await pause(retryDelay(ctx, retry, err.retryAfterMs));
    }
  }
}

export interface PollLoop<T> {
  /**
   * Reads the state once: a value when finished, undefined to keep waiting. A long poll holds the
   * call at most `holdMs` (the time left before the deadline, at most LONG_POLL_MS).
   */
  check: (holdMs: number) => Promise<T | undefined>;
  /** Heartbeat details for this round (sent at the top of every round). */
  progress: () => unknown;
  /**
   * Past `at` (epoch ms, as the workflow computed it when it scheduled the step) the loop stops and
   * `expired` throws the step's failure. The budget counts from when the step started working: the
   * time the activity waited to be started is added back.
   */
  deadline?: { at: number; expired: () => Promise<never> };
  /**
   * `check` is a long poll (`operations:wait`) that returns as soon as the state changes: the next
   * check follows at once instead of after a backoff.
   */
  longPoll?: boolean;
  /**
   * The activity can run again from its start without harm (what it did before the wait is
   * idempotent and cheap): then, under a retry policy without an attempt limit, the wait ends the
   * attempt and Temporal starts the next check later, so no worker slot is held while Google works.
   */
  resumable?: boolean;
}

/** Longest hold of one `operations:wait`: the slot it holds is freed at least this often. */
export const LONG_POLL_MS = 10_000;

/** Failed attempts (not waits) of a waiting step before it gives up, as the attempt limit did before. */
const MAX_FAILED_ATTEMPTS = 20;

/** Polls with backoff until `check` returns a value, heartbeating at the top of every round. */
export async function pollUntil<T>(ctx: ActivityContext, loop: PollLoop<T>): Promise<T> {
  const yielding = loop.resumable === true && mayYield();
  const state = waitState(ctx.options.poll.initialMs);
  const failed = activityInfo().attempt - 1 - state.yields;
  if (yielding && failed >= MAX_FAILED_ATTEMPTS) {
    throw permanentFailure(
      NON_RETRYABLE_ERRORS.gcpPermanent,
      `gave up after ${failed} failed attempts of ${activityInfo().activityType}; the last failure is in the step's history`,
    );
  }
  const deadline = loop.deadline && { ...loop.deadline, at: budgetEnd(loop.deadline.at, state) };
  let failures = 0;
  for (;;) {
    beat(loop.progress());
    let wait = loop.longPoll ? 0 : state.delayMs;
    const holdMs = Math.max(1, Math.min(LONG_POLL_MS, deadline ? deadline.at - Date.now() : LONG_POLL_MS));
    try {
      const value = await keepAlive(() => loop.check(holdMs));
      if (value !== undefined) return value;
      failures = 0;
    } catch (err) {
      // A flaky read while waiting is no reason to give up the wait: retry it in place.
      if (!isTransientGcpError(err) || failures >= ctx.options.transientRetries) throw err;
      wait = retryDelay(ctx, failures++, err.retryAfterMs);
    }
    if (deadline) {
      const left = deadline.at - Date.now();
      if (left <= 0) return deadline.expired();
      wait = Math.min(wait, left);
    }
    if (!loop.longPoll)
      state.delayMs = Math.min(state.delayMs * ctx.options.poll.factor, ctx.options.poll.maxMs);
    if (yielding) yieldToWait(state, wait);
    await pause(wait);
  }
}

/** The deadline moved by the time the step waited before it first started (queueing, rate limits). */
function budgetEnd(scheduledDeadline: number, state: WaitState): number {
  const queued = Math.max(0, state.startedAt - activityInfo().scheduledTimestampMs);
  return scheduledDeadline + queued;
}

/**
 * True when ending the attempt to wait cannot use up the step's retries: its policy has no attempt
 * limit (the workflow bounds it by the deadline and MAX_FAILED_ATTEMPTS). Workflows of earlier
 * shapes, with an attempt limit, keep waiting in the activity.
 */
function mayYield(): boolean {
  const policy = activityInfo().retryPolicy;
  return policy !== undefined && !policy.maximumAttempts;
}

/** Ends this attempt to wait `ms`: the state goes out with the heartbeat the next attempt resumes from. */
function yieldToWait(state: WaitState, ms: number): never {
  state.yields += 1;
  beat();
  throw ApplicationFailure.create({
    type: STILL_WAITING,
    message: `waiting: next check in ${Math.round(ms)} ms`,
    nextRetryDelay: Math.max(1, Math.round(ms)),
    category: ApplicationFailureCategory.BENIGN,
  });
}
