import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { readSafetensorsHeader } from '../../src/safetensors/header';
import { isDtype } from '../../src/safetensors/dtypes';
import { serializeSafetensors, type TensorSpec } from '../../src/safetensors/writer';
import { generateSampleModel, type SampleModelOptions } from '../../src/sample-model';
import { openModelStore, openModelWriter } from '../../src/storage';
import type { ValidationReport } from '../../src/validation';

/**
 * Model folders for validation tests: a sample-model generator folder in a temp directory, edited
 * file by file into the broken shape a test needs, then validated in place or uploaded to
 * fake-gcs-server.
 */

const tempDirs: string[] = [];

export async function sampleFolder(options: Omit<SampleModelOptions, 'location'> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'garden-validate-'));
  tempDirs.push(dir);
  await generateSampleModel({ location: dir, fill: 'zeros', ...options });
  return dir;
}

export async function removeTempFolders(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

export async function put(dir: string, name: string, data: string | Buffer | object): Promise<void> {
  const full = path.join(dir, name);
  await mkdir(path.dirname(full), { recursive: true });
  const bytes =
    typeof data === 'string' || Buffer.isBuffer(data) ? data : `${JSON.stringify(data, null, 2)}\n`;
  await writeFile(full, bytes);
}

export async function remove(dir: string, name: string): Promise<void> {
  await rm(path.join(dir, name), { force: true });
}

export async function readJson<T = Record<string, unknown>>(dir: string, name: string): Promise<T> {
  return JSON.parse(await readFile(path.join(dir, name), 'utf8')) as T;
}

export async function editJson(
  dir: string,
  name: string,
  edit: (value: Record<string, unknown>) => Record<string, unknown> | void,
): Promise<void> {
  const value = await readJson(dir, name);
  await put(dir, name, edit(value) ?? value);
}

/** The tensors of one shard (names, dtypes, shapes), as its header declares them. */
export async function shardTensors(dir: string, name: string): Promise<TensorSpec[]> {
  const store = openModelStore(dir);
  const size = (await readFile(path.join(dir, name))).length;
  const { header } = await readSafetensorsHeader(store, { name, size });
  if (!header) throw new Error(`${name} has no readable header`);
  return header.tensors.map((t) => {
    if (!isDtype(t.dtype)) throw new Error(`unexpected dtype ${t.dtype}`);
    return { name: t.name, dtype: t.dtype, shape: t.shape };
  });
}

/** Rewrites a shard with an edited tensor list (zero data), as the reference writer lays it out. */
export async function rewriteShard(
  dir: string,
  name: string,
  edit: (tensors: TensorSpec[]) => TensorSpec[],
): Promise<void> {
  const tensors = edit(await shardTensors(dir, name));
  await put(dir, name, await serializeSafetensors(tensors));
}

/** Copies a local folder to a fresh prefix of `bucket` and returns its gs:// URI. */
export async function upload(storage: Storage, bucket: string, dir: string, prefix: string): Promise<string> {
  const uri = `gs://${bucket}/${prefix}/`;
  const writer = await openModelWriter(uri, { storage });
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(name);
      else await writer.write(name, await readFile(path.join(dir, name)));
    }
  };
  await walk('');
  return uri;
}

/** Every rule id a report mentions, kept or omitted, with its severity. */
export function ruleSeverities(report: ValidationReport): Map<string, Set<string>> {
  const rules = new Map<string, Set<string>>();
  for (const f of [...report.findings, ...report.omitted]) {
    const set = rules.get(f.rule) ?? new Set<string>();
    set.add(f.severity);
    rules.set(f.rule, set);
  }
  return rules;
}
