import {
  type Distribution,
  distributionJson,
  distributionOf,
  meanOf,
  mergeDistributions,
  percentileOf,
} from './distribution';
import { ApiError, badRequest } from './errors';
import { durationMs } from './protos';

/**
 * Cloud Monitoring's `Aggregation` (google/monitoring/v3/common.proto) over DELTA series: per-series
 * alignment into periods ending at the interval's end, then cross-series reduction by the
 * group-by labels. The aligners and reducers a canary gate uses are served; the others are
 * refused, naming the ones that are.
 */

export type Labels = Record<string, string>;
export type ValueType = 'INT64' | 'DOUBLE' | 'DISTRIBUTION';
export type MetricKind = 'DELTA' | 'GAUGE';

/**
 * A series as written: for DELTA one point per request (1 for counts, the latency for
 * distributions), for GAUGE one point per measurement.
 */
export interface RawSeries {
  metric: Labels;
  resource: Labels;
  /** Oldest first. */
  points: { time: number; value: number }[];
}

type Value = { int: number } | { double: number } | { dist: Distribution };

export interface Series {
  metric: Labels;
  resource: Labels;
  /** Newest first: [end of the point's interval, value]. */
  points: [number, Value][];
}

export interface Aggregation {
  aligner: string;
  periodMs: number;
  reducer: string;
  groupBy: { object: 'metric' | 'resource'; key: string }[];
}

const PERCENTILES: Record<string, number> = {
  ALIGN_PERCENTILE_99: 99,
  ALIGN_PERCENTILE_95: 95,
  ALIGN_PERCENTILE_50: 50,
  ALIGN_PERCENTILE_05: 5,
};
const NUMERIC_ALIGNERS = [
  'ALIGN_DELTA',
  'ALIGN_SUM',
  'ALIGN_RATE',
  'ALIGN_MEAN',
  'ALIGN_COUNT',
  'ALIGN_MAX',
  'ALIGN_MIN',
];
const DISTRIBUTION_ALIGNERS = ['ALIGN_DELTA', 'ALIGN_SUM', 'ALIGN_MEAN', ...Object.keys(PERCENTILES)];
/** Point aligners: the value at the period's end, from the points around it. */
const POINT_ALIGNERS = ['ALIGN_NEXT_OLDER', 'ALIGN_INTERPOLATE'];
const GAUGE_NUMERIC_ALIGNERS = [
  ...POINT_ALIGNERS,
  'ALIGN_MEAN',
  'ALIGN_MAX',
  'ALIGN_MIN',
  'ALIGN_COUNT',
  'ALIGN_SUM',
];
const SERVED_ALIGNERS = [
  ...new Set(['ALIGN_NONE', ...NUMERIC_ALIGNERS, ...DISTRIBUTION_ALIGNERS, ...POINT_ALIGNERS]),
];
const REDUCERS = ['REDUCE_NONE', 'REDUCE_SUM', 'REDUCE_MEAN', 'REDUCE_MAX', 'REDUCE_MIN', 'REDUCE_COUNT'];
/** Aligners whose output is a GAUGE (the others keep DELTA). */
const GAUGE_ALIGNERS = ['ALIGN_RATE', 'ALIGN_MEAN', 'ALIGN_MAX', 'ALIGN_MIN', ...Object.keys(PERCENTILES)];

const refuse = (field: string, description: string) =>
  badRequest([{ field: `aggregation.${field}`, description }]);

/** Checks `aggregation` for a metric of `kind` and `valueType` by common.proto's rules. */
export function parseAggregation(
  given: Record<string, unknown> | undefined,
  kind: MetricKind,
  valueType: 'INT64' | 'DISTRIBUTION',
): Aggregation {
  const aligner = (given?.perSeriesAligner as string | undefined) ?? 'ALIGN_NONE';
  const reducer = (given?.crossSeriesReducer as string | undefined) ?? 'REDUCE_NONE';
  const period = typeof given?.alignmentPeriod === 'string' ? given.alignmentPeriod : undefined;
  const periodMs = period ? durationMs(period) : 0;
  if (!SERVED_ALIGNERS.includes(aligner)) {
    throw new ApiError(
      'UNIMPLEMENTED',
      `The emulator does not serve per_series_aligner ${aligner}; it serves ${SERVED_ALIGNERS.join(', ')}.`,
    );
  }
  const valid =
    kind === 'GAUGE'
      ? GAUGE_NUMERIC_ALIGNERS
      : valueType === 'DISTRIBUTION'
        ? DISTRIBUTION_ALIGNERS
        : NUMERIC_ALIGNERS;
  if (aligner !== 'ALIGN_NONE' && !valid.includes(aligner)) {
    throw refuse(
      'per_series_aligner',
      `${aligner} is not valid for a ${kind} ${valueType} metric; use one of ${valid.join(', ')}.`,
    );
  }
  if (aligner !== 'ALIGN_NONE' && !period) {
    throw refuse(
      'alignment_period',
      `aggregation.alignment_period is required with per_series_aligner ${aligner} (e.g. 60s).`,
    );
  }
  if (aligner !== 'ALIGN_NONE' && periodMs < 60_000) {
    throw refuse(
      'alignment_period',
      `aggregation.alignment_period must be at least 60 seconds (got ${period}).`,
    );
  }
  if (reducer !== 'REDUCE_NONE') {
    if (aligner === 'ALIGN_NONE' || !period) {
      throw refuse(
        'cross_series_reducer',
        `cross_series_reducer ${reducer} needs a per_series_aligner other than ALIGN_NONE and an alignment_period.`,
      );
    }
    if (!REDUCERS.includes(reducer)) {
      throw new ApiError(
        'UNIMPLEMENTED',
        `The emulator does not serve cross_series_reducer ${reducer}; it serves ${REDUCERS.join(', ')}.`,
      );
    }
    if (
      (reducer === 'REDUCE_MAX' || reducer === 'REDUCE_MIN') &&
      alignedType(aligner, valueType) === 'DISTRIBUTION'
    ) {
      throw refuse(
        'cross_series_reducer',
        `${reducer} is not valid for DISTRIBUTION values; align them to numbers first (e.g. ALIGN_PERCENTILE_99) or use REDUCE_SUM.`,
      );
    }
  }
  const groupBy = ((given?.groupByFields as string[] | undefined) ?? [])
    // resource.type is always a group-by field (the emulator serves one resource type).
    .filter((f) => f !== 'resource.type')
    .map((f) => {
      const match = /^(metric|resource)\.labels?\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(f);
      if (!match) {
        throw refuse(
          'group_by_fields',
          `group_by_fields "${f}" is not supported; use metric.label.KEY or resource.label.KEY (or .labels.).`,
        );
      }
      return { object: match[1] as 'metric' | 'resource', key: match[2]! };
    });
  return { aligner, periodMs, reducer, groupBy };
}

function alignedType(aligner: string, valueType: 'INT64' | 'DISTRIBUTION'): ValueType {
  if (
    ['ALIGN_NONE', 'ALIGN_DELTA', 'ALIGN_SUM', 'ALIGN_MAX', 'ALIGN_MIN', ...POINT_ALIGNERS].includes(aligner)
  )
    return valueType;
  return aligner === 'ALIGN_COUNT' ? 'INT64' : 'DOUBLE';
}

/** Kind, value type and unit of the series an aggregation returns. */
export function outputShape(
  { aligner, reducer }: Aggregation,
  kind: MetricKind,
  valueType: 'INT64' | 'DISTRIBUTION',
  unit: string,
): { metricKind: MetricKind; valueType: ValueType; unit: string } {
  return {
    metricKind: kind === 'GAUGE' || GAUGE_ALIGNERS.includes(aligner) ? 'GAUGE' : 'DELTA',
    valueType:
      reducer === 'REDUCE_COUNT'
        ? 'INT64'
        : reducer === 'REDUCE_MEAN'
          ? 'DOUBLE'
          : alignedType(aligner, valueType),
    unit:
      aligner === 'ALIGN_RATE'
        ? `${unit}/s`
        : aligner === 'ALIGN_COUNT' || reducer === 'REDUCE_COUNT'
          ? '1'
          : unit,
  };
}

/** One window's value of one series (`values` non-empty). */
function align(
  aligner: string,
  valueType: 'INT64' | 'DISTRIBUTION',
  values: number[],
  periodMs: number,
): Value {
  if (valueType === 'DISTRIBUTION') {
    const dist = distributionOf(values);
    if (aligner === 'ALIGN_MEAN') return { double: meanOf(dist) };
    if (aligner in PERCENTILES) return { double: percentileOf(dist, PERCENTILES[aligner]!) };
    return { dist };
  }
  const total = values.reduce((a, b) => a + b, 0);
  if (aligner === 'ALIGN_RATE') return { double: total / (periodMs / 1000) };
  if (aligner === 'ALIGN_MEAN') return { double: total / values.length };
  if (aligner === 'ALIGN_COUNT') return { int: values.length };
  if (aligner === 'ALIGN_MAX') return { int: Math.max(...values) };
  if (aligner === 'ALIGN_MIN') return { int: Math.min(...values) };
  return { int: total };
}

function reduce(reducer: string, values: Value[]): Value {
  if (reducer === 'REDUCE_COUNT') return { int: values.length };
  const first = values[0]!;
  if ('dist' in first) {
    const merged = mergeDistributions(values.map((v) => (v as { dist: Distribution }).dist));
    return reducer === 'REDUCE_MEAN' ? { double: meanOf(merged) } : { dist: merged };
  }
  const numbers = values.map((v) => ('int' in v ? v.int : (v as { double: number }).double));
  const total = numbers.reduce((a, b) => a + b, 0);
  const result =
    reducer === 'REDUCE_SUM'
      ? total
      : reducer === 'REDUCE_MEAN'
        ? total / numbers.length
        : reducer === 'REDUCE_MAX'
          ? Math.max(...numbers)
          : Math.min(...numbers);
  return 'int' in first && reducer !== 'REDUCE_MEAN' ? { int: result } : { double: result };
}

const labelsKey = (labels: Labels) =>
  JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

/** Identity of a series: its metric and resource labels. */
export const seriesKey = (s: { metric: Labels; resource: Labels }) =>
  `${labelsKey(s.metric)}|${labelsKey(s.resource)}`;

/**
 * The value at `e` of a GAUGE series (points oldest first): the newest point at or before it
 * (ALIGN_NEXT_OLDER), or the line between it and the next newer one (ALIGN_INTERPOLATE; an INT64
 * series stays INT64, rounded). Undefined before the first point.
 */
function pointAt(
  aligner: string,
  points: RawSeries['points'],
  e: number,
  valueType: string,
): Value | undefined {
  const older = points.filter((p) => p.time <= e).at(-1);
  if (!older) return undefined;
  const newer = points.find((p) => p.time > e);
  const value =
    aligner === 'ALIGN_INTERPOLATE' && newer
      ? older.value + ((newer.value - older.value) * (e - older.time)) / (newer.time - older.time)
      : older.value;
  return valueType === 'INT64' ? { int: Math.round(value) } : { double: value };
}

/**
 * Aligns each series over (start, end] into points ending at end, end − P, … (each covering
 * (e − P, e]; windows without data get no point; point aligners take the value at e), then reduces
 * across series; ALIGN_NONE returns the raw points. Series without points are dropped; the rest
 * come in a stable order.
 */
export function aggregate(
  raw: RawSeries[],
  aggregation: Aggregation,
  valueType: 'INT64' | 'DISTRIBUTION',
  start: number,
  end: number,
): Series[] {
  const { aligner, periodMs, reducer, groupBy } = aggregation;
  let series: Series[] = raw.map(({ metric, resource, points }) => {
    if (aligner === 'ALIGN_NONE') {
      const rawPoints = points.map((p): [number, Value] => [
        p.time,
        align('ALIGN_SUM', valueType, [p.value], 0),
      ]);
      return { metric, resource, points: rawPoints.reverse() };
    }
    const aligned: [number, Value][] = [];
    if (POINT_ALIGNERS.includes(aligner)) {
      for (let e = end; e > start; e -= periodMs) {
        const value = pointAt(aligner, points, e, valueType);
        if (value) aligned.push([e, value]);
      }
      return { metric, resource, points: aligned };
    }
    for (let e = end; e > start; e -= periodMs) {
      const from = Math.max(e - periodMs, start);
      const values = points.filter((p) => p.time > from && p.time <= e).map((p) => p.value);
      if (values.length > 0) aligned.push([e, align(aligner, valueType, values, periodMs)]);
    }
    return { metric, resource, points: aligned };
  });
  if (reducer !== 'REDUCE_NONE') {
    const kept = (s: Series, object: 'metric' | 'resource'): Labels =>
      Object.fromEntries(
        groupBy
          .filter((g) => g.object === object && s[object][g.key] !== undefined)
          .map((g) => [g.key, s[object][g.key]!]),
      );
    const groups = new Map<string, Series[]>();
    for (const s of series) {
      const id = seriesKey({ metric: kept(s, 'metric'), resource: kept(s, 'resource') });
      groups.set(id, [...(groups.get(id) ?? []), s]);
    }
    series = [...groups.values()].map((members) => {
      const ends = [...new Set(members.flatMap((m) => m.points.map(([e]) => e)))].sort((a, b) => b - a);
      const at = (e: number) => members.flatMap((m) => m.points.filter(([pe]) => pe === e).map(([, v]) => v));
      return {
        metric: kept(members[0]!, 'metric'),
        resource: kept(members[0]!, 'resource'),
        points: ends.map((e): [number, Value] => [e, reduce(reducer, at(e))]),
      };
    });
  }
  return series.filter((s) => s.points.length > 0).sort((a, b) => (seriesKey(a) < seriesKey(b) ? -1 : 1));
}

/** proto3 JSON `TypedValue` (int64 as a decimal string). */
export function valueJson(v: Value): Record<string, unknown> {
  if ('int' in v) return { int64Value: String(v.int) };
  if ('double' in v) return { doubleValue: v.double };
  return { distributionValue: distributionJson(v.dist) };
}
