import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { DeployProgress } from './types';

/** Stop the deployment and remove everything it created. */
export const cancelSignal = defineSignal<[reason?: string]>('cancel');

/** Remove everything the deployment created: during the run or within its rollback window. */
export const rollbackSignal = defineSignal<[reason?: string]>('rollback');

/** Live progress: stage, steps, resources, replicas, validation summary, smoke results. */
export const progressQuery = defineQuery<DeployProgress>('progress');
