import type { Client, WorkflowHandle } from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import type { OwnershipProof } from '../activities/contract';
import { type DeploymentIds, type DeploymentSpec, deploymentIds, parseDeploymentSpec } from '../spec';
import type { DeployModelInput, DeploymentInput, DeploymentResult, RecoveryInput } from '../workflows/types';
import { DeploymentStateError } from './errors';
import { queryProgress } from './progress';
import { LEGACY_DEPLOY_WORKFLOW_TYPE, type ResolvedWorkflow } from './resolve';

/** How long the closed run's state may take to be replayed by a worker. */
const QUERY_TIMEOUT_MS = 15_000;

/**
 * What the teardown of a run that ended without cleaning up needs: its ownership proof (identity
 * and fingerprints, or 0.1's name label and lifetime), what it recorded, and the ids it derives
 * from its spec. The run's own state comes from a progress query (a worker replays the closed
 * run); its spec from its start event. Undefined when it created nothing.
 */
export async function recoveryInput(
  client: Client,
  { workflowId, description }: ResolvedWorkflow,
  reason: string | undefined,
): Promise<RecoveryInput | undefined> {
  const handle = client.workflow.getHandle(workflowId, description.runId);
  const input = await startInput(client, handle);
  const notes: string[] = [];
  const progress = await queryProgress(client, handle, description, QUERY_TIMEOUT_MS, notes);
  const legacy = description.type === LEGACY_DEPLOY_WORKFLOW_TYPE;
  const legacyResult =
    legacy && description.status.name === 'COMPLETED'
      ? ((await handle.result()) as DeploymentResult)
      : undefined;
  const resources = progress?.resources ?? legacyResult?.resources;
  if (!resources) {
    throw new DeploymentStateError(
      `cannot tell what ${workflowId} (${description.status.name}) created: ${notes.join('; ') || 'its progress is unavailable'}. ` +
        'Start a worker on its task queue and retry.',
    );
  }
  const previous = {
    workflowId,
    runId: description.runId,
    workflowType: description.type,
    status: description.status.name,
  };
  if (input && 'recover' in input) {
    // A teardown of an earlier run that was itself cut short: the same proof, the newest record.
    return {
      ...input.recover,
      resources: { ...input.recover.resources, ...resources },
      previous,
      ...(reason ? { reason } : {}),
    };
  }
  const spec = parseDeploymentSpec((input as { spec: unknown } | undefined)?.spec);
  // An upgrade cut short may have left its staging endpoint and Model: the teardown looks for them too.
  const upgrade =
    progress?.upgrade && !progress.upgrade.endedAt ? { revision: progress.upgrade.revision } : undefined;
  const ids = legacy ? legacyIds(spec) : deploymentIds(spec);
  const ownership: OwnershipProof | undefined = legacy
    ? {
        deploymentLabel: spec.name,
        endpointDisplayName: ids.endpointDisplayName,
        modelDisplayName: ids.modelDisplayName,
        notBefore: description.startTime.getTime(),
      }
    : progress?.ownership;
  if (!ownership) return undefined;
  return {
    project: spec.project,
    region: spec.region,
    deployment: spec.name,
    previous,
    ownership,
    resources,
    ids,
    ...(spec.access.type === 'private' ? { consumerProject: spec.access.consumerProject } : {}),
    ...(reason ? { reason } : {}),
    ...(upgrade ? { upgrade } : {}),
  };
}

/** The run's input, from its first history event. */
async function startInput(
  client: Client,
  handle: WorkflowHandle,
): Promise<DeploymentInput | DeployModelInput | undefined> {
  const history = await handle.fetchHistory();
  const payloads = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
  const [input] = await decodeArrayFromPayloads(client.options.loadedDataConverter, payloads);
  return input as DeploymentInput | DeployModelInput | undefined;
}

/** garden-deploy 0.1 named the PSC resources after the deployment alone. */
function legacyIds(spec: DeploymentSpec): DeploymentIds {
  return {
    ...deploymentIds(spec),
    pscAddressName: `${spec.name}-psc-ip`,
    pscForwardingRuleName: `${spec.name}-psc-fr`,
  };
}
