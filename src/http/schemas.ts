import { z } from 'zod';
import { LIST_SCOPES } from '../client/list';
import { DeploymentSpecSchema } from '../spec';
import { AbandonCleanupRequestSchema, ScaleRequestSchema } from '../spec/requests';
import { DEPLOY_STAGES } from '../workflows/types';

/**
 * The shapes of the API's parameters, bodies and answers, as zod schemas: the routes check with
 * them and the OpenAPI document is generated from them. Update arguments are the workflow's own
 * (`src/spec/requests.ts`); what the deployment answers is described in docs/contract.md.
 */

/** `/v1/deployments/{project}/{region}/{name}`: the deployment's workflow id, one segment each. */
export const DeploymentPathSchema = z.object({
  project: DeploymentSpecSchema.shape.project,
  region: DeploymentSpecSchema.shape.region,
  name: DeploymentSpecSchema.shape.name,
});
export type DeploymentPath = z.output<typeof DeploymentPathSchema>;

/** Seconds to wait for the outcome before answering `running` (202). */
export const WaitQuerySchema = z.object({
  wait: z
    .string()
    .regex(/^\d{1,2}$/, 'wait is a whole number of seconds, at most 60')
    .transform(Number)
    .pipe(z.number().max(60, 'wait is at most 60 seconds'))
    .optional()
    .describe(
      'Seconds to wait for the outcome (0-60, default 0: what the server knows within half a second); ' +
        'answered 202 `running` when it takes longer',
    ),
});

export const RequestPathSchema = DeploymentPathSchema.extend({
  requestId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,160}$/, 'a request id as the API returned it, e.g. cancel:KEY')
    .describe('The requestId an earlier call answered with'),
});

const reason = z
  .string()
  .max(500, 'reason is at most 500 characters')
  .describe('Why; recorded in the progress and the result');

/** cancel, rollback, teardown, promote, pause, resume, retry-cleanup. */
export const ControlBodySchema = z.strictObject({ reason: reason.optional() });
export const AbandonCleanupBodySchema = z.strictObject({
  reason: AbandonCleanupRequestSchema.shape.reason.pipe(reason),
});
export const ScaleBodySchema = ScaleRequestSchema.extend({ reason: reason.optional() })
  .strict()
  .refine(
    (body) => Object.keys(body).some((key) => key !== 'reason'),
    'scale needs at least one of min, max, autoscaling, containerLogging',
  );

/** The filters of `garden-deploy list`, as query parameters (visibility search attributes). */
export const ListQuerySchema = z.strictObject({
  stage: z.enum(DEPLOY_STAGES).optional().describe('DeployStage search attribute'),
  modelUri: z.string().max(1024).optional().describe('ModelUri search attribute: a gs:// prefix'),
  project: DeploymentSpecSchema.shape.project.optional().describe('GcpProject search attribute'),
  region: DeploymentSpecSchema.shape.region.optional().describe('GcpRegion search attribute'),
  name: DeploymentSpecSchema.shape.name.optional().describe('DeploymentName search attribute'),
  scope: z
    .enum(LIST_SCOPES)
    .optional()
    .describe('active (default: may hold resources), running, closed or all'),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'limit is a whole number from 1 to 1000')
    .transform(Number)
    .pipe(z.number().min(1).max(1000, 'limit is at most 1000'))
    .optional()
    .describe('At most this many (default 100)'),
});

/** A request to a deployment (one of its Updates) and where it stands. */
export const RequestStateSchema = z.object({
  requestId: z
    .string()
    .describe('The Update id: `<operation>:<Idempotency-Key>`; poll it under …/requests/{requestId}'),
  workflowId: z.string(),
  runId: z.string().optional(),
  operation: z.string(),
  stage: z.string().optional().describe('The deployment’s stage when the request was accepted'),
  state: z.enum(['running', 'done', 'failed']),
  outcome: z
    .unknown()
    .optional()
    .describe(
      'When done: the Update’s answer (DeploymentResult, UpgradeResult or ScaleOutcome; docs/contract.md)',
    ),
  error: z.string().optional().describe('When failed: why, in the deployment’s words'),
});

export const CreatedDeploymentSchema = RequestStateSchema.extend({
  started: z.boolean().describe('False when this retried call found the deployment its first call started'),
  waitingForWorker: z.boolean().describe('No worker polled the task queue; the deployment waits for one'),
});

export const DeploymentSummarySchema = z.looseObject({
  workflowId: z.string(),
  runId: z.string(),
  deployment: z.string().optional(),
  project: z.string().optional(),
  region: z.string().optional(),
  modelUri: z.string().optional(),
  stage: z.string().optional(),
  status: z.string(),
  startedAt: z.string(),
  closedAt: z.string().optional(),
});

export const DeploymentListSchema = z.object({ deployments: z.array(DeploymentSummarySchema) });

export const DeploymentStatusSchema = DeploymentSummarySchema.extend({
  percent: z.number().optional(),
  progress: z.unknown().optional().describe('The workflow’s own view (DeployProgress, docs/contract.md)'),
  steps: z.array(z.unknown()),
  activities: z.array(z.unknown()),
  result: z.unknown().optional(),
  failure: z.string().optional(),
  notes: z.array(z.string()),
}).describe('What `garden-deploy status` shows: the progress query merged with what the server knows');
