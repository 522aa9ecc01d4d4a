import {
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { DeploymentSpecSchema } from '../spec';
import { AmbiguousDeploymentError, DeploymentNotFoundError } from './errors';
import type { TeardownRecord } from './progress';

/** Workflow types of this project: a deployment and the teardown of a finished one. */
export const DEPLOY_WORKFLOW_TYPE = 'deployModel';
export const TEARDOWN_WORKFLOW_TYPE = 'teardownDeployment';
const OUR_TYPES = [DEPLOY_WORKFLOW_TYPE, TEARDOWN_WORKFLOW_TYPE];

export interface ResolvedWorkflow {
  workflowId: string;
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
}

const NAME_LOOKUP_LIMIT = 20;

/** The teardown of a deployment: one id per deployment, like the deployment's own. */
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
 * Finds a deployment (or a teardown, unless `type` says otherwise) by workflow id
 * (`deploy/{project}/{region}/{name}`), or by bare deployment name when exactly one deployment
 * has that name. Describes its latest run.
 */
export async function resolveWorkflow(
  client: Client,
  ref: string,
  type?: typeof DEPLOY_WORKFLOW_TYPE | typeof TEARDOWN_WORKFLOW_TYPE,
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
  const accepted = type ? [type] : OUR_TYPES;
  if (!accepted.includes(description.type)) {
    throw new DeploymentNotFoundError(
      `${workflowId} is a ${description.type} workflow, not a garden-deploy ` +
        `${type === TEARDOWN_WORKFLOW_TYPE ? 'teardown' : 'deployment'}`,
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
  const query = `WorkflowType = '${DEPLOY_WORKFLOW_TYPE}' AND DeploymentName = '${name}'`;
  for await (const execution of client.workflow.list({ query, pageSize: NAME_LOOKUP_LIMIT })) {
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
