import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectFamily, readModelDims } from '../../src/models';
import {
  SAMPLE_FAMILIES,
  SAMPLE_VARIANT_NAMES,
  SampleModelOptionsError,
  type SampleVariant,
  generateSampleModel,
} from '../../src/sample-model';
import { openModelStore } from '../../src/storage';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';
import { type Inspection, expectConsistentModel, inspect, maxTokenId, tensorShapes } from './inspect';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'sample-model-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await closeTestEnv();
});

describe('valid sample model of every family is internally consistent', () => {
  it.each(SAMPLE_FAMILIES)('%s', async (family) => {
    const location = path.join(tmp, `valid-${family}`);
    const result = await generateSampleModel({ location, family, shards: 3 });
    const inspection = await inspect(openModelStore(location));
    await expectConsistentModel(inspection);
    const config = await inspection.json('config.json');
    expect(detectFamily(config).ok && detectFamily(config)).toMatchObject({ family: { id: family } });
    expect(result).toMatchObject({ family, variant: 'valid', shards: 3 });
    expect(result.files.map((f) => f.name)).toEqual(inspection.objects.map((o) => o.name));
    for (const f of result.files)
      expect(inspection.objects.find((o) => o.name === f.name)?.size).toBe(f.bytes);
    expect(result.tensorCount).toBe(tensorShapes(inspection).size);
    const sentencePiece = ['mistral', 'mixtral', 'gemma2', 'gemma3-text'].includes(family);
    expect(inspection.names.has('tokenizer.model')).toBe(sentencePiece);
  });

  it('takes an architecture instead of a family', async () => {
    const location = path.join(tmp, 'by-architecture');
    const result = await generateSampleModel({ location, architecture: 'Phi3ForCausalLM' });
    expect(result).toMatchObject({ family: 'phi3', architecture: 'Phi3ForCausalLM' });
    await expectConsistentModel(await inspect(openModelStore(location)));
  });

  it('one shard is model.safetensors without an index', async () => {
    const location = path.join(tmp, 'single');
    await generateSampleModel({ location, shards: 1 });
    const inspection = await inspect(openModelStore(location));
    expect(inspection.names.has('model.safetensors')).toBe(true);
    expect(inspection.names.has('model.safetensors.index.json')).toBe(false);
    await expectConsistentModel(inspection);
  });

  it('a SentencePiece tokenizer.model is protobuf, not a tiktoken rank file', async () => {
    const location = path.join(tmp, 'sp');
    await generateSampleModel({ location, family: 'gemma2' });
    const model = await openModelStore(location).readSmall('tokenizer.model', 1 << 20);
    expect(model[0]).toBe(0x0a); // field 1 (pieces), length-delimited
    expect(model.toString('latin1')).toContain('<unk>');
    expect(/^[A-Za-z0-9+/=]+ \d+\n/.test(model.toString('latin1'))).toBe(false);
  });

  it('targetBytes sizes the model and spreads it over the shards', async () => {
    const location = path.join(tmp, 'sized');
    const target = 24 * 1024 * 1024;
    const result = await generateSampleModel({ location, targetBytes: target, shards: 16, fill: 'zeros' });
    const inspection = await inspect(openModelStore(location));
    await expectConsistentModel(inspection);
    expect(result.shards).toBe(16);
    expect([...inspection.headers.keys()].filter((n) => /^model-\d{5}-of-00016/.test(n))).toHaveLength(16);
    expect(result.weightBytes).toBeGreaterThanOrEqual(target);
    expect(result.weightBytes).toBeLessThan(target * 1.5);
  });

  it('is deterministic for a seed', async () => {
    const a = path.join(tmp, 'seed-a');
    const b = path.join(tmp, 'seed-b');
    await generateSampleModel({ location: a, seed: 9 });
    await generateSampleModel({ location: b, seed: 9 });
    const name = 'model-00002-of-00002.safetensors';
    const [bytesA, bytesB] = await Promise.all(
      [a, b].map((dir) => openModelStore(dir).readSmall(name, 1 << 22)),
    );
    expect(bytesA!.equals(bytesB!)).toBe(true);
  });
});

/** What each variant must have broken (and only that), checked on what was written. */
const VARIANT_CHECKS: Record<SampleVariant, (i: Inspection) => Promise<void>> = {
  valid: (i) => expectConsistentModel(i),
  'missing-tokenizer': async (i) => {
    for (const name of [
      'tokenizer.json',
      'tokenizer.model',
      'tokenizer_config.json',
      'special_tokens_map.json',
    ]) {
      expect(i.names.has(name)).toBe(false);
    }
    expect(i.names.has('config.json')).toBe(true);
  },
  'missing-shard': async (i) => {
    const index = await i.json('model.safetensors.index.json');
    const shards = new Set(Object.values(index.weight_map as Record<string, string>));
    expect(shards.has('model-00002-of-00002.safetensors')).toBe(true);
    expect(i.names.has('model-00002-of-00002.safetensors')).toBe(false);
    expect(i.names.has('model-00001-of-00002.safetensors')).toBe(true);
  },
  'index-missing-tensor': async (i) => {
    const index = await i.json('model.safetensors.index.json');
    const missing = Object.entries(index.weight_map as Record<string, string>).filter(
      ([tensor, shard]) => !i.headers.get(shard)?.header?.tensors.some((t) => t.name === tensor),
    );
    expect(missing).toHaveLength(1);
    for (const result of i.headers.values()) expect(result.problems).toEqual([]);
  },
  'truncated-shard': async (i) => {
    expect(i.headers.get('model-00001-of-00002.safetensors')?.problems).toEqual([]);
    const last = i.headers.get('model-00002-of-00002.safetensors')!;
    expect(last.problems.map((p) => p.code)).toContain('truncated');
  },
  'corrupt-header': async (i) => {
    const first = i.headers.get('model-00001-of-00002.safetensors')!;
    expect(first.header).toBeUndefined();
    expect(first.problems.map((p) => p.code)).toContain('invalid-json');
    expect(i.headers.get('model-00002-of-00002.safetensors')?.problems).toEqual([]);
  },
  'quantized-config': async (i) => {
    expect(readModelDims(await i.json('config.json')).quantization).toMatchObject({
      location: 'root',
      method: 'gptq',
    });
  },
  'unsupported-architecture': async (i) => {
    expect(detectFamily(await i.json('config.json'))).toMatchObject({
      ok: false,
      reason: 'unsupported-architecture',
    });
  },
  'shape-mismatch': async (i) => {
    const shapes = tensorShapes(i);
    const dims = readModelDims(await i.json('config.json'));
    expect(shapes.get('model.layers.0.self_attn.k_proj.weight')).toEqual([
      2 * dims.numKeyValueHeads * dims.headDim,
      dims.hiddenSize,
    ]);
    expect(shapes.get('model.layers.1.self_attn.k_proj.weight')).toEqual([
      dims.numKeyValueHeads * dims.headDim,
      dims.hiddenSize,
    ]);
    for (const result of i.headers.values()) expect(result.problems).toEqual([]);
  },
  'nested-folder': async (i) => {
    expect([...i.names].every((n) => n.startsWith('checkpoint-100/'))).toBe(true);
    await expectConsistentModel(i, 'checkpoint-100/');
  },
  'peft-adapter': async (i) => {
    expect(i.names.has('config.json')).toBe(false);
    expect((await i.json('adapter_config.json')).peft_type).toBe('LORA');
    const adapter = i.headers.get('adapter_model.safetensors')!;
    expect(adapter.problems).toEqual([]);
    const names = adapter.header!.tensors.map((t) => t.name);
    expect(names.every((n) => n.startsWith('base_model.model.') && /lora_[AB]/.test(n))).toBe(true);
    expect([...i.names].some((n) => /^model.*\.safetensors$/.test(n))).toBe(false);
  },
  'bin-and-safetensors': async (i) => {
    expect(i.names.has('pytorch_model.bin')).toBe(true);
    await expectConsistentModel(i);
  },
  'stray-consolidated': async (i) => {
    expect(i.headers.get('consolidated.safetensors')?.problems).toEqual([]);
    expect(i.names.has('params.json')).toBe(true);
    const index = await i.json('model.safetensors.index.json');
    expect(Object.values(index.weight_map as Record<string, string>)).not.toContain(
      'consolidated.safetensors',
    );
    await expectConsistentModel(i);
  },
  'no-chat-template': async (i) => {
    expect((await i.json('tokenizer_config.json')).chat_template).toBeUndefined();
    expect([...i.names].some((n) => n.includes('chat_template'))).toBe(false);
  },
  'rope-parameters': async (i) => {
    const config = await i.json('config.json');
    expect(config.rope_theta).toBeUndefined();
    expect(config.torch_dtype).toBeUndefined();
    expect(readModelDims(config)).toMatchObject({
      hasTopLevelRopeTheta: false,
      ropeTheta: 500000,
      dtype: 'BF16',
    });
    await expectConsistentModel(i);
  },
  'missing-lm-head': async (i) => {
    const config = await i.json('config.json');
    expect(config.tie_word_embeddings).toBe(false);
    expect(tensorShapes(i).has('lm_head.weight')).toBe(false);
    const index = await i.json('model.safetensors.index.json');
    expect(index.weight_map).not.toHaveProperty('lm_head.weight');
  },
  'vocab-mismatch': async (i) => {
    const dims = readModelDims(await i.json('config.json'));
    expect(tensorShapes(i).get('model.embed_tokens.weight')).toEqual([dims.vocabSize + 64, dims.hiddenSize]);
    expect(tensorShapes(i).get('lm_head.weight')).toEqual([dims.vocabSize + 64, dims.hiddenSize]);
  },
  'tokenizer-exceeds-vocab': async (i) => {
    const dims = readModelDims(await i.json('config.json'));
    expect(maxTokenId(await i.json('tokenizer.json'))).toBeGreaterThanOrEqual(dims.vocabSize);
    expect(tensorShapes(i).get('model.embed_tokens.weight')).toEqual([dims.vocabSize, dims.hiddenSize]);
  },
};

describe('every variant, in a local directory', () => {
  it.each(SAMPLE_VARIANT_NAMES)('%s', async (variant) => {
    const location = path.join(tmp, `variant-${variant}`);
    const result = await generateSampleModel({ location, variant });
    expect(result.variant).toBe(variant);
    expect(result.expectedFinding.length).toBeGreaterThan(0);
    await VARIANT_CHECKS[variant](await inspect(openModelStore(location)));
  });
});

describe('every variant, in fake-gcs-server through the real storage client', () => {
  let bucket: string;
  beforeAll(async () => {
    bucket = await createTestBucket((await getTestEnv()).storage, 'sample-model');
  });

  it.each(SAMPLE_VARIANT_NAMES)('%s', async (variant) => {
    const { storage } = await getTestEnv();
    const location = `gs://${bucket}/${variant}/`;
    const result = await generateSampleModel({ location, variant }, { storage });
    expect(result.uri).toBe(location);
    if (variant === 'nested-folder') expect(result.modelUri).toBe(`${location}checkpoint-100/`);
    const inspection = await inspect(openModelStore(location, { storage }));
    expect(inspection.objects.every((o) => o.generation !== undefined)).toBe(true);
    await VARIANT_CHECKS[variant](inspection);
  });
});

describe('bad options are refused before anything is written', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['unknown family', { family: 'falcon' }, /family/],
    ['unknown variant', { variant: 'broken' }, /variant/],
    ['hidden size not a multiple of 64', { hiddenSize: 100 }, /hiddenSize: must be a multiple of 64/],
    ['layers and targetBytes together', { layers: 4, targetBytes: 1e6 }, /either layers or targetBytes/],
    ['more shards than tensors', { shards: 500 }, /500 shards cannot each hold a tensor/],
    [
      'a target that would need too many layers',
      { targetBytes: 2 ** 40, hiddenSize: 64 },
      /larger hiddenSize/,
    ],
    ['unknown option', { colour: 'red' }, /colour/],
    [
      'an architecture the generator does not offer',
      { architecture: 'FalconForCausalLM' },
      /Qwen3ForCausalLM/,
    ],
    [
      'an architecture of another family',
      { family: 'llama', architecture: 'Qwen3ForCausalLM' },
      /not the llama/,
    ],
  ];
  it.each(cases)('%s', async (_name, extra, message) => {
    const location = path.join(tmp, `refused-${Object.keys(extra).join('-')}`);
    const error = await generateSampleModel({ location, ...extra } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SampleModelOptionsError);
    expect((error as Error).message).toMatch(message);
    await expect(stat(location)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
