import { describe, expect, it } from 'vitest';
import { ByteBudget, Limiter, mapLimited } from '../../src/validation/io';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ByteBudget', () => {
  it('makes a reservation wait until it fits, and lets an oversized one run alone', async () => {
    const budget = new ByteBudget(100);
    const releaseA = await budget.reserve(60);
    let bGranted = false;
    const b = budget.reserve(50).then((release) => {
      bGranted = true;
      return release;
    });
    await tick();
    expect(bGranted).toBe(false);
    releaseA();
    const releaseB = await b;
    expect(bGranted).toBe(true);
    releaseB();
    releaseB(); // releasing twice must not free someone else's bytes
    const huge = await budget.reserve(1_000);
    let smallGranted = false;
    void budget.reserve(1).then(() => (smallGranted = true));
    await tick();
    expect(smallGranted).toBe(false);
    huge();
    await tick();
    expect(smallGranted).toBe(true);
  });
});

describe('mapLimited', () => {
  it('keeps order, bounds concurrency, and after a failure starts nothing new', async () => {
    const limiter = new Limiter(2);
    let active = 0;
    let peak = 0;
    const started: number[] = [];
    const results = await mapLimited([1, 2, 3, 4, 5], limiter, async (n) => {
      started.push(n);
      active++;
      peak = Math.max(peak, active);
      await tick();
      active--;
      return n * 10;
    });
    expect(results).toEqual([10, 20, 30, 40, 50]);
    expect(peak).toBe(2);

    started.length = 0;
    const run = mapLimited([1, 2, 3, 4, 5, 6], new Limiter(1), async (n) => {
      started.push(n);
      if (n === 2) throw new Error('boom');
      await tick();
      return n;
    });
    await expect(run).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
  });
});
