import { createHash } from 'node:crypto';
import type { Storage } from '@google-cloud/storage';
import type { Client } from '@temporalio/client';
import type { MetricMeter } from '@temporalio/common';
import {
  DeploymentStateError,
  RequestAlreadyDoneError,
  hasWorkflowPollers,
  startDeployment,
  startedBy,
} from '../client';
import { firstLine } from '../client/text';
import { METRICS } from '../metrics';
import { type DeploymentSpec, InvalidSpecError, type SpecIssue, deploymentWorkflowId } from '../spec';
import { StorageAccessError, readObjectGeneration } from '../storage';
import { progressQuery } from '../workflows/messages';
import type { DeploymentSettings } from '../workflows/types';
import type { EventsConfig } from './config';
import { type Marker, markerOf, specFromMarker } from './marker';
import {
  type EventOutcome,
  type MarkerStatus,
  type RecordedOutcome,
  readMarkerStatus,
  writeMarkerStatus,
} from './status';
import type { StorageEvent } from './storage-event';

/**
 * One storage event to its effect: a finalized marker's generation starts (or upgrades) its
 * deployment at most once. The deploy request's id is `gcs:<bucket>/<object>#<generation>`, so
 * Temporal answers a second delivery with the first one's request; the status object next to the
 * marker records the generation handled, so a redelivery after the deployment ended starts nothing
 * either. Every event is answered with an outcome; only `retry` asks for a redelivery.
 */

export interface StorageEventMetrics {
  handled(transport: StorageEvent['transport'], outcome: EventOutcome): void;
}

/** Over the runtime's meter (`Runtime.instance().metricMeter`), exported with the process's metrics. */
export function storageEventMetrics(meter: MetricMeter): StorageEventMetrics {
  const { name, description } = METRICS.storageEvents;
  const counter = meter.createCounter(name, undefined, description);
  return { handled: (transport, outcome) => counter.add(1, { transport, outcome }) };
}

export interface StorageEventDeps {
  client: Client;
  storage: Storage;
  config: EventsConfig;
  /** Task queue deployments are started on. */
  taskQueue: string;
  /** How long one event's Temporal calls may take (default TEMPORAL_DEADLINE_MS). */
  temporalDeadlineMs?: number;
  /** Tuning handed to the deployments it starts. */
  settings?: DeploymentSettings;
  metrics?: StorageEventMetrics;
  /** One JSON line per event handled. */
  log?: (line: string) => void;
  now?: () => Date;
}

/**
 * The Temporal calls of one event (start or upgrade, and the describe after it) end by then: past it
 * the event is a `retry` (503, a nack), and Pub/Sub redelivers it later. Without it an unreachable
 * Temporal held the push open for the client's own gRPC retries (~20 s); Pub/Sub waits up to its ack
 * deadline (README: 60 s) and the request id keeps a redelivery at most once.
 */
export const TEMPORAL_DEADLINE_MS = 10_000;

/** Temporal did not answer within the deadline (transient: the event is retried). */
export class TemporalDeadlineError extends Error {
  override readonly name = 'TemporalDeadlineError';
}

export interface StorageEventResult {
  outcome: EventOutcome;
  message: string;
  marker?: string;
  generation?: string;
  workflowId?: string;
  issues?: SpecIssue[];
}

/**
 * The deploy request id of a marker generation: Temporal dedupes Updates by it, and the run started
 * by it records it in its memo. `gcs:<digest of bucket/object>:<generation>`, so it fits the request
 * ids the CLI and the HTTP API accept (object names run to 1,024 bytes of any character).
 */
export function markerRequestId(event: Pick<StorageEvent, 'bucket' | 'object' | 'generation'>): string {
  const object = createHash('sha256').update(`${event.bucket}/${event.object}`).digest('hex').slice(0, 24);
  return `gcs:${object}:${event.generation}`;
}

/** Handles one event; `sender` (the verified principal of a push, if any) is only logged. */
export async function handleStorageEvent(
  event: StorageEvent,
  deps: StorageEventDeps,
  sender?: string,
): Promise<StorageEventResult> {
  const marker = markerOf(event.bucket, event.object, deps.config);
  let result: StorageEventResult;
  try {
    result = marker
      ? await handleMarkerEvent(event, marker, deps)
      : { outcome: 'ignored', message: 'not a marker under the watched prefix' };
  } catch (err) {
    // Anything unforeseen is retried: Pub/Sub redelivers with backoff, and the request id keeps it at most once.
    result = {
      outcome: 'retry',
      message: `${err instanceof Error ? err.name : 'Error'}: ${firstLine(err)}`,
    };
  }
  deps.metrics?.handled(event.transport, result.outcome);
  deps.log?.(
    JSON.stringify({
      msg: 'storage event',
      transport: event.transport,
      eventId: event.id,
      type: event.type,
      object: `gs://${event.bucket}/${event.object}`,
      generation: event.generation,
      ...(sender ? { sender } : {}),
      ...result,
    }),
  );
  return { ...result, ...(marker ? { marker: `gs://${marker.bucket}/${marker.object}` } : {}) };
}

async function handleMarkerEvent(
  event: StorageEvent,
  marker: Marker,
  deps: StorageEventDeps,
): Promise<StorageEventResult> {
  const generation = event.generation;
  if (event.kind === 'deleted' || event.kind === 'archived')
    return {
      outcome: 'deleted',
      message: 'the marker was removed; deployments are removed with teardown',
      generation,
    };
  if (event.kind !== 'finalized')
    return { outcome: 'ignored', message: `${event.type} is not a finalize event`, generation };

  const previous = await readMarkerStatus(deps.storage, marker);
  if (previous?.generation === generation) {
    return {
      outcome: 'duplicate',
      message: `generation ${generation} was handled before (${previous.outcome})`,
      generation,
      ...(previous.deployment ? { workflowId: previous.deployment.workflowId } : {}),
    };
  }

  let read;
  try {
    read = await readObjectGeneration(
      deps.storage,
      marker.bucket,
      marker.object,
      generation,
      deps.config.maxMarkerBytes,
    );
  } catch (err) {
    if (!(err instanceof StorageAccessError && err.kind === 'too-large')) throw err;
    return report(event, marker, deps, 'invalid', err.message, {
      issues: [{ path: '', message: err.message }],
    });
  }
  if (read.state === 'missing') return { outcome: 'deleted', message: 'the marker is gone', generation };
  if (read.state === 'stale')
    return {
      outcome: 'stale',
      message: `the marker was overwritten since (now generation ${read.current || 'newer'}); its own event deploys it`,
      generation,
    };

  let spec: DeploymentSpec;
  try {
    spec = specFromMarker(read.data.toString('utf8'), marker);
  } catch (err) {
    if (!(err instanceof InvalidSpecError)) throw err;
    return report(event, marker, deps, 'invalid', 'invalid deployment spec; nothing was started', {
      issues: err.issues,
    });
  }

  const requestId = markerRequestId(event);
  let started;
  let startedByThis;
  try {
    ({ started, startedByThis } = await withinDeadline(
      deps.client,
      deps.temporalDeadlineMs ?? TEMPORAL_DEADLINE_MS,
      async () => {
        // Asked before the Update, after which the run's upgrade carries this request id either way.
        const upgradedBefore = (await upgradeRequestOf(deps, deploymentWorkflowId(spec))) === requestId;
        const started = await startDeployment(deps.client, spec, {
          taskQueue: deps.taskQueue,
          requestId,
          ...(deps.settings ? { settings: deps.settings } : {}),
        });
        // A redelivery whose first delivery started the run, or the run's current upgrade (and died
        // before writing the status): reported as that delivery did, answered as a duplicate.
        const startedByThis = started.upgrade
          ? upgradedBefore
          : !started.started && startedBy(await started.handle.describe()).requestId === requestId;
        return { started, startedByThis };
      },
    ));
  } catch (err) {
    // A redelivery whose first delivery started a run that has ended since (and lost its status).
    if (err instanceof RequestAlreadyDoneError) {
      const deployment = { workflowId: err.workflowId, runId: err.runId, requestId };
      const message = `started ${err.workflowId}, which has ended (${err.status})`;
      return {
        ...(await report(event, marker, deps, 'started', message, { deployment })),
        outcome: 'duplicate',
      };
    }
    if (err instanceof DeploymentStateError) return report(event, marker, deps, 'refused', err.message, {});
    if (err instanceof InvalidSpecError)
      return report(event, marker, deps, 'invalid', 'invalid deployment spec', { issues: err.issues });
    throw err;
  }
  const outcome: RecordedOutcome = started.upgrade
    ? 'upgraded'
    : started.started || startedByThis
      ? 'started'
      : 'attached';
  const message = started.upgrade
    ? `upgrading ${started.workflowId} to revision ${started.upgrade.revision} (from ${started.upgrade.from})`
    : outcome === 'started'
      ? `started ${started.workflowId}`
      : `${started.workflowId} already runs this spec`;
  const result = await report(event, marker, deps, outcome, message, {
    deployment: {
      workflowId: started.workflowId,
      runId: started.runId,
      requestId,
      ...(started.upgrade ? { upgrade: started.upgrade } : {}),
    },
  });
  return startedByThis ? { ...result, outcome: 'duplicate' } : result;
}

/**
 * The request id of the upgrade the deployment's current run records (running or last), if any.
 * Without a worker polling, no upgrade can have been accepted, and a query would wait for one.
 */
async function upgradeRequestOf(deps: StorageEventDeps, workflowId: string): Promise<string | undefined> {
  if (!(await hasWorkflowPollers(deps.client, deps.taskQueue))) return undefined;
  const progress = await deps.client.workflow
    .getHandle(workflowId)
    .query(progressQuery)
    .catch(() => undefined);
  return progress?.upgrade?.requestId;
}

/**
 * `work`'s Temporal calls under a deadline, answered by then: the client's deadline fails a call in
 * flight, but its retries pause between attempts (up to seconds) before they notice, so at the
 * deadline the calls still running are aborted and the answer does not wait for them.
 */
async function withinDeadline<T>(client: Client, ms: number, work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  const abort = new AbortController();
  const expired = () => new TemporalDeadlineError(`Temporal did not answer within ${ms / 1000} s`);
  const running = client
    .withAbortSignal(abort.signal, () => client.withDeadline(deadline, work))
    .catch((err: unknown) => {
      // The client's deadline error, or a failure its retries met meanwhile; an answer stays one.
      const answered =
        err instanceof DeploymentStateError ||
        err instanceof RequestAlreadyDoneError ||
        err instanceof InvalidSpecError;
      throw Date.now() >= deadline && !answered ? expired() : err;
    });
  // Its failure after the answer is nobody's to handle.
  running.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      running,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(expired());
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes the status object and answers with what it says. */
async function report(
  event: StorageEvent,
  marker: Marker,
  deps: StorageEventDeps,
  outcome: RecordedOutcome,
  message: string,
  more: Pick<MarkerStatus, 'issues' | 'deployment'>,
): Promise<StorageEventResult> {
  const status: MarkerStatus = {
    marker: `gs://${marker.bucket}/${marker.object}`,
    generation: event.generation,
    outcome,
    message,
    ...more,
    event: { transport: event.transport, id: event.id, type: event.type },
    time: (deps.now?.() ?? new Date()).toISOString(),
  };
  await writeMarkerStatus(deps.storage, marker, status);
  return {
    outcome,
    message,
    generation: event.generation,
    ...(more.issues ? { issues: more.issues } : {}),
    ...(more.deployment ? { workflowId: more.deployment.workflowId } : {}),
  };
}
