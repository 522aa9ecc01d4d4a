import { Connection } from '@temporalio/client';
import { type ManagedProcess, spawnService, waitUntilHealthy } from './process';

// temporal.api.enums.v1.TaskQueueType, DescribeTaskQueueMode
const TASK_QUEUE_TYPE_WORKFLOW = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;
const DESCRIBE_TASK_QUEUE_MODE_ENHANCED = 1;

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
    await waitUntilHealthy('garden-deploy worker', () => polling(connection, options, child.pid), {
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

/**
 * Whether this process (the SDK's identity is `pid@host`) polls both task queue types. With several
 * workers on the queue, or one killed a moment ago, any poller would not mean this one polls; and
 * each poll lands on one of the queue's partitions, so only the ENHANCED mode, which gathers the
 * pollers of every partition, sees a new worker before its long polls happen to reach the root
 * one (a minute, measured on a cluster). The server caches that answer for 5 s, so a start takes
 * at least that. Deprecated by Temporal, present in the pinned 1.29.
 */
async function polling(connection: Connection, options: LocalWorkerOptions, pid: number): Promise<boolean> {
  const response = await connection.workflowService.describeTaskQueue({
    namespace: options.namespace,
    taskQueue: { name: options.taskQueue },
    apiMode: DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
    taskQueueTypes: [TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY],
    reportPollers: true,
  });
  // Unversioned workers: the unversioned queue ("" build id) is the only one reported.
  const types = Object.values(response.versionsInfo ?? {}).map((version) => version.typesInfo ?? {});
  const ours = (type: number) =>
    types.some((info) => (info[type]?.pollers ?? []).some((p) => p.identity?.startsWith(`${pid}@`)));
  return ours(TASK_QUEUE_TYPE_WORKFLOW) && ours(TASK_QUEUE_TYPE_ACTIVITY);
}
