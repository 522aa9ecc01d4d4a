import type { ModelStore } from '../../src/storage';

/**
 * Raw safetensors bytes for tests that need files no correct writer would produce: any header text,
 * any declared length, any data length.
 */
export function rawSafetensors(
  headerText: string,
  options: { dataBytes?: number; declaredLength?: bigint; pad?: boolean } = {},
): Buffer {
  let header = Buffer.from(headerText, 'utf8');
  if (options.pad !== false && header.length % 8 !== 0) {
    header = Buffer.concat([header, Buffer.alloc(8 - (header.length % 8), 0x20)]);
  }
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(options.declaredLength ?? BigInt(header.length));
  return Buffer.concat([prefix, header, Buffer.alloc(options.dataBytes ?? 0)]);
}

/** Header text for tensors laid out back to back, as the reference writer does. */
export function headerText(
  tensors: Array<{ name: string; dtype: string; shape: number[]; bytes: number }>,
  metadata: Record<string, string> | null = { format: 'pt' },
): { text: string; dataBytes: number } {
  // Null prototype: a tensor may be named "__proto__", which a plain object would swallow.
  const entries = Object.create(null) as Record<string, unknown>;
  if (metadata) entries.__metadata__ = metadata;
  let offset = 0;
  for (const tensor of tensors) {
    entries[tensor.name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + tensor.bytes],
    };
    offset += tensor.bytes;
  }
  return { text: JSON.stringify(entries), dataBytes: offset };
}

/** One in-memory file behind the `readRange` interface, recording every byte range requested. */
export class RecordingStore implements Pick<ModelStore, 'readRange'> {
  readonly reads: Array<[start: number, end: number]> = [];
  constructor(private readonly files: Record<string, Buffer>) {}

  get bytesRequested(): number {
    return this.reads.reduce((sum, [start, end]) => sum + (end - start), 0);
  }

  get highestOffsetRequested(): number {
    return this.reads.reduce((max, [, end]) => Math.max(max, end), 0);
  }

  readRange(name: string, start: number, end: number): Promise<Buffer> {
    const data = this.files[name];
    if (!data) return Promise.reject(new Error(`no file ${name}`));
    this.reads.push([start, end]);
    return Promise.resolve(data.subarray(start, end));
  }
}
