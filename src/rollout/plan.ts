import type { Strategy } from '../spec/rollout';

/**
 * The traffic steps of an upgrade, from its strategy: the canary share, then each multiple of the
 * linear step above it, then 100 %; each step bakes (gates evaluated) before the next. Pure, so
 * the workflow, the CLI and the docs agree on what a strategy does.
 */

export interface TrafficStep {
  /** The new revision's share of the traffic during this step. */
  percent: number;
  /** How long it bakes at this share before the next step (the final bake comes after the last). */
  bakeMs: number;
  kind: 'canary' | 'linear' | 'allAtOnce';
}

export function trafficSteps(strategy: Strategy): TrafficStep[] {
  if (strategy.allAtOnce) return [{ percent: 100, bakeMs: strategy.finalBake, kind: 'allAtOnce' }];
  const steps: TrafficStep[] = [];
  const canary = strategy.canary;
  if (canary) steps.push({ percent: canary.percent, bakeMs: canary.bake, kind: 'canary' });
  const linear = strategy.linear;
  const after = canary?.percent ?? 0;
  if (linear) {
    for (let percent = linear.step; percent < 100; percent += linear.step)
      if (percent > after) steps.push({ percent, bakeMs: linear.interval, kind: 'linear' });
  }
  // The last step carries all traffic; what bakes there is the final bake.
  steps.push({ percent: 100, bakeMs: strategy.finalBake, kind: linear ? 'linear' : 'canary' });
  return steps;
}

/** One line for progress and the UI: "10 % (bake 5m) → 35 % … → 100 %". */
export function describeStrategy(strategy: Strategy, formatDuration: (ms: number) => string): string {
  const steps = trafficSteps(strategy).map(
    (step) => `${step.percent} %${step.bakeMs > 0 ? ` (bake ${formatDuration(step.bakeMs)})` : ''}`,
  );
  const retain =
    strategy.retainPrevious > 0
      ? `; previous kept at 0 % for ${formatDuration(strategy.retainPrevious)}`
      : '';
  return `${steps.join(' → ')}${retain}`;
}

/**
 * The endpoint's traffic split with `percent` on the new deployed model and the rest on the old
 * one; deployed models not named get 0 (Vertex: not listed = no traffic).
 */
export function splitFor(previous: string, next: string, percent: number): Record<string, number> {
  return { [previous]: 100 - percent, [next]: percent };
}
