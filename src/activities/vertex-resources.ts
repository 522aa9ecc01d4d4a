import { type Endpoint, type Model, bareHost, endpointName, isNotFound, modelName } from '../gcp';
import type { DeploymentIds } from '../spec';
import { NON_RETRYABLE_ERRORS, type OwnershipProof } from './contract';
import type { ActivityContext } from './deps';
import { permanentFailure } from './failures';
import { judgeOwnership } from './ownership';
import { callOptions } from './runtime';

/** Lookups on the Vertex resources of one deployment, shared by the deploy, wait and cleanup steps. */

/** The call's result, or undefined when the resource does not exist. */
export async function getIfExists<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export function endpointOf(project: string, region: string, ids: Pick<DeploymentIds, 'endpointId'>): string {
  return endpointName({ project, location: region, endpointId: ids.endpointId });
}

export function modelOf(project: string, region: string, ids: Pick<DeploymentIds, 'modelId'>): string {
  return modelName({ project, location: region, modelId: ids.modelId });
}

type DeployedModel = Endpoint['deployedModels'][number];

/** The id of a model name (`…/models/ID`, optionally `@version`); undefined for anything else. */
function modelIdOf(name: string): string | undefined {
  return /(?:^|\/)models\/([^/@]+)(?:@[^/]*)?$/.exec(name)?.[1];
}

/**
 * The deployed model serving `model` on the endpoint. Names returned by the server use the project
 * number where ours use the id, so models are matched by id (an endpoint lives in one location).
 */
export function deployedModelOf(endpoint: Endpoint, model: string): DeployedModel | undefined {
  const wanted = modelIdOf(model);
  return endpoint.deployedModels.find((deployed) => !!deployed.model && modelIdOf(deployed.model) === wanted);
}

/** Where Vertex reports the PSC service attachment: either field may be the one filled (vertex-api.md §3). */
export function serviceAttachmentOf(endpoint: Endpoint, deployed?: DeployedModel): string | undefined {
  return (
    endpoint.privateServiceConnectConfig?.serviceAttachment ??
    deployed?.privateEndpoints?.serviceAttachment ??
    endpoint.deployedModels.find((m) => m.privateEndpoints?.serviceAttachment)?.privateEndpoints
      ?.serviceAttachment
  );
}

export function dedicatedDnsOf(endpoint: Endpoint): string | undefined {
  return endpoint.dedicatedEndpointDns ? bareHost(endpoint.dedicatedEndpointDns) : undefined;
}

/** Ownership of a Vertex endpoint or model of this deployment. */
export function judgeVertexOwnership(
  ctx: ActivityContext,
  kind: 'endpoint' | 'model',
  resource: Endpoint | Model,
  ownership: OwnershipProof,
) {
  const expected = kind === 'endpoint' ? ownership.endpointDisplayName : ownership.modelDisplayName;
  const recorded =
    kind === 'endpoint'
      ? ownership.fingerprints?.endpointCreateTime
      : ownership.fingerprints?.modelCreateTime;
  return judgeOwnership(resource, expected, ownership, recorded, ctx.options.clockSkewMs);
}

/** Reads a Vertex operation once: itself when done, done when it is gone, undefined while it runs. */
export async function endedOperation(ctx: ActivityContext, name: string) {
  const op = await getIfExists(() => ctx.gcp.vertex.getOperation(name, callOptions()));
  return op === undefined ? { name, done: true as const } : op.done ? op : undefined;
}

/**
 * A long-poll check of a Vertex operation (`:wait`, answered as soon as it ends): the operation
 * when done, null when Google no longer knows it, undefined while it runs.
 */
export function operationDone(ctx: ActivityContext, name: string) {
  return async (holdMs: number) => {
    const op = await getIfExists(() => ctx.gcp.vertex.waitOperation(name, holdMs, callOptions()));
    return op === undefined ? null : op.done ? op : undefined;
  };
}

/**
 * Throws a non-retryable `ResourceConflict` unless the endpoint or model is this deployment's;
 * `refusal` words it from the reason the judgement gives.
 */
export function refuseUnlessOurs(
  ctx: ActivityContext,
  kind: 'endpoint' | 'model',
  resource: Endpoint | Model,
  ownership: OwnershipProof,
  refusal: (reason: string) => string,
): void {
  const verdict = judgeVertexOwnership(ctx, kind, resource, ownership);
  if (!verdict.ours) throw permanentFailure(NON_RETRYABLE_ERRORS.resourceConflict, refusal(verdict.reason));
}
