import {
  ApplicationFailure,
  type Client,
  type DescribeWorkflowExecutionResponse,
  QueryNotRegisteredError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionStatusName,
  WorkflowFailedError,
  type WorkflowHandle,
  isGrpcDeadlineError,
} from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { z } from 'zod';
import { type DeploymentActivities, STILL_WAITING } from '../activities/contract';
import { progressQuery } from '../workflows/messages';
import {
  DEPLOY_STAGES,
  type DeployProgress,
  type DeployStage as Stage,
  type DeploymentResult,
  type StepName,
  type StepProgress,
  type TeardownResult,
} from '../workflows/types';
import { deploymentAttributes } from './attributes';
import { laterTeardown, resolveWorkflow, teardownRecord, teardownWorkflowId } from './resolve';
import { firstLine } from './text';

/** An activity of the deployment that is scheduled, running or waiting to retry, as the server sees it. */
export interface RunningActivity {
  activityType: string;
  /** The step it runs or undoes. */
  step?: StepName;
  /** True when it undoes a step (cancel, rollback, failure or teardown). */
  compensation: boolean;
  state: 'SCHEDULED' | 'STARTED' | 'CANCEL_REQUESTED' | 'PAUSED' | 'PAUSE_REQUESTED' | 'UNSPECIFIED';
  /** Current attempt, from 1 (attempts that ended only to wait for Google are not counted). */
  attempt: number;
  /** Between two checks of a wait: `nextAttemptAt` is the next check, not a retry. */
  waiting: boolean;
  /** 0 means unlimited. */
  maximumAttempts: number;
  /** Why the previous attempt failed. */
  lastFailure?: string;
  scheduledAt?: string;
  lastHeartbeatAt?: string;
  nextAttemptAt?: string;
  /** From the deploy step's heartbeat: the Vertex long-running operation being awaited. */
  operationName?: string;
  /** From the deploy step's heartbeat: what it is doing, e.g. "waiting for the deploy operation". */
  phase?: string;
  /** From the wait-for-replicas step's heartbeat. */
  replicas?: { available: number; target: number; message?: string };
}

/** A step of the progress query with the activity running it (or undoing it) right now. */
export interface StepView extends StepProgress {
  activity?: RunningActivity;
}

/** A teardown that removed (or is removing) a deployment after it finished serving. */
export interface TeardownRecord {
  workflowId: string;
  status: WorkflowExecutionStatusName;
  closedAt?: string;
}

/** Everything known about a deployment (or teardown) now, from the workflow and the server. */
export interface DeploymentStatus {
  workflowId: string;
  runId: string;
  workflowType: string;
  status: WorkflowExecutionStatusName;
  taskQueue: string;
  startedAt: string;
  closedAt?: string;
  deployment?: string;
  project?: string;
  region?: string;
  modelUri?: string;
  endpointId?: string;
  stage?: Stage;
  percent?: number;
  /** The workflow's own view: from the `progress` query, or a failed run's failure details. */
  progress?: DeployProgress;
  /** Steps with live activity facts; empty when the workflow's progress is unavailable. */
  steps: StepView[];
  /** Pending activities (also those not matched to a step). */
  activities: RunningActivity[];
  /** Available/target replicas: the live heartbeat when waiting, else the last recorded. */
  replicas?: { available: number; target: number; message?: string };
  /** The result of a completed run. */
  result?: DeploymentResult | TeardownResult;
  /** Why a failed, cancelled, terminated or timed-out run ended. */
  failure?: string;
  /** Set when a teardown ran after this deployment finished serving: its resources are gone. */
  teardown?: TeardownRecord;
  /** What could not be found out, and why. */
  notes: string[];
}

export interface GetProgressOptions {
  /** How long to wait for a worker to answer the progress query (default 5 s). */
  queryTimeoutMs?: number;
}

/**
 * Which step of the first deploy each activity runs, and whether it undoes it; complete by
 * construction. An upgrade's own activities belong to no step: they show among the pending ones.
 */
const ACTIVITY_STEPS: Record<keyof DeploymentActivities, { step?: StepName; compensation: boolean }> = {
  validateWeights: { step: 'validate', compensation: false },
  deployToVertex: { step: 'deploy', compensation: false },
  startDeploy: { step: 'deploy', compensation: false },
  finishDeploy: { step: 'deploy', compensation: false },
  waitForReplicas: { step: 'waitForReplicas', compensation: false },
  reservePscAddress: { step: 'psc', compensation: false },
  createPscForwardingRule: { step: 'psc', compensation: false },
  waitForPscConnection: { step: 'psc', compensation: false },
  runSmokeTests: { step: 'smoke', compensation: false },
  deletePscForwardingRule: { step: 'psc', compensation: true },
  releasePscAddress: { step: 'psc', compensation: true },
  stopDeployOperation: { step: 'deploy', compensation: true },
  undeployModels: { step: 'deploy', compensation: true },
  deleteEndpoint: { step: 'deploy', compensation: true },
  deleteModel: { step: 'deploy', compensation: true },
  // A scale is no step of the first deploy; its activity shows among the pending ones.
  scaleDeployment: { step: 'waitForReplicas', compensation: false },
  startRevisionDeploy: { compensation: false },
  finishRevisionDeploy: { compensation: false },
  setTraffic: { compensation: false },
  undeployRevision: { compensation: true },
  measureTraffic: { compensation: false },
  checkServingQuota: { step: 'deploy', compensation: false },
  diagnoseStart: { compensation: false },
  configureDeployedModel: { step: 'waitForReplicas', compensation: false },
};

/** `PendingActivityState` proto enum, by number. */
const ACTIVITY_STATES: RunningActivity['state'][] = [
  'UNSPECIFIED',
  'SCHEDULED',
  'STARTED',
  'CANCEL_REQUESTED',
  'PAUSED',
  'PAUSE_REQUESTED',
];
/** `TaskQueueKind.NORMAL` and `TaskQueueType.WORKFLOW` proto enum values. */
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_WORKFLOW = 1;

/** What the steps heartbeat: deploy `{ operationName, status }`, waitForReplicas `{ available, target, message }`. */
const PhaseHeartbeat = z.looseObject({
  operationName: z.string().min(1).optional(),
  status: z.string().optional(),
});
const ReplicasHeartbeat = z.looseObject({
  available: z.number().int().nonnegative(),
  target: z.number().int().nonnegative(),
  message: z.string().optional(),
});
/** How many of a waiting activity's attempts ended only to wait (activities/wait-state.ts). */
const WaitHeartbeat = z.looseObject({ wait: z.looseObject({ yields: z.number().int().nonnegative() }) });
const MAX_MESSAGE_CHARS = 300;
/** Enough of `DeployProgress` to trust a failure's details as one. */
const ProgressShape = z.looseObject({
  stage: z.enum(DEPLOY_STAGES),
  steps: z.array(z.looseObject({ name: z.string(), status: z.string() })),
});

/**
 * The deployment's progress as the workflow reports it (`progress` query), merged with what the
 * server knows live: execution status, the running activity's attempt, last failure and
 * heartbeat (replicas N/M, operation name). Works on closed runs too while a worker is up; with
 * no worker it falls back to the server's view and the search attributes, saying so in `notes`.
 */
export async function getProgress(
  client: Client,
  ref: string,
  options: GetProgressOptions = {},
): Promise<DeploymentStatus> {
  const { workflowId, handle, description } = await resolveWorkflow(client, ref);
  const status = description.status.name;
  const notes: string[] = [];
  const [progress, closed, activities] = await Promise.all([
    queryProgress(client, handle, description, options.queryTimeoutMs ?? 5_000, notes),
    status === 'RUNNING' ? undefined : closedOutcome(handle),
    runningActivities(client, description.raw),
  ]);
  const workflowTaskAttempt = description.raw.pendingWorkflowTask?.attempt ?? 0;
  if (workflowTaskAttempt > 1) {
    notes.push(
      `the workflow task has failed ${workflowTaskAttempt - 1} time(s): the worker may run code that ` +
        'cannot replay this deployment; check the worker log',
    );
  }
  const known = progress ?? closed?.progress;
  const recorded = deploymentAttributes(description.typedSearchAttributes);
  const teardown =
    isDeploymentResult(closed?.result) && closed.result.outcome === 'serving'
      ? await laterTeardown(
          client,
          teardownWorkflowId(closed.result.project, closed.result.region, closed.result.deployment),
          description.closeTime,
        )
      : undefined;
  if (teardown)
    notes.push(`torn down by ${teardown.workflowId} (${teardown.status.name}); its resources are gone`);
  const steps = (known?.steps ?? []).map((step) => withActivity(step, activities));
  const waiting = activities.find((activity) => activity.replicas && !activity.compensation);
  return {
    workflowId,
    runId: description.runId,
    workflowType: description.type,
    status,
    taskQueue: description.taskQueue,
    startedAt: description.startTime.toISOString(),
    closedAt: description.closeTime?.toISOString(),
    deployment: known?.deployment ?? recorded.deployment,
    project: known?.project ?? recorded.project,
    region: known?.region ?? recorded.region,
    modelUri: known?.modelUri ?? recorded.modelUri,
    endpointId: recorded.endpointId,
    stage: known?.stage ?? recorded.stage,
    percent: known?.percent,
    progress: known,
    steps,
    activities,
    replicas: waiting?.replicas ?? known?.replicas,
    result: closed?.result,
    failure: closed?.failure,
    teardown: teardown && teardownRecord(teardown),
    notes,
  };
}

/** A deployment's result, as opposed to a teardown's. */
export function isDeploymentResult(
  result: DeploymentResult | TeardownResult | undefined,
): result is DeploymentResult {
  return result !== undefined && 'outcome' in result;
}

export async function queryProgress(
  client: Client,
  handle: WorkflowHandle,
  description: WorkflowExecutionDescription,
  timeoutMs: number,
  notes: string[],
): Promise<DeployProgress | undefined> {
  // A query to a task queue nobody polls waits for the server's own timeout: check first.
  if (!(await hasWorkflowPollers(client, description.taskQueue))) {
    notes.push(
      `no worker polls task queue "${description.taskQueue}", so the workflow cannot report its progress; ` +
        'showing what the server knows. Start a worker (`garden-deploy worker`) for live progress',
    );
    return undefined;
  }
  try {
    return await client.connection.withDeadline(Date.now() + timeoutMs, () => handle.query(progressQuery));
  } catch (err) {
    if (isGrpcDeadlineError(err)) {
      notes.push(
        `no worker on task queue "${description.taskQueue}" answered the progress query within ` +
          `${Math.round(timeoutMs / 1000)} s; showing what the server knows`,
      );
    } else if (err instanceof QueryNotRegisteredError) {
      notes.push(`this ${description.type} workflow does not answer the progress query`);
    } else {
      notes.push(`the progress query failed: ${firstLine(err)}`);
    }
    return undefined;
  }
}

export async function hasWorkflowPollers(client: Client, taskQueue: string): Promise<boolean> {
  const { pollers } = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: TASK_QUEUE_KIND_NORMAL },
    taskQueueType: TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (pollers?.length ?? 0) > 0;
}

/** A closed run's result, or its failure (with the progress a failed deployment attaches). */
async function closedOutcome(
  handle: WorkflowHandle,
): Promise<{ result?: DeploymentResult | TeardownResult; failure?: string; progress?: DeployProgress }> {
  try {
    return { result: (await handle.result()) as DeploymentResult | TeardownResult };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause;
    const details = cause instanceof ApplicationFailure ? cause.details?.[0] : undefined;
    const progress = ProgressShape.safeParse(details).success ? (details as DeployProgress) : undefined;
    return { failure: cause?.message || err.message, progress };
  }
}

type PendingActivity = NonNullable<DescribeWorkflowExecutionResponse['pendingActivities']>[number];

async function runningActivities(
  client: Client,
  raw: DescribeWorkflowExecutionResponse,
): Promise<RunningActivity[]> {
  return Promise.all((raw.pendingActivities ?? []).map((pending) => toRunningActivity(client, pending)));
}

async function toRunningActivity(client: Client, pending: PendingActivity): Promise<RunningActivity> {
  const activityType = pending.activityType?.name ?? 'unknown';
  const mapping = ACTIVITY_STEPS[activityType as keyof DeploymentActivities] as
    (typeof ACTIVITY_STEPS)[keyof DeploymentActivities] | undefined;
  const [details] = await decodeArrayFromPayloads(
    client.options.loadedDataConverter,
    pending.heartbeatDetails?.payloads,
  ).catch(() => [undefined]);
  const operation = PhaseHeartbeat.safeParse(details);
  const replicas = ReplicasHeartbeat.safeParse(details);
  const wait = WaitHeartbeat.safeParse(details);
  const waiting = pending.lastFailure?.applicationFailureInfo?.type === STILL_WAITING;
  return {
    activityType,
    step: mapping?.step,
    compensation: mapping?.compensation ?? false,
    state: ACTIVITY_STATES[pending.state ?? 0] ?? 'UNSPECIFIED',
    // Attempts that ended only to wait for Google are not failures (activities/wait-state.ts).
    attempt: (pending.attempt ?? 1) - (wait.success ? wait.data.wait.yields : 0),
    maximumAttempts: pending.maximumAttempts ?? 0,
    waiting,
    lastFailure: waiting ? undefined : pending.lastFailure?.message || undefined,
    scheduledAt: isoOf(pending.scheduledTime),
    lastHeartbeatAt: isoOf(pending.lastHeartbeatTime),
    nextAttemptAt: isoOf(pending.nextAttemptScheduleTime),
    operationName: operation.success ? operation.data.operationName : undefined,
    phase: operation.success ? operation.data.status?.slice(0, MAX_MESSAGE_CHARS) : undefined,
    replicas: replicas.success
      ? {
          available: replicas.data.available,
          target: replicas.data.target,
          message: replicas.data.message?.slice(0, MAX_MESSAGE_CHARS),
        }
      : undefined,
  };
}

function withActivity(step: StepProgress, activities: RunningActivity[]): StepView {
  const undoing = step.status === 'compensating';
  const activity = activities.find((a) => a.step === step.name && a.compensation === undoing);
  return activity && (step.status === 'running' || undoing) ? { ...step, activity } : step;
}

function isoOf(timestamp: PendingActivity['scheduledTime']): string | undefined {
  return optionalTsToDate(timestamp)?.toISOString();
}
