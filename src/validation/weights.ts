import { z } from 'zod';
import {
  preview,
  readSafetensorsHeader,
  type SafetensorsHeader,
  type TensorEntry,
} from '../safetensors/header';
import { isDtype } from '../safetensors/dtypes';
import { StorageAccessError, type ModelStore, type StoredObject } from '../storage';
import { ByteBudget, type Limiter, mapLimited } from './io';
import type { FolderLayout } from './layout';
import type { FindingCollector } from './report';
import { headerRule } from './rules';

/**
 * Weight files: every safetensors header read by ranged reads (in parallel, bounded), the sharded
 * index cross-checked against the headers and the listing (hf-weights §1, §2), pickle files
 * sniffed by their first bytes. Cost grows with the number of files, not their size.
 */

/** huggingface.js caps index files at 250 MB; the largest real ones (huge MoE) are ~60 MB. */
export const MAX_INDEX_BYTES = 128 * 1024 * 1024;
const SHARD_NAME_RE = /^(.*)-(\d{5})-of-(\d{5})\.(safetensors|bin)$/;
const NAMES_IN_MESSAGE = 5;

export interface LoadedTensor extends TensorEntry {
  file: string;
}

export interface WeightInventory {
  format: 'safetensors' | 'bin' | 'none';
  /** Files whose tensors a loader will read. */
  files: StoredObject[];
  /** Every tensor of those files by name (the first file's copy when duplicated). */
  tensors: Map<string, LoadedTensor>;
  /** Sum of tensor bytes (safetensors) or of file sizes (pickle). */
  weightBytes: number;
  dtypeBytes: Record<string, number>;
  headersRead: number;
  /** Every loaded file's header was read and had no errors: name/shape checks can trust `tensors`. */
  complete: boolean;
}

/** The inventory of a folder with no weights read: no weight files, or a check that never ran. */
export function emptyInventory(): WeightInventory {
  return {
    format: 'none',
    files: [],
    tensors: new Map(),
    weightBytes: 0,
    dtypeBytes: {},
    headersRead: 0,
    complete: false,
  };
}

/** Header bytes held in memory at once across parallel reads (real shards' headers are < 1 MiB). */
export const HEADER_MEMORY_BUDGET = 64 * 1024 * 1024;

export interface WeightCheckOptions {
  limiter: Limiter;
  maxHeaderBytes?: number;
  signal?: AbortSignal;
  onHeader?: (done: number, total: number) => void;
}

const IndexSchema = z.looseObject({
  weight_map: z
    .record(z.string(), z.string())
    .refine((m) => Object.keys(m).length > 0, 'weight_map is empty'),
  metadata: z
    .looseObject({ total_size: z.union([z.number(), z.string().regex(/^\d+$/)]).optional() })
    .optional(),
});
type WeightIndex = z.infer<typeof IndexSchema>;

export async function checkWeights(
  store: ModelStore,
  layout: FolderLayout,
  findings: FindingCollector,
  options: WeightCheckOptions,
): Promise<WeightInventory> {
  if (layout.safetensors.length > 0) return checkSafetensors(store, layout, findings, options);
  if (layout.bins.length > 0) return checkPickles(store, layout, findings, options);
  return emptyInventory();
}

async function checkSafetensors(
  store: ModelStore,
  layout: FolderLayout,
  findings: FindingCollector,
  options: WeightCheckOptions,
): Promise<WeightInventory> {
  const index = layout.safetensorsIndex
    ? await options.limiter.run(() => readIndex(store, layout.safetensorsIndex!, findings, options.signal))
    : undefined;
  let files: StoredObject[];
  // Tensors of shards that are missing or unsafe to open are unknown: tensor checks must not guess.
  let allShardsPresent = true;
  if (index) {
    files = indexedShards(index, layout, layout.safetensorsIndex!.name, findings);
    allShardsPresent = files.length === new Set(Object.values(index.weight_map)).size;
    const listed = new Set(files.map((f) => f.name));
    for (const stray of layout.safetensors.filter((f) => !listed.has(f.name))) {
      findings.add(
        'index.unlisted-file',
        `${stray.name} is not listed in ${layout.safetensorsIndex!.name}, so loaders ignore it; delete it if it is a leftover ` +
          '(an old model.safetensors, a shard of another export) or regenerate the index if it belongs to the model.',
        { file: stray.name },
      );
    }
  } else {
    files = layout.safetensors;
    if (!layout.safetensorsIndex && files.length > 1) {
      findings.add(
        'weights.unindexed-shards',
        `${files.length} .safetensors files but no model.safetensors.index.json: transformers cannot load a sharded ` +
          'checkpoint without it and vLLM would load every file, strays included; upload the index written by save_pretrained.',
        { file: 'model.safetensors.index.json' },
      );
    }
  }
  checkShardNumbering(files, layout, findings, new Set(index ? Object.values(index.weight_map) : []));

  let done = 0;
  const memory = new ByteBudget(HEADER_MEMORY_BUDGET);
  const results = await mapLimited(
    files,
    options.limiter,
    async (file) => {
      const result = await readHeaderOrFinding(store, file, findings, options, memory);
      options.onHeader?.(++done, files.length);
      return result;
    },
    options.signal,
  );

  const inventory: WeightInventory = {
    format: 'safetensors',
    files,
    tensors: new Map(),
    weightBytes: 0,
    dtypeBytes: {},
    headersRead: 0,
    complete: files.length > 0 && allShardsPresent,
  };
  const headers = new Map<string, SafetensorsHeader>();
  const duplicates: Array<[name: string, first: string, second: string]> = [];
  files.forEach((file, i) => {
    const result = results[i];
    if (result?.read) inventory.headersRead++;
    if (!result?.header || result.hasErrors) inventory.complete = false;
    if (!result?.header) return;
    headers.set(file.name, result.header);
    for (const tensor of result.header.tensors) {
      const bytes = tensor.end - tensor.begin;
      inventory.weightBytes += bytes;
      // Unknown dtype strings come from untrusted headers: one bucket, so they cannot bloat the report.
      const dtype = isDtype(tensor.dtype) ? tensor.dtype : 'unknown';
      inventory.dtypeBytes[dtype] = (inventory.dtypeBytes[dtype] ?? 0) + bytes;
      const existing = inventory.tensors.get(tensor.name);
      if (existing) duplicates.push([tensor.name, existing.file, file.name]);
      else inventory.tensors.set(tensor.name, { ...tensor, file: file.name });
    }
  });
  for (const [name, first, second] of duplicates.slice(0, 50)) {
    findings.add(
      'weights.duplicate-tensor',
      `Tensor "${preview(name)}" is stored in both ${first} and ${second}; loaders would read it twice or pick one at random — ` +
        're-export the checkpoint with save_pretrained.',
      { file: second },
    );
  }
  if (duplicates.length > 0) inventory.complete = false;
  if (index) crossCheckIndex(index, layout.safetensorsIndex!.name, headers, findings);
  return inventory;
}

interface HeaderOutcome {
  header?: SafetensorsHeader;
  hasErrors: boolean;
  read: boolean;
}

async function readHeaderOrFinding(
  store: ModelStore,
  file: StoredObject,
  findings: FindingCollector,
  options: WeightCheckOptions,
  memory: ByteBudget,
): Promise<HeaderOutcome> {
  try {
    const result = await readSafetensorsHeader(store, file, {
      reserveMemory: (bytes) => memory.reserve(bytes),
      ...(options.maxHeaderBytes === undefined ? {} : { maxHeaderBytes: options.maxHeaderBytes }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for (const problem of result.problems) {
      findings.add(headerRule(problem.code), problem.message, {
        file: file.name,
        severity: problem.severity,
      });
    }
    return {
      ...(result.header ? { header: result.header } : {}),
      hasErrors: result.problems.some((p) => p.severity === 'error'),
      read: true,
    };
  } catch (err) {
    reportUnreadable(err, file.name, findings);
    return { hasErrors: true, read: false };
  }
}

/** A single object that vanished or became unreadable after listing is a finding; anything else propagates (retryable). */
export function reportUnreadable(err: unknown, file: string, findings: FindingCollector): void {
  if (!(err instanceof StorageAccessError) || (err.kind !== 'not-found' && err.kind !== 'forbidden'))
    throw err;
  findings.add(
    'layout.unreadable-file',
    `${file} was listed but could not be read (${err.message}); re-upload it or fix its permissions.`,
    { file },
  );
}

async function readIndex(
  store: ModelStore,
  object: StoredObject,
  findings: FindingCollector,
  signal?: AbortSignal,
): Promise<WeightIndex | undefined> {
  const fail = (why: string): undefined => {
    findings.add(
      'index.invalid',
      `${object.name} ${why}; regenerate it with save_pretrained (it must hold a "weight_map" of tensor → shard file and "metadata.total_size").`,
      { file: object.name },
    );
    return undefined;
  };
  if (object.size > MAX_INDEX_BYTES)
    return fail(`is ${object.size} bytes, more than the ${MAX_INDEX_BYTES}-byte limit`);
  signal?.throwIfAborted();
  let raw: unknown;
  try {
    raw = JSON.parse((await store.readSmall(object.name, MAX_INDEX_BYTES)).toString('utf8'));
  } catch (err) {
    if (err instanceof SyntaxError) return fail('is not valid JSON');
    reportUnreadable(err, object.name, findings);
    return undefined;
  }
  const parsed = IndexSchema.safeParse(raw);
  if (!parsed.success) {
    return fail(
      `is not a valid index (${parsed.error.issues
        .map((i) => `${i.path.join('.') || 'root'}: ${i.message}`)
        .slice(0, 3)
        .join('; ')})`,
    );
  }
  if (parsed.data.metadata?.total_size === undefined) {
    findings.add(
      'index.metadata-missing',
      `${object.name} has no "metadata": {"total_size": …}; older transformers versions fail with KeyError — regenerate the index with save_pretrained.`,
      { file: object.name },
    );
  }
  return parsed.data;
}

/** The shard files the index names that exist; findings for unsafe and missing names. */
function indexedShards(
  index: WeightIndex,
  layout: FolderLayout,
  indexName: string,
  findings: FindingCollector,
): StoredObject[] {
  const names = [...new Set(Object.values(index.weight_map))].sort();
  const present: StoredObject[] = [];
  const missing: string[] = [];
  for (const name of names) {
    if (
      name.startsWith('/') ||
      name.includes('\\') ||
      name.split('/').some((s) => s === '..' || s === '.' || s === '')
    ) {
      findings.add(
        'index.unsafe-path',
        `${indexName} names the shard "${preview(name)}", an absolute path or one with "."/".." segments; shard names must be plain file names in the model folder — regenerate the index.`,
        { file: indexName },
      );
      continue;
    }
    if (name.includes('/')) {
      findings.add(
        'index.subfolder-shard',
        `${indexName} names the shard "${preview(name)}" in a subfolder; older vLLM versions cannot load it — move the shards next to config.json and regenerate the index.`,
        { file: indexName },
      );
    }
    const object = layout.all.get(name);
    if (object) present.push(object);
    else missing.push(name);
  }
  if (missing.length > 0) {
    findings.add(
      'index.missing-shard',
      `${indexName} references ${missing.length} file(s) that are not in the folder: ${missing
        .slice(0, NAMES_IN_MESSAGE)
        .map((n) => preview(n))
        .join(
          ', ',
        )}${missing.length > NAMES_IN_MESSAGE ? ', …' : ''}; the upload is incomplete — upload the missing shards` +
        (missing.every((n) => n.endsWith('.safetensors')) && layout.bins.length > 0
          ? ' (or delete this index: the folder holds .bin weights)'
          : ''),
      { file: indexName },
    );
  }
  return present;
}

/** `-0000k-of-0000N` names promise N shards: a missing last shard shows even with a stale index. */
function checkShardNumbering(
  files: readonly StoredObject[],
  layout: FolderLayout,
  findings: FindingCollector,
  /** Names the index references: their absence is already reported. */
  referenced: ReadonlySet<string>,
): void {
  const groups = new Map<string, { total: number; ext: string; stem: string; seen: Set<number> }>();
  for (const file of files) {
    const match = SHARD_NAME_RE.exec(file.name);
    if (!match) continue;
    const [, stem, index, total, ext] = match as unknown as [string, string, string, string, string];
    const key = `${stem}|${total}|${ext}`;
    const group = groups.get(key) ?? { total: Number(total), ext, stem, seen: new Set<number>() };
    group.seen.add(Number(index));
    groups.set(key, group);
  }
  for (const group of groups.values()) {
    const absent: string[] = [];
    for (let i = 1; i <= group.total && absent.length <= NAMES_IN_MESSAGE; i++) {
      const name = `${group.stem}-${String(i).padStart(5, '0')}-of-${String(group.total).padStart(5, '0')}.${group.ext}`;
      if (!group.seen.has(i) && !layout.all.has(name) && !referenced.has(name)) absent.push(name);
    }
    if (absent.length > 0) {
      findings.add(
        'index.missing-shard',
        `The shard names promise ${group.total} files but ${absent.slice(0, NAMES_IN_MESSAGE).join(', ')}${
          absent.length > NAMES_IN_MESSAGE ? ', …' : ''
        } ${absent.length === 1 ? 'is' : 'are'} missing (and the index does not mention ${absent.length === 1 ? 'it' : 'them'}); the upload is incomplete or the index stale — upload every shard and the index written with them.`,
        { file: absent[0] },
      );
    }
  }
}

function crossCheckIndex(
  index: WeightIndex,
  indexName: string,
  headers: Map<string, SafetensorsHeader>,
  findings: FindingCollector,
): void {
  const expectedByShard = new Map<string, Set<string>>();
  for (const [tensor, shard] of Object.entries(index.weight_map)) {
    let set = expectedByShard.get(shard);
    if (!set) expectedByShard.set(shard, (set = new Set()));
    set.add(tensor);
  }
  let headerBytes = 0;
  for (const [shard, expected] of expectedByShard) {
    const header = headers.get(shard);
    if (!header) continue; // missing or unreadable: already reported
    const actual = new Set(header.tensors.map((t) => t.name));
    headerBytes += header.dataBytes;
    const absent = [...expected].filter((t) => !actual.has(t));
    const unlisted = [...actual].filter((t) => !expected.has(t));
    if (absent.length > 0) {
      findings.add(
        'index.tensor-not-in-shard',
        `${indexName} lists ${absent.length} tensor(s) not found in shard ${shard}: ${absent
          .slice(0, NAMES_IN_MESSAGE)
          .map((n) => preview(n))
          .join(
            ', ',
          )}${absent.length > NAMES_IN_MESSAGE ? ', …' : ''}; the index and the shards come from different exports — re-upload both from the same save_pretrained.`,
        { file: shard },
      );
    }
    if (unlisted.length > 0) {
      findings.add(
        'index.unlisted-tensor',
        `Shard ${shard} holds ${unlisted.length} tensor(s) that ${indexName} does not map to it: ${unlisted
          .slice(0, NAMES_IN_MESSAGE)
          .map((n) => preview(n))
          .join(
            ', ',
          )}${unlisted.length > NAMES_IN_MESSAGE ? ', …' : ''}; transformers loads only what the index lists — regenerate the index (stale index).`,
        { file: shard },
      );
    }
  }
  const declared = index.metadata?.total_size;
  const allRead = [...expectedByShard.keys()].every((shard) => headers.has(shard));
  if (declared !== undefined && allRead && Number(declared) !== headerBytes) {
    findings.add(
      'index.total-size-mismatch',
      `${indexName} declares total_size ${declared} but the shards hold ${headerBytes} bytes of tensors; ` +
        'loaders ignore this field, but it usually means the index was edited or written by another tool — regenerate it.',
      { file: indexName },
    );
  }
}

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const PICKLE_PROTOCOL = 0x80;

/** Pickle weights: only their existence, index and magic bytes can be checked. */
async function checkPickles(
  store: ModelStore,
  layout: FolderLayout,
  findings: FindingCollector,
  options: WeightCheckOptions,
): Promise<WeightInventory> {
  let files = layout.bins;
  let referenced = new Set<string>();
  if (layout.binIndex) {
    const binIndex = layout.binIndex;
    const index = await options.limiter.run(() => readIndex(store, binIndex, findings, options.signal));
    if (index) {
      files = indexedShards(index, layout, layout.binIndex.name, findings);
      referenced = new Set(Object.values(index.weight_map));
    }
  } else if (files.length > 1) {
    findings.add(
      'weights.unindexed-shards',
      `${files.length} pytorch_model*.bin files but no pytorch_model.bin.index.json; upload the index written by save_pretrained.`,
      { file: 'pytorch_model.bin.index.json' },
    );
  }
  checkShardNumbering(files, layout, findings, referenced);
  await mapLimited(
    files,
    options.limiter,
    async (file) => {
      if (file.size < 4) {
        findings.add(
          'weights.bin-not-torch',
          `${file.name} is ${file.size} bytes, too small to hold weights; re-upload it.`,
          {
            file: file.name,
          },
        );
        return;
      }
      let magic: Buffer;
      try {
        magic = await store.readRange(file.name, 0, 4);
      } catch (err) {
        reportUnreadable(err, file.name, findings);
        return;
      }
      if (!magic.equals(ZIP_MAGIC) && magic[0] !== PICKLE_PROTOCOL) {
        findings.add(
          'weights.bin-not-torch',
          `${file.name} is neither a zip-based (torch.save ≥ 1.6) nor a legacy pickle PyTorch file (first bytes ${magic.toString('hex')}); ` +
            'it is corrupt or not weights — re-save the model with save_pretrained(safe_serialization=True).',
          { file: file.name },
        );
      }
    },
    options.signal,
  );
  const weightBytes = files.reduce((sum, f) => sum + f.size, 0);
  return {
    format: 'bin',
    files,
    tensors: new Map(),
    weightBytes,
    dtypeBytes: {},
    headersRead: 0,
    complete: false,
  };
}

/** Most bytes in F32/F64: loaders cast to 16-bit, so half of the upload is wasted. */
export function checkWeightPrecision(inventory: WeightInventory, findings: FindingCollector): void {
  const wide = (inventory.dtypeBytes.F32 ?? 0) + (inventory.dtypeBytes.F64 ?? 0);
  if (inventory.weightBytes === 0 || wide <= inventory.weightBytes / 2) return;
  findings.add(
    'weights.float32',
    `Most weight bytes are F32/F64 (${Math.round((100 * wide) / inventory.weightBytes)}%): vLLM casts them to 16-bit on load, ` +
      'so the upload and copy are twice as large as needed — save with torch_dtype=torch.bfloat16.',
    { file: inventory.files[0]?.name },
  );
}
