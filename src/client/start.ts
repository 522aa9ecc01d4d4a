import { createHash, randomUUID } from 'node:crypto';
import type {
  Client,
  Workflow,
  WorkflowHandle,
  WorkflowHandleWithFirstExecutionRunId,
  WorkflowStartOptions,
} from '@temporalio/client';
import { stringify as toYaml } from 'yaml';
import { DEFAULT_TASK_QUEUE } from '../constants';
import { DeployStage, DeploymentName, GcpProject, GcpRegion, ModelUri } from '../search-attributes';
import { type DeploymentSpec, deploymentWorkflowId, formatDuration, parseDeploymentSpec } from '../spec';
import type { deployModel } from '../workflows/deploy-model';
import type { DeployModelInput } from '../workflows/types';
import { truncateUtf8 } from './text';

export interface StartDeploymentOptions {
  /** Task queue the garden-deploy worker polls (default `garden-deploy`). */
  taskQueue?: string;
  /** Operator tuning passed to the workflow (e.g. heartbeat timeout). */
  settings?: DeployModelInput['settings'];
}

export interface StartedDeployment {
  workflowId: string;
  runId: string;
  /** False when this deployment was already running and the call attached to that run. */
  started: boolean;
  /**
   * When attached: whether the running deployment was started from the same spec (undefined when
   * it was started by something other than this library, so it cannot be told).
   */
  sameSpec?: boolean;
  /** The spec as validated (defaults applied, durations in ms). */
  spec: DeploymentSpec;
  handle: WorkflowHandle<typeof deployModel>;
}

/** Memo keys that let a start tell whether it created the run or attached to one. */
const MEMO_START_REQUEST = 'startRequestId';
const MEMO_SPEC_DIGEST = 'specDigest';

/** Temporal UI limits on user metadata. */
export const MAX_SUMMARY_BYTES = 200;
const MAX_DETAILS_BYTES = 20_000;

/**
 * Starts the deployment described by `specInput`, or attaches to it when it is already running
 * (the workflow id is derived from project, region and name). The spec is validated here first:
 * a bad spec throws `InvalidSpecError` listing every field, and nothing is started.
 */
export async function startDeployment(
  client: Client,
  specInput: unknown,
  options: StartDeploymentOptions = {},
): Promise<StartedDeployment> {
  const spec = parseDeploymentSpec(specInput);
  const specDigest = digest(spec);
  const { handle, started, memo } = await startOrAttach<typeof deployModel>(client, 'deployModel', {
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    workflowId: deploymentWorkflowId(spec),
    args: [{ spec, ...(options.settings ? { settings: options.settings } : {}) }],
    memo: { [MEMO_SPEC_DIGEST]: specDigest },
    typedSearchAttributes: [
      { key: DeployStage, value: 'VALIDATING' },
      { key: DeploymentName, value: spec.name },
      { key: ModelUri, value: spec.model.uri },
      { key: GcpProject, value: spec.project },
      { key: GcpRegion, value: spec.region },
    ],
    staticSummary: deploymentSummary(spec),
    staticDetails: deploymentDetails(spec),
  });
  const runningDigest = memo?.[MEMO_SPEC_DIGEST];
  return {
    workflowId: handle.workflowId,
    runId: handle.firstExecutionRunId,
    started,
    sameSpec: started ? true : typeof runningDigest === 'string' ? runningDigest === specDigest : undefined,
    spec,
    handle,
  };
}

/**
 * Starts a workflow with `USE_EXISTING`, so a second start of the same id attaches to the running
 * one, and tells which happened: the server does not say, but the run's memo carries the id of
 * the request that created it.
 */
export async function startOrAttach<W extends Workflow>(
  client: Client,
  workflowType: string,
  options: Omit<WorkflowStartOptions<W>, 'workflowIdConflictPolicy'>,
): Promise<{
  handle: WorkflowHandleWithFirstExecutionRunId<W>;
  started: boolean;
  memo?: Record<string, unknown>;
}> {
  const startRequestId = randomUUID();
  const handle = await client.workflow.start<W>(workflowType, {
    ...options,
    workflowIdConflictPolicy: 'USE_EXISTING',
    memo: { ...options.memo, [MEMO_START_REQUEST]: startRequestId },
    // Omit<> flattens the SDK's conditional `args` type; the fields are the caller's, unchanged.
  } as WorkflowStartOptions<W>);
  const { memo } = await client.workflow.getHandle(options.workflowId, handle.firstExecutionRunId).describe();
  return { handle, started: memo?.[MEMO_START_REQUEST] === startRequestId, memo };
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

/** Stable over key order, so the same spec always has the same digest. */
function digest(spec: DeploymentSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 32);
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
