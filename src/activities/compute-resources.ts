import { activityInfo } from '@temporalio/activity';
import { type ComputeOperation, computeOperationError, computeRequestId, isNotFound } from '../gcp';
import type { ActivityContext } from './deps';
import { callOptions, pollUntil } from './runtime';

/** Helpers for the PSC consumer resources (Compute Engine), shared by the PSC step and its compensations. */

export interface RegionalRef {
  project: string;
  region: string;
  name: string;
}

export type PscKind = 'addresses' | 'forwardingRules';

export function computeName(kind: PscKind, ref: RegionalRef): string {
  return `projects/${ref.project}/regions/${ref.region}/${kind}/${ref.name}`;
}

const NAME_RE =
  /^(?:https:\/\/[^/]+\/compute\/v1\/)?projects\/([^/]+)\/regions\/([^/]+)\/(addresses|forwardingRules)\/([^/]+)$/;

/** `projects/P/regions/R/{kind}/N` (or its URL) → its parts; undefined when it is not one. */
export function parseComputeName(kind: PscKind, name: string): RegionalRef | undefined {
  const match = NAME_RE.exec(name);
  if (!match || match[3] !== kind) return undefined;
  return { project: match[1]!, region: match[2]!, name: match[4]! };
}

/** Strips the API prefix of a Compute URL (`target`, `IPAddress` may come back as URLs). */
export function relativeComputeName(value: string): string {
  return value.replace(/^https:\/\/[^/]+\/compute\/v1\//, '');
}

/**
 * A `requestId` for one Compute mutation of this workflow run: a retried attempt sends the same
 * id, so Compute treats the repeat as the same request.
 */
export function runRequestId(purpose: string): string {
  const info = activityInfo();
  const run = info.workflowExecution
    ? `${info.workflowExecution.workflowId}/${info.workflowExecution.runId}`
    : info.activityId;
  return computeRequestId(`${run}/${purpose}`);
}

/** Waits for a Compute operation to be DONE; returns its error (DONE does not mean success). */
export async function awaitComputeOperation(
  ctx: ActivityContext,
  where: { project: string; region: string },
  started: ComputeOperation,
  what: string,
) {
  const done =
    started.status === 'DONE'
      ? started
      : await pollUntil(ctx, {
          progress: () => ({ status: `waiting for ${what}`, operation: started.name }),
          // Compute answers `wait` as soon as the operation is DONE (or after two minutes).
          longPoll: true,
          resumable: true,
          check: async () => {
            const op = await ctx.gcp.compute.waitRegionOperation(
              { project: where.project, region: where.region, operation: started.name },
              callOptions(),
            );
            return op.status === 'DONE' ? op : undefined;
          },
        });
  return computeOperationError(done);
}

/** Runs a Compute delete; NOT_FOUND (now or when its operation finishes) means it was already gone. */
export async function deleteComputeResource(
  ctx: ActivityContext,
  ref: RegionalRef,
  remove: () => Promise<ComputeOperation>,
  what: string,
): Promise<'removed' | 'already-gone'> {
  let op: ComputeOperation;
  try {
    op = await remove();
  } catch (err) {
    if (isNotFound(err)) return 'already-gone';
    throw err;
  }
  const error = await awaitComputeOperation(ctx, ref, op, what);
  if (error && !isNotFound(error)) throw error;
  return error ? 'already-gone' : 'removed';
}
