import { DEPLOYMENT_LABEL } from '../constants';
import type { OwnershipProof } from './contract';

/**
 * Whether a resource belongs to this deployment, so nothing foreign is adopted or deleted.
 * Vertex resources carry our label once the deploy step labelled them; before that (a deploy cut
 * short) they are ours if their display name is ours and they were created after the deployment
 * started. A resource labelled for another deployment is never ours. Compute resources (PSC) are
 * recognised by their description, which names the deployment.
 */

export type OwnershipVerdict = { ours: true } | { ours: false; reason: string };

export interface OwnedResource {
  labels?: Readonly<Record<string, string>>;
  displayName?: string;
  createTime?: string;
}

export function judgeOwnership(
  resource: OwnedResource,
  expectedDisplayName: string,
  ownership: OwnershipProof,
  clockSkewMs: number,
): OwnershipVerdict {
  const label = resource.labels?.[DEPLOYMENT_LABEL];
  if (label !== undefined) {
    return label === ownership.deploymentLabel
      ? { ours: true }
      : {
          ours: false,
          reason: `it is labelled ${DEPLOYMENT_LABEL}=${label}, i.e. it belongs to another deployment`,
        };
  }
  if (resource.displayName !== expectedDisplayName) {
    return {
      ours: false,
      reason: `it has display name "${resource.displayName ?? ''}" (this deployment uses "${expectedDisplayName}") and no ${DEPLOYMENT_LABEL} label`,
    };
  }
  const created = Date.parse(resource.createTime ?? '');
  if (!Number.isFinite(created)) {
    return { ours: false, reason: `it has no ${DEPLOYMENT_LABEL} label and no creation time` };
  }
  if (created < ownership.notBefore - clockSkewMs) {
    return {
      ours: false,
      reason:
        `it was created at ${new Date(created).toISOString()}, before this deployment started ` +
        `(${new Date(ownership.notBefore).toISOString()}), and has no ${DEPLOYMENT_LABEL} label`,
    };
  }
  return { ours: true };
}

/** The description garden-deploy writes on the PSC address and forwarding rule it creates. */
export function pscDescription(deployment: string, workflowId: string): string {
  return `Private Service Connect endpoint of garden-deploy deployment "${deployment}" (${workflowId})`;
}

export function judgePscOwnership(description: string | undefined, deployment: string): OwnershipVerdict {
  return description?.includes(`garden-deploy deployment "${deployment}"`)
    ? { ours: true }
    : {
        ours: false,
        reason: `its description (${JSON.stringify(description ?? '')}) does not name garden-deploy deployment "${deployment}"`,
      };
}
