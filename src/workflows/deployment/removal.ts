import type { CleanupInput, CleanupOutcome, DeploymentResources } from '../../activities/contract';
import type { DeploymentIds } from '../../spec';
import { revisionIds } from '../../spec/ids';
import type { ProgressTracker } from '../progress';
import type { CleanupProgress, CleanupTaskName, StepName } from '../types';

/**
 * What the removal needs from the deployment's record, and what it tells the progress: the
 * compensations' input, the step rows they undo, and what is left when an operator abandons it.
 */

/** The step a compensation undoes, for the progress rows. */
const TASK_STEP: Record<CleanupTaskName, StepName> = {
  stopDeployOperation: 'deploy',
  undeployModels: 'deploy',
  deleteEndpoint: 'deploy',
  deleteModel: 'deploy',
  deletePscForwardingRule: 'psc',
  releasePscAddress: 'psc',
};

/** The step rows follow the compensations of their step; outcomes join `removed`. */
export function showCleanup(
  tracker: ProgressTracker,
  plan: CleanupProgress,
  outcomes: CleanupOutcome[],
): void {
  const steps = tracker.snapshot().steps;
  for (const step of ['deploy', 'psc'] as const) {
    const tasks = plan.tasks.filter((t) => TASK_STEP[t.task] === step);
    const status = steps.find((s) => s.name === step)?.status;
    if (tasks.length === 0 || status === 'pending' || status === 'skipped') continue;
    if (tasks.every((t) => t.state === 'done')) tracker.compensated(step, []);
    else if (tasks.some((t) => t.state !== 'pending')) tracker.compensating(step);
  }
  tracker.addRemoved(outcomes);
  tracker.setCleanup(plan);
}

/** The resources a blocked or pending compensation would have removed (abandoned ones name them). */
export function remainingResources(
  plan: CleanupProgress | undefined,
  resources: DeploymentResources,
  ids: DeploymentIds | undefined,
): string[] {
  const r = resources;
  const names: Record<CleanupTaskName, string | undefined> = {
    stopDeployOperation: r.deployOperation,
    undeployModels: r.endpoint && `${r.endpoint}/deployedModels`,
    deleteEndpoint: r.endpoint ?? ids?.endpointId,
    deleteModel: r.model ?? ids?.modelId,
    deletePscForwardingRule: r.pscForwardingRule ?? ids?.pscForwardingRuleName,
    releasePscAddress: r.pscAddress ?? ids?.pscAddressName,
  };
  const tasks =
    plan?.tasks.filter((t) => (t.state === 'blocked' || t.state === 'pending') && !t.lateLook) ?? [];
  return [...new Set(tasks.map((t) => names[t.task]).filter((n): n is string => Boolean(n)))];
}

/** The compensations' input, from this run's record or the earlier run being torn down. */
export function cleanupInputOf(record: {
  project: string;
  region: string;
  ownership?: CleanupInput['ownership'];
  resources: DeploymentResources;
  ids?: DeploymentIds;
  consumerProject?: string;
  stopWaitMs: number;
}): CleanupInput {
  return {
    project: record.project,
    region: record.region,
    ...(record.ownership ? { ownership: record.ownership } : {}),
    resources: record.resources,
    ...(record.ids ? { ids: record.ids } : {}),
    ...(record.consumerProject ? { consumerProject: record.consumerProject } : {}),
    stopWaitMs: record.stopWaitMs,
  };
}

/**
 * What an upgrade to `revision` may have created, found by its derived ids (staging endpoint and
 * PSC names, Model `{modelId}-r{n}`) and judged by the deployment's identity: for the teardown of a
 * run that was cut short while upgrading.
 */
export function revisionCleanupInput(base: CleanupInput, name: string, revision: number): CleanupInput {
  if (!base.ids || !base.ownership) return { ...base, resources: {} };
  const ids = revisionIds(base.ids, name, revision);
  const { identity } = base.ownership;
  return {
    ...base,
    resources: {},
    ids,
    ownership: {
      ...base.ownership,
      endpointDisplayName: ids.endpointDisplayName,
      modelDisplayName: ids.modelDisplayName,
      ...(identity ? { identity: { ...identity, revision } } : {}),
      fingerprints: {},
    },
  };
}
