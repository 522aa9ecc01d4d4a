import type { Client, WorkflowExecutionInfo, WorkflowExecutionStatusName } from '@temporalio/client';
import { z } from 'zod';
import { DeploymentName, GcpProject, GcpRegion, ModelUri } from '../search-attributes';
import { DeploymentSpecSchema } from '../spec';
import { DEPLOY_STAGES, type DeployStage as Stage } from '../workflows/types';
import { deploymentAttributes } from './attributes';
import { InvalidFilterError } from './errors';
import type { TeardownRecord } from './progress';
import {
  DEPLOYMENT_TYPES_QUERY,
  LEGACY_DEPLOY_WORKFLOW_TYPE,
  LEGACY_TEARDOWN_WORKFLOW_TYPE,
  teardownRecord,
  teardownWorkflowId,
} from './resolve';
import { listRuns } from './runs';

/**
 * Which deployments to list: `active` (the default) = running, or ended without removing what it
 * created (terminated, or a 0.1 deployment that served and was not torn down), i.e.
 * everything that may hold resources; `running`; `closed`; `all`.
 */
export const LIST_SCOPES = ['active', 'running', 'closed', 'all'] as const;
export type ListScope = (typeof LIST_SCOPES)[number];

// Values are quoted into a visibility query: only characters that cannot end the literal.
const noQuotes = (what: string) =>
  z.string().refine((value) => !/['"\\]/.test(value), `${what} cannot contain quotes or backslashes`);

export const ListFiltersSchema = z.strictObject({
  stage: z.enum(DEPLOY_STAGES, { message: `stage must be one of ${DEPLOY_STAGES.join(', ')}` }).optional(),
  /** A `gs://` prefix: every deployment whose model URI starts with it. */
  modelUri: noQuotes('the model URI')
    .pipe(z.string().startsWith('gs://', 'the model URI filter is a gs:// prefix, e.g. gs://bucket/models/'))
    .optional(),
  region: DeploymentSpecSchema.shape.region.optional(),
  project: DeploymentSpecSchema.shape.project.optional(),
  name: DeploymentSpecSchema.shape.name.optional(),
  scope: z.enum(LIST_SCOPES, { message: `scope must be one of ${LIST_SCOPES.join(', ')}` }).default('active'),
  /** At most this many deployments (default 100). */
  limit: z.number().int().min(1).max(1_000).default(100),
});
export type ListFilters = z.input<typeof ListFiltersSchema>;

export interface DeploymentSummary {
  workflowId: string;
  runId: string;
  /** `deployment`, or `deployModel` for a run of garden-deploy 0.1. */
  workflowType: string;
  deployment?: string;
  project?: string;
  region?: string;
  modelUri?: string;
  endpointId?: string;
  stage?: Stage;
  status: WorkflowExecutionStatusName;
  startedAt: string;
  closedAt?: string;
  /** A 0.1 teardown started after this 0.1 deployment finished serving. */
  teardown?: TeardownRecord;
}

/**
 * Deployments matching the filters, newest first, latest run per deployment. Uses the visibility
 * store, which is eventually consistent: a change may take a moment to show.
 */
export async function listDeployments(
  client: Client,
  filters: ListFilters = {},
): Promise<DeploymentSummary[]> {
  const parsed = ListFiltersSchema.safeParse(filters);
  if (!parsed.success) {
    throw new InvalidFilterError(
      `invalid list filters: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(filters)'}: ${i.message}`).join('; ')}`,
    );
  }
  const { scope, limit, stage, ...by } = parsed.data;
  // Stage and scope describe a deployment's latest run, so they are applied once that is known.
  const query = [
    DEPLOYMENT_TYPES_QUERY,
    ...(by.name ? [`${DeploymentName.name} = '${by.name}'`] : []),
    ...(by.project ? [`${GcpProject.name} = '${by.project}'`] : []),
    ...(by.region ? [`${GcpRegion.name} = '${by.region}'`] : []),
    ...(by.modelUri ? [`${ModelUri.name} STARTS_WITH '${by.modelUri}'`] : []),
  ].join(' AND ');

  const latest = new Map<string, DeploymentSummary>();
  let scanned = 0;
  for await (const execution of listRuns(client, query)) {
    if (++scanned > MAX_SCANNED_RUNS) break;
    const known = latest.get(execution.workflowId);
    if (!known || known.startedAt < execution.startTime.toISOString())
      latest.set(execution.workflowId, summaryOf(execution));
  }
  const summaries = [...latest.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
  await attachTeardowns(client, summaries);
  return summaries.filter((s) => (stage ? s.stage === stage : true) && inScope(s, scope)).slice(0, limit);
}

/** Runs read from the visibility store per listing, at most. */
const MAX_SCANNED_RUNS = 10_000;

/**
 * `active`: may hold resources: running, ended without cleaning up (terminated, timed out), or a
 * 0.1 deployment that finished serving and was not torn down.
 */
function inScope(summary: DeploymentSummary, scope: ListScope): boolean {
  const running = summary.status === 'RUNNING';
  switch (scope) {
    case 'all':
      return true;
    case 'running':
      return running;
    case 'closed':
      return !running;
    case 'active':
      return (
        running ||
        summary.status === 'TERMINATED' ||
        summary.status === 'TIMED_OUT' ||
        (summary.workflowType === LEGACY_DEPLOY_WORKFLOW_TYPE &&
          summary.status === 'COMPLETED' &&
          summary.stage === 'SERVING' &&
          summary.teardown?.status !== 'COMPLETED')
      );
  }
}

function summaryOf(execution: WorkflowExecutionInfo): DeploymentSummary {
  return {
    workflowId: execution.workflowId,
    runId: execution.runId,
    workflowType: execution.type,
    ...deploymentAttributes(execution.typedSearchAttributes),
    status: execution.status.name,
    startedAt: execution.startTime.toISOString(),
    closedAt: execution.closeTime?.toISOString(),
  };
}

const ID_BATCH = 50;

/** Marks finished serving deployments that a later teardown removed (or is removing). */
async function attachTeardowns(client: Client, summaries: DeploymentSummary[]): Promise<void> {
  const served = new Map<string, DeploymentSummary>();
  for (const summary of summaries) {
    if (summary.workflowType !== LEGACY_DEPLOY_WORKFLOW_TYPE) continue;
    if (summary.status !== 'COMPLETED' || summary.stage !== 'SERVING') continue;
    if (!summary.project || !summary.region || !summary.deployment) continue;
    served.set(teardownWorkflowId(summary.project, summary.region, summary.deployment), summary);
  }
  // Attribute values set by other tools could hold quotes; such ids are not ours to query.
  const ids = [...served.keys()].filter((id) => !/['\\]/.test(id));
  for (let i = 0; i < ids.length; i += ID_BATCH) {
    const batch = ids.slice(i, i + ID_BATCH).map((id) => `'${id}'`);
    const query = `WorkflowType = '${LEGACY_TEARDOWN_WORKFLOW_TYPE}' AND WorkflowId IN (${batch.join(', ')})`;
    for await (const teardown of listRuns(client, query)) {
      const deployment = served.get(teardown.workflowId);
      if (!deployment?.closedAt || teardown.startTime.toISOString() < deployment.closedAt) continue;
      if (deployment.teardown && deployment.teardown.status === 'COMPLETED') continue;
      deployment.teardown = teardownRecord(teardown);
    }
  }
}
