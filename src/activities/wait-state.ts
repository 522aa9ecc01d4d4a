import { Context, activityInfo } from '@temporalio/activity';
import { z } from 'zod';

/**
 * What a waiting activity carries from one attempt to the next, in its heartbeat details under
 * `wait`. A wait that would hold a worker slot ends the attempt instead and asks Temporal to run
 * the next one later (`nextRetryDelay`): those attempts are not failures (`yields` counts them), and
 * the step's budget counts from `startedAt`, when the first attempt started working, not from when
 * the workflow scheduled it.
 */
export const WaitStateSchema = z.strictObject({
  startedAt: z.number().int().positive(),
  yields: z.number().int().min(0),
  delayMs: z.number().min(0),
});
export type WaitState = z.infer<typeof WaitStateSchema>;

const states = new WeakMap<Context, WaitState>();

/** The previous attempt's wait state, as its last heartbeat left it. */
function resumed(): WaitState | undefined {
  const details: unknown = activityInfo().heartbeatDetails;
  const wait = details && typeof details === 'object' ? (details as { wait?: unknown }).wait : undefined;
  const parsed = WaitStateSchema.safeParse(wait);
  return parsed.success ? parsed.data : undefined;
}

/** This attempt's wait state: resumed from the previous attempt, or started now. */
export function waitState(initialDelayMs: number): WaitState {
  const context = Context.current();
  let state = states.get(context);
  if (!state) {
    // Without a checkpoint on a later attempt, count the budget from the first schedule: never later.
    const info = activityInfo();
    const startedAt = info.attempt === 1 ? Date.now() : info.scheduledTimestampMs;
    state = resumed() ?? { startedAt, yields: 0, delayMs: initialDelayMs };
    states.set(context, state);
  }
  return state;
}

/** The wait state to repeat in every heartbeat of this attempt, once the activity has one. */
export function currentWaitState(context: Context): WaitState | undefined {
  return states.get(context) ?? resumed();
}

/** Attempts that ended only to wait, so far: the attempt number the user sees leaves them out. */
export function yieldsSoFar(): number {
  return currentWaitState(Context.current())?.yields ?? 0;
}
