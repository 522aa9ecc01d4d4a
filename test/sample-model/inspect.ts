/** Reads a generated folder back through the production ModelStore and header reader. */
import { expect } from 'vitest';
import { detectFamily, expectedTensors, readModelDims } from '../../src/models';
import { type HeaderReadResult, readSafetensorsHeader } from '../../src/safetensors/header';
import { type ModelStore, type StoredObject } from '../../src/storage';

export interface Inspection {
  objects: StoredObject[];
  names: Set<string>;
  json: (name: string) => Promise<Record<string, unknown>>;
  headers: Map<string, HeaderReadResult>;
}

export async function inspect(store: ModelStore): Promise<Inspection> {
  const objects = await store.list();
  const headers = new Map<string, HeaderReadResult>();
  for (const object of objects.filter((o) => o.name.endsWith('.safetensors'))) {
    headers.set(object.name, await readSafetensorsHeader(store, object));
  }
  return {
    objects,
    names: new Set(objects.map((o) => o.name)),
    json: async (name) =>
      JSON.parse((await store.readSmall(name, 1 << 20)).toString('utf8')) as Record<string, unknown>,
    headers,
  };
}

export function tensorShapes(inspection: Inspection, prefix = ''): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const [name, result] of inspection.headers) {
    if (!name.startsWith(`${prefix}model`)) continue;
    for (const t of result.header?.tensors ?? []) shapes.set(t.name, t.shape);
  }
  return shapes;
}

/** Highest id any token of tokenizer.json has (vocabulary and added tokens). */
export function maxTokenId(tokenizer: Record<string, unknown>): number {
  const model = tokenizer.model as { vocab: Record<string, number> };
  const added = tokenizer.added_tokens as Array<{ id: number }>;
  return Math.max(...Object.values(model.vocab), ...added.map((t) => t.id));
}

/**
 * Everything a valid folder promises: every header parses without problems, the index names exactly
 * the tensors of the shards it points to and its total_size is their data, the tensors are exactly
 * `expectedTensors` of config.json, and the tokenizer fits vocab_size.
 */
export async function expectConsistentModel(inspection: Inspection, prefix = ''): Promise<void> {
  const config = await inspection.json(`${prefix}config.json`);
  const detection = detectFamily(config);
  expect(detection.ok).toBe(true);
  if (!detection.ok) return;
  const dims = readModelDims(config);

  const shards = [...inspection.headers].filter(([name]) => name.startsWith(`${prefix}model`));
  expect(shards.length).toBeGreaterThan(0);
  let dataBytes = 0;
  for (const [name, result] of shards) {
    expect(result.problems, name).toEqual([]);
    const object = inspection.objects.find((o) => o.name === name)!;
    expect(8 + result.header!.headerLength + result.header!.dataBytes).toBe(object.size);
    expect(result.header!.metadata).toEqual({ format: 'pt' });
    dataBytes += result.header!.dataBytes;
  }

  if (inspection.names.has(`${prefix}model.safetensors.index.json`)) {
    const index = await inspection.json(`${prefix}model.safetensors.index.json`);
    expect((index.metadata as { total_size: number }).total_size).toBe(dataBytes);
    const fromHeaders = Object.fromEntries(
      shards.flatMap(([name, r]) => r.header!.tensors.map((t) => [t.name, name.slice(prefix.length)])),
    );
    expect(index.weight_map).toEqual(fromHeaders);
  } else {
    expect(shards.map(([name]) => name)).toEqual([`${prefix}model.safetensors`]);
  }

  const expected = expectedTensors(detection.family, dims).tensors.filter((t) => t.required);
  const actual = tensorShapes(inspection, prefix);
  expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected.map((t) => [t.name, [...t.shape]])));

  const tokenizer = await inspection.json(`${prefix}tokenizer.json`);
  expect(maxTokenId(tokenizer)).toBeLessThan(dims.vocabSize);
  const tokenizerConfig = await inspection.json(`${prefix}tokenizer_config.json`);
  expect(typeof tokenizerConfig.chat_template).toBe('string');
  const generation = await inspection.json(`${prefix}generation_config.json`);
  for (const id of generation.eos_token_id as number[]) expect(id).toBeLessThan(dims.vocabSize);
}
