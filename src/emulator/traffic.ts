import { createHash } from 'node:crypto';
import { EmulatorCore, endpointName } from './core';
import { ApiError, badRequest } from './errors';
import { mulberry32 } from './faults';
import type { RequestContext } from './http';
import type { DeployedModelRecord, EndpointRecord } from './state';

/**
 * Traffic splits: the checks every method that sets `Endpoint.traffic_split` makes (UpdateEndpoint,
 * deployModel, undeployModel), and how inference calls are routed by the split. Routing is a pure
 * function of (routing seed, endpoint, request number), so a run can be replayed call by call.
 */

export type TrafficSplit = Record<string, number>;

/** Vertex's words for split keys that name no deployed model (observed for "0" on undeploy). */
function unknownDeployedModels(ids: string[]): ApiError {
  return badRequest([
    {
      field: 'traffic_split',
      description: `The following DeployedModel ID(s) [${ids.join(', ')}] do not exist.`,
    },
  ]);
}

/** Whole percentages from 0 to 100 that add up to 100 (callers decide what an empty map means). */
function checkPercentages(split: TrafficSplit): void {
  const bad = Object.entries(split).find(([, v]) => !Number.isInteger(v) || v < 0 || v > 100);
  if (bad) {
    throw badRequest([
      {
        field: 'traffic_split',
        description: `traffic_split["${bad[0]}"] is ${bad[1]}; each value is a whole percentage from 0 to 100.`,
      },
    ]);
  }
  const total = Object.values(split).reduce((a, b) => a + b, 0);
  if (total !== 100) {
    throw badRequest([
      {
        field: 'traffic_split',
        description: `Sum of all traffic within traffic_split needs to be 100; ${JSON.stringify(split)} adds up to ${total}.`,
      },
    ]);
  }
}

/** UpdateEndpoint: every key a model deployed on the endpoint; 100 in total, or empty for no traffic. */
export function checkEndpointSplit(endpoint: EndpointRecord, split: TrafficSplit): void {
  const deployed = new Set(endpoint.deployedModels.map((m) => m.id));
  const unknown = Object.keys(split).filter((id) => !deployed.has(id));
  if (unknown.length > 0) throw unknownDeployedModels(unknown);
  if (Object.keys(split).length > 0) checkPercentages(split);
}

/**
 * deployModel: keys are deployed models or "0" (the model being deployed; its requested id is
 * taken for "0" too). Returns the split with "0" for the new model, or undefined when the request's
 * split is empty (the endpoint's split is then left as it is).
 */
export function checkDeployModelSplit(
  endpoint: EndpointRecord,
  split: TrafficSplit | undefined,
  givenId: string | undefined,
): TrafficSplit | undefined {
  if (!split || Object.keys(split).length === 0) return undefined;
  if (givenId !== undefined && givenId in split && '0' in split && givenId !== '0') {
    throw badRequest([
      {
        field: 'traffic_split',
        description: `traffic_split names the model being deployed twice, as "0" and as its id "${givenId}"; use one of them.`,
      },
    ]);
  }
  const deployed = new Set(endpoint.deployedModels.map((m) => m.id));
  const unknown = Object.keys(split).filter((id) => id !== '0' && id !== givenId && !deployed.has(id));
  if (unknown.length > 0) throw unknownDeployedModels(unknown);
  checkPercentages(split);
  return Object.fromEntries(Object.entries(split).map(([id, v]) => [id === givenId ? '0' : id, v]));
}

/**
 * undeployModel: the model leaving may appear with 0 (python-aiplatform sends it so) but never with
 * traffic; the other keys must be models that stay, 100 in total. Returns the split to apply (the
 * leaving model dropped), or undefined when none was given.
 */
export function checkUndeploySplit(
  endpoint: EndpointRecord,
  split: TrafficSplit | undefined,
  undeployedId: string,
): TrafficSplit | undefined {
  if (!split || Object.keys(split).length === 0) return undefined;
  const remaining = new Set(endpoint.deployedModels.map((m) => m.id).filter((id) => id !== undeployedId));
  const unknown = Object.keys(split).filter((id) => id !== undeployedId && !remaining.has(id));
  if (unknown.length > 0) throw unknownDeployedModels(unknown);
  const leaving = split[undeployedId];
  if (leaving !== undefined && leaving !== 0) {
    throw new ApiError(
      'FAILED_PRECONDITION',
      `traffic_split gives ${leaving}% to deployed model ${undeployedId}, the model being undeployed; give it 0 (or leave it out) and move its traffic to the models that remain.`,
    );
  }
  const kept = Object.fromEntries(Object.entries(split).filter(([id]) => id !== undeployedId));
  // The last model leaving: the split "will always end up empty" (endpoint_service.proto).
  if (remaining.size === 0 && Object.keys(kept).length === 0) return {};
  checkPercentages(kept);
  return kept;
}

// ---------------------------------------------------------------------------------------------
// Routing

/** The deployed model an inference call was routed to. */
export interface Serving {
  endpoint: EndpointRecord;
  deployed: DeployedModelRecord;
}

/** A routing decision: who serves, and/or the error the call ends with instead. */
export interface Routing {
  serving?: Serving;
  error?: ApiError;
}

/** Draw r in [0, 100) for the n-th request to `endpoint`. */
function routingDraw(seed: number, endpoint: string, n: number): number {
  const digest = createHash('sha256').update(`${endpoint}#${n}`).digest();
  return mulberry32((digest.readUInt32BE(0) ^ seed) >>> 0)() * 100;
}

const DIGITS_RE = /^\d+$/;
function byId(a: DeployedModelRecord, b: DeployedModelRecord): number {
  if (DIGITS_RE.test(a.id) && DIGITS_RE.test(b.id)) {
    const [x, y] = [BigInt(a.id), BigInt(b.id)];
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The models with traffic, ordered by id, take r by cumulative percent; undefined if none has any. */
function pickDeployedModel(endpoint: EndpointRecord, r: number): DeployedModelRecord | undefined {
  const candidates = endpoint.deployedModels.filter((m) => (endpoint.trafficSplit[m.id] ?? 0) > 0).sort(byId);
  let cumulative = 0;
  for (const model of candidates) {
    cumulative += endpoint.trafficSplit[model.id]!;
    if (r < cumulative) return model;
  }
  return candidates.at(-1);
}

/** The endpoint an inference URL names, as reachable from the host the call came to. */
function servingEndpoint(core: EmulatorCore, ctx: RequestContext): EndpointRecord {
  const [, projectParam, location, id] = ctx.params as [string, string, string, string];
  const name = endpointName({ project: core.resolveProject(projectParam).number, location }, id);
  if (ctx.hostEndpoint !== undefined && ctx.hostEndpoint !== name) {
    throw new ApiError(
      'NOT_FOUND',
      `Endpoint ${name} is not served at this host; this host serves ${ctx.hostEndpoint}.`,
    );
  }
  const endpoint = core.state.endpoints[name];
  if (!endpoint) throw new ApiError('NOT_FOUND', `Endpoint \`${name}\` not found.`);
  if (ctx.hostEndpoint === undefined) {
    if (endpoint.psc) {
      throw new ApiError(
        'FAILED_PRECONDITION',
        `Endpoint ${name} is a private endpoint; send prediction requests to the IP address of a Private Service Connect forwarding rule that targets ${endpoint.psc.serviceAttachment ?? 'its service attachment'}.`,
      );
    }
    if (endpoint.dedicatedEndpointEnabled) {
      throw new ApiError(
        'FAILED_PRECONDITION',
        `Endpoint ${name} has a dedicated endpoint and cannot be reached through the shared domain; send requests to https://${endpoint.id}.${endpoint.location}-${endpoint.project}.prediction.vertexai.goog instead.`,
      );
    }
  }
  return endpoint;
}

/**
 * Routes an inference call by the endpoint's traffic split. Every call that reaches an endpoint
 * with traffic takes the next request number (persisted with the endpoint). Errors are returned,
 * not thrown: dispatch raises them after its fault and auth checks, where handlers used to.
 */
export function routeInference(core: EmulatorCore, ctx: RequestContext): Routing {
  let endpoint: EndpointRecord;
  try {
    endpoint = servingEndpoint(core, ctx);
  } catch (err) {
    if (err instanceof ApiError) return { error: err };
    throw err;
  }
  if (endpoint.deployedModels.length === 0) {
    return {
      error: new ApiError(
        'FAILED_PRECONDITION',
        `Endpoint ${endpoint.name} does not have any deployed model yet; wait for the deploy operation to finish.`,
      ),
    };
  }
  const n = (endpoint.requestCount ?? 0) + 1;
  const deployed = pickDeployedModel(endpoint, routingDraw(core.config.routingSeed, endpoint.name, n));
  if (!deployed) {
    return {
      error: new ApiError(
        'FAILED_PRECONDITION',
        `No deployed model of endpoint ${endpoint.name} receives traffic: its traffic_split is empty. Give a deployed model traffic with UpdateEndpoint (PATCH ?updateMask=traffic_split) or the traffic_split of deployModel.`,
      ),
    };
  }
  endpoint.requestCount = n;
  core.markDirty();
  const serving = { endpoint, deployed };
  if (EmulatorCore.availableReplicas(deployed, ctx.now) === 0) {
    return {
      serving,
      error: new ApiError(
        'UNAVAILABLE',
        `The model ${deployed.id} on endpoint ${endpoint.name} is not ready to serve: 0 of ${deployed.initialReplicas} replicas are available. Retry once deployedModels[].status.availableReplicaCount is at least 1.`,
      ),
    };
  }
  return { serving };
}

/** What every answer of a routed call carries, so a client can attribute it to a revision. */
export function servingHeaders({ endpoint, deployed }: Serving): Record<string, string> {
  return {
    'x-vertex-ai-endpoint-id': endpoint.id,
    'x-vertex-ai-deployed-model-id': deployed.id,
    'x-vertex-ai-model': deployed.model,
    'x-vertex-ai-model-version-id': '1',
  };
}

/** The Model a call was served by, in every spelling a fault rule's `model` may use. */
export function servedModelSpellings(core: EmulatorCore, deployed: DeployedModelRecord): string[] {
  const match = /^projects\/([^/]+)\/locations\/([^/]+)\/models\/([^/@]+)/.exec(deployed.model);
  if (!match) return [deployed.model];
  const [, project, location, id] = match as unknown as [string, string, string, string];
  const ref = core.resolveProject(project);
  return [
    id,
    `projects/${ref.number}/locations/${location}/models/${id}`,
    ...(ref.id ? [`projects/${ref.id}/locations/${location}/models/${id}`] : []),
  ];
}
