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
  spec: {
    machineType?: string;
    acceleratorType?: string;
    acceleratorCount?: number;
  },
  field = 'deploy_config.dedicated_resources.machine_spec',
): void {
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
