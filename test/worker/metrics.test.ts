import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { MetricMeter, MetricTags } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { METRICS } from '../../src/metrics';
import { prometheusExporter, processMetrics } from '../../src/worker/metrics';

/** The product's metrics as exported, and the dashboard and README that name them. */

const ROOT = path.resolve(__dirname, '../..');

/** The names Prometheus shows for a metric: counters with `_total`, histograms by their series. */
function exported(metric: { name: string; kind: string }): string[] {
  return metric.kind === 'counter'
    ? [`${metric.name}_total`]
    : ['_bucket', '_count', '_sum'].map((suffix) => `${metric.name}${suffix}`);
}

describe('product metrics', () => {
  it('exports with Prometheus conventions and each histogram’s own buckets', () => {
    const config = prometheusExporter('127.0.0.1:9464');
    expect(config).toMatchObject({
      prometheus: { bindAddress: '127.0.0.1:9464', countersTotalSuffix: true, useSecondsForDurations: true },
    });
    const overrides = 'prometheus' in config ? config.prometheus.histogramBucketOverrides : undefined;
    expect(overrides).toEqual({
      [METRICS.stepDuration.name]: [...METRICS.stepDuration.buckets],
      [METRICS.apiBudgetWait.name]: [...METRICS.apiBudgetWait.buckets],
    });
  });

  it('records Google calls by service, method and status, and budget waits in seconds', () => {
    const recorded: Array<[string, number, MetricTags | undefined]> = [];
    const meter = {
      createCounter: (name: string) => ({
        add: (v: number, tags?: MetricTags) => recorded.push([name, v, tags]),
      }),
      createHistogram: (name: string) => ({
        record: (v: number, tags?: MetricTags) => recorded.push([name, v, tags]),
      }),
    } as unknown as MetricMeter;
    const metrics = processMetrics(meter);
    metrics.gcpCall('vertex', {
      method: 'POST',
      route: 'endpoints/*:deployModel',
      status: '429',
      startedAt: 0,
    });
    metrics.budgetWait('compute', 250);
    expect(recorded).toEqual([
      [
        METRICS.gcpCalls.name,
        1,
        { service: 'vertex', method: 'POST endpoints/*:deployModel', status: '429' },
      ],
      [METRICS.apiBudgetWait.name, 0.25, { service: 'compute' }],
    ]);
  });

  it('are all in the README and the Grafana dashboard, which names no other garden_deploy_ metric', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const dashboard = readFileSync(path.join(ROOT, 'docs', 'grafana-dashboard.json'), 'utf8');
    const queries = (
      JSON.parse(dashboard) as { panels: Array<{ targets?: Array<{ expr: string }> }> }
    ).panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
    const known = new Set(Object.values(METRICS).flatMap(exported));
    for (const metric of Object.values(METRICS)) {
      expect(readme, metric.name).toContain(`\`${exported(metric)[0]!.replace(/_bucket$/, '')}\``);
      expect(
        queries.some((query) => exported(metric).some((name) => query.includes(name))),
        metric.name,
      ).toBe(true);
    }
    for (const name of queries.flatMap((query) => query.match(/garden_deploy_\w+/g) ?? []))
      expect(known.has(name), name).toBe(true);
  });
});
