import { setCurrentDetails, setHandler, upsertSearchAttributes, proxyActivities } from '@temporalio/workflow';
import type { CleanupInput, DeploymentActivities } from '../../activities/contract';
import { DeployStage, DeploymentName, GcpProject, GcpRegion } from '../../search-attributes';
import { progressQuery } from '../messages';
import { ProgressTracker } from '../progress';
import type { TeardownInput, TeardownResult } from '../types';

const cleanup = proxyActivities<DeploymentActivities>({
  startToCloseTimeout: '15m',
  heartbeatTimeout: '1m',
  // A leftover endpoint bills GPUs by the hour: retry until removed.
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '2m' },
});

/**
 * garden-deploy 0.1's teardown, frozen like `deployModel`: runs started before the durable
 * `deployment` workflow (whose `teardown` Update replaces it) finish on it.
 *
 * Removes a finished deployment from its recorded resources, in the same order a rollback uses:
 * forwarding rule, address, deployed models, endpoint, model.
 */
export async function teardownDeployment(input: TeardownInput): Promise<TeardownResult> {
  const tracker = new ProgressTracker(input.deployment);
  tracker.describe({ deployment: input.deployment, project: input.project, region: input.region });
  tracker.addResources(input.resources);
  for (const name of ['validate', 'waitForReplicas', 'smoke'] as const) tracker.skipStep(name, 'teardown');
  setHandler(progressQuery, () => tracker.snapshot());
  const publish = (stage: 'ROLLING_BACK' | 'ROLLED_BACK'): void => {
    tracker.setStage(stage);
    upsertSearchAttributes([{ key: DeployStage, value: stage }]);
    setCurrentDetails(tracker.toMarkdown());
  };
  upsertSearchAttributes([
    { key: DeploymentName, value: input.deployment },
    { key: GcpProject, value: input.project },
    { key: GcpRegion, value: input.region },
  ]);
  publish('ROLLING_BACK');

  const cleanupInput: CleanupInput = {
    project: input.project,
    region: input.region,
    resources: input.resources,
    consumerProject: input.consumerProject,
  };
  const plan = [
    ['psc', cleanup.deletePscForwardingRule],
    ['psc', cleanup.releasePscAddress],
    ['deploy', cleanup.undeployModels],
    ['deploy', cleanup.deleteEndpoint],
    ['deploy', cleanup.deleteModel],
  ] as const;
  for (const [step, run] of plan) {
    tracker.compensating(step);
    setCurrentDetails(tracker.toMarkdown());
    const { outcomes } = await run(cleanupInput);
    tracker.compensated(step, outcomes);
  }
  if (!input.resources.pscForwardingRule && !input.resources.pscAddress)
    tracker.skipStep('psc', 'public endpoint');
  publish('ROLLED_BACK');
  return { deployment: input.deployment, removed: tracker.removed };
}
