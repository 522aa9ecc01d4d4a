import { ApiError, badRequest } from './errors';
import type { EndpointRecord } from './state';

/**
 * Traffic splits: the checks every method that sets `Endpoint.traffic_split` makes (UpdateEndpoint,
 * deployModel, undeployModel).
 */

export type TrafficSplit = Record<string, number>;

/** Vertex's words for split keys that name no deployed model (observed for "0" on undeploy). */
export function unknownDeployedModels(ids: string[]): ApiError {
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
