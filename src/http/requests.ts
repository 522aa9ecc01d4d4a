import type { Client } from '@temporalio/client';
import { type DeploymentRequest, acceptedRequestArgument, requestState, settleRequest } from '../client';
import { canonicalDigest } from '../client/start';
import type { RouteAnswer } from './api';
import { IdempotencyKeyReusedError } from './errors';

/**
 * Idempotency of the requests sent to a deployment: the Idempotency-Key becomes the Update id,
 * namespaced by operation (`cancel:KEY`). Before sending, the history is searched for the argument
 * the id was accepted with: the same key for another body is refused instead of silently answering
 * the first request, and the same request again is not sent again but answered from where the first
 * one stands (`requestState`), also when the deployment has ended since (a teardown retried after
 * the deployment completed is its first call's `torn-down`, not a refusal from a closed run).
 */
export async function requestOnce<R>(
  client: Client,
  workflowId: string,
  operation: string,
  key: string,
  argument: unknown,
  waitMs: number,
  send: (requestId: string) => Promise<DeploymentRequest<R>>,
): Promise<RouteAnswer> {
  const requestId = `${operation}:${key}`;
  const earlier = await acceptedRequestArgument(client, workflowId, requestId);
  if (!earlier) return answerRequest(client, operation, await send(requestId), waitMs);
  if (canonicalDigest(earlier.argument) !== canonicalDigest(argument))
    throw new IdempotencyKeyReusedError(`${operation} of ${workflowId}`);
  const state = await requestState(client, workflowId, requestId, waitMs);
  return {
    status: state.state === 'running' ? 202 : 200,
    body: { requestId, workflowId, operation, ...state },
  };
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
