/**
 * Size arithmetic from config alone (hf-weights.md §3.3 and §6): parameter counts, weight bytes,
 * KV-cache bytes and the tensor-parallel sizes vLLM accepts.
 */
import { DTYPE_BITS, type Dtype } from '../safetensors/dtypes';
import { tensorByteLength } from '../safetensors/writer';
import { type ModelDims } from './config';
import { type FamilyId, type ModelFamily } from './families';
import { type ExpectedTensor, expectedTensors } from './tensors';

export interface ParameterCount {
  /** Every stored parameter except tied copies and MTP layers. */
  total: number;
  /** Parameters used per token: routed experts count top-k / E; embeddings count (OpenAI's figures leave the input table out). */
  active: number;
  /** Parameters of the multi-token-prediction layers (DeepSeek), not in `total`. */
  mtp: number;
}

/** Counts the logical parameters of a model of this family and dims (quantized packing undone). */
export function countParameters(family: ModelFamily | FamilyId, dims: ModelDims): ParameterCount {
  const { tensors } = expectedTensors(family, dims, { format: 'float' });
  const routedShare = dims.moe ? dims.moe.expertsPerToken / dims.moe.numExperts : 1;
  let total = 0;
  let active = 0;
  let mtp = 0;
  for (const t of tensors) {
    if (t.mtp) mtp += t.parameters;
    else {
      total += t.parameters;
      active += t.routedExpert ? t.parameters * routedShare : t.parameters;
    }
  }
  return { total, active: Math.round(active), mtp };
}

/** Bytes of `parameters` stored in `dtype` (sub-byte dtypes rounded up). */
export function weightBytesForParameters(parameters: number, dtype: Dtype): number {
  return Math.ceil((parameters * DTYPE_BITS[dtype]) / 8);
}

/**
 * Bytes of the tensors a checkpoint stores: each in its fixed dtype (MXFP4 blocks, FP8 weights and
 * scales) or else `floatDtype`. Optional tensors are left out unless `includeOptional`.
 */
export function expectedWeightBytes(
  tensors: readonly ExpectedTensor[],
  floatDtype: Dtype,
  options: { includeOptional?: boolean } = {},
): number {
  let bytes = 0;
  for (const t of tensors) {
    if (!t.required && !options.includeOptional) continue;
    bytes += tensorByteLength(t.shape, t.dtype ?? floatDtype);
  }
  return bytes;
}

export interface KvCacheOptions {
  /** Bytes per cached element: 2 for a BF16/FP16 cache (default), 1 for FP8. */
  kvBytes?: number;
}

/**
 * KV-cache bytes one token adds, as an upper bound: every attention layer counted as full
 * attention (sliding/chunked windows ignored), MLA layers as their compressed latent, and
 * linear-attention layers (fixed per-sequence state) as nothing.
 */
export function kvCacheBytesPerToken(dims: ModelDims, options: KvCacheOptions = {}): number {
  const kvBytes = options.kvBytes ?? 2;
  const attentionLayers = dims.layerTypes.filter((t) => t !== 'linear_attention').length;
  if (dims.mla) return (dims.mla.kvLoraRank + dims.mla.qkRopeHeadDim) * attentionLayers * kvBytes;
  return 2 * attentionLayers * dims.numKeyValueHeads * dims.headDim * kvBytes;
}

export interface SequenceKvOptions extends KvCacheOptions {
  /**
   * `window-aware` (default): sliding/chunked layers keep at most `slidingWindow` tokens, as vLLM's
   * hybrid allocator does. `upper-bound`: every attention layer keeps every token (safe for
   * serving stacks without hybrid allocation).
   */
  mode?: 'window-aware' | 'upper-bound';
}

/** KV-cache bytes of one sequence of `contextTokens` tokens. */
export function kvCacheBytesForSequence(
  dims: ModelDims,
  contextTokens: number,
  options: SequenceKvOptions = {},
): number {
  if (!Number.isSafeInteger(contextTokens) || contextTokens < 0) {
    throw new RangeError(`contextTokens must be a non-negative integer, got ${contextTokens}`);
  }
  const kvBytes = options.kvBytes ?? 2;
  const perLayerPerToken = dims.mla
    ? (dims.mla.kvLoraRank + dims.mla.qkRopeHeadDim) * kvBytes
    : 2 * dims.numKeyValueHeads * dims.headDim * kvBytes;
  const windowAware = (options.mode ?? 'window-aware') === 'window-aware';
  let tokens = 0;
  for (const type of dims.layerTypes) {
    if (type === 'linear_attention') continue;
    const windowed = type === 'sliding_attention' || type === 'chunked_attention';
    tokens +=
      windowAware && windowed && dims.slidingWindow !== undefined
        ? Math.min(dims.slidingWindow, contextTokens)
        : contextTokens;
  }
  return tokens * perLayerPerToken;
}

/** GPU counts per replica Vertex machine shapes offer. */
export const GPU_COUNTS: readonly number[] = [1, 2, 4, 8];

/**
 * Tensor-parallel sizes vLLM accepts (§6.2): the query heads divide evenly, and the KV heads
 * either divide evenly or are replicated a whole number of times. Linear-attention heads
 * (Qwen3-Next) must split evenly too.
 */
export function validTensorParallelSizes(
  dims: ModelDims,
  candidates: readonly number[] = GPU_COUNTS,
): number[] {
  const heads = [dims.numAttentionHeads];
  if (dims.linearAttention) heads.push(dims.linearAttention.numKeyHeads, dims.linearAttention.numValueHeads);
  const kv = dims.mla ? dims.numAttentionHeads : dims.numKeyValueHeads;
  return candidates.filter(
    (tp) => heads.every((h) => h % tp === 0) && (kv >= tp ? kv % tp === 0 : tp % kv === 0),
  );
}
