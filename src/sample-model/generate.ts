/**
 * Writes a tiny but valid Hugging Face model folder (or one classic broken variant of it) to a
 * local directory or a gs:// prefix: config.json of a real architecture, safetensors shards whose
 * tensors have exactly the shapes `expectedTensors` implies, the index, tokenizer files and
 * generation config. Shards are streamed, so multi-GiB benchmark models never sit in memory.
 */
import type { Storage } from '@google-cloud/storage';
import { z } from 'zod';
import {
  type ExpectedTensor,
  expectedTensors,
  familyForArchitecture,
  getFamily,
  readModelDims,
} from '../models';
import { type Dtype } from '../safetensors/dtypes';
import {
  type TensorFill,
  type TensorSpec,
  planSafetensors,
  safetensorsChunks,
  serializeSafetensors,
  tensorByteLength,
} from '../safetensors/writer';
import { openModelWriter } from '../storage';
import {
  SAMPLE_FAMILIES,
  SAMPLE_TOKENIZER,
  type SampleDims,
  type SampleFamily,
  headLayout,
  sampleConfig,
} from './configs';
import { type SampleTokenizer, buildSampleTokenizer } from './tokenizer';
import { SAMPLE_VARIANTS, SAMPLE_VARIANT_NAMES, type SampleVariant } from './variants';

const MiB = 1024 * 1024;
const MAX_LAYERS = 1024;
const WRITE_CONCURRENCY = 4;
const NESTED_FOLDER = 'checkpoint-100/';

export const sampleModelOptionsSchema = z
  .object({
    /** Local directory or gs://bucket/prefix. */
    location: z.string().trim().min(1, 'give a local directory or a gs://bucket/prefix'),
    family: z.enum(SAMPLE_FAMILIES).optional(),
    /** Alternative to `family`: the `architectures[0]` to imitate, e.g. Qwen3ForCausalLM. */
    architecture: z.string().max(100).optional(),
    variant: z.enum(SAMPLE_VARIANT_NAMES as [SampleVariant, ...SampleVariant[]]).default('valid'),
    /** Safetensors files; 1 writes model.safetensors without an index. */
    shards: z.number().int().min(1).max(999).default(2),
    /** Decoder layers; default 2, or as many as `targetBytes` needs. */
    layers: z.number().int().min(1).max(MAX_LAYERS).optional(),
    /** Multiple of 64; default 64, or larger for large `targetBytes`. */
    hiddenSize: z
      .number()
      .int()
      .min(64)
      .max(16384)
      .refine((h) => h % 64 === 0, 'must be a multiple of 64')
      .optional(),
    /** Approximate total tensor bytes; layers are added until it is reached. */
    targetBytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 40)
      .optional(),
    /** Routed experts of MoE families. */
    experts: z.number().int().min(2).max(256).default(4),
    dtype: z.enum(['BF16', 'F16', 'F32']).default('BF16'),
    /** Tensor bytes: a deterministic pseudo-random pattern, or zeros. Both stream at disk speed. */
    fill: z.enum(['pattern', 'zeros']).default('pattern'),
    seed: z.number().int().min(0).max(0xffffffff).default(1),
  })
  .strict()
  .refine((o) => o.layers === undefined || o.targetBytes === undefined, {
    message: 'give either layers or targetBytes, not both',
    path: ['layers'],
  })
  .transform((o, ctx) => {
    const { architecture, family, ...rest } = o;
    if (architecture === undefined) return { ...rest, family: family ?? ('llama' as SampleFamily) };
    const fromArchitecture = familyForArchitecture(architecture)?.id;
    const sample = SAMPLE_FAMILIES.find((f) => f === fromArchitecture);
    if (!sample) {
      const offered = SAMPLE_FAMILIES.map((f) => getFamily(f).architectures[0]).join(', ');
      ctx.addIssue({
        code: 'custom',
        path: ['architecture'],
        message: `"${architecture}" is not one of ${offered}`,
      });
      return z.NEVER;
    }
    if (family !== undefined && family !== sample) {
      ctx.addIssue({
        code: 'custom',
        path: ['architecture'],
        message: `${architecture} is not the ${family} family`,
      });
      return z.NEVER;
    }
    return { ...rest, family: sample };
  });

export type SampleModelOptions = z.input<typeof sampleModelOptionsSchema>;
type ParsedOptions = z.output<typeof sampleModelOptionsSchema>;

export class SampleModelOptionsError extends Error {
  override readonly name = 'SampleModelOptionsError';
}

export interface WrittenFile {
  /** Path relative to the location given. */
  name: string;
  bytes: number;
}

export interface SampleModelResult {
  /** The location written to. */
  uri: string;
  /** Where the model folder itself is (one level down for `nested-folder`). */
  modelUri: string;
  family: SampleFamily;
  architecture: string;
  variant: SampleVariant;
  /** What a correct validator reports for this variant. */
  expectedFinding: string;
  files: WrittenFile[];
  /** Bytes of every file written. */
  totalBytes: number;
  /** Tensors in the model's safetensors shards. */
  tensorCount: number;
  /** Tensor data bytes in the shards (the index's `metadata.total_size` for valid models). */
  weightBytes: number;
  shards: number;
  dims: SampleDims;
  config: Record<string, unknown>;
}

export function parseSampleModelOptions(options: unknown): ParsedOptions {
  const parsed = sampleModelOptionsSchema.safeParse(options);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`);
  throw new SampleModelOptionsError(`invalid sample-model options: ${problems.join('; ')}`);
}

interface Shard {
  name: string;
  tensors: TensorSpec[];
}

/** Generates the folder; see `SAMPLE_VARIANTS` for what each variant breaks. */
export async function generateSampleModel(
  options: SampleModelOptions,
  deps: { storage?: Storage } = {},
): Promise<SampleModelResult> {
  const o = parseSampleModelOptions(options);
  const variant = o.variant;
  // Variants about the index need one.
  const shardCount =
    variant === 'missing-shard' || variant === 'index-missing-tensor' ? Math.max(o.shards, 2) : o.shards;
  const tokenizer = buildSampleTokenizer(SAMPLE_TOKENIZER[o.family], {
    chatTemplate: variant !== 'no-chat-template',
    modelMaxLength: 4096,
  });
  const { dims, config } = sizeModel(o, tokenizer);
  const family = getFamily(o.family);
  const modelDims = readModelDims(config, family);
  const expected = expectedTensors(family, modelDims).tensors.filter((t) => t.required);
  const tensors = applyTensorVariant(variant, expected, modelDims.vocabSize).map((t): TensorSpec => ({
    name: t.name,
    dtype: t.dtype ?? o.dtype,
    shape: t.shape,
  }));
  if (shardCount > tensors.length) {
    throw new SampleModelOptionsError(
      `shards: ${shardCount} shards cannot each hold a tensor of a model with ${tensors.length} tensors; ` +
        'use fewer shards or more layers',
    );
  }
  applyConfigVariant(variant, config);

  const writer = await openModelWriter(o.location, deps);
  const prefix = variant === 'nested-folder' ? NESTED_FOLDER : '';
  const files: WrittenFile[] = [];
  const put = async (name: string, data: Buffer | AsyncIterable<Buffer>, bytes: number) => {
    await writer.write(prefix + name, data);
    files.push({ name: prefix + name, bytes });
  };
  const putJson = (name: string, value: unknown) => {
    const data = Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
    return put(name, data, data.length);
  };

  const result = (tensorCount: number, weightBytes: number, shards: number): SampleModelResult => ({
    uri: writer.uri,
    modelUri: prefix ? `${writer.uri.replace(/\/?$/, '/')}${prefix}` : writer.uri,
    family: o.family,
    architecture: (config.architectures as string[])[0]!,
    variant,
    expectedFinding: SAMPLE_VARIANTS[variant].expectedFinding,
    files: files.sort((a, b) => a.name.localeCompare(b.name)),
    totalBytes: files.reduce((sum, f) => sum + f.bytes, 0),
    tensorCount,
    weightBytes,
    shards,
    dims,
    config,
  });

  if (variant === 'peft-adapter') {
    const adapter = await writePeftAdapter(o, modelDims, put, putJson);
    await writeTokenizer(tokenizer, put);
    return result(adapter.tensorCount, adapter.weightBytes, 1);
  }

  await putJson('config.json', config);
  await putJson('generation_config.json', {
    _from_model_config: true,
    bos_token_id: tokenizer.bosTokenId,
    eos_token_id: [tokenizer.eosTokenId, tokenizer.endOfTurnTokenId],
    pad_token_id: tokenizer.padTokenId,
    transformers_version: config.transformers_version ?? '5.0.0',
  });
  if (variant !== 'missing-tokenizer') await writeTokenizer(tokenizer, put);

  const shards = splitIntoShards(tensors, shardCount);
  const weightMap: Record<string, string> = {};
  for (const shard of shards) for (const t of shard.tensors) weightMap[t.name] = shard.name;
  const totalSize = tensors.reduce((sum, t) => sum + tensorByteLength(t.shape, t.dtype), 0);

  // A stale index still names the tensor its shard lost.
  if (variant === 'index-missing-tensor') dropOneTensor(shards);
  let tensorCount = 0;
  let weightBytes = 0;
  const jobs = shards.map((shard, index) => async () => {
    const isLast = index === shards.length - 1;
    if (variant === 'missing-shard' && isLast) return;
    const layout = planSafetensors(shard.tensors);
    const fill: TensorFill =
      o.fill === 'zeros' ? { kind: 'zeros' } : { kind: 'pattern', seed: o.seed + index };
    tensorCount += shard.tensors.length;
    weightBytes += layout.dataBytes;
    if (variant === 'corrupt-header' && index === 0) {
      const header = Buffer.from(layout.header);
      header.write('<!DOCTYPE html>', 8, 'latin1'); // what a misdirected HTTP download looks like
      await put(
        shard.name,
        withHeader(header, safetensorsChunks(shard.tensors, layout, fill)),
        layout.fileBytes,
      );
      return;
    }
    if (variant === 'truncated-shard' && isLast) {
      const keep = 8 + layout.headerLength + Math.floor(layout.dataBytes / 2);
      await put(shard.name, truncated(safetensorsChunks(shard.tensors, layout, fill), keep), keep);
      return;
    }
    await put(shard.name, safetensorsChunks(shard.tensors, layout, fill), layout.fileBytes);
  });
  await runPool(jobs, WRITE_CONCURRENCY);

  if (shards.length > 1) {
    await putJson('model.safetensors.index.json', {
      metadata: { total_size: totalSize },
      weight_map: Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => a.localeCompare(b))),
    });
  }
  if (variant === 'bin-and-safetensors') {
    // The first bytes of a torch.save zip archive; loaders that pick safetensors never open it.
    const bin = Buffer.concat([Buffer.from('PK\u0003\u0004', 'latin1'), Buffer.alloc(60)]);
    await put('pytorch_model.bin', bin, bin.length);
  }
  if (variant === 'stray-consolidated') await writeConsolidated(dims, o, put, putJson);
  return result(tensorCount, weightBytes, shards.length);
}

/** Picks dimensions: tiny by default, or enough layers of a wider model to reach `targetBytes`. */
function sizeModel(
  o: ParsedOptions,
  tokenizer: SampleTokenizer,
): { dims: SampleDims; config: Record<string, unknown> } {
  const vocabSize =
    o.variant === 'tokenizer-exceeds-vocab' ? tokenizer.size - 16 : Math.ceil(tokenizer.size / 64) * 64;
  const target = o.targetBytes;
  const hiddenSize =
    o.hiddenSize ?? (target === undefined || target < 16 * MiB ? 64 : target < 256 * MiB ? 512 : 2048);
  const intermediateSize = Math.ceil((hiddenSize * (hiddenSize >= 512 ? 2.75 : 2)) / 64) * 64;
  const base = { hiddenSize, intermediateSize, vocabSize, numExperts: o.experts };
  const tokens = { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.padTokenId };
  const build = (numLayers: number) => {
    const dims = { ...base, numLayers };
    return { dims, config: sampleConfig(o.family, dims, o.dtype, tokens) };
  };
  if (target === undefined) return build(o.layers ?? 2);
  const bytes = (numLayers: number) => {
    const { config } = build(numLayers);
    const tensors = expectedTensors(o.family, readModelDims(config)).tensors;
    return tensors
      .filter((t) => t.required)
      .reduce((sum, t) => sum + tensorByteLength(t.shape, t.dtype ?? o.dtype), 0);
  };
  const one = bytes(1);
  const perLayer = bytes(2) - one;
  const layers = Math.max(1, Math.ceil((target - (one - perLayer)) / perLayer));
  if (layers > MAX_LAYERS) {
    throw new SampleModelOptionsError(
      `targetBytes: ${target} bytes needs ${layers} layers of hidden size ${hiddenSize} (at most ${MAX_LAYERS}); ` +
        'give a larger hiddenSize',
    );
  }
  return build(layers);
}

function applyTensorVariant(
  variant: SampleVariant,
  tensors: ExpectedTensor[],
  vocabSize: number,
): ExpectedTensor[] {
  switch (variant) {
    case 'shape-mismatch': {
      const index = tensors.findIndex((t) => /layers\.0\.self_attn\.(k_proj|qkv_proj)\.weight$/.test(t.name));
      const t = tensors[index]!;
      return tensors.map((x, i) =>
        i === index ? { ...t, shape: [t.shape[0]! * 2, ...t.shape.slice(1)] } : x,
      );
    }
    case 'vocab-mismatch':
      return tensors.map((t) =>
        /(^|\.)embed_tokens\.weight$|(^|\.)lm_head\.weight$/.test(t.name) && t.shape[0] === vocabSize
          ? { ...t, shape: [vocabSize + 64, ...t.shape.slice(1)] }
          : t,
      );
    case 'missing-lm-head':
      return tensors.filter((t) => !/(^|\.)lm_head\.weight$/.test(t.name));
    default:
      return tensors;
  }
}

function applyConfigVariant(variant: SampleVariant, config: Record<string, unknown>): void {
  switch (variant) {
    case 'quantized-config':
      config.quantization_config = {
        bits: 4,
        damp_percent: 0.01,
        desc_act: false,
        group_size: 128,
        quant_method: 'gptq',
        sym: true,
        true_sequential: true,
      };
      return;
    case 'unsupported-architecture':
      config.architectures = ['FalconForCausalLM'];
      config.model_type = 'falcon';
      return;
    case 'missing-lm-head':
      // Tied families (Gemma) need an explicit false to expect lm_head at all.
      config.tie_word_embeddings = false;
      return;
    case 'rope-parameters': {
      const ropeScaling = (config.rope_scaling as Record<string, unknown> | null | undefined) ?? {};
      config.rope_parameters = { rope_type: 'default', ...ropeScaling, rope_theta: config.rope_theta };
      config.dtype = config.torch_dtype;
      delete config.rope_theta;
      delete config.rope_scaling;
      delete config.torch_dtype;
      config.transformers_version = '5.0.0';
      return;
    }
    default:
      return;
  }
}

/** Greedy split in model order, balancing bytes and leaving no shard empty. */
function splitIntoShards(tensors: readonly TensorSpec[], count: number): Shard[] {
  const names = (i: number) =>
    count === 1
      ? 'model.safetensors'
      : `model-${String(i + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
  const shards: Shard[] = Array.from({ length: count }, (_, i) => ({ name: names(i), tensors: [] }));
  const total = tensors.reduce((sum, t) => sum + tensorByteLength(t.shape, t.dtype), 0);
  let current = 0;
  let cumulative = 0;
  tensors.forEach((t, i) => {
    const remainingTensors = tensors.length - i;
    const remainingShards = count - 1 - current;
    const full = cumulative >= ((current + 1) * total) / count;
    if (
      shards[current]!.tensors.length > 0 &&
      remainingShards > 0 &&
      (full || remainingTensors <= remainingShards)
    ) {
      current++;
    }
    shards[current]!.tensors.push(t);
    cumulative += tensorByteLength(t.shape, t.dtype);
  });
  return shards;
}

/** Removes the last tensor of the first shard that has two or more (its index entry stays). */
function dropOneTensor(shards: Shard[]): void {
  (shards.find((s) => s.tensors.length > 1) ?? shards[0]!).tensors.pop();
}

async function writeTokenizer(
  tokenizer: SampleTokenizer,
  put: (name: string, data: Buffer, bytes: number) => Promise<void>,
): Promise<void> {
  for (const [name, data] of Object.entries(tokenizer.files)) await put(name, data, data.length);
}

async function writePeftAdapter(
  o: ParsedOptions,
  dims: ReturnType<typeof readModelDims>,
  put: (name: string, data: Buffer, bytes: number) => Promise<void>,
  putJson: (name: string, value: unknown) => Promise<void>,
): Promise<{ tensorCount: number; weightBytes: number }> {
  const rank = 8;
  const tensors: TensorSpec[] = [];
  for (let i = 0; i < dims.numLayers; i++) {
    for (const [module, out] of [
      ['q_proj', dims.numAttentionHeads * dims.headDim],
      ['v_proj', dims.numKeyValueHeads * dims.headDim],
    ] as const) {
      const base = `base_model.model.model.layers.${i}.self_attn.${module}`;
      tensors.push({ name: `${base}.lora_A.weight`, dtype: o.dtype, shape: [rank, dims.hiddenSize] });
      tensors.push({ name: `${base}.lora_B.weight`, dtype: o.dtype, shape: [out, rank] });
    }
  }
  await putJson('adapter_config.json', {
    // Where the adapter was trained from; a real one names the base model's hub id or path.
    base_model_name_or_path: '../base-model',
    bias: 'none',
    inference_mode: true,
    lora_alpha: 16,
    lora_dropout: 0.05,
    peft_type: 'LORA',
    r: rank,
    target_modules: ['q_proj', 'v_proj'],
    task_type: 'CAUSAL_LM',
  });
  const data = await serializeSafetensors(tensors, { fill: { kind: 'pattern', seed: o.seed } });
  await put('adapter_model.safetensors', data, data.length);
  return { tensorCount: tensors.length, weightBytes: planSafetensors(tensors).dataBytes };
}

/** Mistral-native files as the Mistral/Nemo hub repos ship them next to the HF shards. */
async function writeConsolidated(
  dims: SampleDims,
  o: ParsedOptions,
  put: (name: string, data: Buffer, bytes: number) => Promise<void>,
  putJson: (name: string, value: unknown) => Promise<void>,
): Promise<void> {
  const { hiddenSize: hidden, vocabSize } = dims;
  const { headDim, heads, kvHeads } = headLayout(hidden);
  const dtype: Dtype = o.dtype;
  const data = await serializeSafetensors(
    [
      { name: 'tok_embeddings.weight', dtype, shape: [vocabSize, hidden] },
      { name: 'layers.0.attention.wq.weight', dtype, shape: [heads * headDim, hidden] },
      { name: 'norm.weight', dtype, shape: [hidden] },
      { name: 'output.weight', dtype, shape: [vocabSize, hidden] },
    ],
    { fill: { kind: 'pattern', seed: o.seed } },
  );
  await put('consolidated.safetensors', data, data.length);
  await putJson('params.json', {
    dim: hidden,
    n_layers: 1,
    head_dim: headDim,
    hidden_dim: hidden * 2,
    n_heads: heads,
    n_kv_heads: kvHeads,
    norm_eps: 1e-5,
    vocab_size: vocabSize,
    rope_theta: 1000000.0,
  });
}

async function* withHeader(header: Buffer, chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let first = true;
  for await (const chunk of chunks) {
    yield first ? header : chunk;
    first = false;
  }
}

async function* truncated(chunks: AsyncIterable<Buffer>, limit: number): AsyncGenerator<Buffer> {
  let remaining = limit;
  for await (const chunk of chunks) {
    if (remaining <= 0) return;
    const part = chunk.length <= remaining ? chunk : chunk.subarray(0, remaining);
    remaining -= part.length;
    yield part;
  }
}

async function runPool(jobs: ReadonlyArray<() => Promise<void>>, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
}
