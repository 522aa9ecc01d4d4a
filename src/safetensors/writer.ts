/**
 * safetensors serialisation laid out exactly as the reference writer (huggingface/safetensors
 * `tensor.rs` `prepare`): tensors sorted by descending dtype alignment then name, offsets back to
 * back, compact JSON header with `__metadata__` first, padded with spaces to a multiple of 8 bytes,
 * preceded by its u64 little-endian length. Data is produced as a stream of chunks so shards of
 * many GiB never sit in memory.
 */
import { DTYPE_BITS, type Dtype } from './dtypes';

export interface TensorSpec {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  /** The tensor's bytes; when absent they come from the file's `fill`. */
  data?: Buffer;
}

/** Where tensor bytes without explicit data come from: zeros, or a deterministic pseudo-random pattern. */
export type TensorFill = { kind: 'zeros' } | { kind: 'pattern'; seed: number };

export interface SafetensorsEntry {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  /** Offsets relative to the start of the data buffer; `end` exclusive. */
  begin: number;
  end: number;
}

export interface SafetensorsLayout {
  /** The first 8 + `headerLength` bytes of the file. */
  header: Buffer;
  /** N: the JSON header's byte length including padding. */
  headerLength: number;
  /** Entries in file order. */
  entries: readonly SafetensorsEntry[];
  dataBytes: number;
  /** 8 + N + dataBytes. */
  fileBytes: number;
}

export interface SafetensorsWriteOptions {
  /** `__metadata__` string map; default `{ format: 'pt' }` as `save_pretrained` writes; null omits it. */
  metadata?: Readonly<Record<string, string>> | null;
}

export class SafetensorsWriteError extends Error {
  override readonly name = 'SafetensorsWriteError';
}

/**
 * Order of the reference `Dtype` enum, which is by increasing alignment; the writer sorts by its
 * reverse so every tensor's data starts aligned to its element size.
 */
const DTYPE_ORDER: readonly Dtype[] = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
];
const DTYPE_RANK = new Map(DTYPE_ORDER.map((d, i) => [d, i] as const));

/** Bytes a tensor of this shape and dtype occupies; throws when sub-byte elements do not fill whole bytes. */
export function tensorByteLength(shape: readonly number[], dtype: Dtype): number {
  let elements = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new SafetensorsWriteError(
        `shape [${shape.join(', ')}] has a dimension that is not a non-negative integer`,
      );
    }
    elements *= dim;
  }
  const bits = elements * DTYPE_BITS[dtype];
  if (!Number.isSafeInteger(bits)) {
    throw new SafetensorsWriteError(`shape [${shape.join(', ')}] of ${dtype} is too large to address`);
  }
  if (bits % 8 !== 0) {
    throw new SafetensorsWriteError(
      `shape [${shape.join(', ')}] of ${dtype} is ${bits} bits, not a whole number of bytes; pad the last dimension`,
    );
  }
  return bits / 8;
}

function compareNames(a: string, b: string): number {
  // Rust compares strings bytewise (UTF-8), which differs from UTF-16 order outside the BMP.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Computes offsets and the header bytes for these tensors without touching their data. */
export function planSafetensors(
  tensors: readonly TensorSpec[],
  options: SafetensorsWriteOptions = {},
): SafetensorsLayout {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__')
      throw new SafetensorsWriteError('"__metadata__" is reserved and cannot name a tensor');
    if (seen.has(t.name)) throw new SafetensorsWriteError(`tensor "${t.name}" is listed twice`);
    seen.add(t.name);
  }
  const sorted = [...tensors].sort(
    (a, b) => DTYPE_RANK.get(b.dtype)! - DTYPE_RANK.get(a.dtype)! || compareNames(a.name, b.name),
  );
  let offset = 0;
  const entries: SafetensorsEntry[] = sorted.map((t) => {
    const size = tensorByteLength(t.shape, t.dtype);
    if (t.data && t.data.length !== size) {
      throw new SafetensorsWriteError(
        `tensor "${t.name}" ${t.dtype}[${t.shape.join(', ')}] needs ${size} bytes but ${t.data.length} were given`,
      );
    }
    const entry = { name: t.name, dtype: t.dtype, shape: [...t.shape], begin: offset, end: offset + size };
    offset += size;
    return entry;
  });

  const metadata = options.metadata === undefined ? { format: 'pt' } : options.metadata;
  const parts: string[] = [];
  if (metadata) {
    const keys = Object.keys(metadata).sort(compareNames);
    parts.push(
      `"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`,
    );
  }
  for (const e of entries) {
    parts.push(
      `${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${e.begin},${e.end}]}`,
    );
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const headerLength = json.length + ((8 - (json.length % 8)) % 8);
  const header = Buffer.alloc(8 + headerLength, 0x20);
  header.writeBigUInt64LE(BigInt(headerLength), 0);
  json.copy(header, 8);
  return { header, headerLength, entries, dataBytes: offset, fileBytes: 8 + headerLength + offset };
}

const CHUNK_BYTES = 4 * 1024 * 1024;
let zeroChunk: Buffer | undefined;

/** 4 MiB of xorshift32 output from `seed`, built once per seed and then sliced. */
const patternCache = new Map<number, Buffer>();
function patternChunk(seed: number): Buffer {
  let chunk = patternCache.get(seed);
  if (!chunk) {
    chunk = Buffer.alloc(CHUNK_BYTES);
    let x = seed >>> 0 || 0x9e3779b9;
    for (let i = 0; i < CHUNK_BYTES; i += 4) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      chunk.writeUInt32LE(x, i);
    }
    patternCache.clear(); // keep one pattern resident, not one per seed ever used
    patternCache.set(seed, chunk);
  }
  return chunk;
}

/**
 * The bytes of a safetensors file as chunks of at most 4 MiB: header, then each tensor's data
 * (its own or the fill). Fill chunks are shared, read-only buffers, so memory stays constant
 * whatever the file size.
 */
export async function* safetensorsChunks(
  tensors: readonly TensorSpec[],
  layout: SafetensorsLayout,
  fill: TensorFill = { kind: 'zeros' },
): AsyncGenerator<Buffer> {
  yield layout.header;
  const byName = new Map(tensors.map((t) => [t.name, t] as const));
  const source = fill.kind === 'zeros' ? (zeroChunk ??= Buffer.alloc(CHUNK_BYTES)) : patternChunk(fill.seed);
  for (const entry of layout.entries) {
    const data = byName.get(entry.name)?.data;
    if (data) {
      if (data.length > 0) yield data;
      continue;
    }
    // Start each tensor at a different place in the pattern so equal-shaped tensors differ.
    let position = fill.kind === 'zeros' ? 0 : entry.begin % CHUNK_BYTES;
    let remaining = entry.end - entry.begin;
    while (remaining > 0) {
      const take = Math.min(remaining, CHUNK_BYTES - position);
      yield source.subarray(position, position + take);
      remaining -= take;
      position = (position + take) % CHUNK_BYTES;
    }
  }
}

/** A whole small safetensors file in memory (tests and tiny fixtures). */
export async function serializeSafetensors(
  tensors: readonly TensorSpec[],
  options: SafetensorsWriteOptions & { fill?: TensorFill } = {},
): Promise<Buffer> {
  const layout = planSafetensors(tensors, options);
  const chunks: Buffer[] = [];
  for await (const chunk of safetensorsChunks(tensors, layout, options.fill)) chunks.push(chunk);
  return Buffer.concat(chunks, layout.fileBytes);
}
