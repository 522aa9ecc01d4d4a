import { type HeaderProblemCode } from '../safetensors/header';

/**
 * The catalogue of validation rules. Rule ids are stable: reports, dashboards and users' scripts
 * key on them. Each rule has a default severity (some findings raise or lower it, e.g. a missing
 * chat template is an error when chat is required) and a one-line description of what it checks.
 * `garden-deploy validate --rules` prints this table.
 */

export type Severity = 'error' | 'warning' | 'info';

export interface RuleDefinition {
  severity: Severity;
  description: string;
}

// Typed as a complete record, so a new header problem code cannot lack a catalogue entry.
const SAFETENSORS_RULES: Record<`safetensors.${HeaderProblemCode}`, RuleDefinition> = {
  'safetensors.too-small': {
    severity: 'error',
    description: 'A .safetensors object is shorter than 8 bytes.',
  },
  'safetensors.header-length-invalid': { severity: 'error', description: 'The declared header length is 0.' },
  'safetensors.header-too-large': {
    severity: 'error',
    description: 'The declared header length exceeds 100,000,000 bytes (every loader refuses it).',
  },
  'safetensors.header-large': {
    severity: 'warning',
    description: 'The header exceeds 25,000,000 bytes (huggingface_hub / huggingface.js refuse it).',
  },
  'safetensors.header-over-read-cap': {
    severity: 'error',
    description: "The header is larger than this validator's configurable read limit, so it was not checked.",
  },
  'safetensors.truncated': {
    severity: 'error',
    description: 'The object is shorter than 8 + header + data the header declares (incomplete upload).',
  },
  'safetensors.trailing-bytes': {
    severity: 'error',
    description: 'Bytes follow the last tensor (the reference reader refuses such files).',
  },
  'safetensors.invalid-utf8': { severity: 'error', description: 'The header is not valid UTF-8.' },
  'safetensors.invalid-json': { severity: 'error', description: 'The header is not valid JSON.' },
  'safetensors.leading-whitespace': {
    severity: 'warning',
    description: "The header starts with whitespace instead of '{' (old loaders may refuse it).",
  },
  'safetensors.duplicate-key': { severity: 'error', description: 'The header repeats a JSON key.' },
  'safetensors.not-object': { severity: 'error', description: 'The header is not a JSON object.' },
  'safetensors.bad-entry': {
    severity: 'error',
    description:
      'A tensor entry lacks dtype/shape/data_offsets or has non-integer, negative or >64-bit values.',
  },
  'safetensors.unknown-dtype': {
    severity: 'warning',
    description: 'A tensor uses a dtype unknown to current loaders; its size cannot be checked.',
  },
  'safetensors.bad-metadata': {
    severity: 'error',
    description: '__metadata__ is not a flat string-to-string map.',
  },
  'safetensors.metadata-format': {
    severity: 'warning',
    description: '__metadata__.format is missing or not "pt" (some transformers versions refuse the file).',
  },
  'safetensors.offsets': {
    severity: 'error',
    description: 'Tensor data_offsets leave gaps or overlap (tensors must be contiguous from 0).',
  },
  'safetensors.size-mismatch': {
    severity: 'error',
    description: "A tensor's byte span differs from its element count × dtype size.",
  },
  'safetensors.misaligned': {
    severity: 'error',
    description: 'A sub-byte tensor (F4/F6) does not fill a whole number of bytes.',
  },
  'safetensors.empty': { severity: 'warning', description: 'A .safetensors file holds no tensors.' },
};

export const RULES = {
  // Where the model is.
  'location.invalid-uri': { severity: 'error', description: 'The location is not a valid gs:// URI.' },
  'location.not-found': {
    severity: 'error',
    description: 'The bucket, prefix or directory does not exist or holds no objects.',
  },
  'location.forbidden': {
    severity: 'error',
    description: 'The credentials in use may not list or read the location.',
  },
  'location.too-many-objects': {
    severity: 'error',
    description: 'The prefix holds more objects than a model folder plausibly has (a bucket root?).',
  },
  'layout.nested-folder': {
    severity: 'error',
    description: 'config.json is not directly under the prefix but in a subfolder (wrong prefix level).',
  },
  'layout.subfolder': {
    severity: 'warning',
    description: 'Subfolders (original/, checkpoint-*/ …) sit next to the model files and get copied too.',
  },
  'layout.training-artifacts': {
    severity: 'info',
    description: 'Optimizer, scheduler or trainer-state files are present (ignored by vLLM, wasted bytes).',
  },
  'layout.unreadable-file': {
    severity: 'error',
    description: 'A listed object could not be read (deleted meanwhile, or no permission).',
  },

  // config.json
  'config.missing': { severity: 'error', description: 'No config.json under the prefix.' },
  'config.too-large': { severity: 'error', description: 'config.json is larger than any real config.' },
  'config.invalid-json': { severity: 'error', description: 'config.json is not valid JSON.' },
  'config.invalid': {
    severity: 'error',
    description: 'config.json has fields of the wrong type or out of range.',
  },
  'config.unsupported-architecture': {
    severity: 'error',
    description:
      'architectures / model_type are not in the Vertex custom-weights allow-list (or are missing, inconsistent, a classifier or a headless base model).',
  },
  'config.family-mismatch': {
    severity: 'error',
    description: 'The detected family differs from the one the deployment expects.',
  },
  'config.quantized': {
    severity: 'error',
    description: 'quantization_config / compression_config declares a quantized checkpoint.',
  },
  'config.native-quantization': {
    severity: 'info',
    description: "The checkpoint uses the family's native release precision (gpt-oss MXFP4, DeepSeek FP8).",
  },
  'config.rope-parameters': {
    severity: 'warning',
    description:
      'rope_parameters without top-level rope_theta (transformers v5): older stacks use theta 10000.',
  },
  'config.dtype-field': {
    severity: 'warning',
    description: 'Only the new "dtype" key is set, no "torch_dtype" (older stacks ignore it).',
  },
  'config.transformers-version': {
    severity: 'warning',
    description: 'Saved by a transformers major version newer than current serving images.',
  },
  'config.recent-architecture': {
    severity: 'info',
    description: 'The architecture needs a recent serving image (DeepSeek-V3, Qwen3-Next, Llama 4, gpt-oss).',
  },
  'config.long-context': {
    severity: 'info',
    description:
      'max_position_embeddings is far beyond what the recommended machine can cache; vLLM must be given a smaller max_model_len.',
  },

  // Adapters
  'peft.adapter': {
    severity: 'error',
    description: 'The folder holds a LoRA/PEFT adapter, not merged full weights.',
  },
  'peft.stray-adapter': {
    severity: 'warning',
    description: 'adapter_config.json / adapter_model.* sit next to the full weights.',
  },

  // Weight files
  'weights.missing': {
    severity: 'error',
    description: 'No *.safetensors or pytorch_model*.bin weights directly under the prefix.',
  },
  'weights.mixed-formats': {
    severity: 'warning',
    description: 'Both .bin and .safetensors weights are present (only safetensors are loaded).',
  },
  'weights.bin-only': {
    severity: 'warning',
    description: 'Only pickle .bin weights: slower, unsafe to load, and their tensors cannot be checked.',
  },
  'weights.bin-not-torch': {
    severity: 'error',
    description: 'A .bin weight file is neither a zip-based nor a legacy-pickle PyTorch file.',
  },
  'weights.consolidated': {
    severity: 'warning',
    description:
      'Mistral-native consolidated*.safetensors next to HF shards: vLLM may load them instead of your fine-tune.',
  },
  'weights.unindexed-shards': {
    severity: 'error',
    description: 'Several safetensors files without a model.safetensors.index.json.',
  },
  'weights.float32': {
    severity: 'info',
    description:
      'Weights stored in F32/F64: vLLM casts them to 16-bit on load, so the upload is twice as large as needed.',
  },
  'weights.duplicate-tensor': {
    severity: 'error',
    description: 'The same tensor name appears in more than one weight file.',
  },
  ...SAFETENSORS_RULES,

  // Sharded index
  'index.invalid': {
    severity: 'error',
    description: 'The *.index.json is not JSON, too large, or has no weight_map of strings.',
  },
  'index.metadata-missing': {
    severity: 'warning',
    description: 'The index has no metadata.total_size (older transformers raise KeyError).',
  },
  'index.unsafe-path': {
    severity: 'error',
    description: 'The index names a shard by an absolute path or with "..".',
  },
  'index.subfolder-shard': {
    severity: 'warning',
    description: 'The index names a shard in a subfolder (older vLLM cannot load it).',
  },
  'index.missing-shard': {
    severity: 'error',
    description: 'A shard the index references (or the -of-N naming implies) is not in the folder.',
  },
  'index.tensor-not-in-shard': {
    severity: 'error',
    description: "A tensor the index maps to a shard is not in that shard's header.",
  },
  'index.unlisted-tensor': {
    severity: 'error',
    description: 'A shard holds a tensor the index does not map to it (stale index).',
  },
  'index.total-size-mismatch': {
    severity: 'warning',
    description: "metadata.total_size differs from the sum of the shards' tensor bytes.",
  },
  'index.unlisted-file': {
    severity: 'warning',
    description: 'A *.safetensors file the index does not list (ignored by loaders).',
  },

  // Tensors vs config
  'tensors.training-prefix': {
    severity: 'error',
    description:
      'Tensor names carry base_model.model., lora_, module. or _orig_mod. (unmerged adapter / raw checkpoint).',
  },
  'tensors.missing': {
    severity: 'error',
    description: 'A tensor the architecture needs (per config.json) is absent.',
  },
  'tensors.lm-head-missing': {
    severity: 'error',
    description: 'tie_word_embeddings is false but the checkpoint has no lm_head.weight.',
  },
  'tensors.shape-mismatch': {
    severity: 'error',
    description: 'A tensor shape disagrees with config.json (hidden size, heads, head_dim, MLP, experts).',
  },
  'tensors.vocab-mismatch': {
    severity: 'error',
    description: 'The embedding rows differ from config.vocab_size (resized embeddings, stale config).',
  },
  'tensors.layer-count': {
    severity: 'error',
    description: 'Layer indices in the checkpoint differ from num_hidden_layers.',
  },
  'tensors.unexpected': {
    severity: 'warning',
    description: 'Tensors the architecture does not use (loaders ignore or reject them).',
  },

  // Quantization
  'quantization.side-file': {
    severity: 'error',
    description: 'quantize_config.json / quant_config.json / hf_quant_config.json / *.gguf present.',
  },
  'quantization.tensors': {
    severity: 'error',
    description:
      'Quantized tensor names (qweight, scales, absmax, weight_scale …) or low-precision weight dtypes.',
  },
  'quantization.dequantized-native': {
    severity: 'warning',
    description:
      'A natively quantized family (gpt-oss) saved dequantized: serving support depends on vLLM version.',
  },

  // Tokenizer, chat template, generation config, processor
  'tokenizer.missing': {
    severity: 'error',
    description: 'No tokenizer.json / tokenizer.model and tokenizer_config.json.',
  },
  'tokenizer.config-missing': { severity: 'error', description: 'tokenizer_config.json is missing.' },
  'tokenizer.json-required': {
    severity: 'error',
    description: 'A BPE family (Llama-3/4, Qwen, DeepSeek, Phi-4, gpt-oss, Nemo) without tokenizer.json.',
  },
  'tokenizer.tiktoken-model': {
    severity: 'error',
    description: "tokenizer.model is a tiktoken rank file (from Llama's original/), not SentencePiece.",
  },
  'tokenizer.invalid': {
    severity: 'error',
    description: 'tokenizer_config.json or tokenizer.json is not valid JSON or too large.',
  },
  'tokenizer.vocab-out-of-range': {
    severity: 'error',
    description: 'The tokenizer has token ids ≥ config.vocab_size (CUDA index errors at runtime).',
  },
  'tokenizer.chat-template-missing': {
    severity: 'warning',
    description: 'No chat template: /chat/completions returns 400 (error when chat is required).',
  },
  'tokenizer.chat-template-conflict': {
    severity: 'warning',
    description: 'The inline chat_template and chat_template.jinja differ.',
  },
  'generation-config.missing': {
    severity: 'warning',
    description: 'No generation_config.json: stop tokens and sampling defaults fall back to the server.',
  },
  'generation-config.invalid': {
    severity: 'warning',
    description: 'generation_config.json is not valid JSON.',
  },
  'generation-config.token-out-of-range': {
    severity: 'error',
    description: 'generation_config.json bos/eos/pad ids are ≥ vocab_size.',
  },
  'generation-config.eos-mismatch': {
    severity: 'warning',
    description: 'generation_config.json and config.json disagree on eos_token_id.',
  },
  'processor.missing': {
    severity: 'error',
    description: 'A multimodal architecture without preprocessor_config.json (vLLM fails at startup).',
  },

  // Sizing and machine choice
  'sizing.no-fit': {
    severity: 'error',
    description: 'No single-node Vertex machine shape can hold the weights and KV cache.',
  },
  'sizing.context-clamped': {
    severity: 'info',
    description: "The target context exceeds the model's max_position_embeddings and was reduced.",
  },
  'sizing.unavailable': {
    severity: 'info',
    description: 'Sizing was skipped because the config or weights could not be read.',
  },
  'machine.unknown': {
    severity: 'error',
    description: 'The chosen machine type / accelerator / count is not a Vertex shape in the machine table.',
  },
  'machine.tensor-parallel': {
    severity: 'error',
    description: "The chosen GPU count is not a valid tensor-parallel size for the model's heads.",
  },
  'machine.insufficient-memory': {
    severity: 'error',
    description: 'The chosen machine cannot hold the weights plus the KV cache for the target context.',
  },
  'machine.kernel-caveat': {
    severity: 'info',
    description:
      'MXFP4 / block-FP8 kernels target Hopper GPUs (H100/H200); other GPUs depend on vLLM fallbacks.',
  },
  'machine.multihost-unsupported': {
    severity: 'error',
    description:
      'multihostGpuNodeCount on a machine other than a3-highgpu-8g, a3-megagpu-8g, a3-ultragpu-8g, a4-highgpu-8g (UNCONFIRMED list).',
  },
  'machine.gpu-partition-count': {
    severity: 'error',
    description: 'gpuPartitionSize (a MIG partition) with more than one accelerator.',
  },

  // Deployment settings (checked when the deployment's settings are given)
  'capacity.spot-reservation': {
    severity: 'error',
    description: 'Spot VMs with a SPECIFIC_RESERVATION reservation (spot VMs cannot consume reservations).',
  },
  'replicas.scale-to-zero-min': {
    severity: 'error',
    description: 'replicas.scaleToZero with replicas.min above 0.',
  },
  'replicas.autoscaling-target': {
    severity: 'error',
    description: 'An autoscaling target out of range: duty cycle and CPU 1–100 %, request_count at least 1.',
  },
  'replicas.autoscaling-fixed': {
    severity: 'warning',
    description: 'Autoscaling metrics with replicas.max equal to replicas.min (nothing to scale).',
  },

  // vLLM arguments of the serving container (container.args) against the model and machine
  'vllm.invalid-argument': {
    severity: 'error',
    description:
      'A checked vLLM flag has a value vLLM refuses (not a number, --dtype bf16, a memory fraction outside (0, 1]).',
  },
  'vllm.max-model-len-exceeds-model': {
    severity: 'error',
    description:
      "--max-model-len beyond the model's maximum (max_position_embeddings with its RoPE scaling); a warning with VLLM_ALLOW_LONG_MAX_MODEL_LEN.",
  },
  'vllm.max-model-len-exceeds-kv-cache': {
    severity: 'error',
    description:
      '--max-model-len (or, without it, the model maximum) needs more KV cache than the GPUs keep after the weights.',
  },
  'vllm.parallel-size': {
    severity: 'error',
    description:
      'Tensor × pipeline (× data) parallel size differs from the GPUs per replica × hosts (a warning when GPUs sit idle).',
  },
  'vllm.tensor-parallel-heads': {
    severity: 'error',
    description: "--tensor-parallel-size does not divide the model's attention / KV heads.",
  },
  'vllm.batched-tokens': {
    severity: 'warning',
    description:
      '--max-num-batched-tokens below the max model length without chunked prefill (V0 refuses to start; error with VLLM_USE_V1=0).',
  },
  'vllm.quantization': {
    severity: 'error',
    description:
      '--quantization the weights or GPU cannot take: a pre-quantized format on 16-bit weights, unknown, FP8 below compute capability 8.0.',
  },
  'vllm.dtype-unsupported': {
    severity: 'error',
    description: '--dtype bfloat16 on a GPU below compute capability 8.0 (T4, V100).',
  },
  'vllm.dtype-auto-bfloat16': {
    severity: 'warning',
    description: '--dtype auto (the default) with bfloat16 weights on a GPU without bfloat16 (T4, V100).',
  },
} as const satisfies Record<string, RuleDefinition>;

export type RuleId = keyof typeof RULES;

export function isRuleId(value: string): value is RuleId {
  return Object.prototype.hasOwnProperty.call(RULES, value);
}

/** The rule id of a safetensors header problem. */
export function headerRule(code: HeaderProblemCode): RuleId {
  return `safetensors.${code}`;
}
