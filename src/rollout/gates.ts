import type { Gates } from '../spec/rollout';

/**
 * Judging an upgrade's gates from what was measured in one window: the new revision's errors and
 * p95 latency (absolute, and relative to the serving revision over the same window), the smoke
 * answers attributed to each revision, and whether the new revision had enough traffic to judge.
 * Pure: the workflow calls it on what the `measureRevisions` activity read.
 */

/** What one deployed model served in the window (Cloud Monitoring). */
export interface ServingStats {
  requests: number;
  /** 5xx answers. */
  errors: number;
  /** 95th percentile latency, ms; absent without requests. */
  p95Ms?: number;
}

/** A smoke answer, attributed to the deployed model Vertex says served it. */
export interface AttributedSmoke {
  name: string;
  passed: boolean;
  /** `X-Vertex-AI-Deployed-Model-Id` (or `deployedModelId` of a predict body). */
  deployedModelId?: string;
  failure?: string;
}

export type GateName =
  'traffic' | 'errorRatio' | 'errorRatioIncrease' | 'latencyP95' | 'latencyP95Ratio' | 'smoke';

export interface GateCheck {
  gate: GateName;
  verdict: 'pass' | 'fail' | 'skipped';
  /** What was measured (ratio 0–1, or ms), and the limit it was held to. */
  measured?: number;
  threshold?: number;
  message: string;
}

export interface GateReport {
  /** `idle`: nothing failed, but the new revision served fewer than `gates.minRequests`. */
  verdict: 'pass' | 'fail' | 'idle';
  checks: GateCheck[];
  candidate: ServingStats;
  baseline?: ServingStats;
  /** One line: the failed gates with their numbers, or what passed. */
  summary: string;
}

export interface GateInput {
  gates: Gates;
  candidate: ServingStats;
  /** The serving revision over the same window; absent (or idle) → relative gates are skipped. */
  baseline?: ServingStats;
  candidateId: string;
  smoke?: AttributedSmoke[];
}

const pct = (ratio: number) => `${(ratio * 100).toFixed(ratio < 0.1 ? 2 : 1)} %`;
const ms = (value: number) => `${Math.round(value)} ms`;

/** `"name": why; …` of the smoke tests that failed. */
export function describeSmokeFailures(failed: ReadonlyArray<{ name: string; failure?: string }>): string {
  return failed.map((r) => `"${r.name}": ${r.failure ?? 'failed'}`).join('; ');
}

export function judgeGates(input: GateInput): GateReport {
  const { gates, candidate, baseline } = input;
  const checks: GateCheck[] = [];
  const enough = candidate.requests >= gates.minRequests && candidate.requests > 0;
  const baselineEnough = baseline !== undefined && baseline.requests >= Math.max(1, gates.minRequests);
  checks.push({
    gate: 'traffic',
    verdict: enough ? 'pass' : 'skipped',
    measured: candidate.requests,
    threshold: gates.minRequests,
    message: enough
      ? `${candidate.requests} requests served (minimum ${gates.minRequests})`
      : `idle: ${candidate.requests} requests served, fewer than the ${gates.minRequests} the gates need`,
  });

  const ratio = candidate.requests > 0 ? candidate.errors / candidate.requests : 0;
  const baseRatio = baseline && baseline.requests > 0 ? baseline.errors / baseline.requests : 0;
  const { max, maxIncrease } = gates.errorRatio;
  if (max !== undefined) {
    checks.push(
      !enough
        ? { gate: 'errorRatio', verdict: 'skipped', threshold: max, message: 'error ratio: too few requests' }
        : {
            gate: 'errorRatio',
            verdict: ratio > max ? 'fail' : 'pass',
            measured: ratio,
            threshold: max,
            message: `error ratio ${pct(ratio)} (${candidate.errors}/${candidate.requests} 5xx) ${ratio > max ? '>' : '≤'} ${pct(max)}`,
          },
    );
  }
  if (maxIncrease !== undefined) {
    const increase = ratio - baseRatio;
    checks.push(
      !enough || !baselineEnough
        ? {
            gate: 'errorRatioIncrease',
            verdict: 'skipped',
            threshold: maxIncrease,
            message: `error ratio vs serving revision: ${enough ? 'the serving revision had too few requests' : 'too few requests'}`,
          }
        : {
            gate: 'errorRatioIncrease',
            verdict: increase > maxIncrease ? 'fail' : 'pass',
            measured: increase,
            threshold: maxIncrease,
            message: `error ratio ${pct(ratio)} vs ${pct(baseRatio)} on the serving revision: +${pct(Math.max(0, increase))} ${increase > maxIncrease ? '>' : '≤'} +${pct(maxIncrease)}`,
          },
    );
  }

  const latency = gates.latencyP95;
  const p95 = candidate.p95Ms;
  if (latency?.max !== undefined) {
    checks.push(
      !enough || p95 === undefined
        ? {
            gate: 'latencyP95',
            verdict: 'skipped',
            threshold: latency.max,
            message: 'p95 latency: too few requests',
          }
        : {
            gate: 'latencyP95',
            verdict: p95 > latency.max ? 'fail' : 'pass',
            measured: p95,
            threshold: latency.max,
            message: `p95 latency ${ms(p95)} ${p95 > latency.max ? '>' : '≤'} ${ms(latency.max)}`,
          },
    );
  }
  if (latency?.maxRatio !== undefined) {
    const base = baseline?.p95Ms;
    checks.push(
      !enough || p95 === undefined || !baselineEnough || base === undefined || base <= 0
        ? {
            gate: 'latencyP95Ratio',
            verdict: 'skipped',
            threshold: latency.maxRatio,
            message: 'p95 latency vs serving revision: too few requests on one of them',
          }
        : {
            gate: 'latencyP95Ratio',
            verdict: p95 / base > latency.maxRatio ? 'fail' : 'pass',
            measured: p95 / base,
            threshold: latency.maxRatio,
            message: `p95 latency ${ms(p95)} is ${(p95 / base).toFixed(2)}× the serving revision's ${ms(base)} ${p95 / base > latency.maxRatio ? '>' : '≤'} ${latency.maxRatio}×`,
          },
    );
  }

  if (input.smoke && input.smoke.length > 0) {
    const mine = input.smoke.filter((s) => s.deployedModelId === input.candidateId);
    const failed = mine.filter((s) => !s.passed);
    checks.push(
      mine.length === 0
        ? {
            gate: 'smoke',
            verdict: 'skipped',
            message: `smoke: none of ${input.smoke.length} answers came from the new revision`,
          }
        : {
            gate: 'smoke',
            verdict: failed.length > 0 ? 'fail' : 'pass',
            measured: failed.length,
            threshold: 0,
            message:
              failed.length > 0
                ? `smoke: ${describeSmokeFailures(failed)} (answered by the new revision)`
                : `smoke: ${mine.length} answer(s) from the new revision passed`,
          },
    );
  }

  const failedChecks = checks.filter((c) => c.verdict === 'fail');
  const verdict = failedChecks.length > 0 ? 'fail' : enough ? 'pass' : 'idle';
  const summary =
    verdict === 'fail'
      ? `gate failed: ${failedChecks.map((c) => c.message).join('; ')}`
      : verdict === 'idle'
        ? checks[0]!.message
        : `gates passed: ${checks
            .filter((c) => c.verdict === 'pass')
            .map((c) => c.message)
            .join('; ')}`;
  return { verdict, checks, candidate, ...(baseline ? { baseline } : {}), summary };
}
