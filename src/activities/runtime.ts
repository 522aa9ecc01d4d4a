import { Context, activityInfo, cancellationDetails, sleep } from '@temporalio/activity';
import type { CallOptions } from '../gcp';
import type { ActivityContext } from './deps';
import { isTransientGcpError } from './failures';

/**
 * Activity-side plumbing shared by every step: heartbeats that always repeat the latest progress,
 * cancellation-aware waits that never outlast the heartbeat timeout, in-place retries of transient
 * API failures, and the poll loop of long operations.
 */

const lastDetails = new WeakMap<Context, unknown>();

/**
 * Heartbeats with `details` (or, without, the latest details again: a bare heartbeat would erase
 * what a retry resumes from).
 */
export function beat(details?: unknown): void {
  const context = Context.current();
  if (details !== undefined) lastDetails.set(context, details);
  context.heartbeat(lastDetails.get(context));
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
  const slice = heartbeatTimeout ? heartbeatEvery(heartbeatTimeout) : ms;
  let left = Math.max(1, ms);
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
  /** Reads the state once: a value when finished, undefined to keep waiting. */
  check: () => Promise<T | undefined>;
  /** Heartbeat details for this round (sent at the top of every round). */
  progress: () => unknown;
  /** Past `at` (epoch ms) the loop stops and `expired` throws the step's failure. */
  deadline?: { at: number; expired: () => Promise<never> };
}

/** Polls with backoff until `check` returns a value, heartbeating at the top of every round. */
export async function pollUntil<T>(ctx: ActivityContext, loop: PollLoop<T>): Promise<T> {
  let delay = ctx.options.poll.initialMs;
  let failures = 0;
  for (;;) {
    beat(loop.progress());
    let wait = delay;
    try {
      const value = await keepAlive(loop.check);
      if (value !== undefined) return value;
      failures = 0;
    } catch (err) {
      // A flaky read while waiting is no reason to give up the wait: retry it in place.
      if (!isTransientGcpError(err) || failures >= ctx.options.transientRetries) throw err;
      wait = retryDelay(ctx, failures++, err.retryAfterMs);
    }
    if (loop.deadline) {
      const left = loop.deadline.at - Date.now();
      if (left <= 0) return loop.deadline.expired();
      wait = Math.min(wait, left);
    }
    await pause(wait);
    delay = Math.min(delay * ctx.options.poll.factor, ctx.options.poll.maxMs);
  }
}
