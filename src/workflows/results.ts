import type { DeployProgress, DeploymentOutcome, DeploymentResult } from './types';

/**
 * A deployment's result from its progress: what the workflow returns, what its Updates answer, and
 * what `watch` reports for a deployment that settled while its workflow keeps running.
 */
export function deploymentResult(
  progress: DeployProgress,
  workflowId: string,
  outcome: DeploymentOutcome,
  extra: Partial<Pick<DeploymentResult, 'reason' | 'rollbackWindowEndsAt' | 'blocked'>> = {},
): DeploymentResult {
  const { resources } = progress;
  const serving = outcome === 'serving';
  return {
    outcome,
    deployment: progress.deployment,
    workflowId,
    project: progress.project ?? '',
    region: progress.region ?? '',
    resources,
    inferenceUrl: !serving
      ? undefined
      : resources.pscIpAddress
        ? `https://${resources.pscIpAddress}`
        : resources.dedicatedEndpointDns && `https://${resources.dedicatedEndpointDns}`,
    smoke: progress.smoke ?? [],
    removed: progress.removed,
    validation: progress.validation,
    ...(progress.revision ? { revision: progress.revision } : {}),
    ...extra,
  };
}
