/**
 * The broken variants the generator can produce, one per run, each the shape of a failure people
 * really hit (hf-weights.md §7), with what a correct validator must report about it.
 */

export const SAMPLE_VARIANTS = {
  valid: {
    description: 'a complete, consistent model folder',
    expectedFinding: 'no errors (a tiny model may still get informational sizing notes)',
  },
  'missing-tokenizer': {
    description:
      'tokenizer.json, tokenizer.model, tokenizer_config.json and special_tokens_map.json left out',
    expectedFinding: 'error: no tokenizer files; copy them from the base model',
  },
  'missing-shard': {
    description: 'the last shard named in model.safetensors.index.json was never uploaded',
    expectedFinding: 'error: the index references a shard that is not in the folder (named)',
  },
  'index-missing-tensor': {
    description: 'the index lists a tensor that its shard does not contain (stale index)',
    expectedFinding:
      'error: tensor listed in the index is not in that shard’s header (and the model lacks it)',
  },
  'truncated-shard': {
    description: 'the last shard stops halfway through its tensor data (interrupted upload)',
    expectedFinding: 'error: shard is truncated: 8 + header + data end ≠ object size',
  },
  'corrupt-header': {
    description: 'the first shard’s JSON header is overwritten with non-JSON bytes (length prefix intact)',
    expectedFinding: 'error: safetensors header is not valid JSON',
  },
  'quantized-config': {
    description: 'config.json carries a GPTQ quantization_config',
    expectedFinding: 'error: quantized checkpoint (quant_method=gptq); upload unquantized weights',
  },
  'unsupported-architecture': {
    description: 'config.json declares FalconForCausalLM / falcon',
    expectedFinding: 'error: architecture not accepted by Vertex custom weights (lists the supported ones)',
  },
  'shape-mismatch': {
    description: 'layer 0’s k_proj has twice the rows the config’s KV heads imply',
    expectedFinding: 'error: tensor shape disagrees with config.json (expected vs found)',
  },
  'nested-folder': {
    description: 'the whole model sits one folder down, under checkpoint-100/',
    expectedFinding: 'error: no config.json at the prefix; suggests the checkpoint-100/ prefix',
  },
  'peft-adapter': {
    description:
      'a LoRA adapter folder: adapter_config.json + adapter_model.safetensors, no config.json or weights',
    expectedFinding: 'error: PEFT/LoRA adapter, not a merged model; merge and re-upload',
  },
  'bin-and-safetensors': {
    description: 'a pytorch_model.bin beside the safetensors shards',
    expectedFinding: 'warning: both .bin and .safetensors weights; only safetensors will be used',
  },
  'stray-consolidated': {
    description: 'Mistral-native consolidated.safetensors and params.json beside the HF shards',
    expectedFinding: 'warning: consolidated*.safetensors may be loaded instead of the fine-tuned shards',
  },
  'no-chat-template': {
    description: 'tokenizer_config.json without chat_template and no chat_template.jinja',
    expectedFinding: 'warning: no chat template; /chat/completions will fail',
  },
  'rope-parameters': {
    description:
      'a transformers-v5 config.json: rope_parameters instead of rope_theta, dtype instead of torch_dtype',
    expectedFinding: 'warning: rope_parameters without top-level rope_theta (older serving stacks ignore it)',
  },
  'missing-lm-head': {
    description: 'tie_word_embeddings is false but lm_head.weight was not saved',
    expectedFinding: 'error: lm_head.weight missing while embeddings are untied',
  },
  'vocab-mismatch': {
    description: 'embeddings and lm_head resized by 64 rows while config.json keeps the old vocab_size',
    expectedFinding: 'error: embed_tokens rows ≠ config.vocab_size; update vocab_size consistently',
  },
  'tokenizer-exceeds-vocab': {
    description: 'config.json vocab_size (and the embeddings) smaller than the tokenizer’s highest id + 1',
    expectedFinding: 'error: tokenizer ids reach beyond vocab_size (CUDA index errors at runtime)',
  },
} as const satisfies Record<string, { description: string; expectedFinding: string }>;

export type SampleVariant = keyof typeof SAMPLE_VARIANTS;

export const SAMPLE_VARIANT_NAMES = Object.keys(SAMPLE_VARIANTS) as SampleVariant[];
