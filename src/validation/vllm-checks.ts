import { kvCacheBytesForSequence, type ModelDims, validTensorParallelSizes } from '../models';
import type { MachineSpec } from '../spec/deployment-spec';
import {
  COMPUTE_CAPABILITY,
  describeMachine,
  formatBytes,
  GPU_MEMORY_UTILIZATION,
  kvRoomPerGpu,
  type MachineShape,
  PER_GPU_OVERHEAD_BYTES,
  placementOf,
  WEIGHT_OVERHEAD_FACTOR,
} from './machines';
import type { FindingCollector, ModelSummary } from './report';
import { kvShardLimit } from './sizing';
import { AUTO_MAX_MODEL_LEN, type VllmArgs } from './vllm-args';

/**
 * The vLLM arguments of a deployment's container against the model and the GPUs: the startup
 * failures vLLM reports only once the machine is up (context beyond the model or the KV cache,
 * parallel sizes, scheduler limits, quantization and dtype the GPU or weights cannot take).
 */

/** What the checks know of the model. */
export interface ServingModel {
  dims: ModelDims;
  /** Bytes the weights take on the GPUs in 16-bit (the sizing requirement's `weightBytes`). */
  weightBytes: number;
  /** The checkpoint's quantization, as the report's model summary gives it. */
  quantization?: ModelSummary['quantization'];
}

export interface VllmCheckContext {
  args: VllmArgs;
  /** The container's environment (VLLM_ALLOW_LONG_MAX_MODEL_LEN, VLLM_USE_V1 change verdicts). */
  env: Readonly<Record<string, string>>;
  model?: ServingModel;
  machine?: MachineSpec;
  /** The machine's row in the machine table (GPU memory and generation), when it has one. */
  shape?: MachineShape;
  findings: FindingCollector;
}

const BF16_MIN_CAPABILITY = 8.0;

export function checkVllmArgs(ctx: VllmCheckContext): void {
  for (const problem of ctx.args.problems) {
    ctx.findings.add(
      'vllm.invalid-argument',
      `${problem}. vLLM exits at startup on an argument it cannot parse; fix it in container.args.`,
    );
  }
  const maxLen = checkModelLength(ctx);
  const gpusFit = checkParallelSizes(ctx);
  checkTensorParallelHeads(ctx);
  if (maxLen && !maxLen.refused && gpusFit) checkKvCache(ctx, maxLen);
  checkBatchedTokens(ctx, maxLen);
  checkQuantization(ctx);
  checkDtype(ctx);
}

interface MaxLength {
  tokens: number;
  /** Not given: vLLM serves the model's maximum. */
  implicit: boolean;
  /** Over the model's maximum and vLLM will refuse it. */
  refused: boolean;
}

/**
 * The context vLLM derives from config.json, as `_get_and_verify_max_len` does: max_position_embeddings,
 * times the RoPE scaling factor unless the type already accounts for it (llama3, longrope/su) or
 * the model is Gemma-3 (whose 128k is scaled already); YaRN scales its original length.
 */
export function derivedMaxModelLen(dims: ModelDims): { tokens: number; longRope: boolean } | undefined {
  if (dims.maxPositionEmbeddings === undefined) return undefined;
  let tokens = dims.maxPositionEmbeddings;
  const ropes = ropeSettings(dims);
  const longRope = ropes.some((rope) => ropeType(rope) === 'longrope' || ropeType(rope) === 'su');
  if (dims.modelType?.includes('gemma3')) return { tokens, longRope };
  let factor = 1;
  for (const rope of ropes) {
    const type = ropeType(rope);
    if (type === 'su' || type === 'longrope' || type === 'llama3') continue;
    if (typeof rope.factor === 'number' && rope.factor > 0) factor = rope.factor;
    if (type === 'yarn' && typeof rope.original_max_position_embeddings === 'number') {
      tokens = rope.original_max_position_embeddings;
    }
  }
  return { tokens: Math.floor(tokens * factor), longRope };
}

/** rope_parameters (transformers v5, possibly one per layer type) or rope_scaling. */
function ropeSettings(dims: ModelDims): Array<Record<string, unknown>> {
  const settings = dims.ropeParameters ?? dims.ropeScaling;
  if (!settings) return [];
  if ('rope_type' in settings || 'type' in settings) return [settings];
  return Object.values(settings).filter(
    (value): value is Record<string, unknown> =>
      typeof value === 'object' && value !== null && !Array.isArray(value),
  );
}

function ropeType(rope: Record<string, unknown>): string {
  const type = rope.rope_type ?? rope.type;
  return typeof type === 'string' ? type : 'default';
}

function envFlag(env: Readonly<Record<string, string>>, name: string): boolean | undefined {
  const value = env[name]?.trim().toLowerCase();
  if (value === undefined) return undefined;
  return value === '1' || value === 'true';
}

function checkModelLength(ctx: VllmCheckContext): MaxLength | undefined {
  const { args, model } = ctx;
  const derived = model ? derivedMaxModelLen(model.dims) : undefined;
  if (args.maxModelLen === undefined) {
    // A LongRoPE model's default context is its original (short) one on newer vLLM: unknown here.
    return args.isVllm && derived && !derived.longRope
      ? { tokens: derived.tokens, implicit: true, refused: false }
      : undefined;
  }
  if (args.maxModelLen === AUTO_MAX_MODEL_LEN) return undefined;
  const tokens = args.maxModelLen;
  if (!derived || tokens <= derived.tokens) return { tokens, implicit: false, refused: false };
  const allowed = envFlag(ctx.env, 'VLLM_ALLOW_LONG_MAX_MODEL_LEN') === true;
  ctx.findings.add(
    'vllm.max-model-len-exceeds-model',
    `--max-model-len ${tokens} is beyond the model's ${derived.tokens} tokens (max_position_embeddings ` +
      `${model!.dims.maxPositionEmbeddings} with its RoPE scaling): ` +
      (allowed
        ? 'VLLM_ALLOW_LONG_MAX_MODEL_LEN lets vLLM start, but positions past the trained length give NaNs or garbage. '
        : 'vLLM refuses to start ("User-specified max_model_len … is greater than the derived max_model_len"). ') +
      `Set --max-model-len to at most ${derived.tokens}, or extend the context in config.json (rope_scaling) if the model was trained for it.`,
    allowed ? { severity: 'warning' } : {},
  );
  return { tokens, implicit: false, refused: !allowed };
}

function parallelSizes(args: VllmArgs): { tp: number; pp: number; dp: number } {
  return {
    tp: args.tensorParallelSize ?? 1,
    pp: args.pipelineParallelSize ?? 1,
    dp: args.dataParallelSize ?? 1,
  };
}

/** TP × PP × DP against the GPUs the deployment has; false when vLLM would want more than there are. */
function checkParallelSizes(ctx: VllmCheckContext): boolean {
  const { args, machine } = ctx;
  const explicit =
    args.tensorParallelSize !== undefined ||
    args.pipelineParallelSize !== undefined ||
    args.dataParallelSize !== undefined;
  if (!machine || !(explicit || args.isVllm)) return true;
  const nodes = machine.multihostGpuNodeCount ?? 1;
  const available = machine.acceleratorCount * nodes;
  const { tp, pp, dp } = parallelSizes(args);
  const used = tp * pp * dp;
  if (used === available) return true;
  const product =
    `--tensor-parallel-size ${tp}${args.tensorParallelSize === undefined ? ' (the default)' : ''}` +
    (pp > 1 || args.pipelineParallelSize !== undefined ? ` × --pipeline-parallel-size ${pp}` : '') +
    (dp > 1 || args.dataParallelSize !== undefined ? ` × --data-parallel-size ${dp}` : '');
  const has = `${describeMachine({ machine })}` + (nodes > 1 ? ` on ${nodes} hosts (${available} GPUs)` : '');
  const fix =
    nodes > 1
      ? `Set --tensor-parallel-size=${machine.acceleratorCount} --pipeline-parallel-size=${nodes} (one pipeline stage per host).`
      : `Set --tensor-parallel-size=${machine.acceleratorCount}.`;
  ctx.findings.add(
    'vllm.parallel-size',
    used > available
      ? `${product} asks for ${used} GPUs but each replica has ${has}: vLLM fails to start. ${fix}`
      : `${product} uses ${used} of the ${available} GPUs of ${has}; the rest are paid for and idle. ${fix}`,
    used > available ? {} : { severity: 'warning' },
  );
  return used <= available;
}

function checkTensorParallelHeads(ctx: VllmCheckContext): void {
  const { args, model, machine, findings } = ctx;
  const tp = args.tensorParallelSize;
  if (tp === undefined || !model || validTensorParallelSizes(model.dims, [tp]).length > 0) return;
  // The chosen machine's GPU count was already judged (machine.tensor-parallel).
  if (tp === machine?.acceleratorCount && findings.has('machine.tensor-parallel')) return;
  const { dims } = model;
  findings.add(
    'vllm.tensor-parallel-heads',
    `--tensor-parallel-size ${tp} does not split the model's ${dims.numAttentionHeads} attention heads and ` +
      `${dims.numKeyValueHeads} KV heads evenly: vLLM fails at startup ("… is not divisible by tensor parallel size"). ` +
      `Use a tensor-parallel size of ${validTensorParallelSizes(dims).join(', ')} (and --pipeline-parallel-size for the remaining GPUs).`,
  );
}

/** `--quantization` methods that quantize 16-bit weights while vLLM loads them. */
const ONLINE_QUANTIZATION: Record<
  string,
  {
    /** Share of the 16-bit weight bytes left on the GPU, at best (embeddings stay 16-bit). */
    weightShare: number;
    /** Lowest compute capability vLLM accepts (`get_min_capability`), when known. */
    minCapability?: number;
    /** Compute capability from which the format runs natively rather than weight-only. */
    nativeCapability?: number;
    moeOnly?: boolean;
  }
> = {
  fp8: { weightShare: 0.5, minCapability: 8.0, nativeCapability: 8.9 },
  fp8_per_tensor: { weightShare: 0.5, minCapability: 8.0, nativeCapability: 8.9 },
  fp8_per_block: { weightShare: 0.5, minCapability: 8.0, nativeCapability: 8.9 },
  fp8_per_channel: { weightShare: 0.5, minCapability: 8.0, nativeCapability: 8.9 },
  bitsandbytes: { weightShare: 0.25 },
  experts_int8: { weightShare: 0.5, minCapability: 8.0, moeOnly: true },
  int8_per_channel_weight_only: { weightShare: 0.5 },
  mxfp8: { weightShare: 0.5 },
  nvfp4_per_token: { weightShare: 0.25 },
  online: { weightShare: 0.25 },
};

/**
 * Methods that only load checkpoints already quantized that way (a quantization_config or side
 * files), across vLLM versions, and the ones for other hardware (TPU, Gaudi, Neuron, ROCm).
 */
const CHECKPOINT_QUANTIZATION = new Set([
  'aqlm',
  'awq',
  'awq_marlin',
  'auto_awq',
  'auto-round',
  'bitblas',
  'compressed-tensors',
  'cpu_awq',
  'deepseek_v4_fp8',
  'deepspeedfp',
  'exl2',
  'fbgemm_fp8',
  'fp_quant',
  'gguf',
  'gpt_oss_mxfp4',
  'gptq',
  'auto_gptq',
  'gptq_bitblas',
  'gptq_marlin',
  'gptq_marlin_24',
  'hqq',
  'humming',
  'inc',
  'ipex',
  'marlin',
  'modelopt',
  'modelopt_fp4',
  'modelopt_mixed',
  'modelopt_mxfp8',
  'moe_wna16',
  'mxfp4',
  'neuron_quant',
  'petit_nvfp4',
  'ptpc_fp8',
  'qqq',
  'quark',
  'rtn',
  'squeezellm',
  'torchao',
  'tpu_int8',
]);

/** `--quantization` names that load a natively quantized release (quant_method → accepted names). */
const NATIVE_QUANTIZATION_NAMES: Record<string, readonly string[]> = {
  mxfp4: ['mxfp4', 'gpt_oss_mxfp4'],
  fp8: ['fp8'],
};

function capabilityOf(shape: MachineShape | undefined): number | undefined {
  return shape ? COMPUTE_CAPABILITY[shape.generation] : undefined;
}

function gpuName(ctx: VllmCheckContext): string {
  return ctx.machine ? ctx.machine.acceleratorType : 'the GPU';
}

function checkQuantization(ctx: VllmCheckContext): void {
  const method = ctx.args.quantization;
  if (method === undefined || !ctx.model) return;
  const { findings } = ctx;
  const checkpoint = ctx.model.quantization;
  if (checkpoint?.native && checkpoint.method) {
    const accepted = NATIVE_QUANTIZATION_NAMES[checkpoint.method] ?? [checkpoint.method];
    if (!accepted.includes(method)) {
      findings.add(
        'vllm.quantization',
        `--quantization ${method} does not match the checkpoint's ${checkpoint.method} quantization_config: vLLM refuses ` +
          `to start ("Quantization method specified in the model config … does not match"). Drop --quantization or set it to ${accepted[0]}.`,
      );
    }
    return;
  }
  // A checkpoint quantized some other way is refused by config.quantized already.
  if (checkpoint?.method) return;
  const online = ONLINE_QUANTIZATION[method];
  if (!online) {
    findings.add(
      'vllm.quantization',
      CHECKPOINT_QUANTIZATION.has(method)
        ? `--quantization ${method} loads checkpoints already quantized with ${method}, but these are unquantized 16-bit ` +
            `custom weights (Vertex accepts no other): vLLM fails looking for the ${method} quantization config. ` +
            'Drop --quantization, or use fp8 (on L4, H100 or newer) or bitsandbytes to quantize while loading.'
        : `--quantization ${method} is not a quantization method vLLM knows: it exits with "invalid choice". ` +
            'Drop it, or use fp8 or bitsandbytes to quantize the 16-bit weights while loading.',
    );
    return;
  }
  const capability = capabilityOf(ctx.shape);
  if (online.moeOnly && !ctx.model.dims.moe) {
    findings.add(
      'vllm.quantization',
      `--quantization ${method} quantizes mixture-of-experts layers only; this model has none, so it saves nothing. Drop it.`,
      { severity: 'warning' },
    );
  }
  if (capability === undefined || online.minCapability === undefined) return;
  if (capability < online.minCapability) {
    findings.add(
      'vllm.quantization',
      `--quantization ${method} needs compute capability ${online.minCapability.toFixed(1)} or newer; ${gpuName(ctx)} has ` +
        `${capability.toFixed(1)}: vLLM refuses to start ("not supported for the current GPU"). Drop --quantization, or use ` +
        'bitsandbytes, or an L4/H100-class machine for FP8.',
    );
  } else if (online.nativeCapability !== undefined && capability < online.nativeCapability) {
    findings.add(
      'vllm.quantization',
      `${gpuName(ctx)} (compute capability ${capability.toFixed(1)}) has no FP8 units: --quantization ${method} runs ` +
        `weight-only (FP8 Marlin), saving memory but not compute. For FP8 speed use compute capability ${online.nativeCapability} or newer (L4, H100, H200).`,
      { severity: 'warning' },
    );
  }
}

function checkDtype(ctx: VllmCheckContext): void {
  const capability = capabilityOf(ctx.shape);
  if (capability === undefined || capability >= BF16_MIN_CAPABILITY) return;
  const dtype = ctx.args.dtype ?? 'auto';
  const gpu = `${gpuName(ctx)} (compute capability ${capability.toFixed(1)})`;
  if (dtype === 'bfloat16') {
    ctx.findings.add(
      'vllm.dtype-unsupported',
      `--dtype bfloat16 on ${gpu}: bfloat16 needs compute capability 8.0, so vLLM refuses to start ` +
        '("Bfloat16 is only supported on GPUs with compute capability of at least 8.0"). Use --dtype=float16, or an L4/A100/H100 machine.',
    );
  } else if (dtype === 'auto' && ctx.model?.dims.dtype === 'BF16') {
    ctx.findings.add(
      'vllm.dtype-auto-bfloat16',
      `The weights are bfloat16 (config.json torch_dtype) and --dtype is ${ctx.args.dtype === undefined ? 'not set (auto)' : 'auto'}: ` +
        `on ${gpu} older vLLM refuses to start and newer vLLM casts to float16 by itself, where bfloat16-trained weights ` +
        'can overflow. Set --dtype=float16 in container.args and check the answers, or use an L4/A100/H100 machine.',
    );
  }
}

/** Bytes per cached element: FP8 caches take 1, `auto` follows the model dtype. */
function kvElementBytes(args: VllmArgs): number {
  if (args.kvCacheDtype?.startsWith('fp8')) return 1;
  return args.dtype === 'float' || args.dtype === 'float32' ? 4 : 2;
}

function checkKvCache(ctx: VllmCheckContext, maxLen: MaxLength): void {
  const { args, model, shape, machine, findings } = ctx;
  if (!model || !shape) return;
  const { tp, pp } = parallelSizes(args);
  const gpus = tp * pp;
  const utilization = args.gpuMemoryUtilization ?? GPU_MEMORY_UTILIZATION;
  const online = args.quantization ? ONLINE_QUANTIZATION[args.quantization] : undefined;
  // An online quantizer shrinks the weights at best to its share: flag only what cannot fit even then.
  const weightBytes =
    model.weightBytes *
    (online?.weightShare ?? 1) *
    (args.dtype === 'float' || args.dtype === 'float32' ? 2 : 1);
  const memory = machine ? placementOf(machine, shape).gpuMemoryBytes : shape.gpuMemoryBytes;
  const room = kvRoomPerGpu(weightBytes, memory, gpus, utilization);
  // Tensor parallelism splits the KV heads (at most K ways), pipeline parallelism the layers.
  const capacity = Math.max(0, room) * Math.min(tp, kvShardLimit(model.dims)) * pp;
  const kvBytes = kvElementBytes(args);
  const needed = kvCacheBytesForSequence(model.dims, maxLen.tokens, { kvBytes });
  if (needed <= capacity) return;
  if (room <= 0 && (findings.has('machine.insufficient-memory') || findings.has('sizing.no-fit'))) return;
  const fits = longestFittingContext(model.dims, capacity, kvBytes, maxLen.tokens);
  const what = maxLen.implicit
    ? `Without --max-model-len vLLM serves the model's full ${maxLen.tokens} tokens, which need`
    : `--max-model-len ${maxLen.tokens} needs`;
  const on = `${gpus}× ${shape.machine.acceleratorType}${machine?.gpuPartitionSize ? ` (${machine.gpuPartitionSize} partition)` : ''}`;
  findings.add(
    'vllm.max-model-len-exceeds-kv-cache',
    `${what} ${formatBytes(needed)} of KV cache for one sequence, but only ${formatBytes(capacity)} is left for it on ${on} after the weights ` +
      `(${formatBytes(weightBytes)} × ${WEIGHT_OVERHEAD_FACTOR} split ${gpus} way${gpus === 1 ? '' : 's'}, ${formatBytes(PER_GPU_OVERHEAD_BYTES)} ` +
      `overhead per GPU, gpu-memory-utilization ${utilization}): vLLM refuses to start ("larger than the maximum number of tokens that can be stored in KV cache"). ` +
      (fits > 0
        ? `Set --max-model-len=${fits} or less, or free room: --kv-cache-dtype=fp8, a higher --gpu-memory-utilization, more GPUs.`
        : 'The weights leave no room for it: use more or larger GPUs.'),
  );
}

/** The longest sequence whose KV cache fits in `capacity` bytes (window-aware, so not linear). */
function longestFittingContext(dims: ModelDims, capacity: number, kvBytes: number, below: number): number {
  let low = 0;
  let high = below;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (kvCacheBytesForSequence(dims, mid, { kvBytes }) <= capacity) low = mid;
    else high = mid - 1;
  }
  return low;
}

function checkBatchedTokens(ctx: VllmCheckContext, maxLen: MaxLength | undefined): void {
  const { args } = ctx;
  const batched = args.maxNumBatchedTokens;
  if (batched === undefined || !maxLen || batched >= maxLen.tokens || args.enableChunkedPrefill === true) {
    return;
  }
  // The V1 engine (vLLM ≥ 0.8) turns chunked prefill on by itself; only V0 refuses for certain.
  const v0 = envFlag(ctx.env, 'VLLM_USE_V1') === false;
  ctx.findings.add(
    'vllm.batched-tokens',
    `--max-num-batched-tokens ${batched} is below the ${maxLen.implicit ? "model's " : ''}max model length ${maxLen.tokens} ` +
      `without chunked prefill: ${v0 ? 'with VLLM_USE_V1=0 the' : 'the V0 engine (vLLM before 0.8, or VLLM_USE_V1=0)'} ` +
      'refuses to start ("max_num_batched_tokens … is smaller than max_model_len"). ' +
      `Add --enable-chunked-prefill, or raise --max-num-batched-tokens to ${maxLen.tokens}.`,
    v0 ? { severity: 'error' } : {},
  );
}
