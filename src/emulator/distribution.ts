/**
 * `google.api.Distribution` for latencies in milliseconds: exponential buckets from 1 ms growing by
 * 25 % (64 finite buckets reach ~27 minutes), merging, and percentiles interpolated within the
 * bucket the rank falls in, as Cloud Monitoring's percentile aligners do.
 */

const LATENCY_BUCKETS = { numFiniteBuckets: 64, growthFactor: 1.25, scale: 1 } as const;
const { numFiniteBuckets: N, growthFactor: G, scale: S } = LATENCY_BUCKETS;

export interface Distribution {
  count: number;
  sum: number;
  sumOfSquares: number;
  /** N + 2 counts: underflow (< scale), the finite buckets, overflow. */
  buckets: number[];
}

/** Lower bound of bucket i (0 = underflow, N + 1 = overflow). */
function lowerBound(i: number): number {
  return i === 0 ? 0 : S * G ** (i - 1);
}

function bucketOf(value: number): number {
  if (value < S) return 0;
  const i = Math.floor(Math.log(value / S) / Math.log(G)) + 1;
  // Guard the floating-point edge where value sits exactly on a bound.
  const fixed = lowerBound(i) > value ? i - 1 : value >= lowerBound(i + 1) ? i + 1 : i;
  return Math.min(fixed, N + 1);
}

export function distributionOf(values: number[]): Distribution {
  const d: Distribution = { count: 0, sum: 0, sumOfSquares: 0, buckets: new Array<number>(N + 2).fill(0) };
  for (const value of values) {
    d.count += 1;
    d.sum += value;
    d.sumOfSquares += value * value;
    d.buckets[bucketOf(value)]! += 1;
  }
  return d;
}

export function mergeDistributions(parts: Distribution[]): Distribution {
  const d = distributionOf([]);
  for (const p of parts) {
    d.count += p.count;
    d.sum += p.sum;
    d.sumOfSquares += p.sumOfSquares;
    p.buckets.forEach((n, i) => (d.buckets[i]! += n));
  }
  return d;
}

export function meanOf(d: Distribution): number {
  return d.count === 0 ? 0 : d.sum / d.count;
}

/** The p-th percentile (0..100): linear within the bucket holding rank p·count. */
export function percentileOf(d: Distribution, p: number): number {
  if (d.count === 0) return 0;
  const rank = (p / 100) * d.count;
  let before = 0;
  for (let i = 0; i < d.buckets.length; i++) {
    const n = d.buckets[i]!;
    if (n === 0 || before + n < rank) {
      before += n;
      continue;
    }
    const lower = lowerBound(i);
    // The overflow bucket has no upper bound: report its lower one.
    const upper = i === N + 1 ? lower : lowerBound(i + 1);
    return lower + ((rank - before) / n) * (upper - lower);
  }
  return lowerBound(N + 1);
}

/** proto3 JSON of the Distribution (int64 as strings, zero fields and trailing empty buckets left out). */
export function distributionJson(d: Distribution): Record<string, unknown> {
  const mean = meanOf(d);
  const deviation = Math.max(0, d.sumOfSquares - (d.sum * d.sum) / (d.count || 1));
  let last = d.buckets.length;
  while (last > 0 && d.buckets[last - 1] === 0) last -= 1;
  return {
    ...(d.count ? { count: String(d.count) } : {}),
    ...(mean ? { mean } : {}),
    ...(deviation ? { sumOfSquaredDeviation: deviation } : {}),
    bucketOptions: { exponentialBuckets: LATENCY_BUCKETS },
    ...(last > 0 ? { bucketCounts: d.buckets.slice(0, last).map(String) } : {}),
  };
}
