import {
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  setHandler,
} from '@temporalio/workflow';
import {
  abandonCleanupUpdate,
  cancelUpdate,
  deployUpdate,
  pauseUpdate,
  progressQuery,
  promoteUpdate,
  resumeUpdate,
  retryCleanupUpdate,
  rollbackUpdate,
  scaleUpdate,
  teardownUpdate,
  upgradeUpdate,
} from '../messages';
import type { DeploymentInput, DeploymentResult } from '../types';
import { Deployment } from './entity';

/**
 * One durable deployment (`deploy/{project}/{region}/{name}`) for its whole life: it deploys its
 * first revision, serves, scales, rolls back or is torn down, owning every resource it created
 * until it has removed them. Its logic lives in `Deployment`'s Update handlers; this body only
 * registers them, waits until the deployment has ended, and continues as new when its history
 * grows long while nothing is in flight.
 */
export async function deployment(input: DeploymentInput): Promise<DeploymentResult> {
  const entity = new Deployment(input);
  setHandler(progressQuery, () => entity.progress());
  setHandler(deployUpdate, (request) => entity.deploy(request), {
    validator: (request) => entity.validateDeploy(request),
    description:
      'Deploy this spec: attaches when it is the deployment’s, upgrades to another model or machine',
  });
  const { upgrades } = entity;
  setHandler(upgradeUpdate, (request) => upgrades.upgrade(request), {
    validator: (request) => upgrades.validateUpgrade(request),
    description:
      'Roll out a new revision: validate, stage, shift traffic under gates, roll back on a failure',
  });
  setHandler(promoteUpdate, (request) => upgrades.promote(request), {
    validator: (request) => upgrades.validatePromote(request),
    description: 'Skip the running upgrade’s remaining traffic steps',
  });
  setHandler(pauseUpdate, (request) => upgrades.pause(request), {
    validator: (request) => upgrades.validatePause(request),
    description: 'Hold the running upgrade at its traffic share',
  });
  setHandler(resumeUpdate, (request) => upgrades.resume(request), {
    validator: (request) => upgrades.validateResume(request),
    description: 'Continue a paused upgrade',
  });
  setHandler(cancelUpdate, (request) => entity.cancel(request), {
    validator: (request) => entity.validateCancel(request),
    description: 'Stop the running deploy (or upgrade) and remove what it created',
  });
  setHandler(rollbackUpdate, (request) => entity.rollback(request), {
    validator: (request) => entity.validateRollback(request),
    description:
      'Undo the running upgrade; or remove the deployment while it deploys or within its rollback window',
  });
  setHandler(teardownUpdate, (request) => entity.teardown(request), {
    validator: (request) => entity.validateTeardown(request),
    description: 'Remove a serving deployment and everything it owns',
  });
  setHandler(scaleUpdate, (request) => entity.scale(request), {
    validator: (request) => entity.validateScale(request),
    description: 'Change min/max replicas in place',
  });
  setHandler(retryCleanupUpdate, (request) => entity.retryCleanup(request), {
    validator: (request) => entity.validateRetryCleanup(request),
    description: 'CLEANUP_BLOCKED: run the blocked compensations again',
  });
  setHandler(abandonCleanupUpdate, (request) => entity.abandonCleanup(request), {
    validator: (request) => entity.validateAbandonCleanup(request),
    description: 'CLEANUP_BLOCKED: stop trying and end, listing what is left',
  });
  entity.start();

  try {
    for (;;) {
      await condition(() => entity.ended || entity.readyToContinueAsNew());
      await condition(allHandlersFinished);
      if (entity.ended) break;
      if (entity.readyToContinueAsNew()) await continueAsNew<typeof deployment>(entity.carryOver());
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(async () => {
      await entity.cancelledThroughTemporal(err);
      await condition(allHandlersFinished);
    });
  }
  return entity.finish();
}
