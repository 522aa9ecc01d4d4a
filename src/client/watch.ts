import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { DeploymentResult, TeardownResult } from '../workflows/types';
import { DeploymentFailedError } from './errors';
import { type DeploymentStatus, getProgress, type GetProgressOptions } from './progress';
import { DEPLOY_WORKFLOW_TYPE, resolveWorkflow, TEARDOWN_WORKFLOW_TYPE } from './resolve';

export interface WatchOptions extends GetProgressOptions {
  /** Time between polls (default 1 s). */
  intervalMs?: number;
  /** Stops watching (the deployment goes on); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export type ProgressListener = (status: DeploymentStatus) => void | Promise<void>;

/**
 * Polls the deployment's progress, calling `onProgress` with each status, until the workflow
 * closes. Resolves with its result (`outcome` serving, rolled-back or cancelled); rejects with
 * `DeploymentFailedError` carrying the failure message when it failed, was terminated or timed out.
 * A deployment with a rollback window stays open (SERVING) until the window closes.
 */
export async function watchDeployment(
  client: Client,
  ref: string,
  onProgress?: ProgressListener,
  options: WatchOptions = {},
): Promise<DeploymentResult> {
  const { workflowId } = await resolveWorkflow(client, ref, DEPLOY_WORKFLOW_TYPE);
  return (await follow(client, workflowId, onProgress, options)) as DeploymentResult;
}

/** {@link watchDeployment} for a teardown workflow (`teardown/{project}/{region}/{name}`). */
export async function watchTeardown(
  client: Client,
  ref: string,
  onProgress?: ProgressListener,
  options: WatchOptions = {},
): Promise<TeardownResult> {
  const { workflowId } = await resolveWorkflow(client, ref, TEARDOWN_WORKFLOW_TYPE);
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
    if (status.status !== 'RUNNING') {
      if (status.status === 'COMPLETED' && status.result) return status.result;
      throw new DeploymentFailedError(workflowId, status.status, status.failure ?? 'no failure was recorded');
    }
    await sleep(interval, undefined, { signal: options.signal }).catch(() => undefined);
  }
}
