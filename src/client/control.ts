import {
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
  WorkflowNotFoundError,
} from '@temporalio/client';
import type { DeploymentResources } from '../activities/contract';
import { DEFAULT_TASK_QUEUE } from '../constants';
import {
  DeployStage,
  DeploymentName,
  EndpointId,
  GcpProject,
  GcpRegion,
  ModelUri,
} from '../search-attributes';
import { cancelSignal, rollbackSignal } from '../workflows/messages';
import type { teardownDeployment as teardownWorkflow } from '../workflows/teardown';
import type { AbortKind, DeploymentResult, TeardownInput, TeardownResult } from '../workflows/types';
import { DeploymentStateError } from './errors';
import { getProgress } from './progress';
import {
  DEPLOY_WORKFLOW_TYPE,
  laterTeardown,
  resolveWorkflow,
  TEARDOWN_WORKFLOW_TYPE,
  teardownWorkflowId,
} from './resolve';
import { MAX_SUMMARY_BYTES, startOrAttach } from './start';
import { truncateUtf8 } from './text';

export interface SignalledDeployment {
  workflowId: string;
  runId: string;
  /** The stage the deployment was in when the request arrived. */
  stage?: string;
}

/** Stages in which the deployment is already undoing itself: a second request would change nothing. */
const UNDOING_STAGES = new Set(['CANCELLING', 'ROLLING_BACK', 'CANCELLED', 'ROLLED_BACK', 'FAILED']);

/**
 * Stops a running deployment and removes everything it created (`cancel` signal). Throws
 * `DeploymentStateError` when it has already finished or is already undoing itself.
 */
export function cancelDeployment(client: Client, ref: string, reason?: string): Promise<SignalledDeployment> {
  return requestAbort(client, ref, 'cancel', reason);
}

/**
 * Removes everything a running deployment created, during its steps or within its rollback window
 * after success (`rollback` signal). After the window, use {@link teardownDeployment}.
 */
export function rollbackDeployment(
  client: Client,
  ref: string,
  reason?: string,
): Promise<SignalledDeployment> {
  return requestAbort(client, ref, 'rollback', reason);
}

async function requestAbort(
  client: Client,
  ref: string,
  kind: AbortKind,
  reason: string | undefined,
): Promise<SignalledDeployment> {
  const { workflowId, handle, description } = await resolveWorkflow(client, ref, DEPLOY_WORKFLOW_TYPE);
  if (description.status.name !== 'RUNNING') {
    throw new DeploymentStateError(await finishedMessage(client, kind, workflowId, handle, description));
  }
  const stage = description.typedSearchAttributes.get(DeployStage);
  if (stage && UNDOING_STAGES.has(stage)) {
    throw new DeploymentStateError(
      `${workflowId} is already undoing itself (stage ${stage}); nothing more to ${kind}. ` +
        `Follow it with \`garden-deploy watch ${workflowId}\``,
    );
  }
  try {
    await handle.signal(kind === 'cancel' ? cancelSignal : rollbackSignal, reason);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new DeploymentStateError(
        `${workflowId} finished before the ${kind} request arrived; see \`garden-deploy status ${workflowId}\``,
      );
    }
    throw err;
  }
  return { workflowId, runId: description.runId, stage };
}

/** Why a closed deployment cannot be cancelled or rolled back, and what to do instead. */
async function finishedMessage(
  client: Client,
  kind: AbortKind,
  workflowId: string,
  handle: WorkflowHandle,
  description: WorkflowExecutionDescription,
): Promise<string> {
  const status = description.status.name;
  const when = description.closeTime ? ` at ${description.closeTime.toISOString()}` : '';
  if (status === 'COMPLETED') {
    const result = (await handle.result()) as DeploymentResult;
    const teardownId = teardownWorkflowId(result.project, result.region, result.deployment);
    if (result.outcome === 'serving' && (await laterTeardown(client, teardownId, description.closeTime))) {
      return `${workflowId} was already torn down by ${teardownId}; nothing is left to ${kind}`;
    }
    if (result.outcome === 'serving') {
      return kind === 'rollback'
        ? `${workflowId} finished serving${when} and its rollback window has closed; remove it with ` +
            `\`garden-deploy teardown ${workflowId}\``
        : `${workflowId} already finished serving${when}; there is nothing to cancel. Remove it with ` +
            `\`garden-deploy teardown ${workflowId}\``;
    }
    return `${workflowId} was already ${result.outcome.replace('-', ' ')}${when}; nothing is left to ${kind}`;
  }
  if (status === 'FAILED' || status === 'CANCELLED') {
    return `${workflowId} ended ${status}${when} and removed what it had created; nothing is left to ${kind}`;
  }
  return (
    `${workflowId} ended ${status}${when} without cleaning up; remove what it created with ` +
    `\`garden-deploy teardown ${workflowId}\``
  );
}

export interface TeardownOptions {
  reason?: string;
  /** Task queue of the worker (default `garden-deploy`). */
  taskQueue?: string;
}

export interface StartedTeardown {
  /** `teardown/{project}/{region}/{name}`. */
  workflowId: string;
  runId: string;
  /** False when a teardown of this deployment was already running and the call attached to it. */
  started: boolean;
  deploymentWorkflowId: string;
  /** What the teardown removes: the deployment's recorded resources. */
  resources: DeploymentResources;
  handle: WorkflowHandle<typeof teardownWorkflow>;
}

/**
 * Removes a finished deployment from the resources its run recorded, with a `teardownDeployment`
 * workflow (`teardown/{project}/{region}/{name}`). Refuses while the deployment still runs
 * (cancel or roll it back instead), when it already removed everything, or was already torn down.
 */
export async function teardownDeployment(
  client: Client,
  ref: string,
  options: TeardownOptions = {},
): Promise<StartedTeardown> {
  const { workflowId, handle, description } = await resolveWorkflow(client, ref, DEPLOY_WORKFLOW_TYPE);
  const target = await teardownTarget(client, workflowId, handle, description);
  const teardownId = teardownWorkflowId(target.project, target.region, target.deployment);
  await refuseIfTornDown(client, teardownId, workflowId, description);
  const attributes = description.typedSearchAttributes;
  const modelUri = attributes.get(ModelUri);
  const endpointId = attributes.get(EndpointId);
  const input: TeardownInput = {
    project: target.project,
    region: target.region,
    deployment: target.deployment,
    resources: target.resources,
    consumerProject: consumerProjectOf(target.resources),
    ...(options.reason ? { reason: options.reason } : {}),
  };
  const { handle: teardown, started } = await startOrAttach<typeof teardownWorkflow>(
    client,
    TEARDOWN_WORKFLOW_TYPE,
    {
      taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
      workflowId: teardownId,
      args: [input],
      typedSearchAttributes: [
        { key: DeployStage, value: 'ROLLING_BACK' },
        { key: DeploymentName, value: target.deployment },
        { key: GcpProject, value: target.project },
        { key: GcpRegion, value: target.region },
        ...(modelUri ? [{ key: ModelUri, value: modelUri }] : []),
        ...(endpointId ? [{ key: EndpointId, value: endpointId }] : []),
      ],
      staticSummary: truncateUtf8(
        `Tear down ${target.deployment} in ${target.project}/${target.region}`,
        MAX_SUMMARY_BYTES,
      ),
      staticDetails: `Removes what deployment \`${workflowId}\` created:\n\n${Object.entries(target.resources)
        .map(([kind, name]) => `- ${kind}: \`${String(name)}\``)
        .join('\n')}\n`,
    },
  );
  return {
    workflowId: teardownId,
    runId: teardown.firstExecutionRunId,
    started,
    deploymentWorkflowId: workflowId,
    resources: target.resources,
    handle: teardown,
  };
}

interface TeardownTarget {
  project: string;
  region: string;
  deployment: string;
  resources: DeploymentResources;
}

/** What a finished deployment left behind, or why there is nothing to tear down. */
async function teardownTarget(
  client: Client,
  workflowId: string,
  handle: WorkflowHandle,
  description: WorkflowExecutionDescription,
): Promise<TeardownTarget> {
  const status = description.status.name;
  if (status === 'RUNNING') {
    const stage = description.typedSearchAttributes.get(DeployStage);
    throw new DeploymentStateError(
      stage === 'SERVING'
        ? `${workflowId} is serving within its rollback window; remove it now with ` +
            `\`garden-deploy rollback ${workflowId}\``
        : `${workflowId} is still running (stage ${stage ?? 'unknown'}); stop it and remove what it created ` +
            `with \`garden-deploy cancel ${workflowId}\`, or wait for it to finish`,
    );
  }
  if (status === 'FAILED' || status === 'CANCELLED') {
    throw new DeploymentStateError(
      `${workflowId} ended ${status} and removed what it had created; nothing to tear down`,
    );
  }
  if (status === 'COMPLETED') {
    const result = (await handle.result()) as DeploymentResult;
    if (result.outcome !== 'serving') {
      throw new DeploymentStateError(
        `${workflowId} was already ${result.outcome.replace('-', ' ')}: it removed what it had created; nothing to tear down`,
      );
    }
    return withResources(workflowId, result);
  }
  // Terminated or timed out: no compensation ran; the workflow's own record says what exists.
  const progress = (await getProgress(client, workflowId)).progress;
  if (!progress?.project || !progress.region) {
    throw new DeploymentStateError(
      `${workflowId} ended ${status} before cleaning up, and no worker answered with the resources it ` +
        'recorded; start a worker (`garden-deploy worker`) and retry',
    );
  }
  return withResources(workflowId, {
    project: progress.project,
    region: progress.region,
    deployment: progress.deployment,
    resources: progress.resources,
  });
}

function withResources(
  workflowId: string,
  recorded: { project: string; region: string; deployment: string; resources: DeploymentResources },
): TeardownTarget {
  const { resources } = recorded;
  if (!resources.endpoint && !resources.model && !resources.pscAddress && !resources.pscForwardingRule) {
    throw new DeploymentStateError(`${workflowId} recorded no resources; nothing to tear down`);
  }
  return recorded;
}

/** A teardown that ran after this deployment finished already removed it. */
async function refuseIfTornDown(
  client: Client,
  teardownId: string,
  workflowId: string,
  deployment: WorkflowExecutionDescription,
): Promise<void> {
  const previous = await laterTeardown(client, teardownId, deployment.closeTime);
  if (previous?.status.name === 'COMPLETED') {
    const result = (await client.workflow.getHandle(teardownId).result()) as TeardownResult;
    const removed = result.removed.filter((r) => r.outcome === 'removed').map((r) => r.resource);
    throw new DeploymentStateError(
      `${workflowId} was already torn down by ${teardownId} at ${previous.closeTime?.toISOString()}` +
        `${removed.length ? ` (removed ${removed.join(', ')})` : ''}; nothing left to remove`,
    );
  }
}

/** PSC resources live in the consumer project: `projects/{project}/regions/…`. */
function consumerProjectOf(resources: DeploymentResources): string | undefined {
  for (const name of [resources.pscAddress, resources.pscForwardingRule]) {
    const match = name ? /^projects\/([^/]+)\//.exec(name) : null;
    if (match) return match[1];
  }
  return undefined;
}
