import { setTimeout as delay } from 'node:timers/promises';
import type { GcpClient } from '../gcp';

/**
 * Spaces calls evenly so this worker sends at most `perSecond` Vertex/Compute management requests
 * a second, whatever the number of deployments in flight: Google's per-minute quotas then hold, and
 * a burst of retries cannot turn into a storm of 429s.
 */
export class RateLimiter {
  private nextSlot = 0;
  private readonly intervalMs: number;

  constructor(
    perSecond: number,
    private readonly clock: { now(): number; sleep(ms: number): Promise<unknown> } = {
      now: Date.now,
      sleep: delay,
    },
  ) {
    if (!(perSecond > 0))
      throw new RangeError(`rate limit must be more than 0 requests per second, got ${perSecond}`);
    this.intervalMs = 1000 / perSecond;
  }

  /** Resolves when the caller may send its request. */
  async acquire(): Promise<void> {
    const now = this.clock.now();
    const slot = Math.max(now, this.nextSlot);
    this.nextSlot = slot + this.intervalMs;
    if (slot > now) await this.clock.sleep(slot - now);
  }
}

/** Wraps every method of `target` so it first waits for the limiter. */
function limited<T extends object>(target: T, limiter: RateLimiter): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        await limiter.acquire();
        return (value as (...a: unknown[]) => unknown).apply(object, args);
      };
    },
  });
}

/**
 * The client with its management APIs (Vertex, Compute) behind one limiter. Inference is not
 * limited: smoke tests are few and go to the deployment's own host.
 */
export function rateLimitedGcpClient(client: GcpClient, limiter: RateLimiter): GcpClient {
  return { ...client, vertex: limited(client.vertex, limiter), compute: limited(client.compute, limiter) };
}
