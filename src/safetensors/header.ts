import type { ModelStore } from '../storage';
import { DTYPE_BITS, isDtype } from './dtypes';

/**
 * Bounded safetensors header reader: two ranged reads (the 8-byte length, then exactly the header),
 * never tensor data. Implements the reference reader's rules (huggingface/safetensors
 * `read_metadata` + `validate`) plus the stricter checks a pre-flight validator wants (duplicate
 * keys, metadata format), with BigInt arithmetic so no length, shape or offset can overflow.
 */

/** The reference reader's `MAX_HEADER_SIZE`: larger headers are refused by every loader. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;
/** huggingface_hub and huggingface.js refuse headers above this. */
export const SAFETENSORS_WARN_HEADER_BYTES = 25_000_000;
/** Default bound on the header bytes we are willing to download and parse per file. */
export const DEFAULT_HEADER_READ_CAP = 32 * 1024 * 1024;

const JSON_MAX_DEPTH = 64;
/** u64 has 20 decimal digits; longer integer literals cannot be valid shapes or offsets. */
const MAX_INTEGER_DIGITS = 20;
/** Per-file problems beyond this are summarised in one line: a corrupt header can have millions. */
const MAX_PROBLEMS_PER_CODE = 5;
const NAME_PREVIEW_CHARS = 120;

export const HEADER_PROBLEM_CODES = [
  'too-small',
  'header-length-invalid',
  'header-too-large',
  'header-large',
  'header-over-read-cap',
  'truncated',
  'trailing-bytes',
  'invalid-utf8',
  'invalid-json',
  'leading-whitespace',
  'duplicate-key',
  'not-object',
  'bad-entry',
  'unknown-dtype',
  'bad-metadata',
  'metadata-format',
  'offsets',
  'size-mismatch',
  'misaligned',
  'empty',
] as const;
export type HeaderProblemCode = (typeof HEADER_PROBLEM_CODES)[number];

export interface HeaderProblem {
  code: HeaderProblemCode;
  severity: 'error' | 'warning';
  /** What is wrong and how to fix it. */
  message: string;
}

export interface TensorEntry {
  name: string;
  /** Upper-case safetensors dtype; may be unknown (then `bits` is undefined). */
  dtype: string;
  bits?: number;
  shape: number[];
  /** Offsets relative to the start of the data buffer (file offset 8 + headerLength). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N: the JSON header's length in bytes. */
  headerLength: number;
  tensors: TensorEntry[];
  metadata?: Record<string, string>;
  /** Largest `end` offset: the data buffer's length implied by the header. */
  dataBytes: number;
}

export interface HeaderReadResult {
  /** Absent when the header could not be read or parsed at all. */
  header?: SafetensorsHeader;
  problems: HeaderProblem[];
  /** Bytes downloaded for this file. */
  bytesRead: number;
}

export interface HeaderReadOptions {
  /** Largest header (N) downloaded and parsed; at most {@link SAFETENSORS_MAX_HEADER_BYTES}. */
  maxHeaderBytes?: number;
  signal?: AbortSignal;
  /**
   * Called with N before the header is downloaded; resolves once that much memory may be used and
   * returns its release. Lets callers bound the header bytes held across parallel reads.
   */
  reserveMemory?: (bytes: number) => Promise<() => void>;
}

/** Reads and checks one safetensors file's header with ranged reads only. */
export async function readSafetensorsHeader(
  store: Pick<ModelStore, 'readRange'>,
  file: { name: string; size: number },
  options: HeaderReadOptions = {},
): Promise<HeaderReadResult> {
  const cap = Math.min(options.maxHeaderBytes ?? DEFAULT_HEADER_READ_CAP, SAFETENSORS_MAX_HEADER_BYTES);
  const name = preview(file.name);
  const fail = (code: HeaderProblemCode, message: string, bytesRead: number): HeaderReadResult => ({
    problems: [{ code, severity: 'error', message }],
    bytesRead,
  });
  if (file.size < 8) {
    return fail(
      'too-small',
      `${name} is ${file.size} bytes, too small to be a safetensors file (needs at least the 8-byte header length); re-upload it`,
      0,
    );
  }
  options.signal?.throwIfAborted();
  const prefix = await store.readRange(file.name, 0, 8);
  if (prefix.length < 8)
    return fail('truncated', truncatedMessage(name, 8n, BigInt(prefix.length)), prefix.length);
  const declared = prefix.readBigUInt64LE(0);
  const size = BigInt(file.size);
  if (declared === 0n) {
    return fail(
      'header-length-invalid',
      `${name} declares an empty (0-byte) header; it is not a valid safetensors file — re-save it with save_pretrained`,
      8,
    );
  }
  if (declared > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    return fail(
      'header-too-large',
      `${name} declares a ${declared}-byte header, above the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit of every safetensors loader; ` +
        `the file is corrupt or not safetensors — re-save it with save_pretrained`,
      8,
    );
  }
  if (8n + declared > size) {
    return fail(
      'truncated',
      `${name} declares a ${declared}-byte header but the object is only ${file.size} bytes: ` +
        `the upload is incomplete or the file is not safetensors — re-upload it`,
      8,
    );
  }
  const headerLength = Number(declared);
  if (headerLength > cap) {
    return fail(
      'header-over-read-cap',
      `${name} has a ${headerLength}-byte header, above the ${cap}-byte read limit of this check; ` +
        `raise the header read limit (up to ${SAFETENSORS_MAX_HEADER_BYTES}) to validate it`,
      8,
    );
  }
  options.signal?.throwIfAborted();
  const release = options.reserveMemory ? await options.reserveMemory(headerLength) : undefined;
  try {
    const headerBytes = await store.readRange(file.name, 8, 8 + headerLength);
    const bytesRead = 8 + headerLength;
    if (headerBytes.length !== headerLength) {
      return fail(
        'truncated',
        truncatedMessage(name, BigInt(bytesRead), BigInt(8 + headerBytes.length)),
        bytesRead,
      );
    }
    return { ...parseSafetensorsHeader(file.name, headerBytes, file.size), bytesRead };
  } finally {
    release?.();
  }
}

/** Checks a header's JSON bytes (file bytes [8, 8+N)) against the object's total size. */
export function parseSafetensorsHeader(
  fileName: string,
  headerBytes: Uint8Array,
  objectSize: number,
): { header?: SafetensorsHeader; problems: HeaderProblem[] } {
  const name = preview(fileName);
  const problems = new ProblemList();
  const headerLength = headerBytes.length;
  if (headerLength > SAFETENSORS_WARN_HEADER_BYTES) {
    problems.add(
      'header-large',
      'warning',
      `${name} has a ${headerLength}-byte header; huggingface_hub and huggingface.js refuse headers above ` +
        `${SAFETENSORS_WARN_HEADER_BYTES} bytes — split the model into more shards`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    problems.add(
      'invalid-utf8',
      'error',
      `${name}: the header is not valid UTF-8, so the file is corrupt — re-upload it or re-save it with save_pretrained`,
    );
    return { problems: problems.list() };
  }
  if (/^[ \t\r\n]/.test(text)) {
    problems.add(
      'leading-whitespace',
      'warning',
      `${name}: the header does not start with '{' (the format says it must); old loaders may reject it — re-save with a current safetensors`,
    );
  }
  let root: JsonValue;
  let duplicates: string[];
  try {
    ({ value: root, duplicateKeys: duplicates } = parseStrictJson(text));
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    problems.add(
      'invalid-json',
      'error',
      `${name}: the header is not valid JSON (${err.message}); the file is corrupt — re-upload it or re-save it with save_pretrained`,
    );
    return { problems: problems.list() };
  }
  for (const key of duplicates) {
    problems.add(
      'duplicate-key',
      'error',
      `${name}: the header repeats the key "${preview(key)}" (forbidden by the format; loaders keep an arbitrary copy) — re-save the file`,
    );
  }
  if (!(root instanceof Map)) {
    problems.add(
      'not-object',
      'error',
      `${name}: the header is JSON but not an object of tensors; the file is corrupt or not safetensors — re-save it`,
    );
    return { problems: problems.list() };
  }

  const tensors: Array<TensorEntry & { beginBig: bigint; endBig: bigint }> = [];
  let metadata: Record<string, string> | undefined;
  for (const [key, value] of root) {
    if (key === '__metadata__') {
      metadata = readMetadata(name, value, problems);
      continue;
    }
    const tensor = readTensorEntry(name, key, value, problems);
    if (tensor) tensors.push(tensor);
  }
  if (metadata === undefined && !root.has('__metadata__')) {
    problems.add(
      'metadata-format',
      'warning',
      `${name} has no __metadata__ {"format": "pt"}; some transformers versions refuse such files — re-save with save_pretrained`,
    );
  } else if (metadata && metadata.format !== 'pt') {
    problems.add(
      'metadata-format',
      'warning',
      `${name}: __metadata__.format is ${metadata.format === undefined ? 'missing' : `"${preview(metadata.format)}"`}, not "pt"; ` +
        `transformers refuses formats other than pt/tf/flax/mlx — re-save with save_pretrained`,
    );
  }

  // Reference rule: sorted by offsets, each tensor starts where the previous one ended.
  tensors.sort((a, b) =>
    a.beginBig < b.beginBig
      ? -1
      : a.beginBig > b.beginBig
        ? 1
        : a.endBig < b.endBig
          ? -1
          : a.endBig > b.endBig
            ? 1
            : 0,
  );
  let expectedBegin = 0n;
  let previous: string | undefined;
  for (const tensor of tensors) {
    if (tensor.beginBig !== expectedBegin) {
      const what =
        tensor.beginBig > expectedBegin
          ? `leaves a gap: it starts at ${tensor.beginBig} but the previous tensor ends at ${expectedBegin}`
          : `overlaps ${previous === undefined ? 'the start of the buffer' : `"${preview(previous)}"`} (starts at ${tensor.beginBig}, expected ${expectedBegin})`;
      problems.add(
        'offsets',
        'error',
        `${name}: tensor "${preview(tensor.name)}" ${what}; the header's data_offsets are corrupt — re-save the file`,
      );
    }
    if (tensor.endBig > expectedBegin) expectedBegin = tensor.endBig;
    previous = tensor.name;
  }
  const dataBytes = expectedBegin;
  const expectedSize = 8n + BigInt(headerLength) + dataBytes;
  const actualSize = BigInt(objectSize);
  if (expectedSize > actualSize) {
    problems.add('truncated', 'error', truncatedMessage(name, expectedSize, actualSize));
  } else if (expectedSize < actualSize) {
    problems.add(
      'trailing-bytes',
      'error',
      `${name} has ${actualSize - expectedSize} bytes after its last tensor (object is ${actualSize} bytes, header accounts for ${expectedSize}); ` +
        `loaders refuse such files — re-save it with save_pretrained`,
    );
  }
  if (tensors.length === 0) {
    problems.add('empty', 'warning', `${name} contains no tensors; remove it or re-export the model`);
  }
  const result: SafetensorsHeader = {
    headerLength,
    tensors: tensors.map(({ beginBig: _b, endBig: _e, ...tensor }) => tensor),
    dataBytes: safeNumber(dataBytes),
  };
  if (metadata) result.metadata = metadata;
  return { header: result, problems: problems.list() };
}

function readMetadata(
  name: string,
  value: JsonValue,
  problems: ProblemList,
): Record<string, string> | undefined {
  const bad = (why: string): undefined => {
    problems.add(
      'bad-metadata',
      'error',
      `${name}: __metadata__ ${why}; it must be a flat map of strings to strings (the reference reader refuses the file) — re-save it`,
    );
    return undefined;
  };
  if (!(value instanceof Map)) return bad('is not an object');
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, entry] of value) {
    if (typeof entry !== 'string') return bad(`has a non-string value for "${preview(key)}"`);
    metadata[key] = entry;
  }
  return metadata;
}

function readTensorEntry(
  name: string,
  tensorName: string,
  value: JsonValue,
  problems: ProblemList,
): (TensorEntry & { beginBig: bigint; endBig: bigint }) | undefined {
  const bad = (why: string): undefined => {
    problems.add(
      'bad-entry',
      'error',
      `${name}: tensor "${preview(tensorName)}" ${why}; the header is corrupt — re-save the file`,
    );
    return undefined;
  };
  if (!(value instanceof Map)) return bad('is not an object with dtype, shape and data_offsets');
  const dtype = value.get('dtype');
  const shape = value.get('shape');
  const offsets = value.get('data_offsets');
  if (typeof dtype !== 'string') return bad('has no string "dtype"');
  if (!Array.isArray(shape)) return bad('has no "shape" array');
  if (!Array.isArray(offsets) || offsets.length !== 2) return bad('has no "data_offsets" [begin, end] pair');
  const dims: bigint[] = [];
  for (const dim of shape) {
    const parsed = toUint(dim);
    if (parsed === undefined) return bad(`has a shape entry that is not a non-negative 64-bit integer`);
    dims.push(parsed);
  }
  const begin = toUint(offsets[0] as JsonValue);
  const end = toUint(offsets[1] as JsonValue);
  if (begin === undefined || end === undefined) {
    return bad('has data_offsets that are not non-negative 64-bit integers');
  }
  if (end < begin) return bad(`has data_offsets [${begin}, ${end}] that end before they begin`);
  if (dims.some((d) => d > BigInt(Number.MAX_SAFE_INTEGER))) {
    return bad('has a dimension above 2^53, larger than any real tensor');
  }
  const known = isDtype(dtype);
  const bits = known ? DTYPE_BITS[dtype] : undefined;
  if (bits === undefined) {
    problems.add(
      'unknown-dtype',
      'warning',
      `${name}: tensor "${preview(tensorName)}" has dtype "${preview(dtype)}", unknown to this validator and to current loaders; its size was not checked`,
    );
  } else {
    let elements = 1n;
    for (const dim of dims) {
      elements *= dim;
      // The reference reader's checked multiplication fails here too (ValidationOverflow).
      if (elements >= 1n << 64n)
        return bad(`has a shape [${preview(dims.join(', '))}] whose element count overflows 64 bits`);
    }
    const totalBits = elements * BigInt(bits);
    if (totalBits % 8n !== 0n) {
      problems.add(
        'misaligned',
        'error',
        `${name}: tensor "${preview(tensorName)}" (${dtype}, shape [${preview(dims.join(', '))}]) does not fill whole bytes; re-save the file`,
      );
    } else if (totalBits / 8n !== end - begin) {
      problems.add(
        'size-mismatch',
        'error',
        `${name}: tensor "${preview(tensorName)}" (${dtype}, shape [${preview(dims.join(', '))}]) needs ${totalBits / 8n} bytes ` +
          `but its data_offsets span ${end - begin}; the header is corrupt — re-save the file`,
      );
    }
  }
  return {
    name: tensorName,
    dtype,
    ...(bits === undefined ? {} : { bits }),
    shape: dims.map(Number),
    begin: safeNumber(begin),
    end: safeNumber(end),
    beginBig: begin,
    endBig: end,
  };
}

function toUint(value: JsonValue | undefined): bigint | undefined {
  if (!(value instanceof JsonNumber)) return undefined;
  const text = value.text;
  if (!/^(0|[1-9]\d*)$/.test(text) || text.length > MAX_INTEGER_DIGITS) return undefined;
  const parsed = BigInt(text);
  return parsed < 1n << 64n ? parsed : undefined;
}

/** Offsets beyond 2^53 only appear in corrupt headers, which the size checks already reject. */
function safeNumber(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

function truncatedMessage(name: string, expected: bigint, actual: bigint): string {
  return `${name} is truncated: expected ${expected} bytes, object has ${actual}; the upload is incomplete — re-upload it`;
}

/** Untrusted names go into messages shortened, so a hostile header cannot bloat a report. */
export function preview(text: string, max = NAME_PREVIEW_CHARS): string {
  const printable = text.replace(/\p{Cc}/gu, '?');
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}

class ProblemList {
  private readonly problems: HeaderProblem[] = [];
  private readonly counts = new Map<HeaderProblemCode, number>();

  add(code: HeaderProblemCode, severity: HeaderProblem['severity'], message: string): void {
    const count = (this.counts.get(code) ?? 0) + 1;
    this.counts.set(code, count);
    if (count <= MAX_PROBLEMS_PER_CODE) this.problems.push({ code, severity, message });
  }

  list(): HeaderProblem[] {
    for (const [code, count] of this.counts) {
      if (count <= MAX_PROBLEMS_PER_CODE) continue;
      const first = this.problems.find((p) => p.code === code);
      if (first) first.message += ` (and ${count - MAX_PROBLEMS_PER_CODE} more like it in this file)`;
    }
    return this.problems;
  }
}

// ---------------------------------------------------------------------------------------------
// Strict JSON: JSON.parse silently keeps the last duplicate key and rounds integers beyond 2^53,
// both of which hide corrupt headers, so headers get this small bounded parser instead.

/** A JSON number kept as its source text, so 64-bit integers survive exactly. */
export class JsonNumber {
  constructor(readonly text: string) {}
}
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | Map<string, JsonValue>;

export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
}

const ESCAPE_RE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;
const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const MAX_DUPLICATES_REPORTED = 20;

/**
 * Parses JSON text (RFC 8259), keeping numbers as text and objects as Maps (the last duplicate
 * wins, like JSON.parse), and reports duplicate keys. Nesting is bounded, so hostile input cannot
 * exhaust the stack.
 */
export function parseStrictJson(
  text: string,
  maxDepth = JSON_MAX_DEPTH,
): { value: JsonValue; duplicateKeys: string[] } {
  let pos = 0;
  const duplicateKeys: string[] = [];
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at character ${pos}`);
  };
  const skipWhitespace = (): void => {
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else return;
    }
  };
  // A scanning loop, not one regex: V8's regex engine overflows its stack on multi-MB strings.
  const parseString = (): string => {
    const start = pos;
    let escaped = false;
    pos++;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 0x22) break;
      if (Number.isNaN(c)) return fail('unterminated string');
      if (c < 0x20) return fail('control character in string');
      if (c === 0x5c) {
        ESCAPE_RE.lastIndex = pos;
        const escape = ESCAPE_RE.exec(text);
        if (!escape) return fail('invalid escape in string');
        pos += escape[0].length;
        escaped = true;
      } else pos++;
    }
    pos++;
    const literal = text.slice(start, pos);
    return escaped ? (JSON.parse(literal) as string) : literal.slice(1, -1);
  };
  const parseValue = (depth: number): JsonValue => {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth}`);
    skipWhitespace();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const object = new Map<string, JsonValue>();
      skipWhitespace();
      if (text[pos] === '}') {
        pos++;
        return object;
      }
      for (;;) {
        skipWhitespace();
        if (text[pos] !== '"') fail('expected a string key');
        const key = parseString();
        skipWhitespace();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        const value = parseValue(depth + 1);
        if (object.has(key) && duplicateKeys.length < MAX_DUPLICATES_REPORTED) duplicateKeys.push(key);
        object.set(key, value);
        skipWhitespace();
        if (text[pos] === ',') pos++;
        else if (text[pos] === '}') {
          pos++;
          return object;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      pos++;
      const array: JsonValue[] = [];
      skipWhitespace();
      if (text[pos] === ']') {
        pos++;
        return array;
      }
      for (;;) {
        array.push(parseValue(depth + 1));
        skipWhitespace();
        if (text[pos] === ',') pos++;
        else if (text[pos] === ']') {
          pos++;
          return array;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return parseString();
    if (text.startsWith('true', pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith('false', pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith('null', pos)) {
      pos += 4;
      return null;
    }
    NUMBER_RE.lastIndex = pos;
    const number = NUMBER_RE.exec(text);
    if (!number) return fail(c === undefined ? 'unexpected end' : 'unexpected character');
    pos += number[0].length;
    return new JsonNumber(number[0]);
  };
  const value = parseValue(0);
  skipWhitespace();
  if (pos !== text.length) fail('unexpected data after the JSON value');
  return { value, duplicateKeys };
}
