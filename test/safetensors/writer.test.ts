import { describe, expect, it } from 'vitest';
import { DTYPE_BITS } from '../../src/safetensors/dtypes';
import {
  SafetensorsWriteError,
  type TensorSpec,
  planSafetensors,
  safetensorsChunks,
  serializeSafetensors,
  tensorByteLength,
} from '../../src/safetensors/writer';

interface ParsedEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A deliberately small, independent reader following the reference validation rules. */
function readSafetensors(file: Buffer) {
  const n = Number(file.readBigUInt64LE(0));
  const text = file.subarray(8, 8 + n).toString('utf8');
  const header = JSON.parse(text) as Record<string, unknown>;
  const { __metadata__: metadata, ...tensors } = header;
  const entries = Object.entries(tensors as Record<string, ParsedEntry>).sort(
    (a, b) => a[1].data_offsets[0] - b[1].data_offsets[0],
  );
  let cursor = 0;
  for (const [name, e] of entries) {
    if (e.data_offsets[0] !== cursor) throw new Error(`${name} is not contiguous`);
    const bytes = (e.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[e.dtype as keyof typeof DTYPE_BITS]) / 8;
    if (e.data_offsets[1] - e.data_offsets[0] !== bytes) throw new Error(`${name} has the wrong byte count`);
    cursor = e.data_offsets[1];
  }
  if (8 + n + cursor !== file.length) throw new Error('buffer not covered exactly');
  const data = (name: string) => {
    const e = (tensors as Record<string, ParsedEntry>)[name]!;
    return file.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
  };
  return { n, text, metadata, order: entries.map(([name]) => name), data };
}

function f32(values: number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buffer.writeFloatLE(v, i * 4));
  return buffer;
}

describe('safetensors writer: byte-exact with the reference (safetensors tensor.rs tests)', () => {
  it('test_serialization: one F32 [1,2,3] tensor, no metadata', async () => {
    const out = await serializeSafetensors(
      [{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data: f32([0, 1, 2, 3, 4, 5]) }],
      {
        metadata: null,
      },
    );
    expect([...out]).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101,
      34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34,
      100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0,
      0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });

  it('test_serialization_forced_alignement: header padded with spaces to a multiple of 8', async () => {
    const out = await serializeSafetensors(
      [{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data: f32([0, 1, 2, 3, 4, 5]) }],
      { metadata: null },
    );
    expect([...out]).toEqual([
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34,
      58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44,
      34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125,
      32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
      160, 64,
    ]);
  });

  it('test_empty: no tensors, with and without metadata', async () => {
    expect([...(await serializeSafetensors([], { metadata: null }))]).toEqual([
      8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32,
    ]);
    expect([...(await serializeSafetensors([], { metadata: { framework: 'pt' } }))]).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34,
      102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
  });
});

describe('safetensors writer: layout', () => {
  const mixed: TensorSpec[] = [
    { name: 'b.norm', dtype: 'F32', shape: [3] },
    { name: 'a.blocks', dtype: 'U8', shape: [5] },
    { name: 'z.weight', dtype: 'BF16', shape: [2, 3] },
    { name: 'a.weight', dtype: 'BF16', shape: [2, 2] },
    { name: 'c.ids', dtype: 'I64', shape: [1] },
  ];

  it('writes __metadata__ {format: pt} first and sorts by descending alignment, then name', async () => {
    const file = await serializeSafetensors(mixed);
    const parsed = readSafetensors(file);
    expect(parsed.metadata).toEqual({ format: 'pt' });
    expect(parsed.text.startsWith('{"__metadata__":{"format":"pt"},"c.ids":')).toBe(true);
    expect(parsed.order).toEqual(['c.ids', 'b.norm', 'a.weight', 'z.weight', 'a.blocks']);
    expect(parsed.n % 8).toBe(0);
    expect(parsed.text.trimEnd()).toBe(parsed.text.slice(0, parsed.text.lastIndexOf('}') + 1));
  });

  it('plans offsets and sizes without data', () => {
    const layout = planSafetensors(mixed);
    expect(layout.entries.map((e) => [e.name, e.begin, e.end])).toEqual([
      ['c.ids', 0, 8],
      ['b.norm', 8, 20],
      ['a.weight', 20, 28],
      ['z.weight', 28, 40],
      ['a.blocks', 40, 45],
    ]);
    expect(layout.dataBytes).toBe(45);
    expect(layout.fileBytes).toBe(8 + layout.headerLength + 45);
    expect(layout.header.length).toBe(8 + layout.headerLength);
  });

  it('places given data at its offsets and fills the rest', async () => {
    const weight = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const file = await serializeSafetensors([
      ...mixed.filter((t) => t.name !== 'a.weight'),
      { name: 'a.weight', dtype: 'BF16', shape: [2, 2], data: weight },
    ]);
    const parsed = readSafetensors(file);
    expect(parsed.data('a.weight')).toEqual(weight);
    expect(parsed.data('z.weight')).toEqual(Buffer.alloc(12));
  });

  it('pattern fill is deterministic per seed and differs between seeds', async () => {
    const spec: TensorSpec[] = [{ name: 'w', dtype: 'BF16', shape: [64, 64] }];
    const a = await serializeSafetensors(spec, { fill: { kind: 'pattern', seed: 1 } });
    const b = await serializeSafetensors(spec, { fill: { kind: 'pattern', seed: 1 } });
    const c = await serializeSafetensors(spec, { fill: { kind: 'pattern', seed: 2 } });
    expect(a).toEqual(b);
    expect(a.equals(c)).toBe(false);
    expect(
      readSafetensors(a)
        .data('w')
        .some((byte) => byte !== 0),
    ).toBe(true);
  });

  it('streams a tensor larger than one chunk as bounded chunks adding up to the declared size', async () => {
    const tensors: TensorSpec[] = [{ name: 'big', dtype: 'BF16', shape: [3 * 1024, 2048] }]; // 12 MiB
    const layout = planSafetensors(tensors);
    let total = 0;
    let largest = 0;
    for await (const chunk of safetensorsChunks(tensors, layout, { kind: 'pattern', seed: 7 })) {
      total += chunk.length;
      largest = Math.max(largest, chunk.length);
    }
    expect(total).toBe(layout.fileBytes);
    expect(largest).toBeLessThanOrEqual(4 * 1024 * 1024);
  });

  it('writes sub-byte tensors whose bits fill whole bytes', async () => {
    const file = await serializeSafetensors([{ name: 'fp4', dtype: 'F4', shape: [2, 3] }]);
    expect(readSafetensors(file).data('fp4').length).toBe(3);
    expect(() => tensorByteLength([3], 'F4')).toThrow(/not a whole number of bytes/);
  });

  it('escapes names as JSON', async () => {
    const file = await serializeSafetensors([{ name: 'odd "name"\\é', dtype: 'U8', shape: [1] }]);
    expect(readSafetensors(file).order).toEqual(['odd "name"\\é']);
  });
});

describe('safetensors writer: bad input changes nothing and says why', () => {
  it('rejects duplicate and reserved names', () => {
    expect(() =>
      planSafetensors([
        { name: 'x', dtype: 'F32', shape: [1] },
        { name: 'x', dtype: 'F32', shape: [1] },
      ]),
    ).toThrow(/listed twice/);
    expect(() => planSafetensors([{ name: '__metadata__', dtype: 'F32', shape: [1] }])).toThrow(
      SafetensorsWriteError,
    );
  });

  it('rejects data of the wrong length and impossible shapes', () => {
    expect(() => planSafetensors([{ name: 'x', dtype: 'F32', shape: [2], data: Buffer.alloc(4) }])).toThrow(
      /needs 8 bytes but 4/,
    );
    expect(() => planSafetensors([{ name: 'x', dtype: 'F32', shape: [-1] }])).toThrow(/non-negative integer/);
    expect(() => planSafetensors([{ name: 'x', dtype: 'F32', shape: [2 ** 40, 2 ** 20] }])).toThrow(
      /too large/,
    );
  });
});
