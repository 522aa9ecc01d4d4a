import { z } from 'zod';
import { DeploymentSpecSchema } from './deployment-spec';
import { AutoscalingSchema } from './serving';

/**
 * The `deployment` workflow's start input and its Updates' arguments, as zod schemas: the one
 * definition of their shapes. `src/workflows/types.ts` re-exports the types (workflow code imports
 * types only, so its bundle stays free of zod); `npm run contract` publishes their JSON Schemas for
 * clients in other languages. Descriptions are `.describe()`d so they reach those schemas too.
 */

/** The spec as the workflow takes it: parsed (defaults applied, durations in milliseconds). */
const parsedSpec = DeploymentSpecSchema.describe(
  'The DeploymentSpec as parsed: every default filled in, durations in milliseconds ' +
    '(docs/contract/deployment-spec.parsed.schema.json)',
);

/** Operator tuning of a deployment, not part of its description. */
export const DeploymentSettingsSchema = z.object({
  heartbeatTimeoutMs: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('Heartbeat timeout of long activities: how fast a dead worker is noticed (default 60 s)'),
  cleanupAttempts: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('Attempts of each compensation before the deployment reports CLEANUP_BLOCKED (default 8)'),
  cleanupRetryMs: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('First retry interval of a compensation, doubling up to a minute (default 2 s)'),
  lateResourceGraceMs: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe(
      'After a cancelled deploy operation ended, how long to wait before looking for late resources again (default 60 s)',
    ),
  stopWaitMs: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('How long a cancelled deploy operation may take to end (default 30 min)'),
  maxHistoryEvents: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('History length at which the deployment continues as new, when idle (default 10,000 events)'),
  modelUriSearchAttribute: z
    .boolean()
    .optional()
    .describe(
      'Whether the ModelUri search attribute holds the model URI (default true). Clients that encrypt payloads ' +
        'send false: search attributes are stored and shown unencrypted, in the history too',
    ),
});
export type DeploymentSettings = z.output<typeof DeploymentSettingsSchema>;

/** What a client starts the `deployment` workflow with. */
export const DeploymentStartSchema = z.object({
  spec: parsedSpec,
  settings: DeploymentSettingsSchema.optional(),
});
export type DeploymentStart = z.output<typeof DeploymentStartSchema>;

/** `deploy`: must equal the deployment's spec, or change only its model, machine or validation (an upgrade). */
export const DeployRequestSchema = z.object({ spec: parsedSpec });
export type DeployRequest = z.output<typeof DeployRequestSchema>;

/** `upgrade`: the new revision's spec. */
export const UpgradeRequestSchema = z.object({ spec: parsedSpec });
export type UpgradeRequest = z.output<typeof UpgradeRequestSchema>;

/** The control Updates (cancel, rollback, teardown, retryCleanup, promote, pause, resume). */
export const ControlRequestSchema = z.object({
  reason: z.string().optional().describe('Why; recorded in the progress and the result'),
});
export type ControlRequest = z.output<typeof ControlRequestSchema>;

/** `abandonCleanup` refuses a request without a reason: what it leaves is then the operator's. */
export const AbandonCleanupRequestSchema = z.object({
  reason: z
    .string()
    .regex(/\S/, 'say why the cleanup is abandoned')
    .describe('Why the cleanup is abandoned (required): the resources it leaves are then yours to remove'),
});

/**
 * `scale`: what changes in place on the serving deployed model. Each field left out keeps its
 * current value (`max` defaults to the current one, at least `min`).
 */
export const ScaleRequestSchema = z.object({
  min: z
    .number()
    .int()
    .min(0)
    .max(1_000)
    .optional()
    .describe('Replicas kept available; 0 only when the spec scales to zero'),
  max: z
    .number()
    .int()
    .min(1)
    .max(1_000)
    .optional()
    .describe('Autoscaling ceiling (default: the current one)'),
  autoscaling: AutoscalingSchema.optional().describe('Replaces all autoscaling targets'),
  containerLogging: z.boolean().optional().describe('Container logging on or off'),
  reason: ControlRequestSchema.shape.reason,
});
export type ScaleRequest = z.output<typeof ScaleRequestSchema>;
