import { describe, expect, it } from 'vitest';
import { judgeGates } from '../../src/rollout/gates';
import { describeStrategy, splitFor, trafficSteps } from '../../src/rollout/plan';
import { GatesSchema, StrategySchema, formatDuration } from '../../src/spec';

const strategy = (input: unknown) => StrategySchema.parse(input);
const gates = (input: unknown = {}) => GatesSchema.parse(input);

describe('traffic steps of a strategy', () => {
  it('canary then linear: the canary share, each multiple of the step above it, then 100 % with the final bake', () => {
    const steps = trafficSteps(
      strategy({
        canary: { percent: 10, bake: '2m' },
        linear: { step: 25, interval: '1m' },
        finalBake: '30s',
      }),
    );
    expect(steps.map((s) => [s.percent, s.bakeMs])).toEqual([
      [10, 120_000],
      [25, 60_000],
      [50, 60_000],
      [75, 60_000],
      [100, 30_000],
    ]);
    expect(describeStrategy(strategy({ canary: { percent: 10, bake: '2m' } }), formatDuration)).toBe(
      '10 % (bake 2m) → 100 %',
    );
  });

  it('allAtOnce is one step to 100 %, also written as a bare word; a canary at a multiple of the step is not repeated', () => {
    expect(trafficSteps(strategy('allAtOnce'))).toEqual([{ percent: 100, bakeMs: 0, kind: 'allAtOnce' }]);
    const steps = trafficSteps(
      strategy({ canary: { percent: 50, bake: '1s' }, linear: { step: 50, interval: '1s' } }),
    );
    expect(steps.map((s) => s.percent)).toEqual([50, 100]);
  });

  it('refuses a strategy that shifts nothing or mixes allAtOnce with steps, and out-of-range shares', () => {
    expect(() => strategy({})).toThrow(/canary.*linear.*allAtOnce/);
    expect(() => strategy({ allAtOnce: {}, canary: { percent: 5, bake: 0 } })).toThrow(/allAtOnce/);
    expect(() => strategy({ canary: { percent: 100, bake: '1m' } })).toThrow(/1–99/);
    expect(() => strategy({ linear: { step: 0, interval: '1m' } })).toThrow(/1–100/);
  });

  it('splits traffic between the serving and the new deployed model', () => {
    expect(splitFor('111', '222', 10)).toEqual({ '111': 90, '222': 10 });
  });
});

describe('gates', () => {
  const healthy = { requests: 200, errors: 0, p95Ms: 100 };

  it('a revision failing 20 % of its requests fails the absolute and the relative error gate, with the numbers', () => {
    const report = judgeGates({
      gates: gates(),
      candidate: { requests: 50, errors: 10, p95Ms: 90 },
      baseline: healthy,
      candidateId: '222',
    });
    expect(report.verdict).toBe('fail');
    expect(report.checks.filter((c) => c.verdict === 'fail').map((c) => c.gate)).toEqual([
      'errorRatio',
      'errorRatioIncrease',
    ]);
    expect(report.summary).toMatch(/error ratio 20\.0 % \(10\/50 5xx\) > 5\.00 %/);
  });

  it('a slow revision fails the p95 gates, absolute and relative to the serving revision', () => {
    const report = judgeGates({
      gates: gates({ latencyP95: { max: '500ms', maxRatio: 2 } }),
      candidate: { requests: 40, errors: 0, p95Ms: 900 },
      baseline: healthy,
      candidateId: '222',
    });
    expect(report.verdict).toBe('fail');
    expect(report.summary).toMatch(/p95 latency 900 ms > 500 ms/);
    expect(report.summary).toMatch(/9\.00× the serving revision's 100 ms > 2×/);
  });

  it('an idle canary is idle, not passing, and its metric gates are skipped', () => {
    const report = judgeGates({
      gates: gates({ minRequests: 20 }),
      candidate: { requests: 3, errors: 3 },
      candidateId: '2',
    });
    expect(report.verdict).toBe('idle');
    expect(report.summary).toMatch(/idle: 3 requests served, fewer than the 20/);
    expect(report.checks.find((c) => c.gate === 'errorRatio')?.verdict).toBe('skipped');
  });

  it('smoke answers count against the revision that served them only', () => {
    const smoke = [
      { name: 'hello', passed: false, deployedModelId: '111', failure: 'empty' },
      { name: 'hello', passed: true, deployedModelId: '222' },
    ];
    const passing = judgeGates({
      gates: gates(),
      candidate: healthy,
      baseline: healthy,
      candidateId: '222',
      smoke,
    });
    expect(passing.verdict).toBe('pass');
    const failing = judgeGates({
      gates: gates(),
      candidate: healthy,
      baseline: healthy,
      candidateId: '111',
      smoke,
    });
    expect(failing.verdict).toBe('fail');
    expect(failing.summary).toMatch(/smoke: "hello": empty \(answered by the new revision\)/);
  });

  it('relative gates are skipped when the serving revision had too little traffic (e.g. at 100 %)', () => {
    const report = judgeGates({
      gates: gates({ errorRatio: { maxIncrease: 0.01 } }),
      candidate: { requests: 100, errors: 3 },
      baseline: { requests: 0, errors: 0 },
      candidateId: '2',
    });
    expect(report.verdict).toBe('pass');
    expect(report.checks.find((c) => c.gate === 'errorRatioIncrease')?.verdict).toBe('skipped');
  });
});
