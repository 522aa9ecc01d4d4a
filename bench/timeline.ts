import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import type { EmulatorAdminClient } from '../src/emulator/admin-client';
import { DeployStage } from '../src/search-attributes';

/**
 * When things happened to a deployment, from both sides: what Google did (the emulator's records)
 * and when the workflow learned of it (its history's event times). Both clocks are this machine's.
 */

/** A deployment's history: its length, when each activity type first completed, when it first served. */
export interface HistoryTimeline {
  events: number;
  /** Epoch ms of the first ActivityTaskCompleted per activity type. */
  completed: Map<string, number>;
  /** Epoch ms of the first upsert of `DeployStage` = SERVING. */
  servingAt?: number;
}

export async function historyTimeline(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<HistoryTimeline> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const events = history.events ?? [];
  const typeOf = new Map<string, string>();
  const completed = new Map<string, number>();
  let servingAt: number | undefined;
  for (const event of events) {
    const stage =
      event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.[DeployStage.name]
        ?.data;
    // A Keyword's payload is its JSON text.
    if (servingAt === undefined && stage && Buffer.from(stage).toString('utf8') === '"SERVING"')
      servingAt = tsToMs(event.eventTime);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name) typeOf.set(String(event.eventId), scheduled.activityType.name);
    const done = event.activityTaskCompletedEventAttributes;
    if (!done) continue;
    const type = typeOf.get(String(done.scheduledEventId));
    if (type && !completed.has(type)) completed.set(type, tsToMs(event.eventTime));
  }
  return { events: events.length, completed, ...(servingAt === undefined ? {} : { servingAt }) };
}

/** What the emulator recorded of one deployment's first deploy. */
export interface GoogleTimeline {
  /** The `:deploy` call (its operation's createTime). */
  deployCalledAt: number;
  /** The deploy operation's end (its updateTime once done). */
  deployDoneAt?: number;
  /** The first replica available: the deployed model's creation plus the project's replica ramp. */
  readyAt?: number;
}

/**
 * The deploy operations and deployed models of a project, by model id (= the deployment's name
 * unless the spec sets `model.id`).
 */
export async function googleTimelines(
  admin: EmulatorAdminClient,
  project: string,
): Promise<Map<string, GoogleTimeline>> {
  const [resources, timing] = await Promise.all([admin.resources(project), admin.timing(project)]);
  const byModel = new Map<string, GoogleTimeline>();
  for (const op of resources.operations) {
    const metadata = op.metadata as {
      '@type'?: string;
      modelId?: string;
      genericMetadata?: { createTime?: string; updateTime?: string };
    };
    if (!metadata['@type']?.endsWith('.DeployOperationMetadata') || !metadata.modelId) continue;
    const created = Date.parse(metadata.genericMetadata?.createTime ?? '');
    const updated = Date.parse(metadata.genericMetadata?.updateTime ?? '');
    byModel.set(metadata.modelId, {
      deployCalledAt: created,
      ...(op.done === true ? { deployDoneAt: updated } : {}),
    });
  }
  for (const endpoint of resources.endpoints) {
    const deployed = (endpoint.deployedModels ?? []) as Array<{ model?: string; createTime?: string }>;
    for (const model of deployed) {
      const id = model.model?.split('/').pop();
      const record = id ? byModel.get(id) : undefined;
      if (record && model.createTime) record.readyAt = Date.parse(model.createTime) + timing.replicaRampMs;
    }
  }
  return byModel;
}

/**
 * The workflow's lag behind Google: from the deploy operation's end to the deploy step's activity
 * completing (it also labels the endpoint and model: four calls), and from the first replica
 * being available to the replica wait completing.
 */
export function lagsOf(history: HistoryTimeline, google: GoogleTimeline | undefined) {
  const finished = history.completed.get('finishDeploy');
  const ready = history.completed.get('waitForReplicas');
  return {
    completionMs:
      finished !== undefined && google?.deployDoneAt !== undefined
        ? finished - google.deployDoneAt
        : undefined,
    readinessMs: ready !== undefined && google?.readyAt !== undefined ? ready - google.readyAt : undefined,
  };
}
