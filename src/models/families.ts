/**
 * The model families Vertex AI Model Garden accepts as custom weights (public preview list in
 * ../shared/docs/mission.md), keyed by the `architectures[0]` / `model_type` pair a Hugging Face
 * `config.json` declares (hf-weights.md §3.1). Pure data plus `detectFamily`; no I/O.
 */

export type FamilyId =
  | 'llama'
  | 'llama4'
  | 'llama4-text'
  | 'gemma2'
  | 'gemma3'
  | 'gemma3-text'
  | 'qwen2'
  | 'qwen3'
  | 'qwen3-moe'
  | 'qwen3-next'
  | 'deepseek-v3'
  | 'mistral'
  | 'mixtral'
  | 'phi3'
  | 'gpt-oss';

/** SentencePiece families ship a protobuf `tokenizer.model`; BPE families need `tokenizer.json`. */
export type TokenizerKind = 'sentencepiece' | 'bpe';

/**
 * A family's own release precision that merely looks quantized (hf-weights §4.2): accepted only
 * when `quantization_config` matches it exactly.
 */
export interface NativeQuantization {
  method: 'mxfp4' | 'fp8';
  description: string;
  /** Keys of `quantization_config` whose values must be equal to these (order-insensitive for arrays). */
  expectedConfig: Readonly<Record<string, unknown>>;
}

/** Where the decoder's tensors live in a checkpoint, e.g. `language_model.model.layers.0...`. */
export interface TensorLayout {
  id: string;
  /** Prefix of embeddings, layers and final norm, e.g. `model.` or `model.language_model.`. */
  modelPrefix: string;
  /** Full name of the output projection (absent when tied). */
  lmHead: string;
}

/** A named model Vertex lists as supported, with the config values that identify it (§3.3). */
export interface SupportedModel {
  name: string;
  hiddenSize: number;
  numLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  vocabSize: number;
  /** Routed experts, for MoE models. */
  numExperts?: number;
  /** Approximate parameter count published or computed from the config (text weights only). */
  approxParameters: number;
  tokenizer: TokenizerKind;
  /** Whether the base (non-instruct) release ships a chat template. */
  baseHasChatTemplate: boolean;
}

export interface ModelFamily {
  id: FamilyId;
  displayName: string;
  /** `architectures[0]` value(s) of this family. */
  architectures: readonly string[];
  /** Root `model_type`. */
  modelType: string;
  /** `text_config.model_type` for multimodal roots whose text parameters sit under `text_config`. */
  textModelType?: string;
  multimodal: boolean;
  /** Tokenizer kinds models of this family use (Llama-2 is SentencePiece, Llama-3 is BPE). */
  tokenizers: readonly TokenizerKind[];
  nativeQuantization?: NativeQuantization;
  /** Accepted tensor layouts, most common first (multimodal classes were renamed in transformers 4.52). */
  layouts: readonly TensorLayout[];
  /** Name prefixes of non-text tensors (vision tower, projector, MTP module) a checkpoint may carry. */
  auxiliaryPrefixes: readonly string[];
  /** Needs a recent serving image (hf-weights §7.20). */
  needsRecentServingStack: boolean;
  supportedModels: readonly SupportedModel[];
}

const CAUSAL_LM_LAYOUT: TensorLayout = { id: 'causal-lm', modelPrefix: 'model.', lmHead: 'lm_head.weight' };

/** transformers < 4.52 saved multimodal text weights under `language_model.model.*`; later under `model.language_model.*`. */
const MULTIMODAL_LAYOUTS: readonly TensorLayout[] = [
  { id: 'multimodal-legacy', modelPrefix: 'language_model.model.', lmHead: 'language_model.lm_head.weight' },
  { id: 'multimodal', modelPrefix: 'model.language_model.', lmHead: 'lm_head.weight' },
];

function model(
  name: string,
  dims: [hidden: number, layers: number, heads: number, kvHeads: number, vocab: number],
  approxParameters: number,
  tokenizer: TokenizerKind,
  baseHasChatTemplate: boolean,
  numExperts?: number,
): SupportedModel {
  const [hiddenSize, numLayers, numAttentionHeads, numKeyValueHeads, vocabSize] = dims;
  return {
    name,
    hiddenSize,
    numLayers,
    numAttentionHeads,
    numKeyValueHeads,
    vocabSize,
    approxParameters,
    tokenizer,
    baseHasChatTemplate,
    ...(numExperts === undefined ? {} : { numExperts }),
  };
}

const GEMMA3_TEXT_MODELS = [
  model('Gemma-3-1B', [1152, 26, 4, 1, 262144], 1.0e9, 'sentencepiece', false),
  model('MedGemma-27B-text', [5376, 62, 32, 16, 262208], 27.0e9, 'sentencepiece', true),
];

const FAMILIES: readonly ModelFamily[] = [
  {
    id: 'llama',
    displayName: 'Llama',
    architectures: ['LlamaForCausalLM'],
    modelType: 'llama',
    multimodal: false,
    tokenizers: ['sentencepiece', 'bpe'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: [
      model('Llama-2-7B', [4096, 32, 32, 32, 32000], 6.74e9, 'sentencepiece', false),
      model('Llama-2-13B', [5120, 40, 40, 40, 32000], 13.0e9, 'sentencepiece', false),
      model('CodeLlama-13B', [5120, 40, 40, 40, 32016], 13.0e9, 'sentencepiece', false),
      model('Llama-3.1-8B', [4096, 32, 32, 8, 128256], 8.03e9, 'bpe', false),
      model('Llama-3.1-70B', [8192, 80, 64, 8, 128256], 70.6e9, 'bpe', false),
      model('Llama-3.2-1B', [2048, 16, 32, 8, 128256], 1.24e9, 'bpe', false),
      model('Llama-3.2-3B', [3072, 28, 24, 8, 128256], 3.21e9, 'bpe', false),
    ],
  },
  {
    id: 'llama4',
    displayName: 'Llama 4',
    architectures: ['Llama4ForConditionalGeneration'],
    modelType: 'llama4',
    textModelType: 'llama4_text',
    multimodal: true,
    tokenizers: ['bpe'],
    layouts: MULTIMODAL_LAYOUTS,
    auxiliaryPrefixes: [
      'vision_model.',
      'multi_modal_projector.',
      'model.vision_model.',
      'model.multi_modal_projector.',
    ],
    needsRecentServingStack: true,
    supportedModels: [
      model('Llama-4-Scout-17B-16E', [5120, 48, 40, 8, 202048], 109e9, 'bpe', true, 16),
      model('Llama-4-Maverick-17B-128E', [5120, 48, 40, 8, 202048], 400e9, 'bpe', true, 128),
    ],
  },
  {
    id: 'llama4-text',
    displayName: 'Llama 4 (text-only export)',
    architectures: ['Llama4ForCausalLM'],
    modelType: 'llama4_text',
    multimodal: false,
    tokenizers: ['bpe'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: true,
    supportedModels: [
      model('Llama-4-Scout-17B-16E', [5120, 48, 40, 8, 202048], 109e9, 'bpe', true, 16),
      model('Llama-4-Maverick-17B-128E', [5120, 48, 40, 8, 202048], 400e9, 'bpe', true, 128),
    ],
  },
  {
    id: 'gemma2',
    displayName: 'Gemma 2',
    architectures: ['Gemma2ForCausalLM'],
    modelType: 'gemma2',
    multimodal: false,
    tokenizers: ['sentencepiece'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: [
      model('Gemma-2-9B', [3584, 42, 16, 8, 256000], 9.24e9, 'sentencepiece', false),
      model('Gemma-2-27B', [4608, 46, 32, 16, 256000], 27.2e9, 'sentencepiece', false),
    ],
  },
  {
    id: 'gemma3',
    displayName: 'Gemma 3 (multimodal)',
    architectures: ['Gemma3ForConditionalGeneration'],
    modelType: 'gemma3',
    textModelType: 'gemma3_text',
    multimodal: true,
    tokenizers: ['sentencepiece'],
    layouts: MULTIMODAL_LAYOUTS,
    auxiliaryPrefixes: [
      'vision_tower.',
      'multi_modal_projector.',
      'model.vision_tower.',
      'model.multi_modal_projector.',
    ],
    needsRecentServingStack: false,
    supportedModels: [
      model('Gemma-3-4B / MedGemma-4B', [2560, 34, 8, 4, 262208], 3.88e9, 'sentencepiece', false),
      model('Gemma-3-12B', [3840, 48, 16, 8, 262208], 11.8e9, 'sentencepiece', false),
      model('Gemma-3-27B', [5376, 62, 32, 16, 262208], 27.0e9, 'sentencepiece', false),
    ],
  },
  {
    id: 'gemma3-text',
    displayName: 'Gemma 3 (text)',
    architectures: ['Gemma3ForCausalLM'],
    modelType: 'gemma3_text',
    multimodal: false,
    tokenizers: ['sentencepiece'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: GEMMA3_TEXT_MODELS,
  },
  {
    id: 'qwen2',
    displayName: 'Qwen2 / Qwen2.5',
    architectures: ['Qwen2ForCausalLM'],
    modelType: 'qwen2',
    multimodal: false,
    tokenizers: ['bpe'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: [
      model('Qwen2.5-0.5B', [896, 24, 14, 2, 151936], 0.49e9, 'bpe', true),
      model('Qwen2-1.5B / Qwen2.5-1.5B', [1536, 28, 12, 2, 151936], 1.54e9, 'bpe', true),
      model('Qwen2.5-7B', [3584, 28, 28, 4, 152064], 7.62e9, 'bpe', true),
      model('Qwen2.5-32B', [5120, 64, 40, 8, 152064], 32.8e9, 'bpe', true),
    ],
  },
  {
    id: 'qwen3',
    displayName: 'Qwen3',
    architectures: ['Qwen3ForCausalLM'],
    modelType: 'qwen3',
    multimodal: false,
    tokenizers: ['bpe'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: [
      model('Qwen3-0.6B', [1024, 28, 16, 8, 151936], 0.6e9, 'bpe', true),
      model('Qwen3-1.7B', [2048, 28, 16, 8, 151936], 1.7e9, 'bpe', true),
      model('Qwen3-8B', [4096, 36, 32, 8, 151936], 8.19e9, 'bpe', true),
      model('Qwen3-32B', [5120, 64, 64, 8, 151936], 32.8e9, 'bpe', true),
    ],
  },
  {
    id: 'qwen3-moe',
    displayName: 'Qwen3 MoE',
    architectures: ['Qwen3MoeForCausalLM'],
    modelType: 'qwen3_moe',
    multimodal: false,
    tokenizers: ['bpe'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: [
      model('Qwen3-Coder-480B-A35B-Instruct', [6144, 62, 96, 8, 151936], 480e9, 'bpe', true, 160),
    ],
  },
  {
    id: 'qwen3-next',
    displayName: 'Qwen3-Next',
    architectures: ['Qwen3NextForCausalLM'],
    modelType: 'qwen3_next',
    multimodal: false,
    tokenizers: ['bpe'],
    layouts: [CAUSAL_LM_LAYOUT],
    // The released checkpoints carry a multi-token-prediction module under `mtp.`.
    auxiliaryPrefixes: ['mtp.'],
    needsRecentServingStack: true,
    supportedModels: [model('Qwen3-Next-80B-A3B', [2048, 48, 16, 2, 151936], 80e9, 'bpe', true, 512)],
  },
  {
    id: 'deepseek-v3',
    displayName: 'DeepSeek-V3 / R1 / V3.1',
    architectures: ['DeepseekV3ForCausalLM'],
    modelType: 'deepseek_v3',
    multimodal: false,
    tokenizers: ['bpe'],
    nativeQuantization: {
      method: 'fp8',
      description:
        'block-FP8 (E4M3 weights with 128×128 F32 weight_scale_inv), the official DeepSeek release format',
      expectedConfig: {
        quant_method: 'fp8',
        fmt: 'e4m3',
        activation_scheme: 'dynamic',
        weight_block_size: [128, 128],
      },
    },
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: true,
    supportedModels: [
      model('DeepSeek-V3 / R1 / V3.1', [7168, 61, 128, 128, 129280], 671e9, 'bpe', true, 256),
    ],
  },
  {
    id: 'mistral',
    displayName: 'Mistral',
    architectures: ['MistralForCausalLM'],
    modelType: 'mistral',
    multimodal: false,
    tokenizers: ['sentencepiece', 'bpe'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: [
      model('Mistral-7B-v0.1', [4096, 32, 32, 8, 32000], 7.24e9, 'sentencepiece', false),
      model('Mistral-Nemo-Base-2407', [5120, 40, 32, 8, 131072], 12.2e9, 'bpe', false),
    ],
  },
  {
    id: 'mixtral',
    displayName: 'Mixtral',
    architectures: ['MixtralForCausalLM'],
    modelType: 'mixtral',
    multimodal: false,
    tokenizers: ['sentencepiece'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: [
      model('Mixtral-8x7B-v0.1', [4096, 32, 32, 8, 32000], 46.7e9, 'sentencepiece', false, 8),
    ],
  },
  {
    id: 'phi3',
    displayName: 'Phi-3 / Phi-4',
    architectures: ['Phi3ForCausalLM'],
    modelType: 'phi3',
    multimodal: false,
    tokenizers: ['bpe'],
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: false,
    supportedModels: [model('Phi-4-reasoning', [5120, 40, 40, 10, 100352], 14.7e9, 'bpe', true)],
  },
  {
    id: 'gpt-oss',
    displayName: 'gpt-oss',
    architectures: ['GptOssForCausalLM'],
    modelType: 'gpt_oss',
    multimodal: false,
    tokenizers: ['bpe'],
    nativeQuantization: {
      method: 'mxfp4',
      description: 'MXFP4 experts (U8 *_blocks + *_scales), the format OpenAI released gpt-oss in',
      expectedConfig: {
        quant_method: 'mxfp4',
        modules_to_not_convert: [
          'model.layers.*.self_attn',
          'model.layers.*.mlp.router',
          'model.embed_tokens',
          'lm_head',
        ],
      },
    },
    layouts: [CAUSAL_LM_LAYOUT],
    auxiliaryPrefixes: [],
    needsRecentServingStack: true,
    supportedModels: [
      model('gpt-oss-20b', [2880, 24, 64, 8, 201088], 20.9e9, 'bpe', true, 32),
      model('gpt-oss-120b', [2880, 36, 64, 8, 201088], 116.8e9, 'bpe', true, 128),
    ],
  },
];

const BY_ARCHITECTURE = new Map(FAMILIES.flatMap((f) => f.architectures.map((a) => [a, f] as const)));
const BY_ID = new Map(FAMILIES.map((f) => [f.id, f] as const));

export const MODEL_FAMILIES: readonly ModelFamily[] = FAMILIES;

export const SUPPORTED_ARCHITECTURES: readonly string[] = FAMILIES.flatMap((f) => f.architectures);

export function getFamily(id: FamilyId): ModelFamily {
  const family = BY_ID.get(id);
  if (!family) throw new Error(`unknown model family "${id}"`);
  return family;
}

export function isFamilyId(value: string): value is FamilyId {
  return BY_ID.has(value as FamilyId);
}

export function familyForArchitecture(architecture: string): ModelFamily | undefined {
  return BY_ARCHITECTURE.get(architecture);
}

export type UnsupportedReason =
  | 'not-an-object'
  | 'missing-architectures'
  | 'missing-model-type'
  | 'peft-adapter'
  | 'no-lm-head'
  | 'classification-head'
  | 'unsupported-architecture'
  | 'model-type-mismatch'
  | 'missing-text-config';

export type FamilyDetection =
  | {
      ok: true;
      family: ModelFamily;
      architecture: string;
      modelType: string;
      /** The object holding the text model's parameters: `text_config` for multimodal roots, else the root. */
      textConfig: Record<string, unknown>;
    }
  | { ok: false; reason: UnsupportedReason; message: string; architecture?: string; modelType?: string };

const SUPPORTED_LIST = SUPPORTED_ARCHITECTURES.join(', ');
const HEADLESS_RE = /^[A-Za-z0-9]+Model$/;
const CLASSIFIER_RE = /For(SequenceClassification|TokenClassification|QuestionAnswering|MultipleChoice)$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The causal-LM architecture for a headless base class (`LlamaModel` → `LlamaForCausalLM`), if we support it. */
function causalLmFor(architecture: string): string | undefined {
  const stem = architecture.replace(/(Model|For\w+)$/, '');
  return SUPPORTED_ARCHITECTURES.find((a) => a.replace(/For\w+$/, '') === stem);
}

/**
 * Which supported family a parsed `config.json` declares, or the precise reason it is not one
 * (headless base model, classification head, adapter, unknown architecture, inconsistent type).
 */
export function detectFamily(config: unknown): FamilyDetection {
  if (!isRecord(config)) {
    return { ok: false, reason: 'not-an-object', message: 'config.json must be a JSON object' };
  }
  const architectures = config.architectures;
  const modelType = typeof config.model_type === 'string' ? config.model_type : undefined;
  if (
    !Array.isArray(architectures) ||
    architectures.length === 0 ||
    typeof architectures[0] !== 'string' ||
    architectures[0] === ''
  ) {
    return {
      ok: false,
      reason: 'missing-architectures',
      message:
        'config.json has no "architectures" list, so the serving stack cannot tell which model class to build; ' +
        `save the model with save_pretrained from its *ForCausalLM class or add e.g. "architectures": ["LlamaForCausalLM"] (supported: ${SUPPORTED_LIST})`,
      ...(modelType === undefined ? {} : { modelType }),
    };
  }
  const architecture = architectures[0];
  const found = { architecture, ...(modelType === undefined ? {} : { modelType }) };
  if (architecture.startsWith('Peft')) {
    return {
      ok: false,
      reason: 'peft-adapter',
      message:
        `config.json declares architectures=["${architecture}"]: this is a LoRA/PEFT adapter, not a full model; ` +
        'merge the adapter into the base model (merge_and_unload, then save_pretrained) and upload the merged weights',
      ...found,
    };
  }
  if (CLASSIFIER_RE.test(architecture)) {
    return {
      ok: false,
      reason: 'classification-head',
      message:
        `config.json declares architectures=["${architecture}"], a classification head that cannot generate text; ` +
        `Vertex custom weights need a causal language model (supported: ${SUPPORTED_LIST})`,
      ...found,
    };
  }
  const family = familyForArchitecture(architecture);
  if (!family) {
    if (HEADLESS_RE.test(architecture)) {
      const suggestion = causalLmFor(architecture);
      return {
        ok: false,
        reason: 'no-lm-head',
        message:
          `config.json declares architectures=["${architecture}"], a base model without a language-model head ` +
          `(e.g. a sentence-transformers export); ` +
          (suggestion
            ? `export the model with ${suggestion} (including lm_head.weight unless embeddings are tied)`
            : `Vertex custom weights accept only ${SUPPORTED_LIST}`),
        ...found,
      };
    }
    return {
      ok: false,
      reason: 'unsupported-architecture',
      message:
        `config.json declares architectures=["${architecture}"]${modelType ? `, model_type="${modelType}"` : ''}; ` +
        `Vertex custom weights accept only ${SUPPORTED_LIST}`,
      ...found,
    };
  }
  if (modelType === undefined) {
    return {
      ok: false,
      reason: 'missing-model-type',
      message: `config.json has no "model_type"; add "model_type": "${family.modelType}" (the value ${architecture} uses)`,
      ...found,
    };
  }
  if (modelType !== family.modelType) {
    return {
      ok: false,
      reason: 'model-type-mismatch',
      message:
        `config.json declares architectures=["${architecture}"] but model_type="${modelType}"; ` +
        `${architecture} uses model_type="${family.modelType}". Fix whichever of the two is wrong (a hand-edited config?)`,
      ...found,
    };
  }
  if (family.textModelType === undefined)
    return { ok: true, family, architecture, modelType, textConfig: config };
  const textConfig = config.text_config;
  if (!isRecord(textConfig)) {
    return {
      ok: false,
      reason: 'missing-text-config',
      message:
        `config.json declares ${architecture} but has no "text_config" object holding the language model's ` +
        'parameters; copy config.json from the base model',
      ...found,
    };
  }
  if (textConfig.model_type !== undefined && textConfig.model_type !== family.textModelType) {
    return {
      ok: false,
      reason: 'model-type-mismatch',
      message:
        `config.json declares ${architecture} but text_config.model_type="${String(textConfig.model_type)}"; ` +
        `expected "${family.textModelType}"`,
      ...found,
    };
  }
  return { ok: true, family, architecture, modelType, textConfig };
}

export interface SupportedModelMatch {
  model: SupportedModel;
  /** Hidden size, layers, heads, KV heads, vocabulary (and experts) all equal the named model's. */
  exact: boolean;
}

/**
 * The named supported model of this family a config most resembles (for "Llama-3.1-8B-like"
 * size guesses and "wrong base size" warnings): an exact dimension match when there is one,
 * else the nearest by hidden size and layer count, then KV heads and vocabulary.
 */
export function closestSupportedModel(
  familyOrId: ModelFamily | FamilyId,
  dims: {
    hiddenSize: number;
    numLayers: number;
    numAttentionHeads: number;
    numKeyValueHeads: number;
    vocabSize: number;
    moe?: { numExperts: number };
  },
): SupportedModelMatch | undefined {
  const family = typeof familyOrId === 'string' ? getFamily(familyOrId) : familyOrId;
  let best: { model: SupportedModel; distance: number } | undefined;
  for (const model of family.supportedModels) {
    const exact =
      model.hiddenSize === dims.hiddenSize &&
      model.numLayers === dims.numLayers &&
      model.numAttentionHeads === dims.numAttentionHeads &&
      model.numKeyValueHeads === dims.numKeyValueHeads &&
      model.vocabSize === dims.vocabSize &&
      (model.numExperts === undefined || model.numExperts === dims.moe?.numExperts);
    if (exact) return { model, exact: true };
    // Size dominates; heads and vocabulary separate same-size generations (Llama-2-7B vs Llama-3.1-8B).
    const ratio = (a: number, b: number) => Math.abs(Math.log(a / b));
    const distance =
      ratio(model.hiddenSize, dims.hiddenSize) +
      ratio(model.numLayers, dims.numLayers) +
      0.5 * ratio(model.numKeyValueHeads, dims.numKeyValueHeads) +
      0.25 * ratio(model.vocabSize, dims.vocabSize);
    if (!best || distance < best.distance) best = { model, distance };
  }
  return best && { model: best.model, exact: false };
}
