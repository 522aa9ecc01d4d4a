import {
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { DeployStage } from '../search-attributes';
import { DEPLOYMENT_UPDATES, type DeploymentUpdateName } from '../workflows/messages';
import type { DeploymentResult } from '../workflows/types';
import { DeploymentStateError } from './errors';
import { firstLine } from './text';

/**
 * Sending the deployment's Updates: a rejected request becomes a `DeploymentStateError` with the
 * deployment's own reason, and a request to a deployment that has ended says how it ended.
 */

/** An accepted request to a deployment, and its outcome when it is done. */
export interface DeploymentRequest<R = DeploymentResult> {
  workflowId: string;
  runId: string;
  /** The stage when the request was accepted. */
  stage?: string;
  /** The request id (the Update id): sending the same request with it again gets the same answer. */
  requestId: string;
  /** Resolves with the outcome once the operation is done; rejects with `DeploymentStateError` when it failed. */
  result(): Promise<R>;
}

/** Sends Update `name` to the running deployment and waits until it is accepted (or rejected). */
export async function sendUpdate<R>(
  client: Client,
  resolved: { workflowId: string; description: WorkflowExecutionDescription },
  name: DeploymentUpdateName,
  arg: unknown,
  requestId: string,
): Promise<DeploymentRequest<R>> {
  const { workflowId, description } = resolved;
  const handle: WorkflowHandle = client.workflow.getHandle(workflowId);
  const stage = description.typedSearchAttributes.get(DeployStage);
  let update;
  try {
    update = await handle.startUpdate<R, [unknown]>(DEPLOYMENT_UPDATES[name].name, {
      args: [arg],
      waitForStage: 'ACCEPTED',
      updateId: requestId,
    });
  } catch (err) {
    throw updateError(err, workflowId, name);
  }
  const { outcome } = await refusedAtOnce(update.result(), workflowId, name);
  return {
    workflowId,
    runId: update.workflowRunId ?? description.runId,
    ...(stage ? { stage } : {}),
    requestId,
    result: () => outcome,
  };
}

/**
 * The outcome of an Update, throwing at once when the deployment refused it. The SDK returns a
 * handle also for a rejected Update, whose outcome then came with the answer: it settles before
 * anything else happens (no further call is made), so a refusal is seen here and thrown, and a
 * request still running is handed back as a promise.
 */
export async function refusedAtOnce<R>(
  outcome: Promise<R>,
  workflowId: string,
  name: string,
): Promise<{ outcome: Promise<R> }> {
  const mapped = outcome.catch((err: unknown) => Promise.reject(updateError(err, workflowId, name)));
  mapped.catch(() => undefined);
  const early = await Promise.race([
    mapped.then(
      () => 'done' as const,
      (err: unknown) => ({ err }),
    ),
    new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending'))),
  ]);
  if (typeof early === 'object') throw early.err;
  return { outcome: mapped };
}

/** A rejected or failed Update as the deployment's own reason; a finished deployment as such. */
export function updateError(err: unknown, workflowId: string, name: string): unknown {
  if (err instanceof WorkflowUpdateFailedError) {
    return new DeploymentStateError(err.cause?.message || err.message);
  }
  if (err instanceof WorkflowNotFoundError || /already completed|not found/i.test(firstLine(err))) {
    return new DeploymentStateError(
      `${workflowId} ended before the ${name} request arrived; see \`garden-deploy status ${workflowId}\``,
    );
  }
  return err;
}
