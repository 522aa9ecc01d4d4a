import type { DeploymentSpec } from './deployment-spec';

/** Every identifier a deployment uses, derived from its spec so retries and restarts agree. */
export interface DeploymentIds {
  /** `deploy/{project}/{region}/{name}`: starting the same deployment again attaches to it. */
  workflowId: string;
  endpointId: string;
  modelId: string;
  endpointDisplayName: string;
  modelDisplayName: string;
  /**
   * Compute names of the PSC consumer resources. They carry a hash of project, region and name:
   * deployments of one name in several projects may share one consumer (Shared VPC host) project.
   */
  pscAddressName: string;
  pscForwardingRuleName: string;
}

export function deploymentIds(
  spec: Pick<DeploymentSpec, 'name' | 'project' | 'region' | 'model' | 'endpoint'>,
): DeploymentIds {
  const workflowId = deploymentWorkflowId(spec);
  const psc = `${spec.name}-${shortHash(workflowId)}`;
  return {
    workflowId,
    endpointId: spec.endpoint.id ?? spec.name,
    modelId: spec.model.id ?? spec.name,
    endpointDisplayName: spec.endpoint.displayName ?? spec.name,
    modelDisplayName: spec.model.displayName ?? spec.name,
    pscAddressName: `${psc}-psc-ip`,
    pscForwardingRuleName: `${psc}-psc-fr`,
  };
}

/**
 * The ids of revision `revision` (≥ 2) of a deployment: its Model (`{modelId}-r{n}`) and the
 * staging endpoint it first runs on alone (`{name}-s{n}-{hash}`: a letter first, ≤ 63, and unlikely
 * to be another deployment's name), with its PSC names. Pure, so retries and restarts agree.
 */
export function revisionIds(ids: DeploymentIds, name: string, revision: number): DeploymentIds {
  const hash = shortHash(ids.workflowId);
  const stagingPsc = (kind: 'ip' | 'fr') => {
    const suffix = `-${hash}-s${revision}-${kind}`;
    return `${name.slice(0, 63 - suffix.length)}${suffix}`;
  };
  const suffix = `-r${revision}`;
  return {
    workflowId: ids.workflowId,
    endpointId: `${name.slice(0, 63 - (hash.length + 6))}-s${revision}-${hash}`,
    modelId: `${ids.modelId.slice(0, 63 - suffix.length)}${suffix}`,
    endpointDisplayName: withSuffix(ids.endpointDisplayName, ` (staging r${revision})`),
    modelDisplayName: withSuffix(ids.modelDisplayName, ` r${revision}`),
    pscAddressName: stagingPsc('ip'),
    pscForwardingRuleName: stagingPsc('fr'),
  };
}

/**
 * The id of revision `revision`'s deployed model on the deployment's endpoint: Vertex takes a
 * caller's id of 1–10 digits, so a retried deployModel is recognised instead of deploying twice.
 */
export function revisionDeployedModelId(incarnation: string, revision: number): string {
  return String(
    1_000_000_000 + (Number.parseInt(shortHash(`${incarnation}/${revision}`), 16) % 8_999_999_999),
  );
}

/** Display names are at most 128 characters. */
function withSuffix(text: string, suffix: string): string {
  return `${text.slice(0, 128 - suffix.length)}${suffix}`;
}

export function deploymentWorkflowId(spec: Pick<DeploymentSpec, 'name' | 'project' | 'region'>): string {
  return `deploy/${spec.project}/${spec.region}/${spec.name}`;
}

/**
 * 8 hex digits of FNV-1a over `text`: short enough for Compute names (a 40-character deployment
 * name + 22 still fits 63), pure so workflow code and clients compute the same value.
 */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
