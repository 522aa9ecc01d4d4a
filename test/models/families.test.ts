import { describe, expect, it } from 'vitest';
import {
  MODEL_FAMILIES,
  closestSupportedModel,
  detectFamily,
  getFamily,
  readModelDims,
} from '../../src/models';
import * as real from './real-configs';

describe('detectFamily on real config.json files', () => {
  const cases: Array<[string, unknown, string]> = [
    ['Llama-3.1-8B', real.LLAMA_3_1_8B, 'llama'],
    ['Llama-2-7B', real.LLAMA_2_7B, 'llama'],
    ['Llama-4-Scout', real.LLAMA_4_SCOUT, 'llama4'],
    ['Mistral-7B-v0.1', real.MISTRAL_7B_V0_1, 'mistral'],
    ['Mistral-Nemo-Base-2407', real.MISTRAL_NEMO_BASE_2407, 'mistral'],
    ['Mixtral-8x7B', real.MIXTRAL_8X7B, 'mixtral'],
    ['Qwen2.5-7B', real.QWEN2_5_7B, 'qwen2'],
    ['Qwen3-8B', real.QWEN3_8B, 'qwen3'],
    ['Qwen3-Coder-480B', real.QWEN3_CODER_480B, 'qwen3-moe'],
    ['Qwen3-Next-80B', real.QWEN3_NEXT_80B_A3B, 'qwen3-next'],
    ['Gemma-2-9B', real.GEMMA_2_9B, 'gemma2'],
    ['Gemma-3-1B', real.GEMMA_3_1B, 'gemma3-text'],
    ['Gemma-3-4B-it', real.GEMMA_3_4B_IT, 'gemma3'],
    ['Phi-4-reasoning', real.PHI_4_REASONING, 'phi3'],
    ['gpt-oss-20b', real.GPT_OSS_20B, 'gpt-oss'],
    ['DeepSeek-V3', real.DEEPSEEK_V3, 'deepseek-v3'],
  ];
  it.each(cases)('%s → %s', (_name, config, family) => {
    const detection = detectFamily(config);
    expect(detection.ok && detection.family.id).toBe(family);
  });

  it('hands back text_config as the text parameters of multimodal roots', () => {
    const detection = detectFamily(real.GEMMA_3_4B_IT);
    expect(detection.ok && detection.textConfig).toBe(real.GEMMA_3_4B_IT.text_config);
  });
});

describe('detectFamily rejections say what is wrong and what to do', () => {
  it('a base model without LM head points at the causal-LM class', () => {
    const detection = detectFamily({ ...real.QWEN2_5_7B, architectures: ['Qwen2Model'] });
    expect(detection).toMatchObject({ ok: false, reason: 'no-lm-head', architecture: 'Qwen2Model' });
    expect(!detection.ok && detection.message).toMatch(/Qwen2ForCausalLM/);
  });

  it('classification heads', () => {
    const detection = detectFamily({
      ...real.LLAMA_3_1_8B,
      architectures: ['LlamaForSequenceClassification'],
    });
    expect(detection).toMatchObject({ ok: false, reason: 'classification-head' });
  });

  it('PEFT adapters', () => {
    const detection = detectFamily({ ...real.LLAMA_3_1_8B, architectures: ['PeftModelForCausalLM'] });
    expect(detection).toMatchObject({ ok: false, reason: 'peft-adapter' });
    expect(!detection.ok && detection.message).toMatch(/merge/);
  });

  it('missing or empty architectures', () => {
    const { architectures: _omit, ...noArchitectures } = real.LLAMA_3_1_8B;
    expect(detectFamily(noArchitectures)).toMatchObject({ ok: false, reason: 'missing-architectures' });
    expect(detectFamily({ ...real.LLAMA_3_1_8B, architectures: [] })).toMatchObject({
      ok: false,
      reason: 'missing-architectures',
    });
  });

  it('architectures and model_type that disagree', () => {
    const detection = detectFamily({ ...real.LLAMA_3_1_8B, model_type: 'mistral' });
    expect(detection).toMatchObject({ ok: false, reason: 'model-type-mismatch' });
    expect(!detection.ok && detection.message).toMatch(/model_type="llama"/);
  });

  it('an architecture Vertex does not accept lists the supported ones', () => {
    const detection = detectFamily({ architectures: ['FalconForCausalLM'], model_type: 'falcon' });
    expect(detection).toMatchObject({ ok: false, reason: 'unsupported-architecture' });
    expect(!detection.ok && detection.message).toMatch(/LlamaForCausalLM/);
  });

  it('a multimodal root without text_config', () => {
    const { text_config: _omit, ...noText } = real.GEMMA_3_4B_IT;
    expect(detectFamily(noText)).toMatchObject({ ok: false, reason: 'missing-text-config' });
  });

  it('not an object', () => {
    expect(detectFamily([1, 2])).toMatchObject({ ok: false, reason: 'not-an-object' });
  });
});

describe('family table', () => {
  it('names the native release quantization of gpt-oss and DeepSeek only', () => {
    const native = MODEL_FAMILIES.filter((f) => f.nativeQuantization).map((f) => [
      f.id,
      f.nativeQuantization!.method,
    ]);
    expect(native).toEqual([
      ['deepseek-v3', 'fp8'],
      ['gpt-oss', 'mxfp4'],
    ]);
  });

  it('marks the multimodal roots and their tokenizer kinds', () => {
    expect(MODEL_FAMILIES.filter((f) => f.multimodal).map((f) => f.id)).toEqual(['llama4', 'gemma3']);
    expect(getFamily('qwen3').tokenizers).toEqual(['bpe']);
    expect(getFamily('gemma2').tokenizers).toEqual(['sentencepiece']);
  });

  it('each architecture belongs to one family', () => {
    const all = MODEL_FAMILIES.flatMap((f) => f.architectures);
    expect(new Set(all).size).toBe(all.length);
  });
});

describe('closestSupportedModel', () => {
  it('names the exact model for real configs', () => {
    const cases: Array<[unknown, string]> = [
      [real.LLAMA_3_1_8B, 'Llama-3.1-8B'],
      [real.LLAMA_2_7B, 'Llama-2-7B'],
      [real.MISTRAL_NEMO_BASE_2407, 'Mistral-Nemo-Base-2407'],
      [real.GEMMA_3_4B_IT, 'Gemma-3-4B / MedGemma-4B'],
      [real.LLAMA_4_MAVERICK, 'Llama-4-Maverick-17B-128E'],
      [real.GPT_OSS_20B, 'gpt-oss-20b'],
      [real.PHI_4_REASONING, 'Phi-4-reasoning'],
    ];
    for (const [config, name] of cases) {
      const dims = readModelDims(config);
      expect(closestSupportedModel(dims.family!, dims)).toMatchObject({ exact: true, model: { name } });
    }
  });

  it('falls back to the nearest size for a resized fine-tune', () => {
    const dims = readModelDims({ ...real.LLAMA_3_1_8B, vocab_size: 128320 });
    expect(closestSupportedModel('llama', dims)).toMatchObject({
      exact: false,
      model: { name: 'Llama-3.1-8B' },
    });
    const deeper = readModelDims({
      ...real.LLAMA_3_1_8B,
      hidden_size: 8192,
      num_attention_heads: 64,
      num_hidden_layers: 78,
    });
    expect(closestSupportedModel('llama', deeper)?.model.name).toBe('Llama-3.1-70B');
  });
});
