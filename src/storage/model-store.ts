import { mkdir, open, readdir, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { type GcsLocation, formatGcsUri, isGcsUri, parseGcsUri } from './uri';

/** One object (file) of a model folder. */
export interface StoredObject {
  /** Path relative to the folder, '/'-separated (e.g. `model-00001-of-00002.safetensors`). */
  name: string;
  size: number;
  /** GCS object generation; absent for local files. Lets later steps pin exactly what was checked. */
  generation?: string;
}

export type StorageErrorKind = 'not-found' | 'forbidden' | 'too-large' | 'too-many-objects' | 'unavailable';

/** A read failure classified so callers can tell "fix your URI/permissions" from "try again". */
export class StorageAccessError extends Error {
  override readonly name = 'StorageAccessError';
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Read-only view of a model folder (a `gs://` prefix or a local directory). */
export interface ModelStore {
  /** Human-readable location: `gs://bucket/prefix/` or an absolute directory path. */
  readonly uri: string;
  /** Every object under the folder, recursively, at most `maxObjects` (default 10,000). */
  list(options?: { maxObjects?: number }): Promise<StoredObject[]>;
  /** Bytes [start, end) of one object. Never reads outside that range. */
  readRange(name: string, start: number, end: number): Promise<Buffer>;
  /** A whole small object; `too-large` error when it is bigger than `maxBytes`. */
  readSmall(name: string, maxBytes: number): Promise<Buffer>;
}

/** Write side, used by the sample-model generator and benchmarks. */
export interface ModelWriter {
  readonly uri: string;
  write(name: string, data: Buffer | AsyncIterable<Buffer>): Promise<void>;
}

const DEFAULT_MAX_OBJECTS = 10_000;

export function openModelStore(location: string, deps: { storage?: Storage } = {}): ModelStore {
  if (isGcsUri(location)) return new GcsModelStore(parseGcsUri(location), requireStorage(deps.storage));
  return new LocalModelStore(path.resolve(location));
}

export async function openModelWriter(
  location: string,
  deps: { storage?: Storage } = {},
): Promise<ModelWriter> {
  if (isGcsUri(location)) return new GcsModelWriter(parseGcsUri(location), requireStorage(deps.storage));
  const dir = path.resolve(location);
  await mkdir(dir, { recursive: true });
  return new LocalModelWriter(dir);
}

function requireStorage(storage: Storage | undefined): Storage {
  if (!storage) throw new Error('a Storage client is required for gs:// locations');
  return storage;
}

class GcsModelStore implements ModelStore {
  readonly uri: string;
  constructor(
    private readonly location: GcsLocation,
    private readonly storage: Storage,
  ) {
    this.uri = formatGcsUri(location);
  }

  async list(options: { maxObjects?: number } = {}): Promise<StoredObject[]> {
    const max = options.maxObjects ?? DEFAULT_MAX_OBJECTS;
    const objects: StoredObject[] = [];
    const bucket = this.storage.bucket(this.location.bucket);
    let pageToken: string | undefined;
    do {
      const [files, next] = await gcsCall(this.uri, () =>
        bucket.getFiles({ prefix: this.location.prefix, autoPaginate: false, maxResults: 1000, pageToken }),
      );
      for (const file of files) {
        const name = file.name.slice(this.location.prefix.length);
        if (name === '' || name.endsWith('/')) continue; // folder placeholder objects
        objects.push({
          name,
          size: Number(file.metadata.size ?? 0),
          generation: file.metadata.generation === undefined ? undefined : String(file.metadata.generation),
        });
        if (objects.length > max) {
          throw new StorageAccessError(
            'too-many-objects',
            `${this.uri} holds more than ${max} objects; point at the model folder, not a bucket root or parent folder`,
          );
        }
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return objects.sort((a, b) => a.name.localeCompare(b.name));
  }

  async readRange(name: string, start: number, end: number): Promise<Buffer> {
    checkRange(start, end);
    if (end === start) return Buffer.alloc(0);
    const file = this.storage.bucket(this.location.bucket).file(this.location.prefix + name);
    // `end` is inclusive in the client API.
    const [data] = await gcsCall(`${this.uri}${name}`, () =>
      file.download({ start, end: end - 1, validation: false }),
    );
    return data;
  }

  async readSmall(name: string, maxBytes: number): Promise<Buffer> {
    const file = this.storage.bucket(this.location.bucket).file(this.location.prefix + name);
    const [metadata] = await gcsCall(`${this.uri}${name}`, () => file.getMetadata());
    const size = Number(metadata.size ?? 0);
    if (size > maxBytes) {
      throw new StorageAccessError(
        'too-large',
        `${this.uri}${name} is ${size} bytes; at most ${maxBytes} are read`,
      );
    }
    return this.readRange(name, 0, size);
  }
}

class LocalModelStore implements ModelStore {
  constructor(readonly uri: string) {}

  async list(options: { maxObjects?: number } = {}): Promise<StoredObject[]> {
    const max = options.maxObjects ?? DEFAULT_MAX_OBJECTS;
    const objects: StoredObject[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      const entries = await localCall(dir, () => readdir(dir, { withFileTypes: true }));
      for (const entry of entries) {
        const relName = rel ? `${rel}/${entry.name}` : entry.name;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full, relName);
        else if (entry.isFile()) {
          objects.push({ name: relName, size: (await stat(full)).size });
          if (objects.length > max) {
            throw new StorageAccessError(
              'too-many-objects',
              `${this.uri} holds more than ${max} files; point at the model folder itself`,
            );
          }
        }
      }
    };
    await walk(this.uri, '');
    return objects.sort((a, b) => a.name.localeCompare(b.name));
  }

  async readRange(name: string, start: number, end: number): Promise<Buffer> {
    checkRange(start, end);
    const full = this.resolve(name);
    const handle = await localCall(full, () => open(full, 'r'));
    try {
      const buffer = Buffer.alloc(end - start);
      const { bytesRead } = await handle.read(buffer, 0, end - start, start);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async readSmall(name: string, maxBytes: number): Promise<Buffer> {
    const full = this.resolve(name);
    const { size } = await localCall(full, () => stat(full));
    if (size > maxBytes) {
      throw new StorageAccessError('too-large', `${full} is ${size} bytes; at most ${maxBytes} are read`);
    }
    return this.readRange(name, 0, size);
  }

  private resolve(name: string): string {
    const full = path.resolve(this.uri, name);
    if (!full.startsWith(this.uri + path.sep)) {
      throw new StorageAccessError('not-found', `${name} is outside ${this.uri}`);
    }
    return full;
  }
}

class GcsModelWriter implements ModelWriter {
  readonly uri: string;
  constructor(
    private readonly location: GcsLocation,
    private readonly storage: Storage,
  ) {
    this.uri = formatGcsUri(location);
  }

  async write(name: string, data: Buffer | AsyncIterable<Buffer>): Promise<void> {
    const file = this.storage.bucket(this.location.bucket).file(this.location.prefix + name);
    if (Buffer.isBuffer(data)) {
      await gcsCall(`${this.uri}${name}`, () => file.save(data, { resumable: false, validation: false }));
      return;
    }
    await gcsCall(`${this.uri}${name}`, () =>
      pipeline(Readable.from(data), file.createWriteStream({ resumable: false, validation: false })),
    );
  }
}

class LocalModelWriter implements ModelWriter {
  constructor(readonly uri: string) {}

  async write(name: string, data: Buffer | AsyncIterable<Buffer>): Promise<void> {
    const full = path.join(this.uri, name);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, data);
  }
}

function checkRange(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range [${start}, ${end})`);
  }
}

/** Runs a GCS call, its failure classified as a `StorageAccessError` naming `what`. */
export async function gcsCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    if (code === 404)
      throw new StorageAccessError('not-found', `${what} not found (${message})`, { cause: err });
    if (code === 401 || code === 403) {
      throw new StorageAccessError(
        'forbidden',
        `no permission to read ${what}: grant roles/storage.objectViewer on the bucket (${message})`,
        { cause: err },
      );
    }
    throw new StorageAccessError('unavailable', `could not read ${what}: ${message}`, { cause: err });
  }
}

async function localCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new StorageAccessError('not-found', `${what} does not exist`, { cause: err });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new StorageAccessError('forbidden', `no permission to read ${what}`, { cause: err });
    }
    throw err;
  }
}
