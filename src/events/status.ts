import type { Storage } from '@google-cloud/storage';
import { z } from 'zod';
import { StorageAccessError, openModelStore, writeSmallObject } from '../storage';
import type { Marker } from './marker';

/**
 * The status object written next to a marker (`garden-deploy.status.json`): what its last handled
 * generation did. Its own events never trigger anything (it is not a marker), and it is how a
 * redelivery of a generation already handled is told from a new one after the deployment ended.
 */

/** What handling a storage event did. */
export const EVENT_OUTCOMES = [
  /** A new deployment was started. */
  'started',
  /** The serving deployment is upgrading to this spec. */
  'upgraded',
  /** The deployment already runs this spec: nothing new. */
  'attached',
  /** This generation was handled before: nothing new. */
  'duplicate',
  /** The marker's spec is invalid: nothing started (status written). */
  'invalid',
  /** The deployment refused the spec (e.g. it changes the endpoint): nothing changed (status written). */
  'refused',
  /** Not a marker, or not a finalize event. */
  'ignored',
  /** The marker was overwritten since this generation: its own event follows. */
  'stale',
  /** The marker is gone: nothing to deploy. */
  'deleted',
  /** A transient failure (Temporal or storage unreachable): redelivered later. */
  'retry',
] as const;
export type EventOutcome = (typeof EVENT_OUTCOMES)[number];

/** Outcomes recorded in the status object; a later event of the same generation is a duplicate. */
export const RECORDED_OUTCOMES = ['started', 'upgraded', 'attached', 'invalid', 'refused'] as const;
export type RecordedOutcome = (typeof RECORDED_OUTCOMES)[number];

export const MarkerStatusSchema = z.object({
  marker: z.string(),
  generation: z.string(),
  outcome: z.enum(RECORDED_OUTCOMES),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  deployment: z
    .object({
      workflowId: z.string(),
      runId: z.string(),
      requestId: z.string(),
      upgrade: z.object({ revision: z.number(), from: z.number() }).optional(),
    })
    .optional(),
  event: z.object({ transport: z.string(), id: z.string(), type: z.string() }),
  time: z.string(),
});
export type MarkerStatus = z.infer<typeof MarkerStatusSchema>;

const MAX_STATUS_BYTES = 256 * 1024;

/** The status object of the marker's folder, or undefined when there is none (or it is not ours). */
export async function readMarkerStatus(storage: Storage, marker: Marker): Promise<MarkerStatus | undefined> {
  const store = openModelStore(marker.folderUri, { storage });
  let text: string;
  try {
    text = (
      await store.readSmall(marker.statusObject.slice(marker.folder.length), MAX_STATUS_BYTES)
    ).toString('utf8');
  } catch (err) {
    // A status too large to be ours is treated as none; it is overwritten.
    if (err instanceof StorageAccessError && (err.kind === 'not-found' || err.kind === 'too-large'))
      return undefined;
    throw err;
  }
  try {
    const parsed = MarkerStatusSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function writeMarkerStatus(
  storage: Storage,
  marker: Marker,
  status: MarkerStatus,
): Promise<void> {
  await writeSmallObject(
    storage,
    marker.bucket,
    marker.statusObject,
    `${JSON.stringify(status, null, 2)}\n`,
    'application/json',
  );
}
