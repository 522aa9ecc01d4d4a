import type { Storage } from '@google-cloud/storage';
import { StorageAccessError, gcsCall } from './model-store';

/**
 * Single objects named by bucket and name, as storage events name them: one generation read whole
 * (bounded), and small objects written next to them.
 */

export type ObjectGenerationRead =
  | { state: 'current'; data: Buffer }
  /** The object was overwritten since: `current` is its generation now. */
  | { state: 'stale'; current: string }
  | { state: 'missing' };

/**
 * Reads generation `generation` of `gs://bucket/name` when it is still the object's current one,
 * at most `maxBytes` (`too-large` error beyond); a newer generation is `stale`, a deleted object
 * `missing`. The bytes are read pinned to the generation, so an overwrite in between is `stale` too.
 */
export async function readObjectGeneration(
  storage: Storage,
  bucket: string,
  name: string,
  generation: string,
  maxBytes: number,
): Promise<ObjectGenerationRead> {
  const what = `gs://${bucket}/${name}`;
  const file = storage.bucket(bucket).file(name);
  const metadata = await notFoundAsUndefined(gcsCall(what, () => file.getMetadata()));
  if (!metadata) return { state: 'missing' };
  const current = String(metadata[0].generation ?? '');
  if (current !== generation) return { state: 'stale', current };
  const size = Number(metadata[0].size ?? 0);
  if (size > maxBytes) {
    throw new StorageAccessError('too-large', `${what} is ${size} bytes; at most ${maxBytes} are read`);
  }
  const pinned = storage.bucket(bucket).file(name, { generation: Number(generation) });
  const read = await notFoundAsUndefined(gcsCall(what, () => pinned.download({ validation: false })));
  return read ? { state: 'current', data: read[0].subarray(0, maxBytes) } : { state: 'stale', current: '' };
}

/** Writes a small object whole (one request, no resumable upload). */
export async function writeSmallObject(
  storage: Storage,
  bucket: string,
  name: string,
  data: Buffer | string,
  contentType: string,
): Promise<void> {
  const file = storage.bucket(bucket).file(name);
  await gcsCall(`gs://${bucket}/${name}`, () =>
    file.save(data, { resumable: false, validation: false, contentType }),
  );
}

async function notFoundAsUndefined<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof StorageAccessError && err.kind === 'not-found') return undefined;
    throw err;
  }
}
