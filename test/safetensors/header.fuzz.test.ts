import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DTYPE_BITS } from '../../src/safetensors/dtypes';
import {
  HEADER_PROBLEM_CODES,
  type HeaderReadResult,
  JsonNumber,
  parseStrictJson,
  readSafetensorsHeader,
  SAFETENSORS_MAX_HEADER_BYTES,
} from '../../src/safetensors/header';
import { headerText, rawSafetensors, RecordingStore } from './raw-file';

const READ_CAP = 4096;
const KNOWN_CODES = new Set<string>(HEADER_PROBLEM_CODES);

/** Reads `file` with a small cap and checks the invariants every input must satisfy. */
async function readChecked(file: Buffer): Promise<HeaderReadResult> {
  const store = new RecordingStore({ f: file });
  const result = await readSafetensorsHeader(
    store,
    { name: 'f', size: file.length },
    { maxHeaderBytes: READ_CAP },
  );
  // Never past the header bound, never past the object, never more than reported.
  expect(store.highestOffsetRequested).toBeLessThanOrEqual(Math.min(8 + READ_CAP, file.length));
  expect(store.bytesRequested).toBe(result.bytesRead);
  for (const problem of result.problems) {
    expect(KNOWN_CODES.has(problem.code), problem.code).toBe(true);
    expect(problem.message.length).toBeLessThan(1000);
  }
  // A file is either fully valid or explained by at least one problem with a rule id.
  if (!result.header) expect(result.problems.some((p) => p.severity === 'error')).toBe(true);
  return result;
}

const declaredLength = fc.oneof(
  fc.bigInt({ min: 0n, max: 300n }),
  fc.bigInt({ min: (1n << 64n) - 1000n, max: (1n << 64n) - 1n }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc.bigInt({
    min: BigInt(SAFETENSORS_MAX_HEADER_BYTES - 10),
    max: BigInt(SAFETENSORS_MAX_HEADER_BYTES + 10),
  }),
);

const dtypeName = fc.oneof(fc.constantFrom(...Object.keys(DTYPE_BITS)), fc.string({ maxLength: 8 }));
const integerText = fc.oneof(
  fc.nat({ max: 64 }).map(String),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }).map(String),
  fc.constantFrom(
    '9007199254740993',
    '18446744073709551615',
    '18446744073709551616',
    '1e3',
    '1.5',
    '-0',
    '"7"',
  ),
);
const arrayText = (item: fc.Arbitrary<string>) =>
  fc.array(item, { maxLength: 5 }).map((items) => `[${items.join(',')}]`);
/** Tensor entries mixing plausible and hostile field values, written as raw JSON text. */
const entryText = fc.oneof(
  fc
    .record({
      dtype: dtypeName,
      shape: arrayText(integerText),
      begin: integerText,
      end: integerText,
    })
    .map(
      ({ dtype, shape, begin, end }) =>
        `{"dtype":${JSON.stringify(dtype)},"shape":${shape},"data_offsets":[${begin},${end}]}`,
    ),
  fc.json({ maxDepth: 3 }),
);
const metadataText = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })).map((m) => JSON.stringify(m)),
  fc.json({ maxDepth: 2 }),
);
const headerJsonText = fc
  .tuple(
    fc.option(metadataText),
    fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 12 }), fc.constant('w')), entryText), { maxLength: 8 }),
  )
  .map(([metadata, entries]) => {
    const parts = entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`);
    if (metadata !== null) parts.unshift(`"__metadata__":${metadata}`);
    return `{${parts.join(',')}}`;
  });

describe('safetensors header fuzzing', () => {
  it('random bytes after a random declared length never crash or read past the bound', async () => {
    await fc.assert(
      fc.asyncProperty(declaredLength, fc.uint8Array({ maxLength: 600 }), async (declared, body) => {
        const prefix = Buffer.alloc(8);
        prefix.writeBigUInt64LE(declared);
        await readChecked(Buffer.concat([prefix, body]));
      }),
      { numRuns: 500 },
    );
  });

  it('files shorter than 8 bytes are refused without reading', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 7 }), async (bytes) => {
        const result = await readChecked(Buffer.from(bytes));
        expect(result.problems.map((p) => p.code)).toEqual(['too-small']);
      }),
    );
  });

  it('adversarial headers (huge and negative numbers, wrong types, duplicates) always yield a rule id', async () => {
    await fc.assert(
      fc.asyncProperty(headerJsonText, fc.nat({ max: 300 }), async (text, dataBytes) => {
        const result = await readChecked(rawSafetensors(text, { dataBytes }));
        const expected = JSON.parse(text) as unknown;
        if (typeof expected !== 'object' || expected === null) return;
        if (result.problems.every((p) => p.severity !== 'error')) {
          // Anything accepted must really be a consistent file: offsets cover the data exactly.
          expect(result.header?.dataBytes).toBe(dataBytes);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('headers over the read cap are refused after reading 8 bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: READ_CAP + 1, max: READ_CAP * 3 }), async (length) => {
        const result = await readChecked(rawSafetensors(' '.repeat(length), { pad: false }));
        expect(result.problems.map((p) => p.code)).toEqual(['header-over-read-cap']);
        expect(result.bytesRead).toBe(8);
      }),
      { numRuns: 50 },
    );
  });
});

const dtypes = Object.entries(DTYPE_BITS);
/** Tensors a correct writer could produce: dims small enough, byte counts whole. */
const validTensorList = fc
  .uniqueArray(
    fc.record({
      name: fc.string({ minLength: 1, maxLength: 20 }).filter((n) => n !== '__metadata__'),
      dtype: fc.constantFrom(...dtypes),
      shape: fc.array(fc.nat({ max: 6 }), { maxLength: 3 }),
    }),
    { selector: (t) => t.name, maxLength: 8 },
  )
  .map((tensors) =>
    tensors
      .map(({ name, dtype: [dtype, bits], shape }) => {
        const bitCount = shape.reduce((a, b) => a * b, 1) * bits;
        return { name, dtype, shape, bytes: bitCount / 8 };
      })
      .filter((t) => Number.isInteger(t.bytes)),
  );

describe('safetensors header properties on valid files', () => {
  it('valid files parse back exactly, with no problems', async () => {
    await fc.assert(
      fc.asyncProperty(validTensorList, async (tensors) => {
        const { text, dataBytes } = headerText(tensors);
        const result = await readChecked(rawSafetensors(text, { dataBytes }));
        expect(result.problems.filter((p) => p.code !== 'empty')).toEqual([]);
        expect(result.header?.dataBytes).toBe(dataBytes);
        const byName = new Map(result.header?.tensors.map((t) => [t.name, t]));
        for (const tensor of tensors) {
          expect(byName.get(tensor.name)).toMatchObject({ dtype: tensor.dtype, shape: tensor.shape });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('cutting bytes off the end of a valid file is always reported as truncation', async () => {
    await fc.assert(
      fc.asyncProperty(
        validTensorList.filter((t) => t.some((x) => x.bytes > 0)),
        fc.integer({ min: 1, max: 1000 }),
        async (tensors, cut) => {
          const { text, dataBytes } = headerText(tensors);
          const file = rawSafetensors(text, { dataBytes });
          const result = await readChecked(file.subarray(0, file.length - Math.min(cut, dataBytes)));
          expect(result.problems.map((p) => p.code)).toContain('truncated');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('cutting the header text short is always invalid JSON', async () => {
    await fc.assert(
      fc.asyncProperty(validTensorList, fc.double({ min: 0, max: 1, noNaN: true }), async (tensors, at) => {
        const { text } = headerText(tensors);
        const cut = text.slice(0, Math.floor(at * (text.length - 1)));
        const result = await readChecked(rawSafetensors(cut, { pad: false, dataBytes: 16 }));
        expect(result.problems.map((p) => p.code)).toContain(
          cut.length === 0 ? 'header-length-invalid' : 'invalid-json',
        );
      }),
      { numRuns: 300 },
    );
  });

  it('repeating an entry is reported as a duplicate key', async () => {
    await fc.assert(
      fc.asyncProperty(
        validTensorList.filter((t) => t.length > 0),
        async (tensors) => {
          const { text, dataBytes } = headerText(tensors);
          const first = tensors[0]!;
          const duplicated = `${text.slice(0, -1)},${JSON.stringify(first.name)}:{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`;
          const result = await readChecked(rawSafetensors(duplicated, { dataBytes }));
          expect(result.problems.map((p) => p.code)).toContain('duplicate-key');
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('strict JSON parser agrees with JSON.parse on valid JSON', () => {
  const normalise = (value: unknown): unknown => {
    if (value instanceof JsonNumber) return Number(value.text);
    if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, normalise(v)]));
    if (Array.isArray(value)) return value.map(normalise);
    return value;
  };
  it('same values, no duplicates reported', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const { value, duplicateKeys } = parseStrictJson(text);
        expect(duplicateKeys).toEqual([]);
        expect(normalise(value)).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });
});
