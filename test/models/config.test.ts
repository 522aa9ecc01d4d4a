import { describe, expect, it } from 'vitest';
import { ModelConfigError, readModelDims } from '../../src/models';
import * as real from './real-configs';

describe('readModelDims', () => {
  it('reads Llama-3.1-8B', () => {
    const dims = readModelDims(real.LLAMA_3_1_8B);
    expect(dims).toMatchObject({
      family: 'llama',
      hiddenSize: 4096,
      numLayers: 32,
      numAttentionHeads: 32,
      numKeyValueHeads: 8,
      headDim: 128,
      intermediateSize: 14336,
      vocabSize: 128256,
      tieWordEmbeddings: false,
      maxPositionEmbeddings: 131072,
      dtype: 'BF16',
      ropeTheta: 500000,
      hasTopLevelRopeTheta: true,
      defaulted: [],
    });
    expect(dims.moe).toBeUndefined();
    expect(dims.layerTypes.every((t) => t === 'full_attention')).toBe(true);
  });

  it('uses head_dim as given instead of hidden/heads (Mistral-Nemo: 128, not 160)', () => {
    expect(readModelDims(real.MISTRAL_NEMO_BASE_2407).headDim).toBe(128);
  });

  it('keeps an explicit null sliding_window as "no window" rather than the class default', () => {
    const dims = readModelDims(real.MISTRAL_NEMO_BASE_2407);
    expect(dims.slidingWindow).toBeUndefined();
    expect(readModelDims(real.MISTRAL_7B_V0_1)).toMatchObject({ slidingWindow: 4096 });
  });

  it('treats sliding_window 0 as no window', () => {
    const dims = readModelDims({ ...real.MISTRAL_7B_V0_1, sliding_window: 0 });
    expect(dims.slidingWindow).toBeUndefined();
    expect(dims.layerTypes.every((t) => t === 'full_attention')).toBe(true);
  });

  it('falls back to num_attention_heads when num_key_value_heads is absent (Llama-2)', () => {
    expect(readModelDims(real.LLAMA_2_7B)).toMatchObject({
      numKeyValueHeads: 32,
      headDim: 128,
      dtype: 'F16',
    });
  });

  it('reads multimodal text parameters from text_config, filling Gemma3TextConfig defaults', () => {
    const dims = readModelDims(real.GEMMA_3_4B_IT);
    expect(dims).toMatchObject({
      family: 'gemma3',
      modelType: 'gemma3_text',
      hiddenSize: 2560,
      numLayers: 34,
      numAttentionHeads: 8,
      numKeyValueHeads: 4,
      headDim: 256,
      vocabSize: 262208,
      tieWordEmbeddings: true,
      slidingWindow: 1024,
    });
    expect(dims.defaulted).toEqual(
      expect.arrayContaining([
        'text_config.num_attention_heads',
        'text_config.head_dim',
        'text_config.vocab_size',
      ]),
    );
    // 5 local layers to 1 global.
    expect(dims.layerTypes.slice(0, 6)).toEqual([
      'sliding_attention',
      'sliding_attention',
      'sliding_attention',
      'sliding_attention',
      'sliding_attention',
      'full_attention',
    ]);
  });

  it('defaults tie_word_embeddings per class: true for Gemma-2, false for Mixtral', () => {
    expect(readModelDims(real.GEMMA_2_9B).tieWordEmbeddings).toBe(true);
    const { tie_word_embeddings: _omit, ...mixtral } = real.MIXTRAL_8X7B;
    expect(readModelDims(mixtral).tieWordEmbeddings).toBe(false);
  });

  it('alternates Gemma-2 and gpt-oss layers starting with a sliding one', () => {
    const gemma = readModelDims(real.GEMMA_2_9B);
    expect(gemma.layerTypes.slice(0, 3)).toEqual([
      'sliding_attention',
      'full_attention',
      'sliding_attention',
    ]);
    const gptOss = readModelDims(real.GPT_OSS_20B);
    expect(gptOss.layerTypes.filter((t) => t === 'sliding_attention')).toHaveLength(12);
    expect(gptOss.slidingWindow).toBe(128);
  });

  it('reads MoE fields per family', () => {
    expect(readModelDims(real.MIXTRAL_8X7B).moe).toMatchObject({
      numExperts: 8,
      expertsPerToken: 2,
      expertIntermediateSize: 14336,
    });
    const deepseek = readModelDims(real.DEEPSEEK_V3);
    expect(deepseek.moe).toMatchObject({
      numExperts: 256,
      expertsPerToken: 8,
      expertIntermediateSize: 2048,
      numSharedExperts: 1,
    });
    expect(deepseek.moe!.moeLayers[0]).toBe(3);
    expect(deepseek.moe!.moeLayers).toHaveLength(58);
    expect(deepseek.numMtpLayers).toBe(1);
    expect(deepseek.mla).toEqual({
      kvLoraRank: 512,
      qLoraRank: 1536,
      qkRopeHeadDim: 64,
      qkNopeHeadDim: 128,
      vHeadDim: 128,
    });
    const maverick = readModelDims(real.LLAMA_4_MAVERICK);
    expect(maverick.intermediateSize).toBe(16384);
    expect(maverick.moe!.moeLayers.slice(0, 3)).toEqual([1, 3, 5]);
    expect(maverick.moe!.expertIntermediateSize).toBe(8192);
  });

  it('treats Scout’s empty no_rope_layers like the default: every 4th layer global, others chunked', () => {
    const dims = readModelDims(real.LLAMA_4_SCOUT);
    expect(dims.layerTypes.slice(0, 4)).toEqual([
      'chunked_attention',
      'chunked_attention',
      'chunked_attention',
      'full_attention',
    ]);
    expect(dims.slidingWindow).toBe(8192);
    expect(dims.maxPositionEmbeddings).toBe(10485760);
  });

  it('marks Qwen3-Next linear-attention layers (3 of 4)', () => {
    const dims = readModelDims(real.QWEN3_NEXT_80B_A3B);
    expect(dims.layerTypes.filter((t) => t === 'full_attention')).toHaveLength(12);
    expect(dims.linearAttention).toEqual({
      numKeyHeads: 16,
      numValueHeads: 32,
      keyHeadDim: 128,
      valueHeadDim: 128,
      convKernelSize: 4,
    });
  });

  it('finds quantization_config at the root or in text_config', () => {
    expect(readModelDims(real.GPT_OSS_20B).quantization).toMatchObject({ location: 'root', method: 'mxfp4' });
    const nested = {
      ...real.GEMMA_3_4B_IT,
      text_config: {
        ...real.GEMMA_3_4B_IT.text_config,
        quantization_config: { quant_method: 'AWQ', bits: 4 },
      },
    };
    expect(readModelDims(nested).quantization).toMatchObject({ location: 'text_config', method: 'awq' });
  });

  it('accepts the transformers-v5 form: dtype and rope_parameters', () => {
    const { torch_dtype: _t, rope_theta: _r, rope_scaling: _s, ...rest } = real.LLAMA_3_1_8B;
    const v5 = {
      ...rest,
      dtype: 'bfloat16',
      rope_parameters: { rope_theta: 500000, rope_type: 'llama3', factor: 8 },
    };
    expect(readModelDims(v5)).toMatchObject({
      dtype: 'BF16',
      dtypeName: 'bfloat16',
      ropeTheta: 500000,
      hasTopLevelRopeTheta: false,
      ropeParameters: { rope_type: 'llama3' },
    });
  });

  it('rejects out-of-range or mistyped fields with the field name', () => {
    const bad = { ...real.LLAMA_3_1_8B, hidden_size: -4096, num_hidden_layers: '32' };
    let error: unknown;
    try {
      readModelDims(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ModelConfigError);
    const issues = (error as ModelConfigError).issues.join('\n');
    expect(issues).toMatch(/^hidden_size: /m);
    expect(issues).toMatch(/^num_hidden_layers: /m);
  });

  it('rejects absurd sizes instead of computing with them', () => {
    expect(() => readModelDims({ ...real.LLAMA_3_1_8B, vocab_size: 1e12 })).toThrow(/vocab_size/);
  });

  it('rejects kv heads that do not divide the query heads', () => {
    expect(() => readModelDims({ ...real.LLAMA_3_1_8B, num_key_value_heads: 5 })).toThrow(
      /num_key_value_heads \(5\)/,
    );
  });

  it('rejects hidden sizes that do not split into heads when head_dim is absent', () => {
    expect(() => readModelDims({ ...real.LLAMA_3_1_8B, hidden_size: 4100 })).toThrow(/head_dim/);
  });
});
