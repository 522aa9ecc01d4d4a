/**
 * The parts of a Hugging Face `config.json` we read, validated with zod (everything else passes
 * through), and their normalisation into `ModelDims` following hf-weights.md §3.2: text parameters
 * of multimodal roots come from `text_config`, missing fields take the transformers class default
 * (and are listed in `defaulted`), head_dim is never derived when given.
 */
import { z } from 'zod';
import { type Dtype } from '../safetensors/dtypes';
import { type FamilyId, type ModelFamily, detectFamily } from './families';

export class ModelConfigError extends Error {
  override readonly name = 'ModelConfigError';
  constructor(
    message: string,
    /** Each problem as `field: what is wrong`. */
    readonly issues: readonly string[] = [],
  ) {
    super(message);
  }
}

const MAX_HIDDEN = 1 << 18;
const MAX_LAYERS = 1024;
const MAX_HEADS = 1 << 14;
const MAX_VOCAB = 1 << 23;
const MAX_INTERMEDIATE = 1 << 21;
const MAX_EXPERTS = 1 << 14;
const MAX_POSITIONS = 1 << 30;

const positive = (max: number) => z.number().int().min(1).max(max);
const nonNegative = (max: number) => z.number().int().min(0).max(max);

/** Fields that may sit on the root or, for multimodal roots, on `text_config`. */
const textFieldsSchema = z.looseObject({
  model_type: z.string().max(100).optional(),
  hidden_size: positive(MAX_HIDDEN).optional(),
  num_hidden_layers: positive(MAX_LAYERS).optional(),
  num_attention_heads: positive(MAX_HEADS).optional(),
  num_key_value_heads: positive(MAX_HEADS).nullish(),
  head_dim: positive(MAX_HIDDEN).nullish(),
  intermediate_size: positive(MAX_INTERMEDIATE).optional(),
  intermediate_size_mlp: positive(MAX_INTERMEDIATE).optional(),
  vocab_size: positive(MAX_VOCAB).optional(),
  max_position_embeddings: positive(MAX_POSITIONS).nullish(),
  tie_word_embeddings: z.boolean().nullish(),
  attention_bias: z.boolean().nullish(),
  mlp_bias: z.boolean().nullish(),
  // MoE
  num_local_experts: nonNegative(MAX_EXPERTS).nullish(),
  num_experts: nonNegative(MAX_EXPERTS).nullish(),
  n_routed_experts: nonNegative(MAX_EXPERTS).nullish(),
  n_shared_experts: nonNegative(MAX_EXPERTS).nullish(),
  num_experts_per_tok: positive(MAX_EXPERTS).nullish(),
  moe_intermediate_size: positive(MAX_INTERMEDIATE).nullish(),
  shared_expert_intermediate_size: nonNegative(MAX_INTERMEDIATE).nullish(),
  interleave_moe_layer_step: positive(MAX_LAYERS).nullish(),
  moe_layers: z.array(nonNegative(MAX_LAYERS)).max(MAX_LAYERS).nullish(),
  first_k_dense_replace: nonNegative(MAX_LAYERS).nullish(),
  moe_layer_freq: positive(MAX_LAYERS).nullish(),
  decoder_sparse_step: positive(MAX_LAYERS).nullish(),
  mlp_only_layers: z.array(nonNegative(MAX_LAYERS)).max(MAX_LAYERS).nullish(),
  num_nextn_predict_layers: nonNegative(16).nullish(),
  // MLA (DeepSeek)
  kv_lora_rank: positive(MAX_HIDDEN).nullish(),
  q_lora_rank: positive(MAX_HIDDEN).nullish(),
  qk_rope_head_dim: positive(MAX_HIDDEN).nullish(),
  qk_nope_head_dim: nonNegative(MAX_HIDDEN).nullish(),
  v_head_dim: positive(MAX_HIDDEN).nullish(),
  // Linear attention (Qwen3-Next)
  linear_num_key_heads: positive(MAX_HEADS).nullish(),
  linear_num_value_heads: positive(MAX_HEADS).nullish(),
  linear_key_head_dim: positive(MAX_HIDDEN).nullish(),
  linear_value_head_dim: positive(MAX_HIDDEN).nullish(),
  linear_conv_kernel_dim: positive(64).nullish(),
  full_attention_interval: positive(MAX_LAYERS).nullish(),
  // Attention windows
  // Some exports write 0 for "no window".
  sliding_window: nonNegative(MAX_POSITIONS).nullish(),
  use_sliding_window: z.boolean().nullish(),
  max_window_layers: nonNegative(MAX_LAYERS).nullish(),
  sliding_window_pattern: positive(MAX_LAYERS).nullish(),
  layer_types: z.array(z.string().max(64)).max(MAX_LAYERS).nullish(),
  attention_chunk_size: positive(MAX_POSITIONS).nullish(),
  no_rope_layers: z.array(z.number().int().min(0).max(1)).max(MAX_LAYERS).nullish(),
  no_rope_layer_interval: positive(MAX_LAYERS).nullish(),
  // RoPE
  rope_theta: z.number().positive().finite().nullish(),
  rope_scaling: z.record(z.string(), z.unknown()).nullish(),
  rope_parameters: z.record(z.string(), z.unknown()).nullish(),
  // Precision
  torch_dtype: z.string().max(64).nullish(),
  dtype: z.string().max(64).nullish(),
  quantization_config: z.record(z.string(), z.unknown()).nullish(),
  compression_config: z.record(z.string(), z.unknown()).nullish(),
});

export const modelConfigSchema = textFieldsSchema.extend({
  architectures: z.array(z.string().max(200)).max(16).nullish(),
  model_type: z.string().max(100).optional(),
  text_config: textFieldsSchema.nullish(),
  transformers_version: z.string().max(64).nullish(),
});

export type ModelConfig = z.infer<typeof modelConfigSchema>;
type TextFields = z.infer<typeof textFieldsSchema>;

export type LayerType = 'full_attention' | 'sliding_attention' | 'chunked_attention' | 'linear_attention';
const LAYER_TYPES: readonly LayerType[] = [
  'full_attention',
  'sliding_attention',
  'chunked_attention',
  'linear_attention',
];

export interface MoeDims {
  /** Routed experts. */
  numExperts: number;
  expertsPerToken: number;
  /** Width of one routed expert's MLP. */
  expertIntermediateSize: number;
  /** Always-on shared experts (DeepSeek n_shared_experts; 1 for Llama-4 and Qwen3-Next). */
  numSharedExperts: number;
  /** Width of the shared expert MLP (all shared experts fused, as stored). 0 when none. */
  sharedExpertIntermediateSize: number;
  /** Indices of the layers whose MLP is a mixture of experts; the others are dense. */
  moeLayers: readonly number[];
}

export interface MlaDims {
  kvLoraRank: number;
  /** null: queries are projected directly (no low-rank q). */
  qLoraRank: number | null;
  qkRopeHeadDim: number;
  qkNopeHeadDim: number;
  vHeadDim: number;
}

export interface LinearAttentionDims {
  numKeyHeads: number;
  numValueHeads: number;
  keyHeadDim: number;
  valueHeadDim: number;
  convKernelSize: number;
}

export interface QuantizationInfo {
  /** Where vLLM would find it. */
  location: 'root' | 'text_config' | 'compression_config';
  /** `quant_method`, lower-cased, when given. */
  method?: string;
  config: Record<string, unknown>;
}

/** Normalised dimensions of the text model a config describes. */
export interface ModelDims {
  family?: FamilyId;
  /** `model_type` of the text model (`text_config.model_type` for multimodal roots). */
  modelType?: string;
  hiddenSize: number;
  numLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  /** Dense MLP width (Llama-4: `intermediate_size_mlp`). */
  intermediateSize: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  maxPositionEmbeddings?: number;
  /** Raw `torch_dtype` / `dtype` value. */
  dtypeName?: string;
  /** Its safetensors equivalent, when it names a float type. */
  dtype?: Dtype;
  /** One entry per layer. */
  layerTypes: readonly LayerType[];
  /** Tokens a sliding/chunked layer attends to. */
  slidingWindow?: number;
  moe?: MoeDims;
  mla?: MlaDims;
  linearAttention?: LinearAttentionDims;
  /** Extra multi-token-prediction layers stored after the last decoder layer (DeepSeek). */
  numMtpLayers: number;
  ropeTheta?: number;
  ropeScaling?: Record<string, unknown>;
  /** Present when the config uses the transformers-v5 `rope_parameters` form. */
  ropeParameters?: Record<string, unknown>;
  /** Whether `rope_theta` appears at the top level of the text config (older stacks need it). */
  hasTopLevelRopeTheta: boolean;
  quantization?: QuantizationInfo;
  transformersVersion?: string;
  /** Fields absent from config.json that took the transformers class default. */
  defaulted: readonly string[];
}

/** transformers class defaults (configuration_*.py) for fields real configs sometimes omit. */
// prettier-ignore
const CLASS_DEFAULTS: Record<FamilyId, Partial<TextFields>> = {
  llama: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, max_position_embeddings: 2048, tie_word_embeddings: false },
  mistral: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 131072, tie_word_embeddings: false, sliding_window: 4096 },
  mixtral: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 131072, tie_word_embeddings: false, num_local_experts: 8, num_experts_per_tok: 2 },
  qwen2: { vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 32768, tie_word_embeddings: false },
  qwen3: { vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, head_dim: 128, max_position_embeddings: 32768, tie_word_embeddings: false },
  'qwen3-moe': { vocab_size: 151936, hidden_size: 2048, intermediate_size: 6144, num_hidden_layers: 24, num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 32768, tie_word_embeddings: false, num_experts: 128, num_experts_per_tok: 8, moe_intermediate_size: 768, decoder_sparse_step: 1 },
  'qwen3-next': { vocab_size: 151936, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 48, num_attention_heads: 16, num_key_value_heads: 2, head_dim: 256, max_position_embeddings: 32768, tie_word_embeddings: false, num_experts: 512, num_experts_per_tok: 10, moe_intermediate_size: 512, shared_expert_intermediate_size: 512, decoder_sparse_step: 1, linear_num_key_heads: 16, linear_num_value_heads: 32, linear_key_head_dim: 128, linear_value_head_dim: 128, linear_conv_kernel_dim: 4, full_attention_interval: 4 },
  gemma2: { vocab_size: 256000, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256, max_position_embeddings: 8192, tie_word_embeddings: true, sliding_window: 4096 },
  gemma3: { vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256, max_position_embeddings: 131072, tie_word_embeddings: true, sliding_window: 4096, sliding_window_pattern: 6 },
  'gemma3-text': { vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256, max_position_embeddings: 131072, tie_word_embeddings: true, sliding_window: 4096, sliding_window_pattern: 6 },
  phi3: { vocab_size: 32064, hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32, max_position_embeddings: 4096, tie_word_embeddings: false },
  'gpt-oss': { vocab_size: 201088, hidden_size: 2880, intermediate_size: 2880, num_hidden_layers: 36, num_attention_heads: 64, num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 131072, tie_word_embeddings: false, num_local_experts: 128, num_experts_per_tok: 4, sliding_window: 128, attention_bias: true },
  'deepseek-v3': { vocab_size: 129280, hidden_size: 7168, intermediate_size: 18432, num_hidden_layers: 61, num_attention_heads: 128, num_key_value_heads: 128, max_position_embeddings: 4096, tie_word_embeddings: false, n_routed_experts: 256, n_shared_experts: 1, num_experts_per_tok: 8, moe_intermediate_size: 2048, first_k_dense_replace: 3, moe_layer_freq: 1, kv_lora_rank: 512, q_lora_rank: 1536, qk_rope_head_dim: 64, qk_nope_head_dim: 128, v_head_dim: 128 },
  llama4: { vocab_size: 202048, hidden_size: 5120, intermediate_size: 8192, intermediate_size_mlp: 16384, num_hidden_layers: 48, num_attention_heads: 40, num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 131072, tie_word_embeddings: false, num_local_experts: 16, num_experts_per_tok: 1, interleave_moe_layer_step: 1, attention_chunk_size: 8192, no_rope_layer_interval: 4 },
  'llama4-text': { vocab_size: 202048, hidden_size: 5120, intermediate_size: 8192, intermediate_size_mlp: 16384, num_hidden_layers: 48, num_attention_heads: 40, num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 131072, tie_word_embeddings: false, num_local_experts: 16, num_experts_per_tok: 1, interleave_moe_layer_step: 1, attention_chunk_size: 8192, no_rope_layer_interval: 4 },
};

const DTYPE_NAMES: Record<string, Dtype> = {
  bfloat16: 'BF16',
  float16: 'F16',
  half: 'F16',
  float32: 'F32',
  float: 'F32',
  float64: 'F64',
};

/** `"torch.bfloat16"` / `"bfloat16"` → `BF16`; undefined for `auto` and anything non-float. */
export function dtypeFromTorchName(name: string): Dtype | undefined {
  return DTYPE_NAMES[name.replace(/^torch\./, '')];
}

/** Validates a parsed config.json, throwing `ModelConfigError` with one line per bad field. */
export function parseModelConfig(config: unknown): ModelConfig {
  const result = modelConfigSchema.safeParse(config);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.join('.') : '(root)';
    return `${field}: ${issue.message}`;
  });
  throw new ModelConfigError(
    `config.json has invalid values: ${issues.join('; ')}. Fix these fields (compare with the base model's config.json)`,
    issues,
  );
}

/**
 * Normalised dimensions of the text model described by a parsed config.json. `family` defaults to
 * the detected one; for an unsupported architecture the generic (Llama-like) rules apply.
 */
export function readModelDims(config: unknown, family?: ModelFamily): ModelDims {
  const root = parseModelConfig(config);
  if (!family) {
    const detection = detectFamily(config);
    if (detection.ok) family = detection.family;
  }
  const text: TextFields =
    family?.textModelType !== undefined || (!family && root.text_config) ? (root.text_config ?? {}) : root;
  const defaults: Partial<TextFields> = family ? CLASS_DEFAULTS[family.id] : {};
  const defaulted: string[] = [];
  const prefix = text === root ? '' : 'text_config.';

  function get<K extends keyof TextFields>(key: K): NonNullable<TextFields[K]> | undefined {
    const value = text[key];
    // An explicit null is transformers' None (e.g. Nemo's "sliding_window": null), not "use the default".
    if (value === null) return undefined;
    if (value !== undefined) return value as NonNullable<TextFields[K]>;
    const fallback = defaults[key];
    if (fallback === undefined || fallback === null) return undefined;
    defaulted.push(prefix + String(key));
    return fallback as NonNullable<TextFields[K]>;
  }
  function need<K extends keyof TextFields>(key: K): NonNullable<TextFields[K]> {
    const value = get(key);
    if (value === undefined) {
      throw new ModelConfigError(
        `config.json has no ${prefix}${String(key)}; copy it from the base model's config.json`,
        [`${prefix}${String(key)}: missing`],
      );
    }
    return value;
  }

  const hiddenSize = need('hidden_size');
  const numLayers = need('num_hidden_layers');
  const numAttentionHeads = need('num_attention_heads');
  const numKeyValueHeads = get('num_key_value_heads') ?? numAttentionHeads;
  const headDim = get('head_dim') ?? derivedHeadDim(hiddenSize, numAttentionHeads, prefix);
  const vocabSize = need('vocab_size');
  const intermediateSize =
    family?.id === 'llama4' || family?.id === 'llama4-text'
      ? need('intermediate_size_mlp')
      : need('intermediate_size');

  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new ModelConfigError(
      `config.json: ${prefix}num_attention_heads (${numAttentionHeads}) is not a multiple of ` +
        `num_key_value_heads (${numKeyValueHeads}); grouped-query attention needs whole groups`,
      [`${prefix}num_key_value_heads: does not divide num_attention_heads`],
    );
  }

  // A multimodal root may carry tie_word_embeddings on either level; the text level wins.
  const tieWordEmbeddings =
    text.tie_word_embeddings ?? root.tie_word_embeddings ?? get('tie_word_embeddings') ?? false;
  const dtypeName = root.dtype ?? root.torch_dtype ?? text.dtype ?? text.torch_dtype ?? undefined;

  const dims: ModelDims = {
    ...(family ? { family: family.id } : {}),
    ...((text.model_type ?? root.model_type) ? { modelType: text.model_type ?? root.model_type } : {}),
    hiddenSize,
    numLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    intermediateSize,
    vocabSize,
    tieWordEmbeddings,
    attentionBias: get('attention_bias') ?? false,
    mlpBias: get('mlp_bias') ?? false,
    ...optional('maxPositionEmbeddings', get('max_position_embeddings')),
    ...optional('dtypeName', dtypeName),
    ...optional('dtype', dtypeName === undefined ? undefined : dtypeFromTorchName(dtypeName)),
    layerTypes: [],
    numMtpLayers: family?.id === 'deepseek-v3' ? (get('num_nextn_predict_layers') ?? 0) : 0,
    ...readRope(text),
    ...optional('quantization', readQuantization(root, text)),
    ...optional('transformersVersion', root.transformers_version ?? undefined),
    defaulted,
  };
  const window = readLayerTypes(family?.id, text, numLayers, get, prefix);
  dims.layerTypes = window.layerTypes;
  if (window.slidingWindow !== undefined) dims.slidingWindow = window.slidingWindow;

  const moe = readMoe(family?.id, numLayers, intermediateSize, get);
  if (moe) dims.moe = moe;
  if (family?.id === 'deepseek-v3') {
    dims.mla = {
      kvLoraRank: need('kv_lora_rank'),
      qLoraRank: text.q_lora_rank === null ? null : need('q_lora_rank'),
      qkRopeHeadDim: need('qk_rope_head_dim'),
      qkNopeHeadDim: need('qk_nope_head_dim'),
      vHeadDim: need('v_head_dim'),
    };
  }
  if (family?.id === 'qwen3-next') {
    dims.linearAttention = {
      numKeyHeads: need('linear_num_key_heads'),
      numValueHeads: need('linear_num_value_heads'),
      keyHeadDim: need('linear_key_head_dim'),
      valueHeadDim: need('linear_value_head_dim'),
      convKernelSize: need('linear_conv_kernel_dim'),
    };
  }
  return dims;
}

function optional<K extends string, V>(key: K, value: V | undefined | null): { [P in K]?: V } {
  return value === undefined || value === null ? {} : ({ [key]: value } as { [P in K]?: V });
}

function derivedHeadDim(hidden: number, heads: number, prefix: string): number {
  if (hidden % heads !== 0) {
    throw new ModelConfigError(
      `config.json: ${prefix}hidden_size (${hidden}) is not divisible by num_attention_heads (${heads}) and no ` +
        'head_dim is given; add head_dim from the base model',
      [`${prefix}head_dim: missing and not derivable`],
    );
  }
  return hidden / heads;
}

function readRope(
  text: TextFields,
): Pick<ModelDims, 'ropeTheta' | 'ropeScaling' | 'ropeParameters' | 'hasTopLevelRopeTheta'> {
  const parameters = text.rope_parameters ?? undefined;
  const nestedTheta = parameters?.rope_theta;
  const theta = text.rope_theta ?? (typeof nestedTheta === 'number' ? nestedTheta : undefined);
  return {
    ...optional('ropeTheta', theta),
    ...optional('ropeScaling', text.rope_scaling),
    ...optional('ropeParameters', parameters),
    hasTopLevelRopeTheta: text.rope_theta !== undefined && text.rope_theta !== null,
  };
}

function readQuantization(root: ModelConfig, text: TextFields): QuantizationInfo | undefined {
  const found: Array<[QuantizationInfo['location'], Record<string, unknown> | null | undefined]> = [
    ['root', root.quantization_config],
    ['text_config', text === root ? undefined : text.quantization_config],
    ['compression_config', root.compression_config],
  ];
  for (const [location, config] of found) {
    if (!config) continue;
    const method = typeof config.quant_method === 'string' ? config.quant_method.toLowerCase() : undefined;
    return { location, config, ...optional('method', method) };
  }
  return undefined;
}

type Getter = <K extends keyof TextFields>(key: K) => NonNullable<TextFields[K]> | undefined;

function readLayerTypes(
  family: FamilyId | undefined,
  text: TextFields,
  numLayers: number,
  get: Getter,
  prefix: string,
): { layerTypes: LayerType[]; slidingWindow?: number } {
  const sliding = (isSliding: (i: number) => boolean, window: number | undefined) => {
    if (!window) return { layerTypes: Array<LayerType>(numLayers).fill('full_attention') };
    return {
      layerTypes: Array.from({ length: numLayers }, (_, i): LayerType =>
        isSliding(i) ? 'sliding_attention' : 'full_attention',
      ),
      slidingWindow: window,
    };
  };

  if (text.layer_types) {
    const types = text.layer_types;
    const unknown = types.find((t) => !(LAYER_TYPES as readonly string[]).includes(t));
    if (types.length !== numLayers || unknown !== undefined) {
      throw new ModelConfigError(
        `config.json: ${prefix}layer_types must list one of ${LAYER_TYPES.join('/')} per layer ` +
          `(${numLayers}); it has ${types.length} entries${unknown === undefined ? '' : ` including "${unknown}"`}`,
        [`${prefix}layer_types: inconsistent with num_hidden_layers`],
      );
    }
    const window =
      family === 'llama4' || family === 'llama4-text' ? get('attention_chunk_size') : get('sliding_window');
    return { layerTypes: types as LayerType[], ...(window === undefined ? {} : { slidingWindow: window }) };
  }

  switch (family) {
    // Gemma-2 and gpt-oss alternate, starting with a sliding layer.
    case 'gemma2':
    case 'gpt-oss':
      return sliding((i) => (i + 1) % 2 !== 0, get('sliding_window'));
    // Gemma-3: every `sliding_window_pattern`-th layer is global.
    case 'gemma3':
    case 'gemma3-text': {
      const pattern = get('sliding_window_pattern') ?? 6;
      return sliding((i) => (i + 1) % pattern !== 0, get('sliding_window'));
    }
    case 'qwen2':
    case 'qwen3':
    case 'qwen3-moe': {
      const window = text.use_sliding_window ? get('sliding_window') : undefined;
      const from = get('max_window_layers') ?? numLayers;
      return sliding((i) => i >= from, window);
    }
    case 'qwen3-next': {
      const interval = get('full_attention_interval') ?? 4;
      return {
        layerTypes: Array.from({ length: numLayers }, (_, i): LayerType =>
          (i + 1) % interval !== 0 ? 'linear_attention' : 'full_attention',
        ),
      };
    }
    // Llama-4: RoPE layers use chunked local attention; every `no_rope_layer_interval`-th layer is global (NoPE).
    case 'llama4':
    case 'llama4-text': {
      const chunk = get('attention_chunk_size');
      if (chunk === undefined) return sliding(() => false, undefined);
      const interval = get('no_rope_layer_interval') ?? 4;
      // Llama4TextConfig treats an empty `no_rope_layers` (as Scout's config.json has) like a missing one.
      const ropeLayers = text.no_rope_layers?.length
        ? text.no_rope_layers
        : Array.from({ length: numLayers }, (_, i) => ((i + 1) % interval !== 0 ? 1 : 0));
      return {
        layerTypes: Array.from({ length: numLayers }, (_, i): LayerType =>
          ropeLayers[i] === 0 ? 'full_attention' : 'chunked_attention',
        ),
        slidingWindow: chunk,
      };
    }
    case 'deepseek-v3':
      return sliding(() => false, undefined);
    // Mistral, Mixtral, Phi-3, Llama and unknown: a window, when set, applies to every layer.
    default:
      return sliding(() => true, get('sliding_window'));
  }
}

function readMoe(
  family: FamilyId | undefined,
  numLayers: number,
  intermediateSize: number,
  get: Getter,
): MoeDims | undefined {
  const all = Array.from({ length: numLayers }, (_, i) => i);
  const need = (value: number | undefined, field: string): number => {
    if (value === undefined) {
      throw new ModelConfigError(`config.json has no ${field}; copy it from the base model's config.json`, [
        `${field}: missing`,
      ]);
    }
    return value;
  };
  switch (family) {
    case 'mixtral':
    case 'gpt-oss':
      return {
        numExperts: need(get('num_local_experts') ?? get('num_experts'), 'num_local_experts'),
        expertsPerToken: need(get('num_experts_per_tok'), 'num_experts_per_tok'),
        expertIntermediateSize: intermediateSize,
        numSharedExperts: 0,
        sharedExpertIntermediateSize: 0,
        moeLayers: all,
      };
    case 'llama4':
    case 'llama4-text': {
      const step = get('interleave_moe_layer_step') ?? 1;
      const moeLayers = get('moe_layers') ?? all.filter((i) => (i + 1) % step === 0);
      const expertWidth = need(get('intermediate_size'), 'intermediate_size');
      return {
        numExperts: need(get('num_local_experts'), 'num_local_experts'),
        expertsPerToken: need(get('num_experts_per_tok'), 'num_experts_per_tok'),
        expertIntermediateSize: expertWidth,
        numSharedExperts: 1,
        sharedExpertIntermediateSize: expertWidth,
        moeLayers: moeLayers.filter((i) => i < numLayers),
      };
    }
    case 'qwen3-moe':
    case 'qwen3-next': {
      const numExperts = need(get('num_experts'), 'num_experts');
      const step = get('decoder_sparse_step') ?? 1;
      const denseOnly = new Set(get('mlp_only_layers') ?? []);
      const shared = family === 'qwen3-next' ? (get('shared_expert_intermediate_size') ?? 0) : 0;
      return {
        numExperts,
        expertsPerToken: need(get('num_experts_per_tok'), 'num_experts_per_tok'),
        expertIntermediateSize: need(get('moe_intermediate_size'), 'moe_intermediate_size'),
        numSharedExperts: shared > 0 ? 1 : 0,
        sharedExpertIntermediateSize: shared,
        moeLayers: numExperts > 0 ? all.filter((i) => !denseOnly.has(i) && (i + 1) % step === 0) : [],
      };
    }
    case 'deepseek-v3': {
      const expertWidth = need(get('moe_intermediate_size'), 'moe_intermediate_size');
      const shared = get('n_shared_experts') ?? 0;
      const firstDense = get('first_k_dense_replace') ?? 0;
      const freq = get('moe_layer_freq') ?? 1;
      return {
        numExperts: need(get('n_routed_experts'), 'n_routed_experts'),
        expertsPerToken: need(get('num_experts_per_tok'), 'num_experts_per_tok'),
        expertIntermediateSize: expertWidth,
        numSharedExperts: shared,
        sharedExpertIntermediateSize: shared * expertWidth,
        moeLayers: all.filter((i) => i >= firstDense && i % freq === 0),
      };
    }
    default:
      return undefined;
  }
}
