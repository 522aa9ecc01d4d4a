import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HEADER_READ_CAP,
  type HeaderProblemCode,
  type HeaderReadResult,
  type JsonNumber,
  JsonSyntaxError,
  parseStrictJson,
  readSafetensorsHeader,
} from '../../src/safetensors/header';
import { headerText, rawSafetensors, RecordingStore } from './raw-file';

async function read(file: Buffer, options: { maxHeaderBytes?: number } = {}) {
  const store = new RecordingStore({ 'model.safetensors': file });
  const result = await readSafetensorsHeader(
    store,
    { name: 'model.safetensors', size: file.length },
    options,
  );
  return { result, store };
}

function codes(result: HeaderReadResult): HeaderProblemCode[] {
  return result.problems.map((p) => p.code);
}

function errors(result: HeaderReadResult): HeaderProblemCode[] {
  return result.problems.filter((p) => p.severity === 'error').map((p) => p.code);
}

const validTensors = [
  { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [16, 8], bytes: 256 },
  { name: 'model.norm.weight', dtype: 'F32', shape: [8], bytes: 32 },
  { name: 'experts.blocks', dtype: 'F4', shape: [3, 2], bytes: 3 },
];

describe('safetensors header: valid files', () => {
  it('parses tensors, metadata and the data length with two ranged reads that stop at the header', async () => {
    const { text, dataBytes } = headerText(validTensors);
    const file = rawSafetensors(text, { dataBytes });
    const { result, store } = await read(file);
    expect(result.problems).toEqual([]);
    expect(result.header?.metadata).toEqual({ format: 'pt' });
    expect(result.header?.dataBytes).toBe(dataBytes);
    expect(result.header?.tensors.map((t) => [t.name, t.dtype, t.shape, t.begin, t.end])).toEqual([
      ['model.embed_tokens.weight', 'BF16', [16, 8], 0, 256],
      ['model.norm.weight', 'F32', [8], 256, 288],
      ['experts.blocks', 'F4', [3, 2], 288, 291],
    ]);
    const headerEnd = file.length - dataBytes;
    expect(store.reads).toEqual([
      [0, 8],
      [8, headerEnd],
    ]);
    expect(result.bytesRead).toBe(headerEnd);
  });

  it('accepts leading whitespace with a warning and scalars / empty tensors', async () => {
    const text = ` {"__metadata__":{"format":"pt"},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"BF16","shape":[0,5],"data_offsets":[4,4]}}`;
    const { result } = await read(rawSafetensors(text, { dataBytes: 4 }));
    expect(codes(result)).toEqual(['leading-whitespace']);
    expect(result.header?.tensors).toHaveLength(2);
  });

  it('keeps tensors whose names are JavaScript object internals', async () => {
    const text = `{"__proto__":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"constructor":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"__metadata__":{"format":"pt"}}`;
    const { result } = await read(rawSafetensors(text, { dataBytes: 4 }));
    expect(result.problems).toEqual([]);
    expect(result.header?.tensors.map((t) => t.name)).toEqual(['__proto__', 'constructor']);
  });

  it('warns when __metadata__ is missing or its format is not pt, and on unknown dtypes', async () => {
    const noMeta = headerText(validTensors, null);
    expect(codes((await read(rawSafetensors(noMeta.text, { dataBytes: noMeta.dataBytes }))).result)).toEqual([
      'metadata-format',
    ]);
    const tf = headerText(validTensors, { format: 'tf' });
    const tfResult = (await read(rawSafetensors(tf.text, { dataBytes: tf.dataBytes }))).result;
    expect(tfResult.problems).toMatchObject([{ code: 'metadata-format', severity: 'warning' }]);
    expect(tfResult.problems[0]?.message).toContain('"tf"');
    const unknown = headerText([{ name: 'w', dtype: 'F2_NEW', shape: [4], bytes: 1 }]);
    expect((await read(rawSafetensors(unknown.text, { dataBytes: 1 }))).result.problems).toMatchObject([
      { code: 'unknown-dtype', severity: 'warning' },
    ]);
  });
});

describe('safetensors header: each corruption has its own rule', () => {
  const { text, dataBytes } = headerText(validTensors);

  it('truncated shard: names expected and actual sizes', async () => {
    const file = rawSafetensors(text, { dataBytes });
    const { result } = await read(file.subarray(0, file.length - 10));
    expect(errors(result)).toEqual(['truncated']);
    expect(result.problems[0]?.message).toContain(
      `expected ${file.length} bytes, object has ${file.length - 10}`,
    );
  });

  it('trailing bytes after the last tensor', async () => {
    const { result } = await read(rawSafetensors(text, { dataBytes: dataBytes + 3 }));
    expect(errors(result)).toEqual(['trailing-bytes']);
  });

  it('files shorter than 8 bytes are rejected without any read', async () => {
    const { result, store } = await read(Buffer.from([1, 2, 3]));
    expect(errors(result)).toEqual(['too-small']);
    expect(store.reads).toEqual([]);
  });

  it('a declared length near 2^64 is refused after reading only 8 bytes', async () => {
    const { result, store } = await read(
      rawSafetensors('{}', { declaredLength: (1n << 64n) - 1n, dataBytes: 64 }),
    );
    expect(errors(result)).toEqual(['header-too-large']);
    expect(store.bytesRequested).toBe(8);
  });

  it('a header longer than the object is reported as truncation, a zero length as invalid', async () => {
    expect(errors((await read(rawSafetensors('{}', { declaredLength: 5000n }))).result)).toEqual([
      'truncated',
    ]);
    expect(errors((await read(rawSafetensors('', { declaredLength: 0n, dataBytes: 8 }))).result)).toEqual([
      'header-length-invalid',
    ]);
  });

  it('a header above the read cap is not downloaded', async () => {
    const file = rawSafetensors(text, { dataBytes });
    const { result, store } = await read(file, { maxHeaderBytes: 64 });
    expect(errors(result)).toEqual(['header-over-read-cap']);
    expect(store.bytesRequested).toBe(8);
  });

  it('invalid UTF-8, invalid JSON and non-object headers', async () => {
    const badUtf8 = Buffer.concat([Buffer.from('{"a'), Buffer.from([0xff, 0xfe]), Buffer.from('":1}')]);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(badUtf8.length));
    expect(errors((await read(Buffer.concat([prefix, badUtf8]))).result)).toEqual(['invalid-utf8']);
    expect(errors((await read(rawSafetensors(text.slice(0, 40)))).result)).toEqual(['invalid-json']);
    expect(errors((await read(rawSafetensors('[1,2,3]'))).result)).toEqual(['not-object']);
    expect(errors((await read(rawSafetensors(`${text}\u0000\u0000`, { dataBytes }))).result)).toEqual([
      'invalid-json',
    ]);
  });

  it('duplicate keys, which JSON.parse would silently merge', async () => {
    const entry = '{"dtype":"U8","shape":[4],"data_offsets":[0,4]}';
    const { result } = await read(rawSafetensors(`{"w":${entry},"w":${entry}}`, { dataBytes: 4 }));
    expect(errors(result)).toContain('duplicate-key');
    expect(result.problems.find((p) => p.code === 'duplicate-key')?.message).toContain('"w"');
  });

  it('overlapping and gapped offsets', async () => {
    const overlapping = `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`;
    const overlap = (await read(rawSafetensors(overlapping, { dataBytes: 6 }))).result;
    expect(errors(overlap)).toEqual(['offsets']);
    expect(overlap.problems.find((p) => p.code === 'offsets')?.message).toContain('overlaps "a"');
    const gapped = `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}`;
    const gap = (await read(rawSafetensors(gapped, { dataBytes: 12 }))).result;
    expect(errors(gap)).toEqual(['offsets']);
    expect(gap.problems.find((p) => p.code === 'offsets')?.message).toContain('gap');
  });

  it('offsets beyond the object, and byte counts that disagree with shape × dtype', async () => {
    const beyond = `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}`;
    expect(errors((await read(rawSafetensors(beyond, { dataBytes: 4 }))).result)).toEqual(['truncated']);
    const wrongSize = `{"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,4]}}`;
    const mismatch = (await read(rawSafetensors(wrongSize, { dataBytes: 4 }))).result;
    expect(errors(mismatch)).toEqual(['size-mismatch']);
    expect(mismatch.problems[0]?.message).toContain('needs 8 bytes but its data_offsets span 4');
    const subByte = `{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`;
    expect(errors((await read(rawSafetensors(subByte, { dataBytes: 2 }))).result)).toEqual(['misaligned']);
  });

  it('negative, fractional, beyond-2^53 and beyond-2^64 numbers are bad entries, never rounded', async () => {
    for (const shape of ['[-1]', '[1.5]', '[1e3]', '[9007199254740993]', '[18446744073709551616]', '["4"]']) {
      const header = `{"a":{"dtype":"U8","shape":${shape},"data_offsets":[0,4]}}`;
      expect(errors((await read(rawSafetensors(header, { dataBytes: 4 }))).result), shape).toContain(
        'bad-entry',
      );
    }
    const hugeOffsets = `{"a":{"dtype":"U8","shape":[4],"data_offsets":[9007199254740993,9007199254740997]}}`;
    expect(errors((await read(rawSafetensors(hugeOffsets, { dataBytes: 4 }))).result)).toEqual([
      'offsets',
      'truncated',
    ]);
    const overflow = `{"a":{"dtype":"F64","shape":[4294967296,4294967296,2],"data_offsets":[0,8]}}`;
    expect(errors((await read(rawSafetensors(overflow, { dataBytes: 8 }))).result)).toContain('bad-entry');
  });

  it('non-string or nested __metadata__', async () => {
    for (const meta of ['{"format":1}', '{"format":{"x":"pt"}}', '"pt"', '[]']) {
      const header = `{"__metadata__":${meta},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`;
      expect(errors((await read(rawSafetensors(header, { dataBytes: 4 }))).result), meta).toEqual([
        'bad-metadata',
      ]);
    }
  });

  it('a header whose every tensor is broken reports a bounded number of problems', async () => {
    const entries = Array.from(
      { length: 5000 },
      (_, i) => `"t${i}":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}`,
    );
    const { result } = await read(rawSafetensors(`{${entries.join(',')}}`));
    expect(result.problems.length).toBeLessThanOrEqual(10);
    expect(result.problems[0]?.message).toContain('and 4995 more');
  });

  it('has a default read cap between the 25 MB warning and the 100 MB hard limit', () => {
    expect(DEFAULT_HEADER_READ_CAP).toBeGreaterThan(25_000_000);
    expect(DEFAULT_HEADER_READ_CAP).toBeLessThan(100_000_000);
  });
});

describe('strict JSON', () => {
  it('keeps integers exact and reports duplicate keys', () => {
    const { value, duplicateKeys } = parseStrictJson('{"n":18446744073709551615,"k":1,"k":2}');
    expect(value).toBeInstanceOf(Map);
    const map = value as Map<string, unknown>;
    expect((map.get('n') as JsonNumber).text).toBe('18446744073709551615');
    expect((map.get('k') as JsonNumber).text).toBe('2');
    expect(duplicateKeys).toEqual(['k']);
  });

  it('refuses hostile nesting and long strings without overflowing the stack', () => {
    expect(() => parseStrictJson('['.repeat(100_000))).toThrow(JsonSyntaxError);
    const long = 'x'.repeat(12_000_000);
    expect(parseStrictJson(`"${long}"`).value).toBe(long);
  });
});
