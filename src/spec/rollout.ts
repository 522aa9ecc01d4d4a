import { z } from 'zod';
import { durationField } from './duration-field';

/**
 * How an upgrade moves traffic to a new revision (`strategy`) and what must hold while it does
 * (`gates`). Part of `DeploymentSpec`; read by the upgrade of a serving deployment.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const bake = durationField({ max: DAY });

const CanarySchema = z.strictObject({
  /** Share of the traffic the new revision gets first. */
  percent: z.number().int().min(1, 'canary.percent is 1–99').max(99, 'canary.percent is 1–99'),
  /** How long it bakes there, gates evaluated throughout. */
  bake,
});

const LinearSchema = z.strictObject({
  /** Traffic added per step (25 → 25 %, 50 %, 75 %, 100 %), after the canary if there is one. */
  step: z.number().int().min(1, 'linear.step is 1–100').max(100, 'linear.step is 1–100'),
  /** Bake after each step. */
  interval: bake,
});

export const StrategySchema = z.preprocess(
  // `strategy: allAtOnce` reads better than `strategy: { allAtOnce: {} }`.
  (value) => (value === 'allAtOnce' ? { allAtOnce: {} } : value),
  z
    .strictObject({
      canary: CanarySchema.optional(),
      linear: LinearSchema.optional(),
      /** All traffic at once (after the new revision's replicas are up and its staging smoke tests passed). */
      allAtOnce: z.strictObject({}).optional(),
      /** Gates keep being evaluated this long once the new revision has all the traffic. */
      finalBake: durationField({ max: 7 * DAY }).default(0),
      /** The old revision stays deployed at 0 % this long after the shift, so a rollback is instant. */
      retainPrevious: durationField({ max: 30 * DAY }).default(0),
    })
    .superRefine((strategy, ctx) => {
      const shifting = strategy.canary !== undefined || strategy.linear !== undefined;
      if (strategy.allAtOnce !== undefined && shifting) {
        ctx.addIssue({
          code: 'custom',
          message: 'allAtOnce moves all traffic in one step: give it alone, or canary and/or linear',
        });
      } else if (strategy.allAtOnce === undefined && !shifting) {
        ctx.addIssue({
          code: 'custom',
          message: 'give canary { percent, bake }, linear { step, interval }, both, or allAtOnce',
        });
      }
    }),
);
export type Strategy = z.output<typeof StrategySchema>;

/** A share of requests, 0–1 (0.05 = 5 %). */
const ratio = z.number().min(0, 'a ratio is 0–1 (0.05 = 5 %)').max(1, 'a ratio is 0–1 (0.05 = 5 %)');

export const GatesSchema = z.strictObject({
  /** How often gates are evaluated during a bake. */
  interval: durationField({ min: 100, max: HOUR }).default(30_000),
  /**
   * Requests the new revision must have served in the window before its metrics count; with fewer
   * it is idle, and `onIdle` decides.
   */
  minRequests: z.number().int().min(0).max(1_000_000_000).default(10),
  /** An idle canary at the end of a bake: wait for an operator (`pause`), promote it anyway, or roll back. */
  onIdle: z.enum(['pause', 'promote', 'rollback']).default('pause'),
  /** Run the spec's smoke tests against the endpoint at every evaluation (answers attributed by deployed model). */
  smoke: z.boolean().default(true),
  /** Share of 5xx answers of the new revision (Cloud Monitoring `response_count`). */
  errorRatio: z
    .strictObject({
      /** Absolute ceiling. */
      max: ratio.optional(),
      /** Ceiling above the serving revision's ratio over the same window (0.01 = one point more). */
      maxIncrease: ratio.optional(),
    })
    .prefault({ max: 0.05, maxIncrease: 0.01 }),
  /** 95th percentile of the new revision's latency (Cloud Monitoring `prediction_latencies`). */
  latencyP95: z
    .strictObject({
      /** Absolute ceiling, e.g. "2s". */
      max: durationField({ max: HOUR }).optional(),
      /** Ceiling as a multiple of the serving revision's p95 over the same window, e.g. 1.5. */
      maxRatio: z.number().min(1, 'latencyP95.maxRatio is at least 1').max(1_000).optional(),
    })
    .optional(),
});
export type Gates = z.output<typeof GatesSchema>;

/** What an upgrade uses when the spec says nothing: a 10 % canary baked 5 minutes, then all traffic. */
export const DEFAULT_STRATEGY = { canary: { percent: 10, bake: '5m' } } as const;
