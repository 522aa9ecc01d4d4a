import type { Storage } from '@google-cloud/storage';
import { z } from 'zod';
import type { GcpClient } from '../gcp';

/** Tuning of the activities; defaults suit Google (tests shrink the poll intervals). */
export const ActivityOptionsSchema = z.strictObject({
  /**
   * Backoff between reads of something Google is changing (google-api-core's LRO polling: 1 s,
   * ×1.5), capped at 10 s so a change is seen within 10 s at one read per 10 s. Operations are
   * long-polled (`:wait`) instead.
   */
  poll: z
    .strictObject({
      initialMs: z.number().int().min(1).max(60_000).default(1_000),
      factor: z.number().min(1).max(10).default(1.5),
      maxMs: z.number().int().min(1).max(300_000).default(10_000),
    })
    .refine((p) => p.maxMs >= p.initialMs, { message: 'maxMs must be ≥ initialMs', path: ['maxMs'] })
    .prefault({}),
  /**
   * How far Google's clock may run ahead of the workflow's when an unlabelled resource's
   * `createTime` is compared with the deployment's start.
   */
  clockSkewMs: z.number().int().min(0).max(3_600_000).default(120_000),
  /** Transient API failures retried in place (honouring Retry-After) before the attempt fails. */
  transientRetries: z.number().int().min(0).max(20).default(4),
});

export type ActivityOptionsInput = z.input<typeof ActivityOptionsSchema>;
export type ActivityOptions = z.output<typeof ActivityOptionsSchema>;

export interface ActivityDeps {
  /** Vertex AI, Compute and prediction calls (credentials come from ADC inside it). */
  gcp: GcpClient;
  /** Reads the model folder for validation. */
  storage: Storage;
  options?: ActivityOptionsInput;
}

/** What every activity factory receives: the deps with options resolved. */
export interface ActivityContext {
  gcp: GcpClient;
  storage: Storage;
  options: ActivityOptions;
}

export class InvalidActivityOptionsError extends Error {
  override readonly name = 'InvalidActivityOptionsError';
}

export function resolveActivityDeps(deps: ActivityDeps): ActivityContext {
  const parsed = ActivityOptionsSchema.safeParse(deps.options ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
    throw new InvalidActivityOptionsError(`invalid activity options: ${issues.join('; ')}`);
  }
  return { gcp: deps.gcp, storage: deps.storage, options: parsed.data };
}
