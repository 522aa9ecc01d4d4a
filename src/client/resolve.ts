import {
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { DeploymentSpecSchema } from '../spec';
import type { DeploymentResult } from '../workflows/types';
import { AmbiguousDeploymentError, DeploymentNotFoundError } from './errors';
import type { TeardownRecord } from './progress';
import { listRuns } from './runs';

/**
 * Workflow types of this project: the durable deployment, and garden-deploy 0.1's deployment run
 * and teardown (still registered, so runs started before the upgrade finish).
 */
export const DEPLOYMENT_WORKFLOW_TYPE = 'deployment';
export const LEGACY_DEPLOY_WORKFLOW_TYPE = 'deployModel';
export const LEGACY_TEARDOWN_WORKFLOW_TYPE = 'teardownDeployment';
/** Types whose id is `deploy/{project}/{region}/{name}`: what a deployment name resolves to. */
export const DEPLOYMENT_TYPES = [DEPLOYMENT_WORKFLOW_TYPE, LEGACY_DEPLOY_WORKFLOW_TYPE] as const;
const OUR_TYPES: readonly string[] = [...DEPLOYMENT_TYPES, LEGACY_TEARDOWN_WORKFLOW_TYPE];
/** `WorkflowType IN (...)` for visibility queries over deployments. */
export const DEPLOYMENT_TYPES_QUERY = `WorkflowType IN (${DEPLOYMENT_TYPES.map((t) => `'${t}'`).join(', ')})`;

export type WorkflowKind = 'deployment' | 'teardown';

export interface ResolvedWorkflow {
  workflowId: string;
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
}

const NAME_LOOKUP_LIMIT = 20;

/** garden-deploy 0.1's teardown of a deployment: one id per deployment, like the deployment's own. */
export function teardownWorkflowId(project: string, region: string, deployment: string): string {
  return `teardown/${project}/${region}/${deployment}`;
}

/**
 * The teardown that ran (or runs) after a deployment closed, i.e. removed that deployment's
 * resources; undefined when there is none.
 */
export async function laterTeardown(
  client: Client,
  teardownId: string,
  deploymentClosedAt: Date | undefined,
): Promise<WorkflowExecutionDescription | undefined> {
  if (!deploymentClosedAt) return undefined;
  try {
    const teardown = await client.workflow.getHandle(teardownId).describe();
    return teardown.startTime > deploymentClosedAt ? teardown : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/** A later teardown as list and status report it. */
export function teardownRecord(
  teardown: Pick<WorkflowExecutionInfo, 'workflowId' | 'status' | 'closeTime'>,
): TeardownRecord {
  return {
    workflowId: teardown.workflowId,
    status: teardown.status.name,
    closedAt: teardown.closeTime?.toISOString(),
  };
}

/**
 * Whether a closed run may have left resources behind: it was terminated or timed out (no
 * compensation ran), or it is a 0.1 run that finished serving and no later 0.1 teardown removed it.
 */
export async function leftResources(
  client: Client,
  description: WorkflowExecutionDescription,
): Promise<boolean> {
  const status = description.status.name;
  if (status === 'TERMINATED' || status === 'TIMED_OUT') return true;
  if (description.type !== LEGACY_DEPLOY_WORKFLOW_TYPE || status !== 'COMPLETED') return false;
  const result = (await client.workflow
    .getHandle(description.workflowId, description.runId)
    .result()) as DeploymentResult;
  if (result.outcome !== 'serving') return false;
  const teardown = await laterTeardown(
    client,
    teardownWorkflowId(result.project, result.region, result.deployment),
    description.closeTime,
  );
  return teardown?.status.name !== 'COMPLETED';
}

/**
 * Finds a deployment (or a 0.1 teardown, unless `kind` says otherwise) by workflow id
 * (`deploy/{project}/{region}/{name}`), or by bare deployment name when exactly one deployment
 * has that name. Describes its latest run.
 */
export async function resolveWorkflow(
  client: Client,
  ref: string,
  kind?: WorkflowKind,
): Promise<ResolvedWorkflow> {
  const trimmed = ref.trim();
  const workflowId = trimmed.includes('/') ? trimmed : await workflowIdOfName(client, trimmed);
  const handle = client.workflow.getHandle(workflowId);
  let description: WorkflowExecutionDescription;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new DeploymentNotFoundError(
        `no workflow ${workflowId} in namespace ${client.options.namespace}; check the id ` +
          '(deploy/{project}/{region}/{name}) and TEMPORAL_NAMESPACE, or run `garden-deploy list --all`',
      );
    }
    throw err;
  }
  const accepted: readonly string[] =
    kind === 'deployment'
      ? DEPLOYMENT_TYPES
      : kind === 'teardown'
        ? [LEGACY_TEARDOWN_WORKFLOW_TYPE]
        : OUR_TYPES;
  if (!accepted.includes(description.type)) {
    throw new DeploymentNotFoundError(
      `${workflowId} is a ${description.type} workflow, not a garden-deploy ${kind === 'teardown' ? 'teardown' : 'deployment'}`,
    );
  }
  return { workflowId, handle, description };
}

async function workflowIdOfName(client: Client, name: string): Promise<string> {
  if (!DeploymentSpecSchema.shape.name.safeParse(name).success) {
    throw new DeploymentNotFoundError(
      `"${name}" is neither a workflow id (deploy/{project}/{region}/{name}) nor a deployment name`,
    );
  }
  const ids = new Set<string>();
  const query = `${DEPLOYMENT_TYPES_QUERY} AND DeploymentName = '${name}'`;
  for await (const execution of listRuns(client, query, NAME_LOOKUP_LIMIT)) {
    ids.add(execution.workflowId);
    if (ids.size >= NAME_LOOKUP_LIMIT) break;
  }
  const [only, ...others] = [...ids].sort();
  if (!only) {
    throw new DeploymentNotFoundError(
      `no deployment named "${name}" in namespace ${client.options.namespace}; a deployment started ` +
        'seconds ago may not be searchable yet: use its workflow id (deploy/{project}/{region}/{name})',
    );
  }
  if (others.length > 0) throw new AmbiguousDeploymentError(name, [only, ...others]);
  return only;
}
