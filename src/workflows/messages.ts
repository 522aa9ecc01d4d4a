import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type {
  ControlRequest,
  DeployProgress,
  DeployRequest,
  DeploymentResult,
  ScaleOutcome,
  ScaleRequest,
  UpgradeRequest,
  UpgradeResult,
} from './types';

/**
 * The messages of the `deployment` workflow: one query and the Updates that control it. Each
 * Update is validated first (a request that does not apply is rejected at once, with the reason,
 * and leaves no trace in history); an accepted one answers with its outcome. Send each with an
 * update id (the request id): repeating it gets the same answer.
 */

/** Live progress: stage, steps, revision, resources, replicas, validation, smoke results, cleanup. */
export const progressQuery = defineQuery<DeployProgress>('progress');

/**
 * The spec of this deployment (update-with-start on first deploy): answers once it serves, or how
 * it ended. A different spec is rejected, naming what differs and which command changes it.
 */
export const deployUpdate = defineUpdate<DeploymentResult, [DeployRequest]>('deploy');

/** Stop a deployment still deploying and remove everything it created; or undo its running upgrade. */
export const cancelUpdate = defineUpdate<DeploymentResult, [ControlRequest]>('cancel');

/**
 * Undo: while it deploys, or serving r1 within its rollback window, remove everything it created;
 * while it upgrades, all traffic back on the serving revision and the new one removed.
 */
export const rollbackUpdate = defineUpdate<DeploymentResult, [ControlRequest]>('rollback');

/** Remove a serving deployment and everything it owns; the deployment then ends. */
export const teardownUpdate = defineUpdate<DeploymentResult, [ControlRequest]>('teardown');

/** Change min/max replicas of the serving deployment in place (`mutateDeployedModel`). */
export const scaleUpdate = defineUpdate<ScaleOutcome, [ScaleRequest]>('scale');

/** CLEANUP_BLOCKED: run the blocked and remaining compensations again, with a fresh budget. */
export const retryCleanupUpdate = defineUpdate<DeploymentResult, [ControlRequest]>('retryCleanup');

/**
 * CLEANUP_BLOCKED: stop trying; the deployment ends listing what it leaves (the operator removes
 * it). The reason is required.
 */
export const abandonCleanupUpdate = defineUpdate<DeploymentResult, [ControlRequest]>('abandonCleanup');

/**
 * Roll out a new revision of the serving deployment (another model, machine or validation): it is
 * validated, staged on its own endpoint, then given traffic step by step under the spec's gates
 * (`strategy`, `gates`); a failed gate rolls it back. Answers how it ended. Settings-only changes
 * are recorded; the same weights (by GCS generation) change nothing.
 */
export const upgradeUpdate = defineUpdate<UpgradeResult, [UpgradeRequest]>('upgrade');

/** Skip the running upgrade's remaining traffic steps and bakes; answers how it ended. */
export const promoteUpdate = defineUpdate<UpgradeResult, [ControlRequest]>('promote');

/** Hold the running upgrade at its current traffic share (gates keep being evaluated); answers at once. */
export const pauseUpdate = defineUpdate<UpgradeResult, [ControlRequest]>('pause');

/** Continue a paused upgrade; answers at once. */
export const resumeUpdate = defineUpdate<UpgradeResult, [ControlRequest]>('resume');

/** Every Update of the deployment, by name: the client maps its operations onto these. */
export const DEPLOYMENT_UPDATES = {
  deploy: deployUpdate,
  cancel: cancelUpdate,
  rollback: rollbackUpdate,
  teardown: teardownUpdate,
  scale: scaleUpdate,
  retryCleanup: retryCleanupUpdate,
  abandonCleanup: abandonCleanupUpdate,
  upgrade: upgradeUpdate,
  promote: promoteUpdate,
  pause: pauseUpdate,
  resume: resumeUpdate,
} as const;
export type DeploymentUpdateName = keyof typeof DEPLOYMENT_UPDATES;
