import { createHash } from 'node:crypto';
import {
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
  type WorkflowStartOptions,
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { stringify as toYaml } from 'yaml';
import { DEFAULT_TASK_QUEUE } from '../constants';
import { DeployStage, DeploymentName, GcpProject, GcpRegion, ModelUri } from '../search-attributes';
import { type DeploymentSpec, deploymentWorkflowId, formatDuration, parseDeploymentSpec } from '../spec';
import type { deployment } from '../workflows/deployment/workflow';
import { deployUpdate, progressQuery } from '../workflows/messages';
import type { DeploymentResult, DeploymentSettings } from '../workflows/types';
import { DeploymentStateError, RequestAlreadyDoneError } from './errors';
import { hasWorkflowPollers } from './progress';
import { DEPLOYMENT_WORKFLOW_TYPE, LEGACY_DEPLOY_WORKFLOW_TYPE } from './resolve';
import { truncateUtf8 } from './text';
import { idOf, throwIfRefused, outcomeOf, updateError } from './updates';

export interface StartDeploymentOptions {
  /** Task queue the garden-deploy worker polls (default `garden-deploy`). */
  taskQueue?: string;
  /** Operator tuning passed to the workflow (e.g. heartbeat timeout, cleanup budget). */
  settings?: DeploymentSettings;
  /** Idempotency key: the same id again attaches to the same request (default: a new UUID). */
  requestId?: string;
}

export interface StartedDeployment {
  workflowId: string;
  runId: string;
  /** False when the deployment already existed with this spec and the call attached to it. */
  started: boolean;
  /** The spec as validated (defaults applied, durations in ms). */
  spec: DeploymentSpec;
  /** The deploy request's id (the Update id). */
  requestId: string;
  /** A deployment of garden-deploy 0.1 still running with this spec (followed, not controlled by Updates). */
  legacy: boolean;
  /**
   * The deployment was serving another model, machine or validation: this deploy is an upgrade to
   * revision `revision` (from `from`); `result()` carries its outcome in `upgrade`.
   */
  upgrade?: { revision: number; from: number };
  /**
   * No worker polled the task queue: the deployment was started (or exists) and waits for one; the
   * spec is compared with the deployment's once a worker takes it (`result()` then rejects when it differs).
   */
  waitingForWorker: boolean;
  handle: WorkflowHandle;
  /**
   * Resolves once the deployment serves (outcome `serving`) or the first deploy ended (`failed`,
   * `cancelled`, `rolled-back`, or `cleanup-blocked` when its removal is blocked).
   */
  result(): Promise<DeploymentResult>;
}

/** Memo key with the digest of the spec a deployment was started from (0.1 runs carry it too). */
const MEMO_SPEC_DIGEST = 'specDigest';
/** Memo key with the id of the deploy request that started the run: how a retried create is told apart. */
const MEMO_REQUEST_ID = 'requestId';

/** Temporal UI limits on user metadata. */
export const MAX_SUMMARY_BYTES = 200;
const MAX_DETAILS_BYTES = 20_000;

/**
 * Deploys the spec: starts the durable deployment (`deploy/{project}/{region}/{name}`) and sends
 * its `deploy` Update in one call (update-with-start). When the deployment exists with the same
 * spec, the call attaches to it; with another spec it is refused (`DeploymentStateError` naming
 * what differs and which command changes it), and nothing changes. A bad spec throws
 * `InvalidSpecError` listing every field, before anything is sent.
 */
export async function startDeployment(
  client: Client,
  specInput: unknown,
  options: StartDeploymentOptions = {},
): Promise<StartedDeployment> {
  const spec = parseDeploymentSpec(specInput);
  const workflowId = deploymentWorkflowId(spec);
  const requestId = idOf(options);
  const previous = await describeLatest(client, workflowId);
  // A retry of the request that started a run which has ended since: the same request, not a new one.
  if (previous && previous.status.name !== 'RUNNING' && startedBy(previous).requestId === requestId)
    throw new RequestAlreadyDoneError(workflowId, previous.runId, previous.status.name, requestId);
  const legacy = previous && (await refuseOrFollowLegacy(client, workflowId, previous, spec, requestId));
  if (legacy) return legacy;

  const taskQueue = options.taskQueue ?? DEFAULT_TASK_QUEUE;
  const withModelUri = !encodesPayloads(client);
  const settings = withModelUri ? options.settings : { ...options.settings, modelUriSearchAttribute: false };
  const startOptions = {
    ...deploymentStartOptions(spec, taskQueue, { withModelUri }),
    args: [{ spec, ...(settings ? { settings } : {}) }],
    memo: { [MEMO_SPEC_DIGEST]: canonicalDigest(spec), [MEMO_REQUEST_ID]: requestId },
    staticSummary: deploymentSummary(spec),
    staticDetails: deploymentDetails(spec),
  } satisfies WorkflowStartOptions<typeof deployment>;
  // An Update is accepted only by a worker: with none polling, start now and send the spec once one is.
  if (!(await hasWorkflowPollers(client, taskQueue))) {
    const handle = await client.workflow.start<typeof deployment>(DEPLOYMENT_WORKFLOW_TYPE, startOptions);
    const runId = handle.firstExecutionRunId;
    return {
      workflowId,
      runId,
      started: !(previous?.status.name === 'RUNNING' && previous.runId === runId),
      spec,
      requestId,
      legacy: false,
      waitingForWorker: true,
      handle,
      result: () =>
        handle
          .executeUpdate(deployUpdate, { args: [{ spec }], updateId: requestId })
          .catch((err: unknown) => Promise.reject(updateError(err, workflowId, 'deploy'))),
    };
  }
  const startOperation = new WithStartWorkflowOperation<typeof deployment>(
    DEPLOYMENT_WORKFLOW_TYPE,
    startOptions,
  );
  let update;
  try {
    update = await client.workflow.startUpdateWithStart(deployUpdate, {
      args: [{ spec }],
      waitForStage: 'ACCEPTED',
      startWorkflowOperation: startOperation,
      updateId: requestId,
    });
  } catch (err) {
    throw updateError(err, workflowId, 'deploy');
  }
  await throwIfRefused(client, update, workflowId, 'deploy');
  const handle = await startOperation.workflowHandle();
  const runId = update.workflowRunId ?? (await handle.describe()).runId;
  const started = !(previous?.status.name === 'RUNNING' && previous.runId === runId);
  const upgrade = started ? undefined : await upgradeStartedBy(handle, requestId);
  return {
    workflowId,
    runId,
    started,
    spec,
    requestId,
    legacy: false,
    ...(upgrade ? { upgrade } : {}),
    waitingForWorker: false,
    handle,
    result: outcomeOf(update, workflowId, 'deploy'),
  };
}

/**
 * What makes a start of `deployment` this deployment's: its id, an id already running attaches
 * (the deploy Update then decides), and the search attributes it starts with (the workflow keeps
 * DeployStage and EndpointId current). Also published to other languages (`npm run contract`).
 * `withModelUri: false` (payloads encrypted) leaves ModelUri out: search attributes are not encoded.
 */
export function deploymentStartOptions(
  spec: Pick<DeploymentSpec, 'name' | 'project' | 'region' | 'model'>,
  taskQueue: string,
  { withModelUri = true }: { withModelUri?: boolean } = {},
) {
  return {
    taskQueue,
    workflowId: deploymentWorkflowId(spec),
    workflowIdConflictPolicy: 'USE_EXISTING' as const,
    typedSearchAttributes: [
      { key: DeployStage, value: 'VALIDATING' },
      { key: DeploymentName, value: spec.name },
      ...(withModelUri ? [{ key: ModelUri, value: spec.model.uri }] : []),
      { key: GcpProject, value: spec.project },
      { key: GcpRegion, value: spec.region },
    ],
  } satisfies Partial<WorkflowStartOptions>;
}

/**
 * A client with a payload codec keeps what its payloads carry out of plaintext: the model URI then
 * stays out of the search attributes, which Temporal stores, indexes and shows unencoded.
 */
export function encodesPayloads(client: Client): boolean {
  return client.options.loadedDataConverter.payloadCodecs.length > 0;
}

/** The upgrade this deploy request started (or attached to), from the deployment's progress. */
async function upgradeStartedBy(
  handle: WorkflowHandle,
  requestId: string,
): Promise<{ revision: number; from: number } | undefined> {
  const progress = await handle.query(progressQuery).catch(() => undefined);
  const upgrade = progress?.upgrade;
  return upgrade?.requestId === requestId ? { revision: upgrade.revision, from: upgrade.from } : undefined;
}

/** The latest run of a workflow id, or undefined when there is none. */
export async function describeLatest(
  client: Client,
  workflowId: string,
): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/**
 * What an earlier run of this id means for a new deploy: a garden-deploy 0.1 run still going with
 * this spec is followed; one with another spec, or a run that ended without removing what it made
 * (terminated, timed out, 0.1 finished serving), is refused with what to do.
 */
async function refuseOrFollowLegacy(
  client: Client,
  workflowId: string,
  previous: WorkflowExecutionDescription,
  spec: DeploymentSpec,
  requestId: string,
): Promise<StartedDeployment | undefined> {
  const status = previous.status.name;
  const isLegacy = previous.type === LEGACY_DEPLOY_WORKFLOW_TYPE;
  if (status === 'RUNNING') {
    if (!isLegacy) return undefined; // the deploy Update decides: same spec attaches, another is refused
    if (previous.memo?.[MEMO_SPEC_DIGEST] !== canonicalDigest(spec)) {
      throw new DeploymentStateError(
        `${workflowId} is a deployment of garden-deploy 0.1 still running with another spec; it finishes on its ` +
          `own. Wait for it, or stop it with \`garden-deploy cancel ${workflowId}\`, then deploy again.`,
      );
    }
    const handle = client.workflow.getHandle(workflowId, previous.runId);
    return {
      workflowId,
      runId: previous.runId,
      started: false,
      spec,
      requestId,
      legacy: true,
      waitingForWorker: false,
      handle,
      result: () => handle.result() as Promise<DeploymentResult>,
    };
  }
  const leftBehind =
    status === 'TERMINATED' ||
    status === 'TIMED_OUT' ||
    (isLegacy &&
      status === 'COMPLETED' &&
      ((await handle(client, previous).result()) as DeploymentResult).outcome === 'serving');
  if (leftBehind) {
    throw new DeploymentStateError(
      `the previous run of ${workflowId} (${previous.type}, ${status}) ended without removing what it created, ` +
        `so a new deployment could collide with it. Remove it first with \`garden-deploy teardown ${workflowId}\`, then deploy again.`,
    );
  }
  return undefined;
}

function handle(client: Client, description: WorkflowExecutionDescription): WorkflowHandle {
  return client.workflow.getHandle(description.workflowId, description.runId);
}

/** One line for the Temporal UI's workflow list, at most 200 bytes. */
export function deploymentSummary(spec: DeploymentSpec): string {
  return truncateUtf8(`Deploy ${spec.name} → ${spec.region} (${spec.model.uri})`, MAX_SUMMARY_BYTES);
}

/** Markdown for the Temporal UI: what is deployed where, then the whole spec (it holds no secrets). */
export function deploymentDetails(spec: DeploymentSpec): string {
  const machine =
    spec.machine === 'auto'
      ? 'auto (the validator recommends one)'
      : `${spec.machine.type}, ${spec.machine.acceleratorCount}× ${spec.machine.acceleratorType}`;
  const access =
    spec.access.type === 'public'
      ? 'public (dedicated endpoint)'
      : `private (PSC) from \`${spec.access.network}\`, allowlist ${spec.access.projectAllowlist.join(', ')}`;
  const smoke =
    spec.smoke.target === 'skip'
      ? `skipped: ${spec.smoke.skipReason ?? ''}`
      : `${spec.smoke.tests.map((test) => `${test.name} (${test.mode})`).join(', ')}; on failure ${spec.smoke.onFailure}`;
  const rows: Array<[string, string]> = [
    ['Model', `\`${spec.model.uri}\``],
    ['Project / region', `${spec.project} / ${spec.region}`],
    ['Machine', machine],
    [
      'Replicas',
      spec.replicas.min === spec.replicas.max
        ? `${spec.replicas.min}`
        : `${spec.replicas.min}–${spec.replicas.max}`,
    ],
    ['Access', access],
    ['Smoke tests', smoke],
    ['Rollback window', spec.rollbackWindow === 0 ? 'none' : formatDuration(spec.rollbackWindow)],
  ];
  const header = [
    `**${spec.name}**: garden-deploy deployment`,
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([key, value]) => `| ${key} | ${value.replace(/\|/g, '\\|')} |`),
    '',
  ].join('\n');
  const fence = '```';
  const yaml = toYaml(spec);
  const full = `${header}\n${fence}yaml\n${yaml}${fence}\n`;
  if (Buffer.byteLength(full) <= MAX_DETAILS_BYTES) return full;
  const note = `\n${fence}\n(spec truncated to fit the Temporal UI)\n`;
  const room = MAX_DETAILS_BYTES - Buffer.byteLength(`${header}\n${fence}yaml\n`) - Buffer.byteLength(note);
  return `${header}\n${fence}yaml\n${truncateUtf8(yaml, room)}${note}`;
}

/**
 * The deploy request that started a run, from its memo: its id and the digest of its spec (runs
 * started before the request id was recorded have only the digest).
 */
export function startedBy(description: Pick<WorkflowExecutionDescription, 'memo'>): {
  requestId?: string;
  specDigest?: string;
} {
  const memo = description.memo ?? {};
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const requestId = text(memo[MEMO_REQUEST_ID]);
  const specDigest = text(memo[MEMO_SPEC_DIGEST]);
  return { ...(requestId ? { requestId } : {}), ...(specDigest ? { specDigest } : {}) };
}

/** Stable over key order, so the same value (a spec, a request) always has the same digest. */
export function canonicalDigest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 32);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
