import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectNumberFor } from '../../src/emulator';
import { closeTestEnv } from '../harness/env';
import {
  type ApiResponse,
  type TestEmulator,
  deployRevision,
  expectValidProto,
  startTestEmulator,
  twoRevisions,
  uniqueProject,
  uploadSampleModel,
} from './helpers';

/** Cloud Monitoring timeSeries.list over the calls the emulator served, as a canary gate reads it. */

const RESPONSE = 'google.monitoring.v3.ListTimeSeriesResponse';
const METRIC = 'aiplatform.googleapis.com/prediction/online';

let t: TestEmulator;
let project: string;
let endpointId: string;
let r1: string;
let r2: string;
let from: string;
let to: string;

beforeAll(async () => {
  t = await startTestEmulator();
  project = uniqueProject('monitor');
  const revisions = await twoRevisions(
    t.api,
    project,
    await uploadSampleModel({ family: 'llama', shards: 1 }),
  );
  const { endpoint, host } = revisions;
  r1 = revisions.r1;
  r2 = await deployRevision(t.api, endpoint, revisions.r2Model, { [r1]: 50, '0': 50 }, { id: '2' });
  endpointId = endpoint.split('/').pop()!;
  // Revision tiny-r2 fails its first 3 calls with 500s and answers the rest 400 ms late.
  await t.admin.addFaultRules([
    { route: 'inference.*', project, model: 'tiny-r2', sequence: ['500', '500', '500'] },
    {
      route: 'inference.*',
      project,
      model: `projects/${project}/locations/us-central1/models/tiny-r2`,
      action: 'latency:400',
    },
  ]);
  from = new Date(Date.now() - 1000).toISOString();
  await Promise.all([
    ...Array.from({ length: 40 }, (_, i) =>
      t.api.post(
        `/v1beta1/${endpoint}/chat/completions`,
        { messages: [{ role: 'user', content: `q${i}` }] },
        { host },
      ),
    ),
    // vLLM's 400s count as 4xx of whichever revision took them.
    ...Array.from({ length: 4 }, () =>
      t.api.post(`/v1beta1/${endpoint}/chat/completions`, { messages: [] }, { host }),
    ),
  ]);
  to = new Date(Date.now() + 1000).toISOString();
});
afterAll(async () => {
  await t?.emulator.close();
  await closeTestEnv();
});

async function list(params: Record<string, string | string[]>, who = project): Promise<ApiResponse> {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) for (const one of [value].flat()) query.append(key, one);
  return t.api.get(`/v3/projects/${who}/timeSeries?${query}`);
}

/** A list call that must succeed; its body checked against the official response message. */
async function series(params: Record<string, string | string[]>, who = project) {
  const res = await list(params, who);
  expect(res.status, res.text).toBe(200);
  expectValidProto(RESPONSE, res.json);
  return res.json;
}

const window = () => ({ 'interval.startTime': from, 'interval.endTime': to });
const byModelAndCode = {
  'aggregation.alignmentPeriod': '60s',
  'aggregation.perSeriesAligner': 'ALIGN_DELTA',
  'aggregation.crossSeriesReducer': 'REDUCE_SUM',
  'aggregation.groupByFields': ['metric.label.deployed_model_id', 'metric.label.response_code'],
};

describe('timeSeries.list', () => {
  it('counts responses per deployed model and response class exactly as they were served', async () => {
    const filter =
      `metric.type="${METRIC}/response_count" AND resource.type="aiplatform.googleapis.com/Endpoint" ` +
      `AND resource.labels.endpoint_id="${endpointId}"`;
    const body = await series({ filter, ...window(), ...byModelAndCode });
    const served = (await t.admin.served(project)).endpoints;
    const expected: Record<string, number> = {};
    for (const [model, byStatus] of Object.entries(Object.values(served)[0]!)) {
      for (const [status, n] of Object.entries(byStatus)) {
        const key = `${model} ${status[0]}xx`;
        expected[key] = (expected[key] ?? 0) + n;
      }
    }
    const counted: Record<string, number> = {};
    for (const s of body.timeSeries) {
      expect(s).toMatchObject({
        resource: { type: 'aiplatform.googleapis.com/Endpoint' },
        metricKind: 'DELTA',
        valueType: 'INT64',
        unit: '1',
      });
      expect(Object.keys(s.metric.labels).sort()).toEqual(['deployed_model_id', 'response_code']);
      expect(s.points).toHaveLength(1);
      const [point] = s.points;
      expect(point.interval.endTime).toBe(to);
      expect(Date.parse(to) - Date.parse(point.interval.startTime)).toBe(60_000);
      counted[`${s.metric.labels.deployed_model_id} ${s.metric.labels.response_code}`] = Number(
        point.value.int64Value,
      );
    }
    expect(counted).toEqual(expected);
    expect(counted[`${r2} 5xx`]).toBe(3);
    expect(Object.values(counted).reduce((a, b) => a + b, 0)).toBe(44);
    expect(body.unit).toBe('1');
  });

  it('keeps every label without a reducer; prediction_count and error_count count all calls and the 5xx', async () => {
    const number = projectNumberFor(project);
    const only = await series(
      {
        filter: `metric.type = "${METRIC}/prediction_count" AND metric.labels.deployed_model_id = "${r2}"`,
        ...window(),
        'aggregation.alignmentPeriod': '120s',
        'aggregation.perSeriesAligner': 'ALIGN_SUM',
      },
      number,
    );
    expect(only.timeSeries).toHaveLength(1);
    expect(only.timeSeries[0].metric).toEqual({
      type: `${METRIC}/prediction_count`,
      labels: {
        deployed_model_id: r2,
        spot: 'false',
        model_display_name: 'tiny-llama',
        endpoint_display_name: 'tiny-llama-endpoint',
      },
    });
    expect(only.timeSeries[0].resource.labels).toEqual({
      resource_container: number,
      location: 'us-central1',
      endpoint_id: endpointId,
    });
    const all = await series({
      filter: `metric.type="${METRIC}/prediction_count"`,
      ...window(),
      ...byModelAndCode,
    });
    expect(
      all.timeSeries
        .map((s: { points: [{ value: { int64Value: string } }] }) => Number(s.points[0].value.int64Value))
        .reduce((a: number, b: number) => a + b),
    ).toBe(44);
    const errors = await series({
      filter: `metric.type="${METRIC}/error_count" AND resource.label.endpoint_id != "elsewhere"`,
      ...window(),
      ...byModelAndCode,
      'aggregation.groupByFields': 'metric.labels.deployed_model_id',
    });
    expect(errors.timeSeries.map((s: { metric: unknown; points: unknown }) => [s.metric, s.points])).toEqual([
      [
        { type: `${METRIC}/error_count`, labels: { deployed_model_id: r2 } },
        [expect.objectContaining({ value: { int64Value: '3' } })],
      ],
    ]);
    // Raw points (no aligner): one per call, newest first.
    const raw = await series({ filter: `metric.type="${METRIC}/error_count"`, ...window() });
    const times = raw.timeSeries[0].points.map((p: { interval: { endTime: string } }) =>
      Date.parse(p.interval.endTime),
    );
    expect(times).toHaveLength(3);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('reports the slowed revision’s p95 latency far above the other’s, and merges distributions', async () => {
    const filter = `metric.type="${METRIC}/prediction_latencies" AND metric.labels.latency_type="total"`;
    const p95 = await series({
      filter,
      ...window(),
      'aggregation.alignmentPeriod': '60s',
      'aggregation.perSeriesAligner': 'ALIGN_PERCENTILE_95',
      'aggregation.crossSeriesReducer': 'REDUCE_MAX',
      'aggregation.groupByFields': 'metric.label.deployed_model_id',
    });
    const latency = Object.fromEntries(
      p95.timeSeries.map(
        (s: {
          metric: { labels: { deployed_model_id: string } };
          points: [{ value: { doubleValue: number } }];
        }) => [s.metric.labels.deployed_model_id, s.points[0].value.doubleValue],
      ),
    );
    expect(p95.timeSeries[0]).toMatchObject({ metricKind: 'GAUGE', valueType: 'DOUBLE', unit: 'ms' });
    expect(latency[r2]).toBeGreaterThanOrEqual(300);
    expect(latency[r1]).toBeLessThan(latency[r2]);

    const merged = await series({
      filter,
      ...window(),
      'aggregation.alignmentPeriod': '60s',
      'aggregation.perSeriesAligner': 'ALIGN_DELTA',
      'aggregation.crossSeriesReducer': 'REDUCE_SUM',
    });
    expect(merged.timeSeries).toHaveLength(1);
    expect(merged.timeSeries[0]).toMatchObject({ metricKind: 'DELTA', valueType: 'DISTRIBUTION' });
    expect(merged.timeSeries[0].metric).toEqual({ type: `${METRIC}/prediction_latencies` });
    const distribution = merged.timeSeries[0].points[0].value.distributionValue;
    expect(distribution.count).toBe('44');
    expect(distribution.bucketOptions.exponentialBuckets).toEqual({
      numFiniteBuckets: 64,
      growthFactor: 1.25,
      scale: 1,
    });
    expect(distribution.bucketCounts.map(Number).reduce((a: number, b: number) => a + b)).toBe(44);
    expect(distribution.mean).toBeGreaterThan(0);
  });

  it('refuses what it does not serve, naming the parameter', async () => {
    const type = `metric.type="${METRIC}/response_count"`;
    const refused = async (params: Record<string, string | string[]>, status: string, text: string) => {
      const res = await list(params);
      expect(res.json?.error?.status, JSON.stringify(params)).toBe(status);
      expect(res.json.error.message).toContain(text);
      return res;
    };
    const missing = await refused({ ...window() }, 'INVALID_ARGUMENT', 'filter is required');
    expect(missing.json.error.details[0].fieldViolations[0].field).toBe('filter');
    await refused(
      { filter: `${type} AND metric.type="${METRIC}/error_count"`, ...window() },
      'INVALID_ARGUMENT',
      'exactly one metric type',
    );
    await refused(
      { filter: `${type} OR resource.type="x"`, ...window() },
      'INVALID_ARGUMENT',
      'not supported at "OR resource.type',
    );
    await refused({ filter: `${type} AND project="p"`, ...window() }, 'INVALID_ARGUMENT', 'AND project="p"');
    const short = await refused(
      {
        filter: type,
        ...window(),
        'aggregation.alignmentPeriod': '30s',
        'aggregation.perSeriesAligner': 'ALIGN_DELTA',
      },
      'INVALID_ARGUMENT',
      'at least 60 seconds',
    );
    expect(short.json.error.details[0].fieldViolations[0].field).toBe('aggregation.alignment_period');
    await refused(
      { filter: type, ...window(), 'aggregation.perSeriesAligner': 'ALIGN_DELTA' },
      'INVALID_ARGUMENT',
      'alignment_period is required',
    );
    await refused(
      { filter: type, ...window(), 'aggregation.crossSeriesReducer': 'REDUCE_SUM' },
      'INVALID_ARGUMENT',
      'needs a per_series_aligner other than ALIGN_NONE',
    );
    await refused({ filter: type, ...window(), foo: '1' }, 'INVALID_ARGUMENT', 'Unknown name "foo"');
    await refused(
      { filter: type, ...window(), 'aggregation.foo': '1' },
      'INVALID_ARGUMENT',
      'Unknown name "aggregation.foo"',
    );
    await refused(
      { filter: type, ...window(), 'aggregation.perSeriesAligner': 'ALIGN_FASTEST' },
      'INVALID_ARGUMENT',
      'aggregation.per_series_aligner',
    );
    await refused(
      { filter: type, 'interval.startTime': from },
      'INVALID_ARGUMENT',
      'interval.end_time is required',
    );
    await refused(
      { filter: type, 'interval.startTime': to, 'interval.endTime': from },
      'INVALID_ARGUMENT',
      'start time must be before the end time',
    );
    await refused({ filter: type, ...window(), orderBy: 'x' }, 'INVALID_ARGUMENT', 'order_by is unsupported');
    await refused(
      {
        filter: `metric.type="${METRIC}/prediction_latencies"`,
        ...window(),
        'aggregation.alignmentPeriod': '60s',
        'aggregation.perSeriesAligner': 'ALIGN_RATE',
      },
      'INVALID_ARGUMENT',
      'ALIGN_RATE is not valid for a DELTA DISTRIBUTION metric',
    );
    await refused(
      {
        filter: type,
        ...window(),
        'aggregation.alignmentPeriod': '60s',
        'aggregation.perSeriesAligner': 'ALIGN_STDDEV',
      },
      'UNIMPLEMENTED',
      'does not serve per_series_aligner ALIGN_STDDEV',
    );
    await refused(
      { filter: `metric.type="${METRIC}/replicas"`, ...window() },
      'UNIMPLEMENTED',
      'does not serve metric type',
    );
  });

  it('returns headers only with view=HEADERS, pages by points, and {} when nothing matches', async () => {
    const params = { filter: `metric.type="${METRIC}/response_count"`, ...window(), ...byModelAndCode };
    const whole = await series(params);
    expect(whole.timeSeries.length).toBeGreaterThanOrEqual(3);
    const headers = await series({ ...params, view: 'HEADERS' });
    expect(headers.timeSeries.map((s: { metric: unknown }) => s.metric)).toEqual(
      whole.timeSeries.map((s: { metric: unknown }) => s.metric),
    );
    expect(headers.timeSeries.every((s: { points?: unknown }) => s.points === undefined)).toBe(true);

    const pages: unknown[] = [];
    let token: string | undefined;
    do {
      const page = await series({ ...params, pageSize: '1', ...(token ? { pageToken: token } : {}) });
      expect(page.timeSeries).toHaveLength(1);
      pages.push(...page.timeSeries);
      token = page.nextPageToken;
    } while (token);
    expect(pages).toEqual(whole.timeSeries);
    const first = await series({ ...params, pageSize: '1' });
    const mismatched = await list({
      ...params,
      filter: `metric.type="${METRIC}/error_count"`,
      pageToken: first.nextPageToken,
    });
    expect(mismatched.status).toBe(400);
    expect(mismatched.json.error.details[0].fieldViolations[0].field).toBe('page_token');

    const before = await list({
      filter: params.filter,
      'interval.startTime': '2020-01-01T00:00:00Z',
      'interval.endTime': '2020-01-01T01:00:00Z',
    });
    expect(before.status).toBe(200);
    expect(before.json).toEqual({});
    expect(await series({ ...params, filter: `${params.filter} AND resource.type="gce_instance"` })).toEqual(
      {},
    );
  });

  it('is an authenticated, counted Google API; reset forgets the calls', async () => {
    const params = { filter: `metric.type="${METRIC}/prediction_count"`, ...window() };
    const anonymous = await t.api.get(`/v3/projects/${project}/timeSeries?${new URLSearchParams(params)}`, {
      auth: false,
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.json.error.status).toBe('UNAUTHENTICATED');
    await t.admin.addFaultRules([{ route: 'monitoring.timeSeries.list', project, sequence: ['403'] }]);
    const forbidden = await list(params);
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.error.message).toContain("Permission 'monitoring.timeSeries.list' denied");
    expect((await t.admin.stats(project)).calls['monitoring.timeSeries.list']).toBeGreaterThan(10);

    await t.admin.reset(project);
    expect(await t.admin.served(project)).toEqual({ endpoints: {} });
    expect(await series(params)).toEqual({});
  });
});
