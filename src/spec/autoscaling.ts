/**
 * Autoscaling targets, without zod: the deployment workflow checks a `scale` request's targets with
 * these (its bundle stays free of schema libraries); the spec's schema uses the same list.
 */

/** Short names of the autoscaling metrics Vertex accepts (under `aiplatform.googleapis.com/prediction/online/`). */
export const AUTOSCALING_METRICS = ['accelerator/duty_cycle', 'cpu/utilization', 'request_count'] as const;
export type AutoscalingMetric = (typeof AUTOSCALING_METRICS)[number];

/** Metrics whose target is a percentage (1–100); `request_count`'s is requests per replica per minute. */
export const PERCENT_METRICS: readonly AutoscalingMetric[] = ['accelerator/duty_cycle', 'cpu/utilization'];

export interface AutoscalingTarget {
  metric: AutoscalingMetric;
  target: number;
}

/** What is wrong with a list of autoscaling targets, or undefined when Vertex would take it. */
export function autoscalingProblem(targets: unknown): string | undefined {
  if (!Array.isArray(targets) || targets.length === 0 || targets.length > AUTOSCALING_METRICS.length)
    return `autoscaling takes 1 to ${AUTOSCALING_METRICS.length} targets`;
  const seen = new Set<string>();
  for (const entry of targets as Array<Partial<AutoscalingTarget> | null>) {
    const metric = entry?.metric;
    const target = entry?.target;
    if (!AUTOSCALING_METRICS.includes(metric as AutoscalingMetric))
      return `autoscaling metric "${String(metric)}" is not one of ${AUTOSCALING_METRICS.join(', ')}`;
    if (seen.has(metric!)) return `autoscaling metric ${metric} is given twice`;
    seen.add(metric!);
    const ceiling = PERCENT_METRICS.includes(metric!) ? 100 : 1_000_000;
    if (!Number.isInteger(target) || target! < 1 || target! > ceiling)
      return `autoscaling target of ${metric} must be a whole number from 1 to ${ceiling}${ceiling === 100 ? ' (percent)' : ''}`;
  }
  return undefined;
}
