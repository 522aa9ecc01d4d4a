import { badRequest } from './errors';

/**
 * Which accelerator (type and count) each Vertex machine type carries (vertex-api.md §8). Google's
 * server refuses a machine spec whose accelerator does not match the machine type.
 */
const FIXED_SHAPES: Record<string, readonly [accelerator: string, count: number]> = {
  'g2-standard-4': ['NVIDIA_L4', 1],
  'g2-standard-8': ['NVIDIA_L4', 1],
  'g2-standard-12': ['NVIDIA_L4', 1],
  'g2-standard-16': ['NVIDIA_L4', 1],
  'g2-standard-32': ['NVIDIA_L4', 1],
  'g2-standard-24': ['NVIDIA_L4', 2],
  'g2-standard-48': ['NVIDIA_L4', 4],
  'g2-standard-96': ['NVIDIA_L4', 8],
  'a2-megagpu-16g': ['NVIDIA_TESLA_A100', 16],
  'a3-megagpu-8g': ['NVIDIA_H100_MEGA_80GB', 8],
  'a3-ultragpu-8g': ['NVIDIA_H200_141GB', 8],
  'a4-highgpu-8g': ['NVIDIA_B200', 8],
  'a4x-highgpu-4g': ['NVIDIA_GB200', 4],
  'g4-standard-48': ['NVIDIA_RTX_PRO_6000', 1],
  'g4-standard-96': ['NVIDIA_RTX_PRO_6000', 2],
  'g4-standard-384': ['NVIDIA_RTX_PRO_6000', 8],
};

/** `a2-highgpu-4g` style families: the count is in the name. */
const COUNTED_FAMILIES: Array<[RegExp, string]> = [
  [/^a2-highgpu-(1|2|4|8)g$/, 'NVIDIA_TESLA_A100'],
  [/^a2-ultragpu-(1|2|4|8)g$/, 'NVIDIA_A100_80GB'],
  [/^a3-highgpu-(1|2|4|8)g$/, 'NVIDIA_H100_80GB'],
];

/** N1 machines take attachable older GPUs in these counts. */
const N1_ACCELERATORS = new Set([
  'NVIDIA_TESLA_T4',
  'NVIDIA_TESLA_V100',
  'NVIDIA_TESLA_P100',
  'NVIDIA_TESLA_P4',
]);
const N1_RE = /^n1-(standard|highmem|highcpu)-\d+$/;
const CPU_RE = /^(n1|n2|n2d|e2|c2|c3)-(standard|highmem|highcpu)-\d+$/;

/** What a serving container sees of one GPU: its name (`torch.cuda.get_device_name`), memory and compute capability. */
export interface GpuFacts {
  name: string;
  /** As the CUDA runtime reports it (not the marketing GB). */
  memoryGiB: number;
  computeCapability: number;
}

/**
 * The GPUs behind each accelerator type. Memory figures are those of src/validation/machines.ts
 * (L4 22.5 GiB, A100 40/80, H100 79.6, H200 140, T4 14.75, V100 15.78, …); the emulator keeps its
 * own table (by accelerator, with names and compute capabilities) because it models the hardware,
 * not our validator's arithmetic.
 */
export const GPUS: Readonly<Record<string, GpuFacts>> = {
  NVIDIA_TESLA_P4: { name: 'Tesla P4', memoryGiB: 7.4, computeCapability: 6.1 },
  NVIDIA_TESLA_P100: { name: 'Tesla P100-PCIE-16GB', memoryGiB: 16, computeCapability: 6.0 },
  NVIDIA_TESLA_V100: { name: 'Tesla V100-SXM2-16GB', memoryGiB: 15.78, computeCapability: 7.0 },
  NVIDIA_TESLA_T4: { name: 'Tesla T4', memoryGiB: 14.75, computeCapability: 7.5 },
  NVIDIA_L4: { name: 'NVIDIA L4', memoryGiB: 22.5, computeCapability: 8.9 },
  NVIDIA_TESLA_A100: { name: 'NVIDIA A100-SXM4-40GB', memoryGiB: 40, computeCapability: 8.0 },
  NVIDIA_A100_80GB: { name: 'NVIDIA A100-SXM4-80GB', memoryGiB: 80, computeCapability: 8.0 },
  NVIDIA_H100_80GB: { name: 'NVIDIA H100 80GB HBM3', memoryGiB: 79.6, computeCapability: 9.0 },
  NVIDIA_H100_MEGA_80GB: { name: 'NVIDIA H100 80GB HBM3', memoryGiB: 79.6, computeCapability: 9.0 },
  NVIDIA_H200_141GB: { name: 'NVIDIA H200', memoryGiB: 140, computeCapability: 9.0 },
  NVIDIA_B200: { name: 'NVIDIA B200', memoryGiB: 179, computeCapability: 10.0 },
  NVIDIA_GB200: { name: 'NVIDIA GB200', memoryGiB: 184, computeCapability: 10.0 },
  NVIDIA_RTX_PRO_6000: {
    name: 'NVIDIA RTX PRO 6000 Blackwell Server Edition',
    memoryGiB: 95.6,
    computeCapability: 12.0,
  },
};

/** MachineSpec (machine_resources.proto) as canonical proto3 JSON. */
export interface MachineSpecJson {
  machineType?: string;
  acceleratorType?: string;
  acceleratorCount?: number;
  gpuPartitionSize?: string;
  multihostGpuNodeCount?: number;
  reservationAffinity?: { reservationAffinityType?: string; key?: string; values?: string[] };
}

const RESERVATION_NAME_KEY = 'compute.googleapis.com/reservation-name';
const GPU_PARTITION_RE = /^[1-9]\d*g\.[1-9]\d*gb$/;

export const DEFAULT_MACHINE_SPEC = {
  machineType: 'g2-standard-12',
  acceleratorType: 'NVIDIA_L4',
  acceleratorCount: 1,
} as const;

/**
 * Throws 400 INVALID_ARGUMENT when the machine spec is not a shape Vertex serves; `field` is the
 * spec's path in the request (named in the BadRequest violation).
 */
export function checkMachineSpec(
  spec: MachineSpecJson,
  field = 'deploy_config.dedicated_resources.machine_spec',
): void {
  checkPlacement(spec, field);
  const machine = spec.machineType ?? '';
  const accelerator =
    spec.acceleratorType && spec.acceleratorType !== 'ACCELERATOR_TYPE_UNSPECIFIED'
      ? spec.acceleratorType
      : undefined;
  const count = spec.acceleratorCount ?? 0;
  const refuse = (description: string) => badRequest([{ field, description }]);
  if (!machine) {
    throw refuse(`${field}.machine_type is required when machine_spec is set.`);
  }
  if (count > 0 && !accelerator) {
    throw refuse(`${field}.accelerator_type is required when accelerator_count is ${count}.`);
  }
  let expected: readonly [string, number] | undefined = FIXED_SHAPES[machine];
  for (const [pattern, type] of COUNTED_FAMILIES) {
    const match = pattern.exec(machine);
    if (match) expected = [type, Number(match[1])];
  }
  if (expected) {
    const [type, n] = expected;
    if (accelerator !== type || count !== n) {
      throw refuse(
        `${field}: machine type "${machine}" is not supported with accelerator ${accelerator ?? 'none'} x ${count}: ` +
          `${machine} comes with ${n} x ${type}. Set accelerator_type ${type} and accelerator_count ${n}.`,
      );
    }
    return;
  }
  if (N1_RE.test(machine) && accelerator && N1_ACCELERATORS.has(accelerator) && [1, 2, 4, 8].includes(count))
    return;
  if (CPU_RE.test(machine) && !accelerator) {
    throw refuse(
      `${field}: machine type "${machine}" has no GPU; large language models with custom weights need an accelerator machine such as g2-standard-12 with 1 x NVIDIA_L4.`,
    );
  }
  throw refuse(
    `${field}: machine type "${machine}" with accelerator ${accelerator ?? 'none'} x ${count} is not supported for online prediction.`,
  );
}

/** The machine spec's optional placement fields: MIG partition, hosts per replica, reservation. */
function checkPlacement(spec: MachineSpecJson, field: string): void {
  const refuse = (name: string, description: string) =>
    badRequest([{ field: `${field}.${name}`, description }]);
  const partition = spec.gpuPartitionSize;
  if (partition !== undefined && partition !== '') {
    if (!GPU_PARTITION_RE.test(partition)) {
      throw refuse(
        'gpu_partition_size',
        `${field}.gpu_partition_size "${partition}" is not a GPU partition; use a MIG profile such as "1g.10gb".`,
      );
    }
    if (spec.acceleratorCount !== 1) {
      throw refuse(
        'gpu_partition_size',
        `${field}.gpu_partition_size needs accelerator_count 1 (got ${spec.acceleratorCount ?? 0}): a replica uses one partition of one GPU.`,
      );
    }
  }
  if ((spec.multihostGpuNodeCount ?? 0) < 0) {
    throw refuse(
      'multihost_gpu_node_count',
      `${field}.multihost_gpu_node_count must not be negative (got ${spec.multihostGpuNodeCount}).`,
    );
  }
  const affinity = spec.reservationAffinity;
  if (affinity === undefined) return;
  const type = affinity.reservationAffinityType ?? 'TYPE_UNSPECIFIED';
  const at = `${field}.reservation_affinity`;
  if (type === 'TYPE_UNSPECIFIED') {
    throw refuse(
      'reservation_affinity.reservation_affinity_type',
      `${at}.reservation_affinity_type is required: NO_RESERVATION, ANY_RESERVATION or SPECIFIC_RESERVATION.`,
    );
  }
  const values = affinity.values ?? [];
  if (type === 'SPECIFIC_RESERVATION') {
    if (affinity.key !== RESERVATION_NAME_KEY || values.length === 0) {
      throw refuse(
        affinity.key !== RESERVATION_NAME_KEY ? 'reservation_affinity.key' : 'reservation_affinity.values',
        `SPECIFIC_RESERVATION needs ${at}.key "${RESERVATION_NAME_KEY}" and ${at}.values naming the reservations (projects/{project}/zones/{zone}/reservations/{name}).`,
      );
    }
  } else if (affinity.key || values.length > 0) {
    throw refuse(
      affinity.key ? 'reservation_affinity.key' : 'reservation_affinity.values',
      `${at}.key and values apply to SPECIFIC_RESERVATION only, not ${type}; leave them out.`,
    );
  }
}
