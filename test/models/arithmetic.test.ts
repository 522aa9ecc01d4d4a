import { describe, expect, it } from 'vitest';
import {
  countParameters,
  expectedTensors,
  expectedWeightBytes,
  kvCacheBytesForSequence,
  kvCacheBytesPerToken,
  readModelDims,
  validTensorParallelSizes,
  weightBytesForParameters,
} from '../../src/models';
import * as real from './real-configs';

const KiB = 1024;

function params(config: unknown) {
  const dims = readModelDims(config);
  return countParameters(dims.family!, dims);
}

/** Published figures (hf-weights §3.3), to within 1%. */
describe('parameter counts match the published figures', () => {
  const cases: Array<[string, unknown, number]> = [
    ['Llama-2-7B', real.LLAMA_2_7B, 6.74e9],
    ['Llama-3.1-8B', real.LLAMA_3_1_8B, 8.03e9],
    ['Llama-3.2-1B', real.LLAMA_3_2_1B, 1.24e9],
    ['Mistral-7B-v0.1', real.MISTRAL_7B_V0_1, 7.24e9],
    ['Mistral-Nemo-Base-2407', real.MISTRAL_NEMO_BASE_2407, 12.2e9],
    ['Mixtral-8x7B', real.MIXTRAL_8X7B, 46.7e9],
    ['Qwen2.5-7B', real.QWEN2_5_7B, 7.62e9],
    ['Qwen2.5-0.5B', real.QWEN2_5_0_5B, 0.49e9],
    ['Qwen3-8B', real.QWEN3_8B, 8.19e9],
    ['Qwen3-Coder-480B', real.QWEN3_CODER_480B, 480e9],
    ['Gemma-2-9B', real.GEMMA_2_9B, 9.24e9],
    ['Gemma-3-1B', real.GEMMA_3_1B, 1.0e9],
    ['Phi-4-reasoning', real.PHI_4_REASONING, 14.7e9],
    ['gpt-oss-20b', real.GPT_OSS_20B, 20.9e9],
    ['DeepSeek-V3 (without MTP)', real.DEEPSEEK_V3, 671e9],
  ];
  it.each(cases)('%s', (_name, config, published) => {
    const { total } = params(config);
    expect(Math.abs(total / published - 1)).toBeLessThan(0.01);
  });

  it('Llama-4 Scout ≈ 108B text parameters, ≈ 17B active (plus a ≈1B vision tower not counted)', () => {
    const { total, active } = params(real.LLAMA_4_SCOUT);
    expect(Math.abs(total / 107.8e9 - 1)).toBeLessThan(0.01);
    expect(Math.abs(active / 17.2e9 - 1)).toBeLessThan(0.02);
  });

  it('Llama-4 Maverick ≈ 400B with MoE on every second layer', () => {
    expect(Math.abs(params(real.LLAMA_4_MAVERICK).total / 400e9 - 1)).toBeLessThan(0.01);
  });

  it('active parameters of MoE models', () => {
    expect(Math.abs(params(real.MIXTRAL_8X7B).active / 12.9e9 - 1)).toBeLessThan(0.01);
    // OpenAI's 3.6B leaves out the input embedding table (a lookup); we count it.
    const gptOssEmbedding = 201088 * 2880;
    expect(Math.abs((params(real.GPT_OSS_20B).active - gptOssEmbedding) / 3.6e9 - 1)).toBeLessThan(0.01);
    expect(Math.abs(params(real.QWEN3_CODER_480B).active / 35e9 - 1)).toBeLessThan(0.03);
    const next = params(real.QWEN3_NEXT_80B_A3B);
    expect(Math.abs(next.total / 80e9 - 1)).toBeLessThan(0.02);
    // "A3B": about 3B active outside the embedding and output tables.
    const nonEmbeddingActive = next.active - 2 * 151936 * 2048;
    expect(nonEmbeddingActive).toBeGreaterThan(2.5e9);
    expect(nonEmbeddingActive).toBeLessThan(3.5e9);
  });

  it('DeepSeek-V3 MTP layer adds ≈ 14B (685B in total)', () => {
    const { total, mtp } = params(real.DEEPSEEK_V3);
    expect(Math.abs((total + mtp) / 685e9 - 1)).toBeLessThan(0.01);
  });

  it('a tied model counts its embeddings once', () => {
    const tied = params(real.LLAMA_3_2_1B).total;
    const untied = params({ ...real.LLAMA_3_2_1B, tie_word_embeddings: false }).total;
    expect(untied - tied).toBe(128256 * 2048);
  });
});

describe('weight bytes', () => {
  it('Llama-3.1-8B in BF16 is 16.06 GB', () => {
    const dims = readModelDims(real.LLAMA_3_1_8B);
    const { tensors } = expectedTensors('llama', dims);
    expect(expectedWeightBytes(tensors, 'BF16')).toBe(countParameters('llama', dims).total * 2);
    expect(Math.round(expectedWeightBytes(tensors, 'BF16') / 1e7) / 100).toBe(16.06);
  });

  it('gpt-oss-20b as released (MXFP4 experts) is ≈ 13.8 GB, a third of BF16', () => {
    const dims = readModelDims(real.GPT_OSS_20B);
    const native = expectedTensors('gpt-oss', dims);
    expect(native.format).toBe('native');
    const bytes = expectedWeightBytes(native.tensors, 'BF16');
    expect(Math.abs(bytes / 13.8e9 - 1)).toBeLessThan(0.02);
    expect(weightBytesForParameters(countParameters('gpt-oss', dims).total, 'BF16') / bytes).toBeGreaterThan(
      3,
    );
  });

  it('DeepSeek-V3 as released (block FP8) is ≈ 688 GB with its MTP layer', () => {
    const dims = readModelDims(real.DEEPSEEK_V3);
    const { tensors } = expectedTensors('deepseek-v3', dims);
    const bytes = expectedWeightBytes(tensors, 'BF16', { includeOptional: true });
    expect(Math.abs(bytes / 688e9 - 1)).toBeLessThan(0.02);
  });

  it('sub-byte dtypes round up to whole bytes', () => {
    expect(weightBytesForParameters(3, 'F4')).toBe(2);
    expect(weightBytesForParameters(10, 'BF16')).toBe(20);
  });
});

describe('KV cache per token (BF16, upper bound)', () => {
  const cases: Array<[string, unknown, number]> = [
    ['Llama-2-7B', real.LLAMA_2_7B, 512 * KiB],
    ['Llama-3.1-8B', real.LLAMA_3_1_8B, 128 * KiB],
    ['Mistral-7B', real.MISTRAL_7B_V0_1, 128 * KiB],
    ['Mistral-Nemo', real.MISTRAL_NEMO_BASE_2407, 160 * KiB],
    ['Gemma-2-9B', real.GEMMA_2_9B, 336 * KiB],
    ['Gemma-3-1B', real.GEMMA_3_1B, 26 * KiB],
    ['Gemma-3-4B', real.GEMMA_3_4B_IT, 136 * KiB],
    ['Qwen2.5-7B', real.QWEN2_5_7B, 56 * KiB],
    ['Qwen3-8B', real.QWEN3_8B, 144 * KiB],
    ['Phi-4', real.PHI_4_REASONING, 200 * KiB],
    ['gpt-oss-20b', real.GPT_OSS_20B, 48 * KiB],
    ['Llama-4-Scout', real.LLAMA_4_SCOUT, 192 * KiB],
    ['Qwen3-Coder-480B', real.QWEN3_CODER_480B, 248 * KiB],
    ['Qwen3-Next (12 full-attention layers only)', real.QWEN3_NEXT_80B_A3B, 24 * KiB],
    ['DeepSeek-V3 (MLA latent: (512+64)·61·2)', real.DEEPSEEK_V3, 70272],
  ];
  it.each(cases)('%s', (_name, config, bytes) => {
    expect(kvCacheBytesPerToken(readModelDims(config))).toBe(bytes);
  });

  it('an FP8 KV cache halves it', () => {
    expect(kvCacheBytesPerToken(readModelDims(real.LLAMA_3_1_8B), { kvBytes: 1 })).toBe(64 * KiB);
  });
});

describe('KV cache of one sequence', () => {
  it('windowed layers keep at most their window (Gemma-2-9B at 8192 tokens)', () => {
    const dims = readModelDims(real.GEMMA_2_9B);
    const perLayerToken = 2 * 8 * 256 * 2;
    expect(kvCacheBytesForSequence(dims, 8192)).toBe((21 * 4096 + 21 * 8192) * perLayerToken);
    expect(kvCacheBytesForSequence(dims, 8192, { mode: 'upper-bound' })).toBe(
      kvCacheBytesPerToken(dims) * 8192,
    );
  });

  it('short contexts are not inflated to the window', () => {
    const dims = readModelDims(real.MISTRAL_7B_V0_1);
    expect(kvCacheBytesForSequence(dims, 100)).toBe(kvCacheBytesPerToken(dims) * 100);
    expect(kvCacheBytesForSequence(dims, 32768)).toBe(kvCacheBytesPerToken(dims) * 4096);
  });

  it('refuses a negative context', () => {
    expect(() => kvCacheBytesForSequence(readModelDims(real.MISTRAL_7B_V0_1), -1)).toThrow(RangeError);
  });
});

describe('valid tensor-parallel sizes (vLLM head divisibility)', () => {
  const cases: Array<[string, unknown, number[]]> = [
    ['Phi-4 (40 heads, 10 KV heads)', real.PHI_4_REASONING, [1, 2]],
    ['Qwen2.5-0.5B (14 heads)', real.QWEN2_5_0_5B, [1, 2]],
    ['Qwen2.5-7B (28 heads)', real.QWEN2_5_7B, [1, 2, 4]],
    ['Gemma-3-1B (4 heads, 1 KV head)', real.GEMMA_3_1B, [1, 2, 4]],
    ['Llama-3.1-8B', real.LLAMA_3_1_8B, [1, 2, 4, 8]],
    ['DeepSeek-V3', real.DEEPSEEK_V3, [1, 2, 4, 8]],
    ['Qwen3-Next', real.QWEN3_NEXT_80B_A3B, [1, 2, 4, 8]],
  ];
  it.each(cases)('%s', (_name, config, sizes) => {
    expect(validTensorParallelSizes(readModelDims(config))).toEqual(sizes);
  });

  it('accepts other candidate lists: 3 and 6 never divide 32 heads, 16 replicates the 8 KV heads', () => {
    expect(validTensorParallelSizes(readModelDims(real.LLAMA_3_1_8B), [3, 6, 16])).toEqual([16]);
  });
});
