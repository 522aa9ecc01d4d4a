import { setTimeout as delay } from 'node:timers/promises';

export interface PollOptions {
  /**
   * Give up after this long (default 60 s): the conditions tests wait for arrive within seconds, but
   * a CI run beside other work was seen to take three times as long.
   */
  timeoutMs?: number;
  /** Pause between probes (default 100 ms). */
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns a value (neither undefined nor false): how tests wait for a
 * condition instead of sleeping. Throws `timed out waiting for <what>` after the timeout.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  { timeoutMs = 60_000, intervalMs = 100 }: PollOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(intervalMs);
  }
}
