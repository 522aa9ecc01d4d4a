import { randomUUID } from 'node:crypto';
import {
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowUpdateHandle,
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
  await throwIfRefused(client, update, workflowId, name);
  return {
    workflowId,
    runId: update.workflowRunId ?? description.runId,
    ...(stage ? { stage } : {}),
    requestId,
    result: outcomeOf(update, workflowId, name),
  };
}

/**
 * Throws at once when the deployment refused the Update. The SDK hands back a handle also for a
 * rejected Update, whose outcome then came with the answer: it settles before anything else
 * happens, while an Update still running would start a long poll, which is cut here (the caller's
 * `result()` polls again when it wants the outcome).
 */
export async function throwIfRefused(
  client: Client,
  update: WorkflowUpdateHandle<unknown>,
  workflowId: string,
  name: string,
): Promise<void> {
  const stop = new AbortController();
  const outcome = client
    .withAbortSignal(stop.signal, () => update.result())
    .then(
      () => 'settled' as const,
      (err: unknown) => ({ err }),
    );
  const early = await Promise.race([
    outcome,
    new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending'))),
  ]);
  stop.abort();
  if (typeof early === 'object') throw updateError(early.err, workflowId, name);
}

/** The Update's outcome, with a refusal or failure as the deployment's reason. */
export function outcomeOf<R>(
  update: WorkflowUpdateHandle<R>,
  workflowId: string,
  name: string,
): () => Promise<R> {
  return () => update.result().catch((err: unknown) => Promise.reject(updateError(err, workflowId, name)));
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

/** What a caller's request id (idempotency key) may look like: also safe in a URL path and a log line. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's idempotency key (the Update id): the caller's, or a new one. */
export function idOf(options: { requestId?: string }): string {
  return options.requestId ?? randomUUID();
}
