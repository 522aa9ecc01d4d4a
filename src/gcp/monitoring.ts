import { z } from 'zod';
import type { GcpClientConfig } from './config';
import { type CallOptions, type HttpTransport, sendJsonCall } from './http';
import { parseInput } from './input';
import { PROJECT_RE } from './names';
import { Int64 } from './schemas';

const SERVICE = 'monitoring.googleapis.com';

/** Cloud Monitoring's shortest alignment period (google/monitoring/v3/common.proto `Aggregation`). */
export const MIN_ALIGNMENT_SECONDS = 60;

const PointSchema = z.looseObject({
  interval: z.looseObject({ startTime: z.string().optional(), endTime: z.string().optional() }).optional(),
  value: z.looseObject({
    int64Value: Int64.optional(),
    doubleValue: z.number().optional(),
    boolValue: z.boolean().optional(),
    distributionValue: z.looseObject({ count: Int64.optional(), mean: z.number().optional() }).optional(),
  }),
});

const TimeSeriesSchema = z.looseObject({
  metric: z.looseObject({
    type: z.string().optional(),
    labels: z.record(z.string(), z.string()).default({}),
  }),
  resource: z
    .looseObject({ type: z.string().optional(), labels: z.record(z.string(), z.string()).default({}) })
    .optional(),
  metricKind: z.string().optional(),
  valueType: z.string().optional(),
  points: z.array(PointSchema).default([]),
  unit: z.string().optional(),
});
export type TimeSeries = z.infer<typeof TimeSeriesSchema>;

const ListTimeSeriesResponseSchema = z.looseObject({
  timeSeries: z.array(TimeSeriesSchema).max(100_000).default([]),
  nextPageToken: z.string().optional(),
  unit: z.string().optional(),
});

const ALIGNERS = [
  'ALIGN_NONE',
  'ALIGN_NEXT_OLDER',
  'ALIGN_DELTA',
  'ALIGN_RATE',
  'ALIGN_SUM',
  'ALIGN_MEAN',
  'ALIGN_COUNT',
  'ALIGN_MAX',
  'ALIGN_MIN',
  'ALIGN_PERCENTILE_99',
  'ALIGN_PERCENTILE_95',
  'ALIGN_PERCENTILE_50',
  'ALIGN_PERCENTILE_05',
] as const;
const REDUCERS = [
  'REDUCE_NONE',
  'REDUCE_SUM',
  'REDUCE_MEAN',
  'REDUCE_MAX',
  'REDUCE_MIN',
  'REDUCE_COUNT',
] as const;

const ListTimeSeriesInputSchema = z.strictObject({
  project: z.string().regex(PROJECT_RE, 'must be a project ID or number'),
  /** Monitoring filter naming exactly one metric type. */
  filter: z.string().min(1).max(4_000),
  /** The read interval (start, end]. */
  interval: z
    .strictObject({ startTime: z.date(), endTime: z.date() })
    .refine((i) => i.startTime < i.endTime, 'interval.startTime must be before interval.endTime'),
  aggregation: z
    .strictObject({
      alignmentSeconds: z
        .number()
        .int()
        .min(MIN_ALIGNMENT_SECONDS)
        .max(104 * 7 * 86_400),
      perSeriesAligner: z.enum(ALIGNERS),
      crossSeriesReducer: z.enum(REDUCERS).optional(),
      groupByFields: z.array(z.string().min(1).max(200)).max(20).optional(),
    })
    .optional(),
  pageSize: z.number().int().min(1).max(100_000).optional(),
  pageToken: z.string().min(1).max(4_096).optional(),
});
export type ListTimeSeriesInput = z.input<typeof ListTimeSeriesInputSchema>;

/** Cloud Monitoring v3 reads (`timeSeries.list`), over the same ADC transport as the Vertex calls. */
export class MonitoringClient {
  constructor(
    private readonly transport: HttpTransport,
    private readonly config: GcpClientConfig,
  ) {}

  /** `GET v3/projects/{project}/timeSeries` — one page of series; pass `nextPageToken` back for the next. */
  async listTimeSeries(
    input: ListTimeSeriesInput,
    options: CallOptions = {},
  ): Promise<{ timeSeries: TimeSeries[]; nextPageToken?: string }> {
    const i = parseInput(ListTimeSeriesInputSchema, input, 'time series request');
    const url = new URL(
      `${this.config.monitoringBaseUrl.replace(/\/+$/, '')}/v3/projects/${encodeURIComponent(i.project)}/timeSeries`,
    );
    const query = {
      filter: i.filter,
      'interval.startTime': i.interval.startTime.toISOString(),
      'interval.endTime': i.interval.endTime.toISOString(),
      ...(i.aggregation
        ? {
            'aggregation.alignmentPeriod': `${i.aggregation.alignmentSeconds}s`,
            'aggregation.perSeriesAligner': i.aggregation.perSeriesAligner,
            'aggregation.crossSeriesReducer': i.aggregation.crossSeriesReducer,
            'aggregation.groupByFields': i.aggregation.groupByFields,
          }
        : {}),
      pageSize: i.pageSize,
      pageToken: i.pageToken,
    };
    const page = await sendJsonCall(
      this.transport,
      this.config,
      { service: SERVICE, method: 'GET', url, query, options },
      ListTimeSeriesResponseSchema,
    );
    return {
      timeSeries: page.timeSeries,
      ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    };
  }

  /** Every page of a read, bounded: a gate never reads more than `maxPages` pages. */
  async listAllTimeSeries(
    input: Omit<ListTimeSeriesInput, 'pageToken'>,
    options: CallOptions = {},
    maxPages = 20,
  ): Promise<TimeSeries[]> {
    const all: TimeSeries[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      const result = await this.listTimeSeries({ ...input, ...(pageToken ? { pageToken } : {}) }, options);
      all.push(...result.timeSeries);
      pageToken = result.nextPageToken;
      if (!pageToken) return all;
    }
    return all;
  }
}

// --- Vertex online prediction metrics (lifecycle-apis.md §2) ------------------------------------

const ENDPOINT_RESOURCE = 'aiplatform.googleapis.com/Endpoint';
const RESPONSE_COUNT = 'aiplatform.googleapis.com/prediction/online/response_count';
const LATENCIES = 'aiplatform.googleapis.com/prediction/online/prediction_latencies';

/** What one deployed model of an endpoint served in a window. */
export interface DeployedModelTraffic {
  requests: number;
  /** Answers with a 5xx response code. */
  errors: number;
  /** 95th percentile of the total latency, ms (absent without requests). */
  p95Ms?: number;
}

/**
 * Requests, 5xx answers and p95 latency per deployed model of one endpoint over the last
 * `windowMs` (at least a minute: Monitoring's shortest alignment period), from `response_count`
 * (summed by deployed model and response code class) and `prediction_latencies` (95th percentile
 * per series, the highest series of each deployed model). Models that served nothing are absent.
 */
export async function endpointTraffic(
  monitoring: MonitoringClient,
  request: {
    project: string;
    endpointId: string;
    windowMs: number;
    /** Also read the p95 latencies (a second query). */
    latency?: boolean;
    now?: Date;
  },
  options: CallOptions = {},
): Promise<Record<string, DeployedModelTraffic>> {
  const endTime = request.now ?? new Date();
  const seconds = Math.max(MIN_ALIGNMENT_SECONDS, Math.ceil(request.windowMs / 1000));
  const interval = { startTime: new Date(endTime.getTime() - seconds * 1000), endTime };
  const resource = `resource.type = "${ENDPOINT_RESOURCE}" AND resource.labels.endpoint_id = "${request.endpointId}"`;
  const [counts, latencies] = await Promise.all([
    monitoring.listAllTimeSeries(
      {
        project: request.project,
        filter: `metric.type = "${RESPONSE_COUNT}" AND ${resource}`,
        interval,
        aggregation: {
          alignmentSeconds: seconds,
          perSeriesAligner: 'ALIGN_DELTA',
          crossSeriesReducer: 'REDUCE_SUM',
          groupByFields: ['metric.label.deployed_model_id', 'metric.label.response_code'],
        },
      },
      options,
    ),
    request.latency === false
      ? []
      : monitoring.listAllTimeSeries(
          {
            project: request.project,
            filter: `metric.type = "${LATENCIES}" AND ${resource} AND metric.labels.latency_type = "total"`,
            interval,
            aggregation: {
              alignmentSeconds: seconds,
              perSeriesAligner: 'ALIGN_PERCENTILE_95',
              crossSeriesReducer: 'REDUCE_MAX',
              groupByFields: ['metric.label.deployed_model_id'],
            },
          },
          options,
        ),
  ]);
  const out: Record<string, DeployedModelTraffic> = {};
  const entry = (id: string) => (out[id] ??= { requests: 0, errors: 0 });
  for (const series of counts) {
    const id = series.metric.labels.deployed_model_id;
    if (!id) continue;
    const n = series.points.reduce((sum, p) => sum + (p.value.int64Value ?? p.value.doubleValue ?? 0), 0);
    const traffic = entry(id);
    traffic.requests += n;
    if (/^5/.test(series.metric.labels.response_code ?? '')) traffic.errors += n;
  }
  for (const series of latencies) {
    const id = series.metric.labels.deployed_model_id;
    // Points come newest first; the window is one alignment period, so there is one.
    const p95 = series.points[0]?.value.doubleValue;
    if (!id || p95 === undefined) continue;
    const traffic = entry(id);
    traffic.p95Ms = Math.max(traffic.p95Ms ?? 0, p95);
  }
  return out;
}
