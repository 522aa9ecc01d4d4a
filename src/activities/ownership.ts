import { DEPLOYMENT_LABEL, IDENTITY_LABELS } from '../constants';
import type { DeploymentIdentity, OwnershipProof } from './contract';

/**
 * Whether a resource belongs to this deployment, so nothing foreign is adopted or deleted.
 *
 * Vertex resources: the identity labels (deployment name and incarnation) decide once present; a
 * recorded creation time must match (same name, other creation time: someone recreated it). Before
 * the deploy step labelled them (`:deploy` cannot carry labels), an unlabelled endpoint or model is
 * ours only while nothing is recorded for it, if its display name is ours and it was created after
 * the deploy step first started. Compute resources (PSC) carry the identity in their description
 * and must keep a recorded Compute id.
 *
 * Proofs without an identity come from deployments of garden-deploy 0.1: their resources carry
 * only the name label, and are judged by it as they always were.
 */

export type OwnershipVerdict = { ours: true } | { ours: false; reason: string };

export interface OwnedResource {
  labels?: Readonly<Record<string, string>>;
  displayName?: string;
  createTime?: string;
}

/** The labels naming a deployment's identity, merged into every Vertex resource it creates. */
export function identityLabels(identity: DeploymentIdentity): Record<string, string> {
  return {
    [DEPLOYMENT_LABEL]: identity.name,
    [IDENTITY_LABELS.incarnation]: identity.incarnation,
    [IDENTITY_LABELS.project]: identity.project,
    [IDENTITY_LABELS.region]: identity.region,
    [IDENTITY_LABELS.revision]: String(identity.revision),
  };
}

export function judgeOwnership(
  resource: OwnedResource,
  expectedDisplayName: string,
  ownership: OwnershipProof,
  recordedCreateTime: string | undefined,
  clockSkewMs: number,
): OwnershipVerdict {
  const label = resource.labels?.[DEPLOYMENT_LABEL];
  const incarnation = resource.labels?.[IDENTITY_LABELS.incarnation];
  const { identity } = ownership;
  if (recordedCreateTime !== undefined && resource.createTime !== recordedCreateTime) {
    return {
      ours: false,
      reason:
        `it was created at ${resource.createTime ?? 'an unknown time'}, but the one this deployment created ` +
        `was created at ${recordedCreateTime}: someone deleted and recreated it`,
    };
  }
  if (incarnation !== undefined) {
    if (identity && incarnation === identity.incarnation && label === identity.name) return { ours: true };
    return {
      ours: false,
      reason:
        `it is labelled for garden-deploy deployment "${label ?? '?'}" (incarnation ${incarnation})` +
        (identity ? `, not this one (incarnation ${identity.incarnation})` : ''),
    };
  }
  if (label !== undefined) {
    if (!identity && label === ownership.deploymentLabel) return { ours: true };
    return {
      ours: false,
      reason: identity
        ? `it is labelled ${DEPLOYMENT_LABEL}=${label} without a deployment incarnation: an earlier ` +
          'garden-deploy deployment (or a copy of its labels) made it'
        : `it is labelled ${DEPLOYMENT_LABEL}=${label}, i.e. it belongs to another deployment`,
    };
  }
  if (recordedCreateTime !== undefined) return { ours: true }; // our own, labels removed by someone
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
export function pscDescription(
  deployment: string,
  workflowId: string,
  identity?: DeploymentIdentity,
): string {
  if (!identity) {
    return `Private Service Connect endpoint of garden-deploy deployment "${deployment}" (${workflowId})`;
  }
  return (
    `Private Service Connect endpoint of garden-deploy deployment "${identity.name}" ` +
    `(${identity.workflowId}, incarnation ${identity.incarnation}, revision ${identity.revision})`
  );
}

/** A Compute resource as read: its `description` and numeric `id` (a string in JSON) decide. */
export type ComputeResource = Readonly<Record<string, unknown>>;

export function judgePscOwnership(
  resource: ComputeResource,
  deployment: string,
  identity?: DeploymentIdentity,
  recordedId?: string,
): OwnershipVerdict {
  const description = typeof resource.description === 'string' ? resource.description : '';
  const id = computeIdOf(resource) ?? '';
  if (recordedId !== undefined && id !== recordedId) {
    return {
      ours: false,
      reason: `its Compute id is ${id || 'unknown'}, not ${recordedId} as created by this deployment: someone recreated it`,
    };
  }
  if (identity) {
    const marker = `(${identity.workflowId}, incarnation ${identity.incarnation},`;
    return description.includes(`garden-deploy deployment "${identity.name}" ${marker}`)
      ? { ours: true }
      : {
          ours: false,
          reason: `its description (${JSON.stringify(description)}) does not name this deployment (${identity.workflowId}, incarnation ${identity.incarnation})`,
        };
  }
  return description.includes(`garden-deploy deployment "${deployment}"`)
    ? { ours: true }
    : {
        ours: false,
        reason: `its description (${JSON.stringify(description)}) does not name garden-deploy deployment "${deployment}"`,
      };
}

/** Compute's numeric id of a resource (a string in the JSON), recorded as its fingerprint. */
export function computeIdOf(resource: ComputeResource): string | undefined {
  const { id } = resource;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}
