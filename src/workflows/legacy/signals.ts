import { defineSignal } from '@temporalio/workflow';

/**
 * Signals of the garden-deploy 0.1 `deployModel` workflow. Deployments of the current shape are
 * controlled by Updates (`../messages.ts`); these stay for 0.1 runs still in flight.
 */

/** Stop the deployment and remove everything it created. */
export const cancelSignal = defineSignal<[reason?: string]>('cancel');

/** Remove everything the deployment created: during the run or within its rollback window. */
export const rollbackSignal = defineSignal<[reason?: string]>('rollback');
