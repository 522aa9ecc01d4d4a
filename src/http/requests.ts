import type { Client } from '@temporalio/client';
import { type DeploymentRequest, acceptedRequestArgument, settleRequest } from '../client';
import { canonicalDigest } from '../client/start';
import type { RouteAnswer } from './api';
import { IdempotencyKeyReusedError } from './errors';

/**
 * Idempotency of the requests sent to a deployment: the Idempotency-Key becomes the Update id,
 * namespaced by operation (`cancel:KEY`), so Temporal itself dedupes a retry within the run and
 * answers it with the first one's outcome, also after this server restarted. Before sending, the
 * argument the id was accepted with (read back from the history) is compared with this one: the
 * same key for another body is refused instead of silently answering the first request.
 */
export async function sendOnce<R>(
  client: Client,
  workflowId: string,
  operation: string,
  key: string,
  argument: unknown,
  send: (requestId: string) => Promise<DeploymentRequest<R>>,
): Promise<DeploymentRequest<R>> {
  const requestId = `${operation}:${key}`;
  const earlier = await acceptedRequestArgument(client, workflowId, requestId);
  if (earlier && canonicalDigest(earlier.argument) !== canonicalDigest(argument))
    throw new IdempotencyKeyReusedError(`${operation} of ${workflowId}`);
  return send(requestId);
}

/** An accepted request as the API answers it: 200 with its outcome when it came within the wait, else 202. */
export async function answerRequest<R>(
  client: Client,
  operation: string,
  request: DeploymentRequest<R>,
  waitMs: number,
): Promise<RouteAnswer> {
  const state = await settleRequest(client, request.result, waitMs);
  return {
    status: state.state === 'running' ? 202 : 200,
    body: {
      requestId: request.requestId,
      workflowId: request.workflowId,
      runId: request.runId,
      operation,
      ...(request.stage ? { stage: request.stage } : {}),
      ...state,
    },
  };
}

export function waitMsOf(query: { wait?: number } | undefined): number {
  return (query?.wait ?? 0) * 1000;
}
