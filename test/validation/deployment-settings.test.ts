import { afterAll, describe, expect, it } from 'vitest';
import { type DeploymentSettings, InvalidValidationOptionsError, validateModel } from '../../src/validation';
import { editJson, removeTempFolders, sampleFolder } from './folders';
import { A100_80, A100_80x2, args, H100_8, L4_8, pairs, T4 } from './serving-cases';

/**
 * Capacity, replicas and placement settings, wrong then corrected; and the deployment settings
 * through validateModel on generated model folders.
 */

afterAll(removeTempFolders);

const RESERVATION = {
  type: 'SPECIFIC_RESERVATION' as const,
  key: 'compute.googleapis.com/reservation-name',
  values: ['projects/p/zones/us-central1-a/reservations/gpus'],
};

describe('capacity, replicas and placement', () => {
  pairs({
    'spot VMs from a specific reservation': {
      wrong: { deployment: { capacity: { spot: true, reservation: RESERVATION } } },
      right: { deployment: { capacity: { spot: false, reservation: RESERVATION } } },
      expected: ['capacity.spot-reservation:error'],
      says: ['projects/p/zones/us-central1-a/reservations/gpus'],
    },
    'scale to zero with replicas.min above 0': {
      wrong: { deployment: { replicas: { min: 1, max: 2, scaleToZero: {} } } },
      right: { deployment: { replicas: { min: 0, max: 2, scaleToZero: {} } } },
      expected: ['replicas.scale-to-zero-min:error'],
      says: ['replicas.min 1'],
    },
    'a duty-cycle target above 100 %': {
      wrong: {
        deployment: {
          replicas: { min: 1, max: 3, autoscaling: [{ metric: 'accelerator/duty_cycle', target: 150 }] },
        },
      },
      right: {
        deployment: {
          replicas: { min: 1, max: 3, autoscaling: [{ metric: 'accelerator/duty_cycle', target: 60 }] },
        },
      },
      expected: ['replicas.autoscaling-target:error'],
      says: ['150', '1–100'],
    },
    'a request_count target of 0': {
      wrong: {
        deployment: { replicas: { min: 1, max: 3, autoscaling: [{ metric: 'request_count', target: 0 }] } },
      },
      right: {
        deployment: { replicas: { min: 1, max: 3, autoscaling: [{ metric: 'request_count', target: 100 }] } },
      },
      expected: ['replicas.autoscaling-target:error'],
    },
    'autoscaling with max equal to min': {
      wrong: {
        deployment: {
          replicas: { min: 2, max: 2, autoscaling: [{ metric: 'cpu/utilization', target: 70 }] },
        },
      },
      right: {
        deployment: {
          replicas: { min: 2, max: 4, autoscaling: [{ metric: 'cpu/utilization', target: 70 }] },
        },
      },
      expected: ['replicas.autoscaling-fixed:warning'],
    },
    'multi-host on a machine that does not take it': {
      wrong: { machine: { ...L4_8, multihostGpuNodeCount: 2 }, deployment: {} },
      right: { machine: { ...H100_8, multihostGpuNodeCount: 2 }, deployment: {} },
      expected: ['machine.multihost-unsupported:error'],
      says: ['a3-highgpu-8g', 'a4-highgpu-8g'],
    },
    'a GPU partition with two GPUs': {
      wrong: { machine: { ...A100_80x2, gpuPartitionSize: '1g.10gb' }, deployment: {} },
      right: { machine: { ...A100_80, gpuPartitionSize: '1g.10gb' }, deployment: {} },
      expected: ['machine.gpu-partition-count:error'],
      says: ['acceleratorCount 2'],
    },
  });
});

describe('through validateModel', () => {
  it('checks the deployment on the recommended machine when none is given; errors fail the report', async () => {
    const dir = await sampleFolder();
    const wrong = await validateModel(dir, {
      deployment: args('--tensor-parallel-size=2', '--max-model-len=8192'),
    });
    expect(wrong.status).toBe('errors');
    expect(
      wrong.findings
        .filter((f) => f.severity !== 'info')
        .map((f) => f.rule)
        .sort(),
    ).toEqual(['vllm.max-model-len-exceeds-model', 'vllm.parallel-size']);
    expect(wrong.findings.find((f) => f.rule === 'vllm.parallel-size')?.message).toContain('g2-standard-12');
    const right = await validateModel(dir, {
      deployment: {
        ...args('--tensor-parallel-size=1', '--max-model-len=4096'),
        capacity: { spot: true },
        replicas: { min: 1, max: 3, autoscaling: [{ metric: 'accelerator/duty_cycle', target: 60 }] },
      },
    });
    expect(right.status).toBe('ok');
    expect(right.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('reads the KV cache from the checked folder and the explicit machine', async () => {
    const dir = await sampleFolder();
    await editJson(dir, 'config.json', (c) => {
      c.max_position_embeddings = 1 << 30;
    });
    const options = { machine: T4, deployment: args('--dtype=float16', '--max-model-len=200m') };
    const wrong = await validateModel(dir, options);
    expect(wrong.findings.filter((f) => f.severity !== 'info').map((f) => f.rule)).toEqual([
      'vllm.max-model-len-exceeds-kv-cache',
    ]);
    const right = await validateModel(dir, {
      ...options,
      deployment: args('--dtype=float16', '--max-model-len=1m'),
    });
    expect(right.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('takes whole parsed spec sections and refuses settings of the wrong shape', async () => {
    const dir = await sampleFolder();
    const report = await validateModel(dir, {
      deployment: {
        container: { image: 'us-docker.pkg.dev/x/vllm:1', args: ['--max-model-len=4096'] },
        capacity: { spot: false, flexStart: { maxRuntime: 3_600_000 } },
        replicas: { min: 1, max: 1, required: 1 },
      } as DeploymentSettings,
    });
    expect(report.status).toBe('ok');
    await expect(
      validateModel(dir, { deployment: { replicas: { min: 'one' } } as unknown as DeploymentSettings }),
    ).rejects.toThrow(InvalidValidationOptionsError);
  });
});
