import { type AcceleratorType, MIG_PROFILE_RE, type MachineSpec } from '../spec/deployment-spec';

/**
 * Vertex AI GPU machine shapes for LLM serving (vertex-api.md §8) and the memory arithmetic that
 * turns a model's weights and KV cache into a machine (hf-weights.md §6): per GPU,
 * `(weights × 1.05 + KV) / TP + overhead ≤ utilisation × memory`, TP limited to sizes the
 * model's heads allow.
 */

const GIB = 1024 ** 3;

export type GpuGeneration = 'volta' | 'turing' | 'ampere' | 'ada' | 'hopper' | 'blackwell';

/**
 * The lowest CUDA compute capability of each generation's GPUs in the table (V100 7.0, T4 7.5,
 * A100 8.0, L4 8.9, H100/H200 9.0, B200/GB200 10.0, RTX PRO 6000 12.0): what vLLM compares with a
 * feature's minimum (BF16 needs 8.0, FP8 kernels 8.9).
 */
export const COMPUTE_CAPABILITY: Record<GpuGeneration, number> = {
  volta: 7.0,
  turing: 7.5,
  ampere: 8.0,
  ada: 8.9,
  hopper: 9.0,
  blackwell: 10.0,
};

export interface MachineShape {
  machine: MachineSpec;
  /** Memory per GPU as the CUDA runtime reports it (not the marketing GB). */
  gpuMemoryBytes: number;
  generation: GpuGeneration;
  /** The memory figure comes from a vendor spec Google has not confirmed for Vertex (§8). */
  memoryUnconfirmed?: boolean;
  /**
   * Recommended: other machine types with the same GPUs exist (e.g. g2-standard-4 … -32 for 1×L4),
   * and GPUs too old for today's serving (T4, V100) are only ever checked, never recommended.
   */
  preferred: boolean;
  /** Takes `multihostGpuNodeCount` (UNCONFIRMED: Google documents multi-host serving for these 8-GPU shapes only). */
  multihost?: boolean;
}

function shape(
  type: string,
  acceleratorType: AcceleratorType,
  acceleratorCount: number,
  gpuMemoryGiB: number,
  generation: GpuGeneration,
  extra: { preferred?: boolean; memoryUnconfirmed?: boolean; multihost?: boolean } = {},
): MachineShape {
  return {
    machine: { type, acceleratorType, acceleratorCount },
    gpuMemoryBytes: Math.round(gpuMemoryGiB * GIB),
    generation,
    preferred: extra.preferred ?? true,
    ...(extra.memoryUnconfirmed ? { memoryUnconfirmed: true } : {}),
    ...(extra.multihost ? { multihost: true } : {}),
  };
}

const N1_VCPUS = [2, 4, 8, 16, 32, 64, 96];

/**
 * N1 machines with T4 or V100 GPUs: every n1-standard / n1-highmem size within Compute Engine's
 * vCPU limit for that GPU count (T4: 48 vCPUs for 1–2 GPUs, 96 for 4; V100: 12 per GPU).
 */
function n1Shapes(
  acceleratorType: AcceleratorType,
  gpuMemoryGiB: number,
  generation: GpuGeneration,
  maxVcpus: Record<number, number>,
): MachineShape[] {
  return Object.entries(maxVcpus).flatMap(([count, limit]) =>
    ['n1-standard', 'n1-highmem'].flatMap((series) =>
      N1_VCPUS.filter((vcpus) => vcpus <= limit).map((vcpus) =>
        shape(`${series}-${vcpus}`, acceleratorType, Number(count), gpuMemoryGiB, generation, {
          preferred: false,
        }),
      ),
    ),
  );
}

// Per-GPU memory in GiB as hf-weights §6.3 uses it: L4 22.5, A100 40/80, H100 79.6, H200 140.
const L4 = 22.5;
const A100_40 = 40;
const A100_80 = 80;
const H100 = 79.6;
const H200 = 140;
// 16 GB parts, as torch.cuda reports them.
const T4 = 14.75;
const V100 = 15.78;

/**
 * Ordered cheapest class first: the recommendation prefers earlier rows among equal GPU counts.
 * g2-standard-12 is the 1×L4 shape Google's vLLM samples use (enough host RAM to load 15 GB).
 */
export const MACHINE_TABLE: readonly MachineShape[] = [
  shape('g2-standard-12', 'NVIDIA_L4', 1, L4, 'ada'),
  shape('g2-standard-4', 'NVIDIA_L4', 1, L4, 'ada', { preferred: false }),
  shape('g2-standard-8', 'NVIDIA_L4', 1, L4, 'ada', { preferred: false }),
  shape('g2-standard-16', 'NVIDIA_L4', 1, L4, 'ada', { preferred: false }),
  shape('g2-standard-32', 'NVIDIA_L4', 1, L4, 'ada', { preferred: false }),
  shape('g2-standard-24', 'NVIDIA_L4', 2, L4, 'ada'),
  shape('g2-standard-48', 'NVIDIA_L4', 4, L4, 'ada'),
  shape('g2-standard-96', 'NVIDIA_L4', 8, L4, 'ada'),
  shape('a2-highgpu-1g', 'NVIDIA_TESLA_A100', 1, A100_40, 'ampere'),
  shape('a2-highgpu-2g', 'NVIDIA_TESLA_A100', 2, A100_40, 'ampere'),
  shape('a2-highgpu-4g', 'NVIDIA_TESLA_A100', 4, A100_40, 'ampere'),
  shape('a2-highgpu-8g', 'NVIDIA_TESLA_A100', 8, A100_40, 'ampere'),
  shape('a2-ultragpu-1g', 'NVIDIA_A100_80GB', 1, A100_80, 'ampere'),
  shape('a2-ultragpu-2g', 'NVIDIA_A100_80GB', 2, A100_80, 'ampere'),
  shape('a2-ultragpu-4g', 'NVIDIA_A100_80GB', 4, A100_80, 'ampere'),
  shape('a2-ultragpu-8g', 'NVIDIA_A100_80GB', 8, A100_80, 'ampere'),
  shape('a3-highgpu-1g', 'NVIDIA_H100_80GB', 1, H100, 'hopper'),
  shape('a3-highgpu-2g', 'NVIDIA_H100_80GB', 2, H100, 'hopper'),
  shape('a3-highgpu-4g', 'NVIDIA_H100_80GB', 4, H100, 'hopper'),
  shape('a3-highgpu-8g', 'NVIDIA_H100_80GB', 8, H100, 'hopper', { multihost: true }),
  shape('a3-megagpu-8g', 'NVIDIA_H100_MEGA_80GB', 8, H100, 'hopper', { multihost: true }),
  shape('a3-ultragpu-8g', 'NVIDIA_H200_141GB', 8, H200, 'hopper', { multihost: true }),
  shape('g4-standard-48', 'NVIDIA_RTX_PRO_6000', 1, 95.6, 'blackwell', { memoryUnconfirmed: true }),
  shape('g4-standard-96', 'NVIDIA_RTX_PRO_6000', 2, 95.6, 'blackwell', { memoryUnconfirmed: true }),
  shape('g4-standard-384', 'NVIDIA_RTX_PRO_6000', 8, 95.6, 'blackwell', { memoryUnconfirmed: true }),
  shape('a4-highgpu-8g', 'NVIDIA_B200', 8, 179, 'blackwell', { memoryUnconfirmed: true, multihost: true }),
  shape('a4x-highgpu-4g', 'NVIDIA_GB200', 4, 184, 'blackwell', { memoryUnconfirmed: true }),
  ...n1Shapes('NVIDIA_TESLA_T4', T4, 'turing', { 1: 48, 2: 48, 4: 96 }),
  ...n1Shapes('NVIDIA_TESLA_V100', V100, 'volta', { 1: 12, 2: 24, 4: 48, 8: 96 }),
];

/** vLLM's default `gpu_memory_utilization` (Vertex samples pass 0.9 explicitly). */
export const GPU_MEMORY_UTILIZATION = 0.9;
/** CUDA context, activations, CUDA graphs and NCCL buffers per GPU (hf-weights §6.1). */
export const PER_GPU_OVERHEAD_BYTES = 2 * GIB;
/** Loaded weights take a little more than their file bytes (padding, non-persistent buffers). */
export const WEIGHT_OVERHEAD_FACTOR = 1.05;

/** What must fit on a machine: plain data, so it can travel in a report. */
export interface SizingRequirement {
  /** Bytes of weights as stored (sum of tensor bytes from the headers, or a config estimate). */
  weightBytes: number;
  /** KV-cache bytes per token of context, averaged over the target context (windowed layers cap). */
  kvBytesPerToken: number;
  /** Tokens of KV cache that must fit (target context × concurrent sequences). */
  contextTokens: number;
  /** Context the model supports at most (`max_position_embeddings`), if known. */
  maxPositionEmbeddings?: number;
  /** GPU counts vLLM accepts for this model (divisors of the attention / KV heads). */
  tensorParallelSizes: number[];
  /** How many ways the KV cache splits: the KV head count (beyond it heads are replicated); 1 for MLA. */
  kvShardLimit: number;
  /** Native low-precision format whose kernels target Hopper GPUs. */
  nativeQuantization?: 'mxfp4' | 'fp8';
}

export interface MachineFit {
  machine: MachineSpec;
  gpuMemoryBytes: number;
  /** Bytes each GPU must hold for the weights, the target context's KV cache and overhead. */
  perGpuRequiredBytes: number;
  /** Bytes vLLM may use per GPU: utilisation × memory. */
  perGpuUsableBytes: number;
  fits: boolean;
  /** Tensor-parallel size (= GPU count) is valid for the model's heads. */
  tensorParallelValid: boolean;
  /** Longest context (tokens of KV cache) that fits; 0 when even the weights do not. */
  maxContextTokens: number;
}

export function findMachineShape(machine: MachineSpec): MachineShape | undefined {
  return MACHINE_TABLE.find(
    (s) =>
      s.machine.type === machine.type &&
      s.machine.acceleratorType === machine.acceleratorType &&
      s.machine.acceleratorCount === machine.acceleratorCount,
  );
}

/**
 * Bytes of KV cache one GPU keeps after its share of the weights (split `gpus` ways) and the
 * runtime overhead, under vLLM's `gpu_memory_utilization`; ≤ 0 when the weights do not fit.
 */
export function kvRoomPerGpu(
  weightBytes: number,
  gpuMemoryBytes: number,
  gpus: number,
  utilization = GPU_MEMORY_UTILIZATION,
): number {
  const weightsPerGpu = (weightBytes * WEIGHT_OVERHEAD_FACTOR) / gpus;
  return Math.floor(utilization * gpuMemoryBytes) - weightsPerGpu - PER_GPU_OVERHEAD_BYTES;
}

/** Where one replica runs beyond the shape itself: on several hosts, or on a partition of its GPU. */
export interface Placement {
  /** `multihostGpuNodeCount`: hosts per replica, one pipeline stage each (default 1). */
  hosts?: number;
  /** GPU memory the replica gets per GPU (less than the shape's on a MIG partition). */
  gpuMemoryBytes?: number;
}

/** The placement a machine spec asks for: its hosts, and the memory of its MIG partition ("1g.10gb": 10 GB). */
export function placementOf(machine: MachineSpec, shape: MachineShape): Required<Placement> {
  const partition = MIG_PROFILE_RE.exec(machine.gpuPartitionSize ?? '');
  return {
    hosts: machine.multihostGpuNodeCount ?? 1,
    gpuMemoryBytes: partition
      ? Math.min(shape.gpuMemoryBytes, Number(partition[1]) * 1e9)
      : shape.gpuMemoryBytes,
  };
}

/**
 * The memory arithmetic of one machine shape for one model: tensor parallelism over the GPUs of a
 * host, one pipeline stage per host (weights and KV cache split across hosts too).
 */
export function fitMachine(
  requirement: SizingRequirement,
  shape: MachineShape,
  placement: Placement = {},
): MachineFit {
  const perHost = shape.machine.acceleratorCount;
  const hosts = placement.hosts ?? 1;
  const gpuMemoryBytes = placement.gpuMemoryBytes ?? shape.gpuMemoryBytes;
  const kvShards = Math.max(1, Math.min(perHost, requirement.kvShardLimit)) * hosts;
  const kvPerGpu = (requirement.kvBytesPerToken * requirement.contextTokens) / kvShards;
  const kvRoom = kvRoomPerGpu(requirement.weightBytes, gpuMemoryBytes, perHost * hosts);
  const perGpuUsableBytes = Math.floor(GPU_MEMORY_UTILIZATION * gpuMemoryBytes);
  // The usable memory the weights and overhead leave is the KV room; the KV cache comes on top of them.
  const perGpuRequiredBytes = Math.ceil(perGpuUsableBytes - kvRoom + kvPerGpu);
  const tensorParallelValid = requirement.tensorParallelSizes.includes(perHost);
  let maxContextTokens =
    kvRoom <= 0
      ? 0
      : requirement.kvBytesPerToken > 0
        ? Math.floor((kvRoom * kvShards) / requirement.kvBytesPerToken)
        : Number.MAX_SAFE_INTEGER;
  if (requirement.maxPositionEmbeddings !== undefined) {
    maxContextTokens = Math.min(maxContextTokens, requirement.maxPositionEmbeddings);
  }
  return {
    machine: shape.machine,
    gpuMemoryBytes,
    perGpuRequiredBytes,
    perGpuUsableBytes,
    fits: tensorParallelValid && perGpuRequiredBytes <= perGpuUsableBytes,
    tensorParallelValid,
    maxContextTokens,
  };
}

export interface MachineRecommendation {
  /** The machine to use, if any single-node shape fits. */
  recommended?: MachineFit;
  /** The smallest fitting shape of each other accelerator type, cheapest class first. */
  alternatives: MachineFit[];
}

export interface RecommendOptions {
  /** Also consider shapes whose GPU memory Google has not confirmed (RTX PRO 6000, B200, GB200). */
  includeUnconfirmed?: boolean;
}

/**
 * The recommended machine: among preferred shapes that fit with a valid TP size, the fewest GPUs
 * (less tensor-parallel traffic, fewer GPUs of quota per replica), then the cheapest GPU class.
 * Families released in MXFP4 / block-FP8 prefer Hopper GPUs, whose kernels they target.
 */
export function recommendMachine(
  requirement: SizingRequirement,
  options: RecommendOptions = {},
): MachineRecommendation {
  const order = new Map(MACHINE_TABLE.map((s, i) => [s, i]));
  const candidates = MACHINE_TABLE.filter(
    (s) => s.preferred && (options.includeUnconfirmed || !s.memoryUnconfirmed),
  )
    .map((s) => ({ shape: s, fit: fitMachine(requirement, s) }))
    .filter(({ fit }) => fit.fits);
  const prefersHopper = requirement.nativeQuantization !== undefined;
  candidates.sort(
    (a, b) =>
      (prefersHopper
        ? Number(b.shape.generation === 'hopper') - Number(a.shape.generation === 'hopper')
        : 0) ||
      a.shape.machine.acceleratorCount - b.shape.machine.acceleratorCount ||
      order.get(a.shape)! - order.get(b.shape)!,
  );
  const [best, ...rest] = candidates;
  const seen = new Set<string>([best?.shape.machine.acceleratorType ?? '']);
  const alternatives: MachineFit[] = [];
  for (const { shape: s, fit } of [...rest].sort(
    (a, b) =>
      order.get(a.shape)! - order.get(b.shape)! ||
      a.shape.machine.acceleratorCount - b.shape.machine.acceleratorCount,
  )) {
    if (seen.has(s.machine.acceleratorType)) continue;
    seen.add(s.machine.acceleratorType);
    alternatives.push(fit);
  }
  return best ? { recommended: best.fit, alternatives } : { alternatives };
}

export type MachineCheck =
  | { known: false; machine: MachineSpec; message: string }
  | { known: true; fit: MachineFit; shape: MachineShape };

/** Checks a user-chosen machine: a real Vertex shape, a valid TP size, enough memory (on all its hosts, or in its partition). */
export function checkMachine(requirement: SizingRequirement, machine: MachineSpec): MachineCheck {
  const shape = findMachineShape(machine);
  if (!shape) {
    const sameType = MACHINE_TABLE.filter((s) => s.machine.type === machine.type).map(describeMachine);
    return {
      known: false,
      machine,
      message:
        `${describeMachine({ machine })} is not a Vertex AI GPU machine shape` +
        (sameType.length > 0
          ? `; ${machine.type} comes as ${sameType.join(' or ')}`
          : `; known shapes: ${[...new Set(MACHINE_TABLE.filter((s) => s.preferred).map((s) => s.machine.type))].join(', ')}`),
    };
  }
  return { known: true, fit: fitMachine(requirement, shape, placementOf(machine, shape)), shape };
}

export function describeMachine({ machine }: { machine: MachineSpec }): string {
  return `${machine.type} (${machine.acceleratorCount}× ${machine.acceleratorType})`;
}

/** 1536 → "1.5 KiB", 16e9 → "14.9 GiB". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
