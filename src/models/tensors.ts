/**
 * The tensor names and shapes a Hugging Face checkpoint of each family stores (hf-weights.md §3.4),
 * as read by transformers' `from_pretrained` and vLLM's `load_weights`. Shapes are PyTorch
 * `[out_features, in_features]`. Where a name is not certain across exports, the tensor is
 * optional and carries a note instead of being guessed strictly.
 */
import { type Dtype } from '../safetensors/dtypes';
import { type ModelDims } from './config';
import { type FamilyId, type ModelFamily, type TensorLayout, getFamily } from './families';

export interface ExpectedTensor {
  name: string;
  shape: readonly number[];
  /** Storage dtype fixed by the release format (MXFP4 blocks, FP8 weights and scales); unset: the checkpoint's float dtype. */
  dtype?: Dtype;
  /** A loader fails without it. */
  required: boolean;
  /** Why an optional tensor may be absent or differ. */
  note?: string;
  /** Logical parameters stored (0 for scales, buffers and tied copies; 2 per byte of packed FP4). */
  parameters: number;
  /** One routed expert's weights, or all routed experts fused in one tensor: only top-k of them run per token. */
  routedExpert?: boolean;
  /** Part of a multi-token-prediction layer (DeepSeek), which vLLM loads only for speculative decoding. */
  mtp?: boolean;
}

export type TensorFormat = 'float' | 'native';

export interface TensorExpectation {
  family: FamilyId;
  layout: TensorLayout;
  /** `native`: the family's release quantization (gpt-oss MXFP4, DeepSeek block-FP8); `float`: plain BF16/F16/F32. */
  format: TensorFormat;
  tensors: ExpectedTensor[];
  /** Prefixes of tensors a checkpoint may carry that are not enumerated (vision tower, MTP module). */
  auxiliaryPrefixes: readonly string[];
}

export interface ExpectedTensorOptions {
  /** Layout id or object; default: the family's first layout. */
  layout?: string | TensorLayout;
  /** Default: `native` when the config's quantization_config names the family's native method. */
  format?: TensorFormat;
}

/** MXFP4 packs 32 values per block into 16 bytes plus one shared-exponent byte. */
const MXFP4_BLOCK = 32;
/** DeepSeek block-FP8 scales one F32 per 128×128 tile. */
const FP8_TILE = 128;

export function expectedTensors(
  familyOrId: ModelFamily | FamilyId,
  dims: ModelDims,
  options: ExpectedTensorOptions = {},
): TensorExpectation {
  const family = typeof familyOrId === 'string' ? getFamily(familyOrId) : familyOrId;
  const layout = resolveLayout(family, options.layout);
  const format =
    options.format ??
    (family.nativeQuantization && dims.quantization?.method === family.nativeQuantization.method
      ? 'native'
      : 'float');
  if (format === 'native' && !family.nativeQuantization) {
    throw new Error(`${family.displayName} has no native quantized release format`);
  }
  const builder = new Builder(family, dims, layout, format);
  builder.build();
  return {
    family: family.id,
    layout,
    format,
    tensors: builder.tensors,
    auxiliaryPrefixes: family.auxiliaryPrefixes,
  };
}

function resolveLayout(family: ModelFamily, layout: string | TensorLayout | undefined): TensorLayout {
  if (layout === undefined) return family.layouts[0]!;
  if (typeof layout !== 'string') return layout;
  const found = family.layouts.find((l) => l.id === layout);
  if (!found) {
    throw new Error(
      `${family.displayName} has no tensor layout "${layout}" (known: ${family.layouts.map((l) => l.id).join(', ')})`,
    );
  }
  return found;
}

/**
 * Which of the family's layouts a set of stored names uses, judged by where the embeddings are;
 * the family's default layout when none matches.
 */
export function detectLayout(familyOrId: ModelFamily | FamilyId, names: Iterable<string>): TensorLayout {
  const family = typeof familyOrId === 'string' ? getFamily(familyOrId) : familyOrId;
  const present = new Set(names);
  return family.layouts.find((l) => present.has(`${l.modelPrefix}embed_tokens.weight`)) ?? family.layouts[0]!;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}

class Builder {
  readonly tensors: ExpectedTensor[] = [];
  private readonly d: ModelDims;
  private readonly p: string;

  constructor(
    private readonly family: ModelFamily,
    dims: ModelDims,
    private readonly layout: TensorLayout,
    private readonly format: TensorFormat,
  ) {
    this.d = dims;
    this.p = layout.modelPrefix;
  }

  private add(name: string, shape: readonly number[], extra: Partial<ExpectedTensor> = {}): void {
    this.tensors.push({ name, shape, required: true, parameters: product(shape), ...extra });
  }

  /** A linear weight; DeepSeek's native format stores it as FP8 with a per-tile inverse scale. */
  private linear(name: string, out: number, inp: number, extra: Partial<ExpectedTensor> = {}): void {
    const fp8 = this.format === 'native' && this.family.id === 'deepseek-v3';
    this.add(`${name}.weight`, [out, inp], fp8 ? { ...extra, dtype: 'F8_E4M3' } : extra);
    if (fp8) {
      this.add(`${name}.weight_scale_inv`, [ceilDiv(out, FP8_TILE), ceilDiv(inp, FP8_TILE)], {
        ...extra,
        dtype: 'F32',
        parameters: 0,
      });
    }
  }

  private norm(name: string, size: number, extra: Partial<ExpectedTensor> = {}): void {
    this.add(`${name}.weight`, [size], extra);
  }

  build(): void {
    const { d, p } = this;
    this.add(`${p}embed_tokens.weight`, [d.vocabSize, d.hiddenSize]);
    for (let i = 0; i < d.numLayers; i++) this.layer(i, {});
    for (let m = 0; m < d.numMtpLayers; m++) this.mtpLayer(d.numLayers + m);
    this.norm(`${p}norm`, d.hiddenSize);
    if (!d.tieWordEmbeddings) this.add(this.layout.lmHead, [d.vocabSize, d.hiddenSize]);
    else {
      this.add(this.layout.lmHead, [d.vocabSize, d.hiddenSize], {
        required: false,
        parameters: 0,
        note: 'tie_word_embeddings is true: save_pretrained normally drops this copy of the embeddings, some exports keep it',
      });
    }
  }

  private layer(i: number, extra: Partial<ExpectedTensor>): void {
    const id = this.family.id;
    const l = `${this.p}layers.${i}.`;
    this.norm(`${l}input_layernorm`, this.d.hiddenSize, extra);
    this.norm(`${l}post_attention_layernorm`, this.d.hiddenSize, extra);
    if (id === 'gemma2' || id === 'gemma3' || id === 'gemma3-text') {
      this.norm(`${l}pre_feedforward_layernorm`, this.d.hiddenSize, extra);
      this.norm(`${l}post_feedforward_layernorm`, this.d.hiddenSize, extra);
    }
    if (id === 'deepseek-v3') this.mlaAttention(l, extra);
    else if (this.d.layerTypes[i] === 'linear_attention') this.linearAttention(l, extra);
    else this.attention(l, extra);
    this.mlp(i, l, extra);
  }

  private attention(l: string, extra: Partial<ExpectedTensor>): void {
    const { d } = this;
    const id = this.family.id;
    const a = `${l}self_attn.`;
    const q = d.numAttentionHeads * d.headDim;
    const kv = d.numKeyValueHeads * d.headDim;
    if (id === 'phi3') {
      this.add(`${a}qkv_proj.weight`, [q + 2 * kv, d.hiddenSize], extra);
      this.add(`${a}o_proj.weight`, [d.hiddenSize, q], extra);
      return;
    }
    // Qwen3-Next gates attention output with a second half of q_proj.
    this.add(`${a}q_proj.weight`, [id === 'qwen3-next' ? 2 * q : q, d.hiddenSize], extra);
    this.add(`${a}k_proj.weight`, [kv, d.hiddenSize], extra);
    this.add(`${a}v_proj.weight`, [kv, d.hiddenSize], extra);
    this.add(`${a}o_proj.weight`, [d.hiddenSize, q], extra);
    // Qwen2 always biases q/k/v (never o); elsewhere `attention_bias` biases all four (gpt-oss sets it).
    if (id === 'qwen2' || d.attentionBias) {
      this.add(`${a}q_proj.bias`, [id === 'qwen3-next' ? 2 * q : q], extra);
      this.add(`${a}k_proj.bias`, [kv], extra);
      this.add(`${a}v_proj.bias`, [kv], extra);
      if (id !== 'qwen2') this.add(`${a}o_proj.bias`, [d.hiddenSize], extra);
    }
    if (
      id === 'qwen3' ||
      id === 'qwen3-moe' ||
      id === 'qwen3-next' ||
      id === 'gemma3' ||
      id === 'gemma3-text'
    ) {
      this.norm(`${a}q_norm`, d.headDim, extra);
      this.norm(`${a}k_norm`, d.headDim, extra);
    }
    if (id === 'gpt-oss') this.add(`${a}sinks`, [d.numAttentionHeads], extra);
    if (id === 'llama' || id === 'mistral') {
      this.add(`${a}rotary_emb.inv_freq`, [d.headDim / 2], {
        ...extra,
        required: false,
        parameters: 0,
        note: 'RoPE buffer that older transformers versions saved; loaders ignore it',
      });
    }
  }

  /** DeepSeek multi-head latent attention (modeling_deepseek_v3.py). */
  private mlaAttention(l: string, extra: Partial<ExpectedTensor>): void {
    const { d } = this;
    const mla = d.mla!;
    const a = `${l}self_attn.`;
    const qHead = mla.qkNopeHeadDim + mla.qkRopeHeadDim;
    if (mla.qLoraRank === null) this.linear(`${a}q_proj`, d.numAttentionHeads * qHead, d.hiddenSize, extra);
    else {
      this.linear(`${a}q_a_proj`, mla.qLoraRank, d.hiddenSize, extra);
      this.norm(`${a}q_a_layernorm`, mla.qLoraRank, extra);
      this.linear(`${a}q_b_proj`, d.numAttentionHeads * qHead, mla.qLoraRank, extra);
    }
    this.linear(`${a}kv_a_proj_with_mqa`, mla.kvLoraRank + mla.qkRopeHeadDim, d.hiddenSize, extra);
    this.norm(`${a}kv_a_layernorm`, mla.kvLoraRank, extra);
    this.linear(
      `${a}kv_b_proj`,
      d.numAttentionHeads * (mla.qkNopeHeadDim + mla.vHeadDim),
      mla.kvLoraRank,
      extra,
    );
    this.linear(`${a}o_proj`, d.hiddenSize, d.numAttentionHeads * mla.vHeadDim, extra);
  }

  /** Qwen3-Next Gated DeltaNet layer (modular_qwen3_next.py `Qwen3NextGatedDeltaNet`). */
  private linearAttention(l: string, extra: Partial<ExpectedTensor>): void {
    const { d } = this;
    const la = d.linearAttention!;
    const a = `${l}linear_attn.`;
    const keyDim = la.numKeyHeads * la.keyHeadDim;
    const valueDim = la.numValueHeads * la.valueHeadDim;
    this.add(`${a}in_proj_qkvz.weight`, [2 * keyDim + 2 * valueDim, d.hiddenSize], extra);
    this.add(`${a}in_proj_ba.weight`, [2 * la.numValueHeads, d.hiddenSize], extra);
    this.add(`${a}conv1d.weight`, [2 * keyDim + valueDim, 1, la.convKernelSize], extra);
    this.add(`${a}dt_bias`, [la.numValueHeads], extra);
    this.add(`${a}A_log`, [la.numValueHeads], extra);
    this.norm(`${a}norm`, la.valueHeadDim, extra);
    this.add(`${a}out_proj.weight`, [d.hiddenSize, valueDim], extra);
  }

  private denseMlp(m: string, width: number, extra: Partial<ExpectedTensor>): void {
    const { d } = this;
    if (this.family.id === 'phi3') {
      this.add(`${m}gate_up_proj.weight`, [2 * width, d.hiddenSize], extra);
      this.add(`${m}down_proj.weight`, [d.hiddenSize, width], extra);
      return;
    }
    this.linear(`${m}gate_proj`, width, d.hiddenSize, extra);
    this.linear(`${m}up_proj`, width, d.hiddenSize, extra);
    this.linear(`${m}down_proj`, d.hiddenSize, width, extra);
    if (d.mlpBias) {
      this.add(`${m}gate_proj.bias`, [width], extra);
      this.add(`${m}up_proj.bias`, [width], extra);
      this.add(`${m}down_proj.bias`, [d.hiddenSize], extra);
    }
  }

  private mlp(i: number, l: string, extra: Partial<ExpectedTensor>): void {
    const { d } = this;
    const id = this.family.id;
    const moe = d.moe;
    const isMoe =
      moe !== undefined && (moe.moeLayers.includes(i) || (extra.mtp === true && id === 'deepseek-v3'));
    const llama4 = id === 'llama4' || id === 'llama4-text';
    const m = llama4 ? `${l}feed_forward.` : `${l}mlp.`;
    if (!isMoe) {
      this.denseMlp(m, d.intermediateSize, extra);
      return;
    }
    const h = d.hiddenSize;
    const e = moe.numExperts;
    const w = moe.expertIntermediateSize;
    const routed = { ...extra, routedExpert: true };
    switch (id) {
      case 'mixtral': {
        const b = `${l}block_sparse_moe.`;
        this.add(`${b}gate.weight`, [e, h], extra);
        for (let j = 0; j < e; j++) {
          this.add(`${b}experts.${j}.w1.weight`, [w, h], routed);
          this.add(`${b}experts.${j}.w2.weight`, [h, w], routed);
          this.add(`${b}experts.${j}.w3.weight`, [w, h], routed);
        }
        return;
      }
      case 'llama4':
      case 'llama4-text':
        // Llama4TextExperts stores all experts fused: gate_up [E, h, 2w], down [E, w, h] (no `.weight` suffix).
        this.add(`${m}router.weight`, [e, h], extra);
        this.add(`${m}experts.gate_up_proj`, [e, h, 2 * w], routed);
        this.add(`${m}experts.down_proj`, [e, w, h], routed);
        this.denseMlp(`${m}shared_expert.`, moe.sharedExpertIntermediateSize, extra);
        return;
      case 'gpt-oss':
        this.gptOssExperts(m, e, w, extra);
        return;
      default: {
        // Qwen3-MoE, Qwen3-Next, DeepSeek: per-expert gate/up/down under mlp.experts.{j}.
        this.add(`${m}gate.weight`, [e, h], extra);
        if (id === 'deepseek-v3') {
          this.add(`${m}gate.e_score_correction_bias`, [e], {
            ...extra,
            note: 'router bias of the noaux_tc top-k method; stored in F32 by the official release',
          });
        }
        for (let j = 0; j < e; j++) this.denseMlp(`${m}experts.${j}.`, w, routed);
        if (moe.numSharedExperts > 0 && moe.sharedExpertIntermediateSize > 0) {
          if (id === 'deepseek-v3')
            this.denseMlp(`${m}shared_experts.`, moe.sharedExpertIntermediateSize, extra);
          else {
            this.denseMlp(`${m}shared_expert.`, moe.sharedExpertIntermediateSize, extra);
            this.add(`${m}shared_expert_gate.weight`, [1, h], extra);
          }
        }
      }
    }
  }

  /** gpt-oss experts: MXFP4 `_blocks`/`_scales` (vLLM gpt_oss.py) or the dequantized fused BF16 form. */
  private gptOssExperts(m: string, e: number, w: number, extra: Partial<ExpectedTensor>): void {
    const h = this.d.hiddenSize;
    const x = `${m}experts.`;
    const routed = { ...extra, routedExpert: true };
    this.add(`${m}router.weight`, [e, h], extra);
    this.add(`${m}router.bias`, [e], extra);
    if (this.format === 'native') {
      const packed = (shape: number[]) => ({
        ...routed,
        dtype: 'U8' as const,
        parameters: 2 * product(shape),
      });
      const gateUpBlocks = [e, 2 * w, ceilDiv(h, MXFP4_BLOCK), MXFP4_BLOCK / 2];
      const downBlocks = [e, h, ceilDiv(w, MXFP4_BLOCK), MXFP4_BLOCK / 2];
      this.add(`${x}gate_up_proj_blocks`, gateUpBlocks, packed(gateUpBlocks));
      this.add(`${x}gate_up_proj_scales`, [e, 2 * w, ceilDiv(h, MXFP4_BLOCK)], {
        ...routed,
        dtype: 'U8',
        parameters: 0,
      });
      this.add(`${x}down_proj_blocks`, downBlocks, packed(downBlocks));
      this.add(`${x}down_proj_scales`, [e, h, ceilDiv(w, MXFP4_BLOCK)], {
        ...routed,
        dtype: 'U8',
        parameters: 0,
      });
    } else {
      this.add(`${x}gate_up_proj`, [e, h, 2 * w], routed);
      this.add(`${x}down_proj`, [e, w, h], routed);
    }
    this.add(`${x}gate_up_proj_bias`, [e, 2 * w], routed);
    this.add(`${x}down_proj_bias`, [e, h], routed);
  }

  /** DeepSeek-V3 multi-token-prediction layer (README_WEIGHTS.md): a full MoE layer plus its own embedding/head. */
  private mtpLayer(i: number): void {
    const { d } = this;
    const l = `${this.p}layers.${i}.`;
    const note =
      'multi-token-prediction layer; vLLM ignores it unless speculative decoding is on, fine-tunes often drop it';
    const extra: Partial<ExpectedTensor> = { required: false, mtp: true, note };
    this.add(`${l}embed_tokens.weight`, [d.vocabSize, d.hiddenSize], extra);
    this.norm(`${l}enorm`, d.hiddenSize, extra);
    this.norm(`${l}hnorm`, d.hiddenSize, extra);
    // Precision of eh_proj in the FP8 release is not documented; its dtype is left open and its scale optional.
    this.add(`${l}eh_proj.weight`, [d.hiddenSize, 2 * d.hiddenSize], extra);
    if (this.format === 'native') {
      this.add(
        `${l}eh_proj.weight_scale_inv`,
        [ceilDiv(d.hiddenSize, FP8_TILE), ceilDiv(2 * d.hiddenSize, FP8_TILE)],
        {
          ...extra,
          dtype: 'F32',
          parameters: 0,
        },
      );
    }
    this.norm(`${l}shared_head.norm`, d.hiddenSize, extra);
    this.add(`${l}shared_head.head.weight`, [d.vocabSize, d.hiddenSize], extra);
    this.layer(i, extra);
  }
}
