import type { Client } from '@temporalio/client';
import {
  type DeploymentSpec,
  InvalidSpecError,
  type SpecIssue,
  deploymentWorkflowId,
  parseDeploymentSpec,
} from '../spec';
import type { UpgradeResult } from '../workflows/types';
import { type ControlOptions, controlUpdate, runningDeployment } from './control';
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
 * which must be serving). A bad spec throws `InvalidSpecError` before anything is sent, also one
 * that names another deployment than `options.deployment` (an issue at each field that differs); one
 * that changes what cannot change (endpoint, access) or only the replicas is refused by the
 * deployment (`DeploymentStateError`).
 */
export async function upgradeDeployment(
  client: Client,
  specInput: unknown,
  options: UpgradeOptions & { deployment?: string } = {},
): Promise<DeploymentRequest<UpgradeResult> & { spec: DeploymentSpec }> {
  const spec = parseDeploymentSpec(specInput);
  const workflowId = deploymentWorkflowId(spec);
  if (options.deployment) checkSpecNames(spec, options.deployment);
  const resolved = await runningDeployment(client, workflowId, 'upgrade');
  const request = await sendUpdate<UpgradeResult>(client, resolved, 'upgrade', { spec }, idOf(options));
  return { ...request, spec };
}

/**
 * Throws `InvalidSpecError` when `spec` is not for `deployment` (a name, or a workflow id
 * `deploy/{project}/{region}/{name}`): bad input, with an issue at each field that differs.
 */
export function checkSpecNames(spec: DeploymentSpec, deployment: string): void {
  const workflowId = deploymentWorkflowId(spec);
  if (deployment === spec.name || deployment === workflowId) return;
  const message =
    `the spec is for deployment ${workflowId} (name "${spec.name}"), not ${deployment}; ` +
    'upgrade a deployment with a spec of the same name, project and region';
  const [prefix, project, region, name, ...rest] = deployment.split('/');
  const named =
    prefix === 'deploy' && rest.length === 0 && name !== undefined
      ? { project, region, name }
      : { name: deployment };
  const issues: SpecIssue[] = (['project', 'region', 'name'] as const)
    .filter((field) => field in named && named[field as keyof typeof named] !== spec[field])
    .map((path) => ({ path, message }));
  throw new InvalidSpecError(issues.length ? issues : [{ path: 'name', message }]);
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
