import type { ModelStore, StoredObject } from '../storage';

/**
 * I/O helpers of the validator: a bounded-concurrency map that stops on abort, and a store
 * wrapper that counts what is read (the report's stats, the benchmark and the tests use it).
 */

/** Bounds how many reads run at once across every check of one validation. */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * Bounds the bytes held at once (e.g. safetensors headers being parsed in parallel): `reserve`
 * waits until `bytes` fit under the budget. One request larger than the whole budget still runs,
 * alone, so nothing waits forever.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly budget: number) {}

  async reserve(bytes: number): Promise<() => void> {
    while (this.used > 0 && this.used + bytes > this.budget) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.used += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      for (const wake of this.waiting.splice(0)) wake();
    };
  }
}

/**
 * Runs `fn` over `items` through `limiter`; results keep the input order. After the first failure
 * or an abort no new item starts, the ones in flight are awaited, and the first error is thrown,
 * so no work outlives the call.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limiter: Limiter,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  let failure: { error: unknown } | undefined;
  const settled = await Promise.allSettled(
    items.map((item, index) =>
      limiter.run(async () => {
        if (failure) throw failure.error;
        signal?.throwIfAborted();
        try {
          return await fn(item, index);
        } catch (error) {
          failure ??= { error };
          throw error;
        }
      }),
    ),
  );
  if (failure) throw failure.error;
  const aborted = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (aborted) throw aborted.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<R>).value);
}

export interface ReadStats {
  /** Bytes returned by `readRange` / `readSmall`. */
  bytesRead: number;
  /** Ranged or whole-object read requests made. */
  requests: number;
}

/** A `ModelStore` that counts bytes read through it. */
export function countingStore(store: ModelStore): { store: ModelStore; stats: ReadStats } {
  const stats: ReadStats = { bytesRead: 0, requests: 0 };
  const counted: ModelStore = {
    uri: store.uri,
    list: (options?: { maxObjects?: number }): Promise<StoredObject[]> => store.list(options),
    async readRange(name, start, end) {
      stats.requests++;
      const data = await store.readRange(name, start, end);
      stats.bytesRead += data.length;
      return data;
    },
    async readSmall(name, maxBytes) {
      stats.requests++;
      const data = await store.readSmall(name, maxBytes);
      stats.bytesRead += data.length;
      return data;
    },
  };
  return { store: counted, stats };
}
