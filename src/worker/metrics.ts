import type { MetricMeter } from '@temporalio/common';
import type { MetricsExporterConfig } from '@temporalio/worker';
import type { ExchangeRecord, GcpApi } from '../gcp';
import { METRICS } from '../metrics';
import type { BudgetedService } from './rate-limit';

/**
 * Metrics of a process that runs the Temporal runtime (the worker; `serve` later): one Prometheus
 * endpoint with the SDK's own metrics (`temporal_*`: slots, polls, task latencies) and the product's
 * (`garden_deploy_*`, `src/metrics.ts`), all through the runtime's meter, so nothing else listens.
 */

/**
 * The runtime's Prometheus exporter on `bindAddress` (`host:port`, served at `/metrics`), with
 * Prometheus' conventions: counters end in `_total`, durations are in seconds (the SDK's latency
 * histograms too), and the product's histograms get buckets that fit what they measure.
 */
export function prometheusExporter(bindAddress: string): MetricsExporterConfig {
  return {
    prometheus: {
      bindAddress,
      countersTotalSuffix: true,
      useSecondsForDurations: true,
      histogramBucketOverrides: Object.fromEntries(
        Object.values(METRICS).flatMap((metric) =>
          'buckets' in metric ? [[metric.name, [...metric.buckets]]] : [],
        ),
      ),
    },
  };
}

/** What the process measures outside workflow code: exchanges with Google, waits for API budget. */
export interface ProcessMetrics {
  gcpCall(api: GcpApi, exchange: ExchangeRecord): void;
  budgetWait(service: BudgetedService, waitedMs: number): void;
}

/**
 * Over `meter` (the runtime's, tagged like the worker's own metrics); without an exporter the
 * runtime's meter is a no-op, so this costs nothing when metrics are off.
 */
export function processMetrics(meter: MetricMeter): ProcessMetrics {
  const calls = meter.createCounter(METRICS.gcpCalls.name, undefined, METRICS.gcpCalls.description);
  const { name, unit, description } = METRICS.apiBudgetWait;
  const waits = meter.createHistogram(name, 'float', unit, description);
  return {
    gcpCall(api, { method, route, status }) {
      calls.add(1, { service: api, method: `${method} ${route}`, status });
    },
    budgetWait(service, waitedMs) {
      waits.record(waitedMs / 1000, { service });
    },
  };
}
