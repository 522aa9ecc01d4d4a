import { describe, expect, it } from 'vitest';
import { type ExpectedTensor, detectLayout, expectedTensors, readModelDims } from '../../src/models';
import * as real from './real-configs';

/** A real config shrunk to two layers (and few experts) so exact listings stay readable. */
function tiny<T extends Record<string, unknown>>(config: T, overrides: Record<string, unknown> = {}): T {
  return { ...config, num_hidden_layers: 2, ...overrides };
}

function byName(tensors: readonly ExpectedTensor[]): Map<string, ExpectedTensor> {
  return new Map(tensors.map((t) => [t.name, t]));
}

function shapes(
  tensors: readonly ExpectedTensor[],
  filter: (t: ExpectedTensor) => boolean = (t) => t.required,
) {
  return Object.fromEntries(tensors.filter(filter).map((t) => [t.name, t.shape]));
}

describe('expectedTensors: exact names and shapes', () => {
  it('Llama-3.1-8B: one layer in full', () => {
    const { tensors } = expectedTensors('llama', readModelDims(tiny(real.LLAMA_3_1_8B)));
    const layer0 = shapes(tensors, (t) => t.required && t.name.startsWith('model.layers.0.'));
    expect(layer0).toEqual({
      'model.layers.0.input_layernorm.weight': [4096],
      'model.layers.0.post_attention_layernorm.weight': [4096],
      'model.layers.0.self_attn.q_proj.weight': [4096, 4096],
      'model.layers.0.self_attn.k_proj.weight': [1024, 4096],
      'model.layers.0.self_attn.v_proj.weight': [1024, 4096],
      'model.layers.0.self_attn.o_proj.weight': [4096, 4096],
      'model.layers.0.mlp.gate_proj.weight': [14336, 4096],
      'model.layers.0.mlp.up_proj.weight': [14336, 4096],
      'model.layers.0.mlp.down_proj.weight': [4096, 14336],
    });
    const map = byName(tensors);
    expect(map.get('model.embed_tokens.weight')?.shape).toEqual([128256, 4096]);
    expect(map.get('model.norm.weight')?.shape).toEqual([4096]);
    expect(map.get('lm_head.weight')).toMatchObject({ shape: [128256, 4096], required: true });
    expect(map.get('model.layers.0.self_attn.rotary_emb.inv_freq')).toMatchObject({
      required: false,
      parameters: 0,
    });
    expect(tensors.filter((t) => t.required)).toHaveLength(2 + 9 * 2 + 1);
  });

  it('tied embeddings make lm_head optional (Llama-3.2-1B)', () => {
    const { tensors } = expectedTensors('llama', readModelDims(tiny(real.LLAMA_3_2_1B)));
    expect(byName(tensors).get('lm_head.weight')).toMatchObject({ required: false, parameters: 0 });
  });

  it('Qwen2 biases q/k/v but not o', () => {
    const map = byName(expectedTensors('qwen2', readModelDims(tiny(real.QWEN2_5_7B))).tensors);
    expect(map.get('model.layers.1.self_attn.q_proj.bias')?.shape).toEqual([3584]);
    expect(map.get('model.layers.1.self_attn.k_proj.bias')?.shape).toEqual([512]);
    expect(map.get('model.layers.1.self_attn.v_proj.bias')?.shape).toEqual([512]);
    expect(map.has('model.layers.1.self_attn.o_proj.bias')).toBe(false);
  });

  it('Qwen3 has per-head q/k norms and no biases', () => {
    const map = byName(expectedTensors('qwen3', readModelDims(tiny(real.QWEN3_8B))).tensors);
    expect(map.get('model.layers.0.self_attn.q_norm.weight')?.shape).toEqual([128]);
    expect(map.get('model.layers.0.self_attn.k_norm.weight')?.shape).toEqual([128]);
    expect([...map.keys()].some((n) => n.endsWith('.bias'))).toBe(false);
  });

  it('Gemma-2 has four norms per layer and tied embeddings', () => {
    const { tensors } = expectedTensors('gemma2', readModelDims(tiny(real.GEMMA_2_9B)));
    const norms = tensors.filter((t) => t.name.startsWith('model.layers.0.') && t.name.includes('layernorm'));
    expect(norms.map((t) => t.name.split('.')[3]).sort()).toEqual([
      'input_layernorm',
      'post_attention_layernorm',
      'post_feedforward_layernorm',
      'pre_feedforward_layernorm',
    ]);
    expect(byName(tensors).get('model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([4096, 3584]);
    expect(byName(tensors).get('lm_head.weight')?.required).toBe(false);
  });

  it('Gemma-3 multimodal text weights under either prefix generation, with detectLayout', () => {
    const dims = readModelDims(
      tiny(real.GEMMA_3_4B_IT, { text_config: { ...real.GEMMA_3_4B_IT.text_config, num_hidden_layers: 2 } }),
    );
    const legacy = expectedTensors('gemma3', dims);
    expect(legacy.layout.id).toBe('multimodal-legacy');
    expect(
      byName(legacy.tensors).get('language_model.model.layers.1.self_attn.k_norm.weight')?.shape,
    ).toEqual([256]);
    expect(byName(legacy.tensors).get('language_model.model.embed_tokens.weight')?.shape).toEqual([
      262208, 2560,
    ]);
    const modern = expectedTensors('gemma3', dims, { layout: 'multimodal' });
    expect(byName(modern.tensors).has('model.language_model.layers.0.mlp.down_proj.weight')).toBe(true);
    expect(legacy.auxiliaryPrefixes).toContain('vision_tower.');
    expect(
      detectLayout('gemma3', ['model.language_model.embed_tokens.weight', 'model.vision_tower.x']).id,
    ).toBe('multimodal');
    expect(detectLayout('gemma3', ['language_model.model.embed_tokens.weight']).id).toBe('multimodal-legacy');
  });

  it('Phi-3/Phi-4 fuse qkv and gate_up', () => {
    const map = byName(expectedTensors('phi3', readModelDims(tiny(real.PHI_4_REASONING))).tensors);
    expect(map.get('model.layers.0.self_attn.qkv_proj.weight')?.shape).toEqual([(40 + 2 * 10) * 128, 5120]);
    expect(map.get('model.layers.0.mlp.gate_up_proj.weight')?.shape).toEqual([2 * 17920, 5120]);
    expect(map.get('model.layers.0.mlp.down_proj.weight')?.shape).toEqual([5120, 17920]);
    expect(map.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
  });

  it('Mixtral experts under block_sparse_moe with w1/w2/w3', () => {
    const { tensors } = expectedTensors('mixtral', readModelDims(tiny(real.MIXTRAL_8X7B)));
    const map = byName(tensors);
    expect(map.get('model.layers.0.block_sparse_moe.gate.weight')?.shape).toEqual([8, 4096]);
    expect(map.get('model.layers.0.block_sparse_moe.experts.7.w1.weight')).toMatchObject({
      shape: [14336, 4096],
      routedExpert: true,
    });
    expect(map.get('model.layers.0.block_sparse_moe.experts.7.w2.weight')?.shape).toEqual([4096, 14336]);
    expect(map.get('model.layers.0.block_sparse_moe.experts.7.w3.weight')?.shape).toEqual([14336, 4096]);
    expect(map.has('model.layers.0.mlp.gate_proj.weight')).toBe(false);
  });

  it('Qwen3-MoE experts and router', () => {
    const dims = readModelDims(tiny(real.QWEN3_CODER_480B, { num_experts: 4 }));
    const map = byName(expectedTensors('qwen3-moe', dims).tensors);
    expect(map.get('model.layers.0.mlp.gate.weight')?.shape).toEqual([4, 6144]);
    expect(map.get('model.layers.0.mlp.experts.3.down_proj.weight')?.shape).toEqual([6144, 2560]);
    expect(map.get('model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([96 * 128, 6144]);
  });

  it('gpt-oss native MXFP4: U8 blocks and scales, BF16 biases, sinks', () => {
    const dims = readModelDims(
      tiny(real.GPT_OSS_20B, { layer_types: ['sliding_attention', 'full_attention'] }),
    );
    const { tensors, format } = expectedTensors('gpt-oss', dims);
    expect(format).toBe('native');
    const map = byName(tensors);
    const x = 'model.layers.0.mlp.experts.';
    expect(map.get(`${x}gate_up_proj_blocks`)).toMatchObject({ shape: [32, 5760, 90, 16], dtype: 'U8' });
    expect(map.get(`${x}gate_up_proj_scales`)).toMatchObject({
      shape: [32, 5760, 90],
      dtype: 'U8',
      parameters: 0,
    });
    expect(map.get(`${x}down_proj_blocks`)).toMatchObject({ shape: [32, 2880, 90, 16], dtype: 'U8' });
    expect(map.get(`${x}down_proj_scales`)?.shape).toEqual([32, 2880, 90]);
    expect(map.get(`${x}gate_up_proj_bias`)).toMatchObject({ shape: [32, 5760] });
    expect(map.get(`${x}gate_up_proj_bias`)?.dtype).toBeUndefined();
    expect(map.get(`${x}down_proj_bias`)?.shape).toEqual([32, 2880]);
    expect(map.get('model.layers.0.mlp.router.weight')?.shape).toEqual([32, 2880]);
    expect(map.get('model.layers.0.mlp.router.bias')?.shape).toEqual([32]);
    expect(map.get('model.layers.0.self_attn.sinks')?.shape).toEqual([64]);
    expect(map.get('model.layers.0.self_attn.o_proj.bias')?.shape).toEqual([2880]);
    const float = byName(expectedTensors('gpt-oss', dims, { format: 'float' }).tensors);
    expect(float.get(`${x}gate_up_proj`)?.shape).toEqual([32, 2880, 5760]);
    expect(float.get(`${x}down_proj`)?.shape).toEqual([32, 2880, 2880]);
  });

  it('DeepSeek-V3 native FP8: MLA projections with 128×128 weight_scale_inv, dense first layers, MTP layer', () => {
    const dims = readModelDims(
      tiny(real.DEEPSEEK_V3, { num_hidden_layers: 4, n_routed_experts: 2, first_k_dense_replace: 3 }),
    );
    const map = byName(expectedTensors('deepseek-v3', dims).tensors);
    const a = 'model.layers.0.self_attn.';
    expect(map.get(`${a}q_a_proj.weight`)).toMatchObject({ shape: [1536, 7168], dtype: 'F8_E4M3' });
    expect(map.get(`${a}q_a_proj.weight_scale_inv`)).toMatchObject({ shape: [12, 56], dtype: 'F32' });
    expect(map.get(`${a}q_b_proj.weight`)?.shape).toEqual([128 * 192, 1536]);
    expect(map.get(`${a}kv_a_proj_with_mqa.weight`)?.shape).toEqual([576, 7168]);
    expect(map.get(`${a}kv_a_proj_with_mqa.weight_scale_inv`)?.shape).toEqual([5, 56]);
    expect(map.get(`${a}kv_b_proj.weight`)?.shape).toEqual([128 * 256, 512]);
    expect(map.get(`${a}o_proj.weight`)?.shape).toEqual([7168, 128 * 128]);
    expect(map.get(`${a}kv_a_layernorm.weight`)?.shape).toEqual([512]);
    expect(map.get('model.layers.2.mlp.gate_proj.weight')?.shape).toEqual([18432, 7168]);
    expect(map.get('model.layers.3.mlp.gate.weight')).toMatchObject({ shape: [2, 7168] });
    expect(map.get('model.layers.3.mlp.gate.weight')?.dtype).toBeUndefined();
    expect(map.get('model.layers.3.mlp.experts.1.up_proj.weight')?.shape).toEqual([2048, 7168]);
    expect(map.get('model.layers.3.mlp.shared_experts.down_proj.weight')?.shape).toEqual([7168, 2048]);
    expect(map.get('model.layers.4.eh_proj.weight')).toMatchObject({
      shape: [7168, 14336],
      required: false,
      mtp: true,
    });
    expect(map.get('model.layers.4.mlp.experts.0.gate_proj.weight')).toMatchObject({
      required: false,
      mtp: true,
    });
    expect(map.get('model.embed_tokens.weight')?.dtype).toBeUndefined();
    expect(map.get('lm_head.weight')?.dtype).toBeUndefined();
  });

  it('Llama-4: fused 3-D experts, router and shared expert under feed_forward, dense layers when interleaved', () => {
    const text = { ...real.LLAMA_4_MAVERICK.text_config, num_hidden_layers: 2, num_local_experts: 4 };
    const dims = readModelDims({ ...real.LLAMA_4_MAVERICK, text_config: text });
    const { tensors, layout } = expectedTensors('llama4', dims);
    const map = byName(tensors);
    const p = layout.modelPrefix;
    expect(p).toBe('language_model.model.');
    expect(map.get(`${p}layers.0.feed_forward.gate_proj.weight`)?.shape).toEqual([16384, 5120]);
    expect(map.get(`${p}layers.1.feed_forward.router.weight`)?.shape).toEqual([4, 5120]);
    expect(map.get(`${p}layers.1.feed_forward.experts.gate_up_proj`)?.shape).toEqual([4, 5120, 16384]);
    expect(map.get(`${p}layers.1.feed_forward.experts.down_proj`)?.shape).toEqual([4, 8192, 5120]);
    expect(map.get(`${p}layers.1.feed_forward.shared_expert.up_proj.weight`)?.shape).toEqual([8192, 5120]);
    expect(map.get('language_model.lm_head.weight')?.shape).toEqual([202048, 5120]);
  });

  it('Qwen3-Next: gated full attention and Gated DeltaNet layers with shared expert', () => {
    const dims = readModelDims(tiny(real.QWEN3_NEXT_80B_A3B, { num_hidden_layers: 4, num_experts: 2 }));
    const map = byName(expectedTensors('qwen3-next', dims).tensors);
    const la = 'model.layers.0.linear_attn.';
    expect(map.get(`${la}in_proj_qkvz.weight`)?.shape).toEqual([2 * 2048 + 2 * 4096, 2048]);
    expect(map.get(`${la}in_proj_ba.weight`)?.shape).toEqual([64, 2048]);
    expect(map.get(`${la}conv1d.weight`)?.shape).toEqual([8192, 1, 4]);
    expect(map.get(`${la}out_proj.weight`)?.shape).toEqual([2048, 4096]);
    expect(map.get('model.layers.3.self_attn.q_proj.weight')?.shape).toEqual([2 * 16 * 256, 2048]);
    expect(map.get('model.layers.3.self_attn.k_proj.weight')?.shape).toEqual([512, 2048]);
    expect(map.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
    expect(map.get('model.layers.0.mlp.shared_expert_gate.weight')?.shape).toEqual([1, 2048]);
    expect(map.get('model.layers.0.mlp.shared_expert.down_proj.weight')?.shape).toEqual([2048, 512]);
  });

  it('every family lists each name once', () => {
    for (const [family, config] of [
      ['llama', real.LLAMA_3_1_8B],
      ['gemma3', real.GEMMA_3_4B_IT],
      ['deepseek-v3', { ...real.DEEPSEEK_V3, n_routed_experts: 4 }],
      ['gpt-oss', real.GPT_OSS_20B],
    ] as const) {
      const names = expectedTensors(family, readModelDims(config)).tensors.map((t) => t.name);
      expect(new Set(names).size).toBe(names.length);
    }
  });

  it('refuses a native format for a family without one, and unknown layouts', () => {
    const dims = readModelDims(real.LLAMA_3_1_8B);
    expect(() => expectedTensors('llama', dims, { format: 'native' })).toThrow(/no native/);
    expect(() => expectedTensors('llama', dims, { layout: 'nope' })).toThrow(/causal-lm/);
  });
});
