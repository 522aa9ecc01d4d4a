import { type Client, WorkflowNotFoundError, isGrpcServiceError } from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import { DeploymentStateError, RequestNotFoundError } from './errors';
import { updateError } from './updates';

/**
 * A request already sent to a deployment (an Update, by its id): its state now or within a wait,
 * and the argument it was accepted with, so a caller retrying with the same idempotency key can be
 * told whether it repeats the request or reuses the key for another one.
 */

export type RequestState<R = unknown> =
  { state: 'running' } | { state: 'done'; outcome: R } | { state: 'failed'; error: string };

/**
 * A wait shorter than this still gets the server's answer for a request that is done (or unknown):
 * polling one takes a round trip, so a wait of 0 would always say `running`.
 */
export const MIN_REQUEST_WAIT_MS = 500;

/**
 * Waits up to `waitMs` (at least {@link MIN_REQUEST_WAIT_MS}) for `result` (a
 * `DeploymentRequest.result`): its outcome, its failure (the deployment's reason), or `running`
 * when it takes longer. The long poll behind it is cut then.
 */
export async function settleRequest<R>(
  client: Client,
  result: () => Promise<R>,
  waitMs: number,
): Promise<RequestState<R>> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), Math.max(waitMs, MIN_REQUEST_WAIT_MS));
  try {
    const outcome = await client.withAbortSignal(stop.signal, result);
    return { state: 'done', outcome };
  } catch (err) {
    if (stop.signal.aborted) return { state: 'running' };
    if (err instanceof DeploymentStateError) return { state: 'failed', error: err.message };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The state of request `requestId` (an Update id) of the deployment's latest run, waiting up to `waitMs`. */
export async function requestState(
  client: Client,
  workflowId: string,
  requestId: string,
  waitMs: number,
): Promise<RequestState> {
  const update = client.workflow.getHandle(workflowId).getUpdateHandle(requestId);
  return settleRequest(
    client,
    () =>
      update
        .result()
        .catch((err: unknown) =>
          Promise.reject(notFound(err, workflowId, requestId) ?? updateError(err, workflowId, 'request')),
        ),
    waitMs,
  );
}

function notFound(err: unknown, workflowId: string, requestId: string): RequestNotFoundError | undefined {
  if (!(err instanceof WorkflowNotFoundError || isNotFound(err))) return undefined;
  return new RequestNotFoundError(
    `no request ${requestId} in the latest run of ${workflowId}; a refused ` +
      'request leaves none, and a deployment that continued as new answers only requests sent again',
  );
}

/** gRPC's NOT_FOUND: an Update id the server does not know. */
const GRPC_NOT_FOUND = 5;

function isNotFound(err: unknown): boolean {
  return isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND;
}

/** How many history events are read at most when looking for an accepted request. */
const MAX_HISTORY_EVENTS = 50_000;

/**
 * The argument request `requestId` was accepted with in the deployment's latest run, decoded with
 * the client's data converter (so also when payloads are encrypted); `undefined` when it has none
 * (never sent, refused, or sent to an earlier run).
 */
export async function acceptedRequestArgument(
  client: Client,
  workflowId: string,
  requestId: string,
): Promise<{ argument: unknown } | undefined> {
  let history;
  try {
    history = await client.workflow.getHandle(workflowId).fetchHistory();
  } catch (err) {
    // fetchHistory hands the server's NOT_FOUND through as is.
    if (err instanceof WorkflowNotFoundError || isNotFound(err)) return undefined;
    throw err;
  }
  for (const event of (history.events ?? []).slice(0, MAX_HISTORY_EVENTS)) {
    const accepted = event.workflowExecutionUpdateAcceptedEventAttributes;
    if (accepted?.acceptedRequest?.meta?.updateId !== requestId) continue;
    const [argument] = await decodeArrayFromPayloads(
      client.options.loadedDataConverter,
      accepted.acceptedRequest.input?.args?.payloads,
    );
    return { argument };
  }
  return undefined;
}
