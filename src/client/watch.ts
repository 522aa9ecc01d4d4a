import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { deploymentResult } from '../workflows/results';
import type { DeployProgress, DeploymentResult, TeardownResult } from '../workflows/types';
import { DeploymentFailedError } from './errors';
import { type DeploymentStatus, getProgress, type GetProgressOptions } from './progress';
import { resolveWorkflow } from './resolve';

export interface WatchOptions extends GetProgressOptions {
  /** Time between polls (default 1 s). */
  intervalMs?: number;
  /** Stops watching (the deployment goes on); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export type ProgressListener = (status: DeploymentStatus) => void | Promise<void>;

/**
 * Polls the deployment's progress, calling `onProgress` with each status, until it settles: it
 * serves (outcome `serving`), its cleanup is blocked (`cleanup-blocked`), or it ended (its
 * result: `torn-down`, `cancelled`, `rolled-back`…). Rejects with `DeploymentFailedError`
 * carrying the failure when it failed, was terminated or timed out.
 */
export async function watchDeployment(
  client: Client,
  ref: string,
  onProgress?: ProgressListener,
  options: WatchOptions = {},
): Promise<DeploymentResult> {
  const { workflowId } = await resolveWorkflow(client, ref, 'deployment');
  return (await follow(client, workflowId, onProgress, options)) as DeploymentResult;
}

/** {@link watchDeployment} for a garden-deploy 0.1 teardown (`teardown/{project}/{region}/{name}`). */
export async function watchTeardown(
  client: Client,
  ref: string,
  onProgress?: ProgressListener,
  options: WatchOptions = {},
): Promise<TeardownResult> {
  const { workflowId } = await resolveWorkflow(client, ref, 'teardown');
  return (await follow(client, workflowId, onProgress, options)) as TeardownResult;
}

async function follow(
  client: Client,
  workflowId: string,
  onProgress: ProgressListener | undefined,
  options: WatchOptions,
): Promise<DeploymentResult | TeardownResult> {
  const interval = options.intervalMs ?? 1_000;
  for (;;) {
    options.signal?.throwIfAborted();
    const status = await getProgress(client, workflowId, options);
    await onProgress?.(status);
    const settled = settledResult(status);
    if (settled) return settled;
    await sleep(interval, undefined, { signal: options.signal }).catch(() => undefined);
  }
}

/** How a deployment stands once nothing more happens without a request; undefined while it works. */
export function settledResult(status: DeploymentStatus): DeploymentResult | TeardownResult | undefined {
  if (status.status !== 'RUNNING') {
    if (status.status === 'COMPLETED' && status.result) return status.result;
    throw new DeploymentFailedError(
      status.workflowId,
      status.status,
      status.failure ?? 'no failure was recorded',
    );
  }
  const progress = status.progress;
  if (!progress) return undefined;
  if (status.stage === 'SERVING' && status.workflowType === 'deployment')
    return resultOf(status, progress, 'serving');
  if (status.stage === 'CLEANUP_BLOCKED') return resultOf(status, progress, 'cleanup-blocked');
  return undefined;
}

function resultOf(
  status: DeploymentStatus,
  progress: DeployProgress,
  outcome: 'serving' | 'cleanup-blocked',
): DeploymentResult {
  return deploymentResult(
    progress,
    status.workflowId,
    outcome,
    outcome === 'cleanup-blocked'
      ? { blocked: progress.cleanup?.tasks.filter((t) => t.state === 'blocked') ?? [] }
      : {},
  );
}
