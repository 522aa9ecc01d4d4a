import type { DeploymentSpec } from './deployment-spec';

/** Every identifier a deployment uses, derived from its spec so retries and restarts agree. */
export interface DeploymentIds {
  /** `deploy/{project}/{region}/{name}`: starting the same deployment again attaches to it. */
  workflowId: string;
  endpointId: string;
  modelId: string;
  endpointDisplayName: string;
  modelDisplayName: string;
  /** Compute names of the PSC consumer resources. */
  pscAddressName: string;
  pscForwardingRuleName: string;
}

export function deploymentIds(
  spec: Pick<DeploymentSpec, 'name' | 'project' | 'region' | 'model' | 'endpoint'>,
): DeploymentIds {
  return {
    workflowId: deploymentWorkflowId(spec),
    endpointId: spec.endpoint.id ?? spec.name,
    modelId: spec.model.id ?? spec.name,
    endpointDisplayName: spec.endpoint.displayName ?? spec.name,
    modelDisplayName: spec.model.displayName ?? spec.name,
    pscAddressName: `${spec.name}-psc-ip`,
    pscForwardingRuleName: `${spec.name}-psc-fr`,
  };
}

export function deploymentWorkflowId(spec: Pick<DeploymentSpec, 'name' | 'project' | 'region'>): string {
  return `deploy/${spec.project}/${spec.region}/${spec.name}`;
}
