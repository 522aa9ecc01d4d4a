import { describe, expect, it } from 'vitest';
import {
  checkMachine,
  COMPUTE_CAPABILITY,
  findMachineShape,
  fitMachine,
  formatBytes,
  kvRoomPerGpu,
  MACHINE_TABLE,
  recommendMachine,
  type SizingRequirement,
} from '../../src/validation/machines';

const GiB = 1024 ** 3;
const KiB = 1024;

/** Weights and KV per token from hf-weights §6.3's table (its GiB and KiB columns). */
function requirement(
  weightsGiB: number,
  kvKiBPerToken: number,
  extra: Partial<SizingRequirement> = {},
): SizingRequirement {
  return {
    weightBytes: weightsGiB * GiB,
    kvBytesPerToken: kvKiBPerToken * KiB,
    contextTokens: 8192,
    tensorParallelSizes: [1, 2, 4, 8],
    kvShardLimit: 8,
    ...extra,
  };
}

const recommended = (r: SizingRequirement) => recommendMachine(r).recommended?.machine;

describe('machine table', () => {
  it('holds each shape of vertex-api §8 once, with GPU counts 1/2/4/8', () => {
    const keys = MACHINE_TABLE.map(
      (s) => `${s.machine.type}/${s.machine.acceleratorType}/${s.machine.acceleratorCount}`,
    );
    expect(new Set(keys).size).toBe(keys.length);
    expect(
      findMachineShape({ type: 'g2-standard-24', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 }),
    ).toBeDefined();
    expect(
      findMachineShape({ type: 'a3-ultragpu-8g', acceleratorType: 'NVIDIA_H200_141GB', acceleratorCount: 8 }),
    ).toBeDefined();
    expect(
      findMachineShape({ type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 }),
    ).toBeUndefined();
    for (const shape of MACHINE_TABLE) expect([1, 2, 4, 8]).toContain(shape.machine.acceleratorCount);
  });

  it('has T4 (Turing) and V100 (Volta) N1 shapes, checked when chosen but never recommended', () => {
    const t4 = findMachineShape({
      type: 'n1-standard-8',
      acceleratorType: 'NVIDIA_TESLA_T4',
      acceleratorCount: 1,
    });
    const v100 = findMachineShape({
      type: 'n1-highmem-32',
      acceleratorType: 'NVIDIA_TESLA_V100',
      acceleratorCount: 4,
    });
    expect(t4 && COMPUTE_CAPABILITY[t4.generation]).toBe(7.5);
    expect(v100 && COMPUTE_CAPABILITY[v100.generation]).toBe(7.0);
    // V100s allow 12 vCPUs per GPU.
    expect(
      findMachineShape({ type: 'n1-standard-16', acceleratorType: 'NVIDIA_TESLA_V100', acceleratorCount: 1 }),
    ).toBeUndefined();
    const tiny = recommendMachine(requirement(0.5, 16));
    for (const fit of [tiny.recommended!, ...tiny.alternatives]) {
      expect(['NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100']).not.toContain(fit.machine.acceleratorType);
    }
  });

  it('marks the 8-GPU H100/H200/B200 shapes as multi-host', () => {
    expect(
      MACHINE_TABLE.filter((s) => s.multihost)
        .map((s) => s.machine.type)
        .sort(),
    ).toEqual(['a3-highgpu-8g', 'a3-megagpu-8g', 'a3-ultragpu-8g', 'a4-highgpu-8g']);
  });
});

describe('recommendMachine reproduces hf-weights §6.3 at 8k context', () => {
  it('Llama-3.1-8B → 1×L4', () => {
    expect(recommended(requirement(15.0, 128))).toEqual({
      type: 'g2-standard-12',
      acceleratorType: 'NVIDIA_L4',
      acceleratorCount: 1,
    });
  });

  it('Llama-3.1-70B → 4 GPUs of the 80 GB class (8×L4 only as an alternative)', () => {
    const result = recommendMachine(requirement(131, 320));
    expect(result.recommended?.machine).toMatchObject({
      acceleratorType: 'NVIDIA_A100_80GB',
      acceleratorCount: 4,
    });
    expect(result.alternatives.map((a) => a.machine.acceleratorType)).toContain('NVIDIA_H100_80GB');
    expect(
      result.alternatives.find((a) => a.machine.acceleratorType === 'NVIDIA_L4')?.machine.acceleratorCount,
    ).toBe(8);
  });

  it('DeepSeek-V3 in FP8 → 8×H200, and nothing fits it in BF16', () => {
    const fp8 = requirement(641, 69, { kvShardLimit: 1, nativeQuantization: 'fp8' });
    expect(recommended(fp8)).toMatchObject({ type: 'a3-ultragpu-8g', acceleratorCount: 8 });
    expect(recommendMachine({ ...fp8, weightBytes: 1276 * GiB }).recommended).toBeUndefined();
  });

  it('Phi-4 only ever gets 1 or 2 GPUs', () => {
    const phi4 = requirement(27.3, 200, { tensorParallelSizes: [1, 2], kvShardLimit: 10 });
    const result = recommendMachine(phi4);
    expect(result.recommended?.machine.acceleratorCount).toBe(1);
    for (const fit of [result.recommended!, ...result.alternatives])
      expect(fit.machine.acceleratorCount).toBeLessThanOrEqual(2);
  });

  it('Mixtral-8x7B → 2×A100-80; gpt-oss prefers Hopper for its MXFP4 kernels', () => {
    expect(recommended(requirement(87, 128))).toMatchObject({
      acceleratorType: 'NVIDIA_A100_80GB',
      acceleratorCount: 2,
    });
    expect(recommended(requirement(12.9, 48, { nativeQuantization: 'mxfp4' }))).toMatchObject({
      acceleratorType: 'NVIDIA_H100_80GB',
      acceleratorCount: 1,
    });
  });

  it('shapes of unconfirmed GPU memory are recommended only on request', () => {
    const r = requirement(747, 192);
    expect(recommendMachine(r).recommended?.machine.acceleratorType).toBe('NVIDIA_H200_141GB');
    const all = recommendMachine(r, { includeUnconfirmed: true });
    expect([all.recommended, ...all.alternatives].map((f) => f?.machine.acceleratorType)).toContain(
      'NVIDIA_B200',
    );
  });
});

it('formats sizes in the unit that keeps them readable', () => {
  expect(formatBytes(512)).toBe('512 bytes');
  expect(formatBytes(1536)).toBe('1.5 KiB');
  expect(formatBytes(15 * GiB)).toBe('15.0 GiB');
});

describe('fitMachine / checkMachine', () => {
  it('a longer context needs more memory and the fit reports the longest context that fits', () => {
    const shape = findMachineShape({
      type: 'g2-standard-12',
      acceleratorType: 'NVIDIA_L4',
      acceleratorCount: 1,
    })!;
    const short = fitMachine(requirement(15, 128), shape);
    const long = fitMachine(requirement(15, 128, { contextTokens: 131072 }), shape);
    expect(short.fits).toBe(true);
    expect(long.fits).toBe(false);
    expect(long.perGpuRequiredBytes).toBeGreaterThan(short.perGpuRequiredBytes);
    expect(short.maxContextTokens).toBeGreaterThan(8192);
    expect(short.maxContextTokens).toBeLessThan(131072);
    const atMax = fitMachine(requirement(15, 128, { contextTokens: short.maxContextTokens }), shape);
    expect(atMax.fits).toBe(true);
  });

  it('the KV room is what the fit leaves after weights and overhead, and shrinks with the utilisation', () => {
    const shape = findMachineShape({
      type: 'g2-standard-12',
      acceleratorType: 'NVIDIA_L4',
      acceleratorCount: 1,
    })!;
    const fit = fitMachine(requirement(15, 128), shape);
    const room = kvRoomPerGpu(15 * GiB, shape.gpuMemoryBytes, 1);
    expect(fit.maxContextTokens).toBe(Math.floor(room / (128 * KiB)));
    expect(kvRoomPerGpu(15 * GiB, shape.gpuMemoryBytes, 1, 0.8)).toBeLessThan(room);
    expect(kvRoomPerGpu(15 * GiB, shape.gpuMemoryBytes, 2)).toBeGreaterThan(room);
  });

  it('KV heads fewer than GPUs are replicated: the KV share per GPU stops shrinking', () => {
    const shape = findMachineShape({
      type: 'g2-standard-96',
      acceleratorType: 'NVIDIA_L4',
      acceleratorCount: 8,
    })!;
    const twoHeads = fitMachine(requirement(1, 1024, { kvShardLimit: 2 }), shape);
    const eightHeads = fitMachine(requirement(1, 1024, { kvShardLimit: 8 }), shape);
    expect(twoHeads.perGpuRequiredBytes).toBeGreaterThan(eightHeads.perGpuRequiredBytes);
  });

  it('a multi-host replica spreads the weights over every host; a MIG partition holds only its share', () => {
    const h200 = {
      type: 'a3-ultragpu-8g',
      acceleratorType: 'NVIDIA_H200_141GB',
      acceleratorCount: 8,
    } as const;
    const deepseekBf16 = requirement(1276, 69, { kvShardLimit: 1 });
    const one = checkMachine(deepseekBf16, h200);
    const two = checkMachine(deepseekBf16, { ...h200, multihostGpuNodeCount: 2 });
    expect(one.known && one.fit.fits).toBe(false);
    expect(two.known && two.fit.fits).toBe(true);
    const a100 = {
      type: 'a2-ultragpu-1g',
      acceleratorType: 'NVIDIA_A100_80GB',
      acceleratorCount: 1,
    } as const;
    const whole = checkMachine(requirement(15, 128), a100);
    const slice = checkMachine(requirement(15, 128), { ...a100, gpuPartitionSize: '1g.10gb' });
    expect(whole.known && whole.fit.fits).toBe(true);
    expect(slice.known && slice.fit).toMatchObject({ fits: false, gpuMemoryBytes: 10e9 });
  });

  it('rejects unknown shapes with the valid ones for that machine type', () => {
    const check = checkMachine(requirement(15, 128), {
      type: 'g2-standard-24',
      acceleratorType: 'NVIDIA_L4',
      acceleratorCount: 4,
    });
    expect(check.known).toBe(false);
    if (!check.known) expect(check.message).toContain('g2-standard-24 (2× NVIDIA_L4)');
  });

  it('flags a GPU count the heads do not divide', () => {
    const check = checkMachine(requirement(27.3, 200, { tensorParallelSizes: [1, 2] }), {
      type: 'a2-highgpu-4g',
      acceleratorType: 'NVIDIA_TESLA_A100',
      acceleratorCount: 4,
    });
    expect(check.known && check.fit.tensorParallelValid).toBe(false);
    expect(check.known && check.fit.fits).toBe(false);
  });
});
