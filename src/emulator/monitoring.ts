import { createHash } from 'node:crypto';
import {
  type Aggregation,
  type Labels,
  type MetricKind,
  type RawSeries,
  type Series,
  aggregate,
  outputShape,
  parseAggregation,
  seriesKey,
  valueJson,
} from './aggregation';
import type { EmulatorCore } from './core';
import { AUTOSCALING_METRIC_PREFIX as METRIC_PREFIX } from './deploy-config';
import { ApiError, badRequest } from './errors';
import { type RequestContext, type Route, managementRoute, sendJson } from './http';
import { ENDPOINT_RESOURCE } from './logging';
import type { ServedSample } from './metrics';
import { checkQuery } from './query';
import { quotaUsageSeries } from './quotas';
import { timestamp } from './state';

/**
 * Cloud Monitoring v3 `projects.timeSeries.list` over the served-request samples (metrics.ts): the
 * Vertex `prediction/online/*` metrics a canary gate reads (lifecycle-apis.md §2), and the consumer
 * quota usage gcloud's quota check reads (quotas.ts, §4.2), with the filter grammar, alignment and
 * cross-series reduction they need. Anything beyond is refused with an error saying what is
 * supported, never answered with made-up data.
 */

const MONITORING = 'google.monitoring.v3';
const QUOTA_USAGE = 'serviceruntime.googleapis.com/quota/allocation/usage';

interface MetricDef {
  kind: MetricKind;
  unit: string;
  valueType: 'INT64' | 'DISTRIBUTION';
  resourceType: string;
  /** The metric's series in the project (number) over the read interval, before the filter's labels. */
  series: (core: EmulatorCore, project: string, q: ListRequest) => RawSeries[];
}

/** A Vertex serving metric, from the samples of the calls the emulator served. */
function servedMetric(
  unit: string,
  valueType: MetricDef['valueType'],
  counts: (s: ServedSample) => boolean,
  labels: (s: ServedSample) => Labels,
): MetricDef {
  return {
    kind: 'DELTA',
    unit,
    valueType,
    resourceType: ENDPOINT_RESOURCE,
    series: (core, project, q) => servedSeries(core.served.samples(project), q, counts, labels),
  };
}

const modelLabels = (s: ServedSample): Labels => ({
  deployed_model_id: s.deployedModelId,
  spot: 'false',
  model_display_name: s.modelDisplayName,
  endpoint_display_name: s.endpointDisplayName,
});

/** The metrics served: the Vertex ones per [MGCP] (all DELTA), and consumer quota usage (GAUGE). */
const METRICS: Record<string, MetricDef> = {
  [`${METRIC_PREFIX}prediction_count`]: servedMetric('1', 'INT64', () => true, modelLabels),
  [`${METRIC_PREFIX}error_count`]: servedMetric('1', 'INT64', (s) => s.status >= 500, modelLabels),
  [`${METRIC_PREFIX}response_count`]: servedMetric(
    '1',
    'INT64',
    () => true,
    (s) => ({ ...modelLabels(s), response_code: `${Math.floor(s.status / 100)}xx` }),
  ),
  [`${METRIC_PREFIX}prediction_latencies`]: servedMetric(
    'ms',
    'DISTRIBUTION',
    () => true,
    (s) => ({
      ...modelLabels(s),
      latency_type: 'total',
    }),
  ),
  [QUOTA_USAGE]: {
    kind: 'GAUGE',
    unit: '1',
    valueType: 'INT64',
    resourceType: 'consumer_quota',
    series: (core, project, q) => quotaUsageSeries(core, project, q.start, q.end, core.now()),
  },
};

const resourceLabels = (s: ServedSample): Labels => ({
  resource_container: s.project,
  location: s.location,
  endpoint_id: s.endpointId,
});

// ---------------------------------------------------------------------------------------------
// Filter: `selector op "value"` terms joined by AND

interface Term {
  selector: 'metric.type' | 'resource.type' | 'metric.labels' | 'resource.labels';
  key?: string;
  negate: boolean;
  value: string;
}

const FILTER_HELP =
  'the emulator takes terms metric.type = "…", resource.type = "…", resource.labels.KEY = "…" and metric.labels.KEY = "…" (also resource.label.KEY, metric.label.KEY; = or !=) joined by AND';

function filterError(filter: string, at: string): ApiError {
  return badRequest([
    {
      field: 'filter',
      description: `The filter "${filter}" is not supported at "${at.slice(0, 60)}": ${FILTER_HELP}.`,
    },
  ]);
}

const TERM_RE =
  /^\s*(metric\.type|resource\.type|(?:metric|resource)\.labels?\.[A-Za-z_][A-Za-z0-9_]*)\s*(!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*/;

function parseFilter(filter: string): { metricType: string; terms: Term[] } {
  const terms: Term[] = [];
  let rest = filter;
  for (;;) {
    const match = TERM_RE.exec(rest);
    if (!match) throw filterError(filter, rest.trim() || filter);
    const [whole, selector, op, double, single] = match as unknown as [
      string,
      string,
      string,
      string?,
      string?,
    ];
    const value = (double ?? single ?? '').replace(/\\(.)/g, '$1');
    const [object, , key] = selector.split('.') as [string, string, string?];
    terms.push(
      key === undefined
        ? { selector: selector as Term['selector'], negate: op === '!=', value }
        : { selector: `${object}.labels` as Term['selector'], key, negate: op === '!=', value },
    );
    rest = rest.slice(whole.length);
    if (rest === '') break;
    const and = /^AND\s+/i.exec(rest);
    if (!and) throw filterError(filter, rest);
    rest = rest.slice(and[0].length);
  }
  const types = terms.filter((t) => t.selector === 'metric.type');
  if (types.length !== 1 || types[0]!.negate) {
    throw badRequest([
      {
        field: 'filter',
        description: `The filter must name exactly one metric type with metric.type = "…"; "${filter}" names ${types.length === 1 ? 'it only with !=' : types.length}.`,
      },
    ]);
  }
  return { metricType: types[0]!.value, terms: terms.filter((t) => t !== types[0]) };
}

function matches(terms: Term[], resourceType: string, metric: Labels, resource: Labels): boolean {
  return terms.every((t) => {
    const actual =
      t.selector === 'resource.type'
        ? resourceType
        : t.selector === 'metric.labels'
          ? metric[t.key!]
          : resource[t.key!];
    return (actual === t.value) !== t.negate;
  });
}

// ---------------------------------------------------------------------------------------------
// The method

function parseTime(value: unknown): number | undefined {
  return typeof value === 'string' ? Date.parse(value) : undefined;
}

interface ListRequest {
  metricType: string;
  def: MetricDef;
  terms: Term[];
  start: number;
  end: number;
  aggregation: Aggregation;
  headersOnly: boolean;
  pageSize: number;
  pageToken?: string;
  /** What a page token is bound to: the same query. */
  query: string;
}

/** ListTimeSeriesRequest's rules (metric_service.proto, common.proto), each refusal naming its field. */
function readListRequest(request: Record<string, unknown>): ListRequest {
  const filter = typeof request.filter === 'string' ? request.filter.trim() : '';
  if (!filter) {
    throw badRequest([
      {
        field: 'filter',
        description: 'filter is required and must name one metric type, e.g. metric.type = "…".',
      },
    ]);
  }
  const { metricType, terms } = parseFilter(filter);
  const def = METRICS[metricType];
  if (!def) {
    throw new ApiError(
      'UNIMPLEMENTED',
      `The emulator does not serve metric type "${metricType}"; it serves ${Object.keys(METRICS).join(', ')}.`,
    );
  }
  const interval = (request.interval ?? {}) as Record<string, unknown>;
  const end = parseTime(interval.endTime);
  if (end === undefined) {
    throw badRequest([
      { field: 'interval.end_time', description: 'interval.end_time is required (RFC 3339).' },
    ]);
  }
  // A GAUGE may be read at one instant (start defaults to end); a DELTA needs a span.
  const start = parseTime(interval.startTime) ?? (def.kind === 'GAUGE' ? end : undefined);
  if (start === undefined || start > end || (start === end && def.kind === 'DELTA')) {
    throw badRequest([
      {
        field: 'interval.start_time',
        description:
          def.kind === 'DELTA'
            ? `The start time must be before the end time (${String(interval.endTime)}) for the non-gauge metric "${metricType}"; set interval.start_time earlier.`
            : `The start time must not be after the end time (${String(interval.endTime)}).`,
      },
    ]);
  }
  if (typeof request.orderBy === 'string' && request.orderBy !== '') {
    throw badRequest([{ field: 'order_by', description: 'order_by is unsupported and must be left blank.' }]);
  }
  if (request.secondaryAggregation !== undefined) {
    if (request.aggregation === undefined) {
      throw badRequest([
        {
          field: 'secondary_aggregation',
          description: 'secondary_aggregation may only be specified together with aggregation.',
        },
      ]);
    }
    throw new ApiError('UNIMPLEMENTED', 'The emulator does not serve secondary_aggregation.');
  }
  const pageSize = typeof request.pageSize === 'number' ? request.pageSize : 0;
  if (pageSize < 0) {
    throw badRequest([{ field: 'page_size', description: `page_size must be positive (got ${pageSize}).` }]);
  }
  const aggregation = parseAggregation(
    request.aggregation as Record<string, unknown> | undefined,
    def.kind,
    def.valueType,
  );
  const headersOnly = request.view === 'HEADERS';
  return {
    metricType,
    def,
    terms,
    // An instant [end, end] is read as (end − 1 ms, end].
    start: start === end ? end - 1 : start,
    end,
    aggregation,
    headersOnly,
    pageSize,
    ...(typeof request.pageToken === 'string' && request.pageToken !== ''
      ? { pageToken: request.pageToken }
      : {}),
    query: JSON.stringify([filter, request.interval, request.aggregation ?? {}, headersOnly]),
  };
}

/** The served samples in (start, end] that count for a metric, one series per label set. */
function servedSeries(
  samples: ServedSample[],
  q: ListRequest,
  counts: (s: ServedSample) => boolean,
  labels: (s: ServedSample) => Labels,
): RawSeries[] {
  const series = new Map<string, RawSeries>();
  for (const s of samples) {
    if (s.time <= q.start || s.time > q.end || !counts(s)) continue;
    const metric = labels(s);
    const resource = resourceLabels(s);
    const id = seriesKey({ metric, resource });
    let one = series.get(id);
    if (!one) series.set(id, (one = { metric, resource, points: [] }));
    one.points.push({ time: s.time, value: q.def.valueType === 'DISTRIBUTION' ? s.latencyMs : 1 });
  }
  return [...series.values()];
}

/** The metric's series the filter keeps, with their points in (start, end]. */
function rawSeries(core: EmulatorCore, project: string, q: ListRequest): RawSeries[] {
  return q.def
    .series(core, project, q)
    .filter((s) => matches(q.terms, q.def.resourceType, s.metric, s.resource))
    .map((s) => ({ ...s, points: s.points.filter((p) => p.time > q.start && p.time <= q.end) }));
}

function listTimeSeries(core: EmulatorCore, ctx: RequestContext): void {
  const project = core.resolveProject(ctx.params[0]!);
  const q = readListRequest(checkQuery(ctx.url, `${MONITORING}.ListTimeSeriesRequest`, ['name']));
  const raw = rawSeries(core, project.number, q);
  const series = aggregate(raw, q.aggregation, q.def.valueType, q.start, q.end);
  const page = paginate(series, q);
  if (page.items.length === 0) return sendJson(ctx.res, 200, {});
  const shape = outputShape(q.aggregation, q.def.kind, q.def.valueType, q.def.unit);
  const { aligner, periodMs } = q.aggregation;
  // GAUGE points are instants; raw DELTA points cover the millisecond of their request.
  const intervalOf = (e: number) => ({
    startTime: timestamp(shape.metricKind === 'GAUGE' ? e : aligner === 'ALIGN_NONE' ? e - 1 : e - periodMs),
    endTime: timestamp(e),
  });
  sendJson(ctx.res, 200, {
    timeSeries: page.items.map((s) => ({
      metric: { type: q.metricType, ...(Object.keys(s.metric).length ? { labels: s.metric } : {}) },
      resource: {
        type: q.def.resourceType,
        ...(Object.keys(s.resource).length ? { labels: s.resource } : {}),
      },
      metricKind: shape.metricKind,
      valueType: shape.valueType,
      ...(q.headersOnly
        ? {}
        : { points: s.points.map(([e, v]) => ({ interval: intervalOf(e), value: valueJson(v) })) }),
      unit: shape.unit,
    })),
    ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    unit: shape.unit,
  });
}

const MAX_PAGE = 100_000;

/** Whole series per page; `pageSize` counts points (FULL) or series (HEADERS), at least one series a page. */
function paginate(series: Series[], q: ListRequest): { items: Series[]; nextPageToken?: string } {
  const fingerprint = createHash('sha256').update(q.query).digest('base64url').slice(0, 16);
  let offset = 0;
  if (q.pageToken !== undefined) {
    const [at, print] = Buffer.from(q.pageToken, 'base64url').toString('utf8').split(':');
    offset = Number(at);
    if (print !== fingerprint || !Number.isInteger(offset) || offset < 0) {
      throw badRequest([
        {
          field: 'page_token',
          description:
            'Invalid page_token: it does not come from a previous call with the same filter, interval, aggregation and view.',
        },
      ]);
    }
  }
  const limit = Math.min(q.pageSize > 0 ? q.pageSize : MAX_PAGE, MAX_PAGE);
  const items: Series[] = [];
  let used = 0;
  for (let i = offset; i < series.length; i++) {
    const cost = q.headersOnly ? 1 : series[i]!.points.length;
    if (items.length > 0 && used + cost > limit) break;
    items.push(series[i]!);
    used += cost;
  }
  const next = offset + items.length;
  return next < series.length
    ? { items, nextPageToken: Buffer.from(`${next}:${fingerprint}`).toString('base64url') }
    : { items };
}

export function monitoringRoutes(core: EmulatorCore): Route[] {
  const route = managementRoute(core, 'monitoring', (params) => params[0]);
  return [
    route(
      'monitoring.timeSeries.list',
      'GET',
      '/v3/projects/([^/]+)/timeSeries',
      'monitoring.timeSeries.list',
      listTimeSeries,
    ),
  ];
}
