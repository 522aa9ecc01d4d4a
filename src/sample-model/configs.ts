/**
 * `config.json` of each family the generator offers, with the fields and conventions of the real
 * releases but small dimensions.
 */
import { type Dtype } from '../safetensors/dtypes';
import { type FamilyId, type TokenizerKind } from '../models';

export const SAMPLE_FAMILIES = [
  'llama',
  'mistral',
  'mixtral',
  'qwen2',
  'qwen3',
  'qwen3-moe',
  'gemma2',
  'gemma3-text',
  'phi3',
] as const satisfies readonly FamilyId[];
export type SampleFamily = (typeof SAMPLE_FAMILIES)[number];

/** Tokenizer style of the release each sample imitates (Llama-3, Mistral-7B-v0.1, Mixtral, Qwen, Gemma, Phi-4). */
export const SAMPLE_TOKENIZER: Record<SampleFamily, TokenizerKind> = {
  llama: 'bpe',
  mistral: 'sentencepiece',
  mixtral: 'sentencepiece',
  qwen2: 'bpe',
  qwen3: 'bpe',
  'qwen3-moe': 'bpe',
  gemma2: 'sentencepiece',
  'gemma3-text': 'sentencepiece',
  phi3: 'bpe',
};

export interface SampleDims {
  hiddenSize: number;
  numLayers: number;
  intermediateSize: number;
  vocabSize: number;
  numExperts: number;
}

const TORCH_DTYPE: Partial<Record<Dtype, string>> = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' };
const MAX_POSITIONS = 4096;

/** Heads follow from the hidden size: 16-wide heads for tiny models, 128-wide ones from 512 up. */
export function headLayout(hiddenSize: number): { headDim: number; heads: number; kvHeads: number } {
  const headDim = hiddenSize >= 512 ? 128 : 16;
  const heads = hiddenSize / headDim;
  return { headDim, heads, kvHeads: Math.max(1, heads / 2) };
}

export function sampleConfig(
  family: SampleFamily,
  dims: SampleDims,
  dtype: Dtype,
  tokens: { bos: number; eos: number; pad: number },
): Record<string, unknown> {
  const { headDim, heads, kvHeads } = headLayout(dims.hiddenSize);
  const common = {
    attention_dropout: 0.0,
    bos_token_id: tokens.bos,
    eos_token_id: tokens.eos,
    hidden_act: 'silu',
    hidden_size: dims.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: dims.intermediateSize,
    max_position_embeddings: MAX_POSITIONS,
    num_attention_heads: heads,
    num_hidden_layers: dims.numLayers,
    num_key_value_heads: kvHeads,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: '4.51.3',
    use_cache: true,
    vocab_size: dims.vocabSize,
  };
  switch (family) {
    case 'llama':
      return {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        ...common,
        attention_bias: false,
        mlp_bias: false,
        pretraining_tp: 1,
        rope_scaling: {
          factor: 8.0,
          high_freq_factor: 4.0,
          low_freq_factor: 1.0,
          original_max_position_embeddings: 1024,
          rope_type: 'llama3',
        },
        rope_theta: 500000.0,
      };
    case 'mistral':
      return {
        architectures: ['MistralForCausalLM'],
        model_type: 'mistral',
        ...common,
        head_dim: headDim,
        rope_theta: 10000.0,
        sliding_window: 4096,
      };
    case 'mixtral':
      return {
        architectures: ['MixtralForCausalLM'],
        model_type: 'mixtral',
        ...common,
        num_experts_per_tok: 2,
        num_local_experts: dims.numExperts,
        output_router_logits: false,
        rope_theta: 1000000.0,
        router_aux_loss_coef: 0.02,
        sliding_window: null,
      };
    case 'qwen2':
      return {
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
        ...common,
        max_window_layers: dims.numLayers,
        rope_theta: 1000000.0,
        sliding_window: MAX_POSITIONS,
        use_sliding_window: false,
      };
    case 'qwen3':
      return {
        architectures: ['Qwen3ForCausalLM'],
        model_type: 'qwen3',
        ...common,
        attention_bias: false,
        head_dim: headDim,
        max_window_layers: dims.numLayers,
        rope_scaling: null,
        rope_theta: 1000000,
        sliding_window: null,
        use_sliding_window: false,
      };
    case 'qwen3-moe':
      return {
        architectures: ['Qwen3MoeForCausalLM'],
        model_type: 'qwen3_moe',
        ...common,
        attention_bias: false,
        decoder_sparse_step: 1,
        head_dim: headDim,
        mlp_only_layers: [],
        moe_intermediate_size: Math.max(16, dims.intermediateSize / 4),
        norm_topk_prob: true,
        num_experts: dims.numExperts,
        num_experts_per_tok: 2,
        rope_theta: 1000000,
      };
    case 'gemma2':
      return {
        architectures: ['Gemma2ForCausalLM'],
        model_type: 'gemma2',
        ...common,
        hidden_act: 'gelu_pytorch_tanh',
        hidden_activation: 'gelu_pytorch_tanh',
        attention_bias: false,
        attn_logit_softcapping: 50.0,
        cache_implementation: 'hybrid',
        final_logit_softcapping: 30.0,
        head_dim: headDim,
        query_pre_attn_scalar: headDim,
        rope_theta: 10000.0,
        sliding_window: 4096,
        tie_word_embeddings: true,
      };
    case 'gemma3-text':
      return {
        architectures: ['Gemma3ForCausalLM'],
        model_type: 'gemma3_text',
        ...common,
        hidden_activation: 'gelu_pytorch_tanh',
        attention_bias: false,
        attn_logit_softcapping: null,
        cache_implementation: 'hybrid',
        final_logit_softcapping: null,
        head_dim: headDim,
        query_pre_attn_scalar: headDim,
        rope_local_base_freq: 10000,
        rope_scaling: null,
        rope_theta: 1000000,
        sliding_window: 512,
        sliding_window_pattern: 6,
        tie_word_embeddings: true,
      };
    case 'phi3':
      return {
        architectures: ['Phi3ForCausalLM'],
        model_type: 'phi3',
        ...common,
        attention_bias: false,
        original_max_position_embeddings: MAX_POSITIONS,
        partial_rotary_factor: 1.0,
        rope_scaling: null,
        rope_theta: 500000,
        sliding_window: null,
      };
  }
}
