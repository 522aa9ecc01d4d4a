import {
  type Client,
  type WorkflowExecutionDescription,
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { DeployStage, DeploymentName, GcpProject, GcpRegion } from '../search-attributes';
import type { deployment } from '../workflows/deployment/workflow';
import { cancelSignal, rollbackSignal } from '../workflows/legacy/signals';
import { type DeploymentUpdateName, teardownUpdate } from '../workflows/messages';
import type {
  AbortKind,
  DeploymentResult,
  DeploymentSettings,
  ScaleOutcome,
  ScaleRequest,
  TeardownResult,
} from '../workflows/types';
import { DeploymentStateError } from './errors';
import { recoveryInput } from './recovery';
import {
  DEPLOYMENT_WORKFLOW_TYPE,
  LEGACY_DEPLOY_WORKFLOW_TYPE,
  type ResolvedWorkflow,
  laterTeardown,
  leftResources,
  resolveWorkflow,
  teardownWorkflowId,
} from './resolve';
import { MAX_SUMMARY_BYTES } from './start';
import { truncateUtf8 } from './text';
import { type DeploymentRequest, idOf, throwIfRefused, outcomeOf, sendUpdate, updateError } from './updates';

/**
 * The control operations of a deployment, each mapped onto the deployment's Update (validated by
 * the deployment itself: a request that does not apply is refused with its reason). Each returns
 * once the request is accepted; `result()` resolves when it is done. A `requestId` makes a retry
 * of the same request idempotent. Deployments of garden-deploy 0.1 still running get the signals
 * they understand (cancel, rollback).
 */

export interface ControlOptions {
  /** Why; recorded in the progress and the result. */
  reason?: string;
  /** Idempotency key (the Update id); default a new UUID. */
  requestId?: string;
}

export interface TeardownOptions extends ControlOptions {
  /** Task queue for the teardown of a run that ended without cleaning up (default: that run's). */
  taskQueue?: string;
  settings?: DeploymentSettings;
}

/** Stops a deployment still deploying and removes everything it created. */
export function cancelDeployment(
  client: Client,
  ref: string,
  options: ControlOptions = {},
): Promise<DeploymentRequest> {
  return abortRequest(client, ref, 'cancel', options);
}

/** Removes everything a deployment created: while it deploys, or within its rollback window. */
export function rollbackDeployment(
  client: Client,
  ref: string,
  options: ControlOptions = {},
): Promise<DeploymentRequest> {
  return abortRequest(client, ref, 'rollback', options);
}

/** What `scaleDeployment` changes; each field left out keeps its current value. */
export type ScaleChange = Omit<ScaleRequest, 'reason'>;

/**
 * Changes replicas, autoscaling targets or container logging of a serving deployment in place.
 * The deployment checks the change (refusing it with the reason) before anything runs.
 */
export async function scaleDeployment(
  client: Client,
  ref: string,
  change: ScaleChange,
  options: ControlOptions = {},
): Promise<DeploymentRequest<ScaleOutcome>> {
  const resolved = await runningDeployment(client, ref, 'scale');
  return sendUpdate<ScaleOutcome>(
    client,
    resolved,
    'scale',
    { ...change, ...reasonOf(options) },
    idOf(options),
  );
}

/** CLEANUP_BLOCKED: runs the blocked compensations again, with a fresh retry budget. */
export function retryCleanup(
  client: Client,
  ref: string,
  options: ControlOptions = {},
): Promise<DeploymentRequest> {
  return controlUpdate(client, ref, 'retryCleanup', options);
}

/** CLEANUP_BLOCKED: stops trying; the deployment ends, listing what it leaves for you to remove. */
export async function abandonCleanup(
  client: Client,
  ref: string,
  options: ControlOptions & { reason: string },
): Promise<DeploymentRequest> {
  return controlUpdate(client, ref, 'abandonCleanup', options);
}

/** An Update whose only argument is the request's reason, to a deployment that still runs. */
export async function controlUpdate<R = DeploymentResult>(
  client: Client,
  ref: string,
  name: DeploymentUpdateName,
  options: ControlOptions,
): Promise<DeploymentRequest<R>> {
  const resolved = await runningDeployment(client, ref, name);
  return sendUpdate<R>(client, resolved, name, reasonOf(options), idOf(options));
}

/**
 * Removes a deployment and everything it owns (`teardown` Update) and ends it. A run that ended
 * without cleaning up (terminated, timed out, or a 0.1 deployment that finished serving) is
 * recovered: a new run of the deployment finds everything that run could have created (its
 * recorded resources, the derived ids, its identity labels) and removes what is provably its.
 */
export async function teardownDeployment(
  client: Client,
  ref: string,
  options: TeardownOptions = {},
): Promise<DeploymentRequest> {
  const resolved = await resolveWorkflow(client, ref, 'deployment');
  const { workflowId, description } = resolved;
  if (description.status.name === 'RUNNING') {
    if (description.type === DEPLOYMENT_WORKFLOW_TYPE)
      return sendUpdate(client, resolved, 'teardown', reasonOf(options), idOf(options));
    throw new DeploymentStateError(legacyRunningMessage(workflowId, description));
  }
  if (!(await leftResources(client, description)))
    throw new DeploymentStateError(await closedMessage(client, resolved, 'tear down'));
  await refuseIfLegacyTeardownRuns(client, resolved);
  const recover = await recoveryInput(client, resolved, options.reason);
  if (!recover) {
    throw new DeploymentStateError(
      `${workflowId} ended ${description.status.name} before it created anything; nothing to tear down`,
    );
  }
  const requestId = idOf(options);
  const start = new WithStartWorkflowOperation<typeof deployment>(DEPLOYMENT_WORKFLOW_TYPE, {
    taskQueue: options.taskQueue ?? description.taskQueue,
    workflowId,
    args: [{ recover, ...(options.settings ? { settings: options.settings } : {}) }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [
      { key: DeployStage, value: 'TEARING_DOWN' },
      { key: DeploymentName, value: recover.deployment },
      { key: GcpProject, value: recover.project },
      { key: GcpRegion, value: recover.region },
    ],
    staticSummary: truncateUtf8(
      `Tear down ${recover.deployment} (left by ${description.status.name.toLowerCase()} run ${description.runId})`,
      MAX_SUMMARY_BYTES,
    ),
    staticDetails:
      `Removes what run \`${description.runId}\` of \`${workflowId}\` (${description.type}, ${description.status.name}) ` +
      `could have created, checked against its identity:\n\n${Object.entries(recover.resources)
        .map(([kind, name]) => `- ${kind}: \`${String(name)}\``)
        .join('\n')}\n`,
  });
  let update;
  try {
    update = await client.workflow.startUpdateWithStart(teardownUpdate, {
      args: [reasonOf(options)],
      waitForStage: 'ACCEPTED',
      startWorkflowOperation: start,
      updateId: requestId,
    });
  } catch (err) {
    throw updateError(err, workflowId, 'teardown');
  }
  await throwIfRefused(client, update, workflowId, 'teardown');
  return {
    workflowId,
    runId: update.workflowRunId ?? '',
    stage: 'TEARING_DOWN',
    requestId,
    result: outcomeOf(update, workflowId, 'teardown'),
  };
}

async function abortRequest(
  client: Client,
  ref: string,
  kind: AbortKind,
  options: ControlOptions,
): Promise<DeploymentRequest> {
  const resolved = await resolveWorkflow(client, ref, 'deployment');
  const { description } = resolved;
  if (description.status.name !== 'RUNNING')
    throw new DeploymentStateError(await closedMessage(client, resolved, kind));
  if (description.type === LEGACY_DEPLOY_WORKFLOW_TYPE) return legacyAbort(client, resolved, kind, options);
  return sendUpdate(client, resolved, kind, reasonOf(options), idOf(options));
}

/** The running deployment `ref` names, refused (with what to do) when it ended or is a 0.1 run. */
export async function runningDeployment(
  client: Client,
  ref: string,
  what: string,
): Promise<ResolvedWorkflow> {
  const resolved = await resolveWorkflow(client, ref, 'deployment');
  const { workflowId, description } = resolved;
  if (description.status.name !== 'RUNNING')
    throw new DeploymentStateError(await closedMessage(client, resolved, what));
  if (description.type === LEGACY_DEPLOY_WORKFLOW_TYPE) {
    throw new DeploymentStateError(
      `${workflowId} was started by garden-deploy 0.1, which has no ${what}; it finishes on its own ` +
        `(cancel and rollback still reach it)`,
    );
  }
  return resolved;
}

/** Stages in which a 0.1 deployment is already undoing itself: a second request would change nothing. */
const LEGACY_UNDOING_STAGES = new Set(['CANCELLING', 'ROLLING_BACK', 'CANCELLED', 'ROLLED_BACK', 'FAILED']);

/** 0.1 deployments understand signals only; their outcome is the workflow's result. */
async function legacyAbort(
  client: Client,
  { workflowId, description }: ResolvedWorkflow,
  kind: AbortKind,
  options: ControlOptions,
): Promise<DeploymentRequest> {
  const stage = description.typedSearchAttributes.get(DeployStage);
  if (stage && LEGACY_UNDOING_STAGES.has(stage)) {
    throw new DeploymentStateError(
      `${workflowId} is already undoing itself (stage ${stage}); nothing more to ${kind}. ` +
        `Follow it with \`garden-deploy watch ${workflowId}\``,
    );
  }
  const handle = client.workflow.getHandle(workflowId, description.runId);
  try {
    await handle.signal(kind === 'cancel' ? cancelSignal : rollbackSignal, options.reason);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new DeploymentStateError(
        `${workflowId} finished before the ${kind} request arrived; see \`garden-deploy status ${workflowId}\``,
      );
    }
    throw err;
  }
  return {
    workflowId,
    runId: description.runId,
    ...(stage ? { stage } : {}),
    requestId: idOf(options),
    result: () => handle.result() as Promise<DeploymentResult>,
  };
}

function legacyRunningMessage(workflowId: string, description: WorkflowExecutionDescription): string {
  const stage = description.typedSearchAttributes.get(DeployStage);
  return stage === 'SERVING'
    ? `${workflowId} (garden-deploy 0.1) is serving within its rollback window; remove it now with ` +
        `\`garden-deploy rollback ${workflowId}\`, or tear it down once the window has closed`
    : `${workflowId} (garden-deploy 0.1) is still running (stage ${stage ?? 'unknown'}); stop it and remove what ` +
        `it created with \`garden-deploy cancel ${workflowId}\`, or wait for it to finish`;
}

/** A 0.1 teardown of this deployment still running removes it already. */
async function refuseIfLegacyTeardownRuns(client: Client, { workflowId, description }: ResolvedWorkflow) {
  if (description.type !== LEGACY_DEPLOY_WORKFLOW_TYPE) return;
  const result = (await client.workflow
    .getHandle(workflowId, description.runId)
    .result()
    .catch(() => undefined)) as DeploymentResult | undefined;
  if (!result) return;
  const teardownId = teardownWorkflowId(result.project, result.region, result.deployment);
  const teardown = await laterTeardown(client, teardownId, description.closeTime);
  if (teardown?.status.name === 'RUNNING') {
    throw new DeploymentStateError(
      `${teardownId} (garden-deploy 0.1) is removing ${workflowId} already; follow it with \`garden-deploy watch ${teardownId}\``,
    );
  }
}

/** Why a deployment that has ended cannot take the request, and what to do instead. */
async function closedMessage(client: Client, resolved: ResolvedWorkflow, what: string): Promise<string> {
  const { workflowId, description } = resolved;
  const status = description.status.name;
  const when = description.closeTime ? ` at ${description.closeTime.toISOString()}` : '';
  if (status === 'TERMINATED' || status === 'TIMED_OUT') {
    return (
      `${workflowId} ended ${status}${when} without cleaning up; remove what it created with ` +
      `\`garden-deploy teardown ${workflowId}\``
    );
  }
  if (status === 'COMPLETED') {
    const result = (await client.workflow.getHandle(workflowId, description.runId).result()) as
      DeploymentResult | TeardownResult;
    if ('outcome' in result && result.outcome === 'serving') {
      const torn = await laterTeardown(
        client,
        teardownWorkflowId(result.project, result.region, result.deployment),
        description.closeTime,
      );
      if (torn)
        return `${workflowId} was already torn down by ${torn.workflowId}; nothing is left to ${what}`;
      return (
        `${workflowId} (garden-deploy 0.1) finished serving${when}; there is nothing to ${what}. Remove it with ` +
        `\`garden-deploy teardown ${workflowId}\``
      );
    }
    const outcome = 'outcome' in result ? result.outcome.replace('-', ' ') : 'torn down';
    const left = 'removed' in result ? result.removed.filter((r) => r.outcome === 'abandoned') : [];
    return (
      `${workflowId} already ended (${outcome})${when}; nothing is left to ${what}` +
      (left.length ? ` (its cleanup was abandoned, leaving ${left.map((r) => r.resource).join(', ')})` : '')
    );
  }
  return `${workflowId} ended ${status}${when} and removed what it had created; nothing is left to ${what}`;
}

function reasonOf(options: ControlOptions): { reason?: string } {
  return options.reason ? { reason: options.reason } : {};
}
