import type { Client } from '@temporalio/client';
import { type DeploymentSpec, deploymentWorkflowId, parseDeploymentSpec } from '../spec';
import type { UpgradeResult } from '../workflows/types';
import { type ControlOptions, controlUpdate, runningDeployment } from './control';
import { DeploymentStateError } from './errors';
import { type DeploymentRequest, idOf, sendUpdate } from './updates';

/**
 * Upgrades of a serving deployment, over the deployment's Updates: `upgrade` rolls out a new
 * revision (validated, staged on its own endpoint, then given traffic step by step under the spec's
 * gates, rolled back when one fails); `promote`, `pause` and `resume` steer the running one, and
 * `rollbackDeployment` undoes it. Each is refused at once, with the deployment's reason, when it
 * does not apply; `result()` answers how it ended.
 */

export interface UpgradeOptions {
  /** Idempotency key (the Update id): the same upgrade again attaches to it. Default: a new UUID. */
  requestId?: string;
}

/**
 * Rolls out `specInput` as the next revision of its deployment (`deploy/{project}/{region}/{name}`,
 * which must be serving). A bad spec throws `InvalidSpecError` before anything is sent; one that
 * names another deployment, changes what cannot change (endpoint, access) or only the replicas is
 * refused (`DeploymentStateError`).
 */
export async function upgradeDeployment(
  client: Client,
  specInput: unknown,
  options: UpgradeOptions & { deployment?: string } = {},
): Promise<DeploymentRequest<UpgradeResult> & { spec: DeploymentSpec }> {
  const spec = parseDeploymentSpec(specInput);
  const workflowId = deploymentWorkflowId(spec);
  if (options.deployment && options.deployment !== spec.name && options.deployment !== workflowId) {
    throw new DeploymentStateError(
      `the spec is for deployment ${workflowId} (name "${spec.name}"), not ${options.deployment}; ` +
        'upgrade a deployment with a spec of the same name, project and region',
    );
  }
  const resolved = await runningDeployment(client, workflowId, 'upgrade');
  const request = await sendUpdate<UpgradeResult>(client, resolved, 'upgrade', { spec }, idOf(options));
  return { ...request, spec };
}

/** Skips the running upgrade's remaining traffic steps and bakes; `result()` once it ended. */
export async function promoteUpgrade(
  client: Client,
  ref: string,
  options: ControlOptions = {},
): Promise<DeploymentRequest<UpgradeResult>> {
  return controlUpdate<UpgradeResult>(client, ref, 'promote', options);
}

/** Holds the running upgrade at its current traffic share; `result()` answers at once. */
export async function pauseUpgrade(
  client: Client,
  ref: string,
  options: ControlOptions = {},
): Promise<DeploymentRequest<UpgradeResult>> {
  return controlUpdate<UpgradeResult>(client, ref, 'pause', options);
}

/** Continues a paused upgrade; `result()` answers at once. */
export async function resumeUpgrade(
  client: Client,
  ref: string,
  options: ControlOptions = {},
): Promise<DeploymentRequest<UpgradeResult>> {
  return controlUpdate<UpgradeResult>(client, ref, 'resume', options);
}
