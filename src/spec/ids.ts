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
