import { Connection } from '@temporalio/client';
import { type ManagedProcess, spawnService, waitUntilHealthy } from './process';

// temporal.api.enums.v1.TaskQueueType
const TASK_QUEUE_TYPE_WORKFLOW = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;

export interface LocalWorkerOptions {
  /** How to run `garden-deploy worker`: the executable and its arguments. */
  command: string;
  args: string[];
  /** The worker's whole environment (it reads its configuration from there only). */
  env: NodeJS.ProcessEnv;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  logFile: string;
  startTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * `garden-deploy worker` as a supervised child in its own process group, waited on until Temporal
 * reports it polling both the workflow and the activity task queue.
 */
export async function startLocalWorker(options: LocalWorkerOptions): Promise<ManagedProcess> {
  const child = spawnService({
    name: 'worker',
    command: options.command,
    args: options.args,
    env: options.env,
    logFile: options.logFile,
    ownProcessGroup: true,
  });
  const connection = await Connection.connect({ address: options.temporalAddress });
  try {
    await waitUntilHealthy('garden-deploy worker', () => polling(connection, options), {
      // The worker bundles the workflow code when it starts.
      timeoutMs: options.startTimeoutMs ?? 120_000,
      process: child,
      signal: options.signal,
      intervalMs: 500,
    });
  } catch (err) {
    await child.stop(1_000);
    throw err;
  } finally {
    await connection.close();
  }
  return child;
}

async function polling(connection: Connection, options: LocalWorkerOptions): Promise<boolean> {
  const pollers = await Promise.all(
    [TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY].map(async (taskQueueType) => {
      const response = await connection.workflowService.describeTaskQueue({
        namespace: options.namespace,
        taskQueue: { name: options.taskQueue },
        taskQueueType,
      });
      // Pollers live in the server's memory only, and the server started with this stack.
      return (response.pollers ?? []).length > 0;
    }),
  );
  return pollers.every(Boolean);
}
