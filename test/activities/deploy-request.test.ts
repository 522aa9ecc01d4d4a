import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployRequestOf } from '../../src/activities/deploy-to-vertex';
import { checkProtoJson, roundTripProtoJson } from '../../src/emulator/protos';
import { buildDeployRequest } from '../../src/gcp';
import {
  type DeploymentSpec,
  type MachineSpec,
  deploymentIds,
  loadDeploymentSpecFile,
  parseDeploymentSpec,
} from '../../src/spec';

/**
 * A spec using every serving option becomes a `:deploy` body that names each one as the official
 * proto does: valid proto3 JSON of DeployRequest that survives a binary round trip unchanged, so no
 * field is unknown to Google's types and none is dropped.
 */

const DEPLOY_REQUEST = 'google.cloud.aiplatform.v1beta1.DeployRequest';

function bodyOf(spec: DeploymentSpec) {
  const machine = spec.machine as MachineSpec;
  return buildDeployRequest(deployRequestOf({ spec: { ...spec, machine }, ids: deploymentIds(spec) }));
}

function expectProtoBody(body: unknown): void {
  const check = checkProtoJson(DEPLOY_REQUEST, body);
  expect(check.ok ? [] : check.violations).toEqual([]);
  expect(roundTripProtoJson(DEPLOY_REQUEST, body)).toEqual(body);
}

describe('the :deploy body of every serving option', () => {
  it('examples/serving-options.yaml: reservation, multi-host, autoscaling, required replicas, the container', async () => {
    const spec = await loadDeploymentSpecFile(path.resolve(__dirname, '../../examples/serving-options.yaml'));
    const body = bodyOf(spec);
    expect(body.deployConfig).toEqual({
      dedicatedResources: {
        machineSpec: {
          machineType: 'a3-highgpu-8g',
          acceleratorType: 'NVIDIA_H100_80GB',
          acceleratorCount: 8,
          multihostGpuNodeCount: 2,
          reservationAffinity: {
            reservationAffinityType: 'SPECIFIC_RESERVATION',
            key: 'compute.googleapis.com/reservation-name',
            values: ['projects/my-ml-project/zones/us-central1-a/reservations/h100-serving'],
          },
        },
        minReplicaCount: 1,
        maxReplicaCount: 2,
        requiredReplicaCount: 1,
        autoscalingMetricSpecs: [
          { metricName: 'aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle', target: 70 },
          { metricName: 'aiplatform.googleapis.com/prediction/online/request_count', target: 600 },
        ],
      },
    });
    expect(body.modelConfig).toMatchObject({
      containerSpec: {
        imageUri: 'us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:latest',
        command: ['python', '-m', 'vllm.entrypoints.api_server'],
        args: expect.arrayContaining(['--max-model-len=32768', '--tensor-parallel-size=8']),
        env: [{ name: 'VLLM_LOGGING_LEVEL', value: 'INFO' }],
        ports: [{ containerPort: 8080 }],
        predictRoute: '/generate',
        healthRoute: '/ping',
        startupProbe: { httpGet: { path: '/ping', port: 8080 }, periodSeconds: 30, failureThreshold: 120 },
        healthProbe: { httpGet: { path: '/ping', port: 8080 }, periodSeconds: 10, timeoutSeconds: 5 },
        sharedMemorySizeMb: '16384',
        deploymentTimeout: '7200s',
      },
    });
    // Dedicated is Vertex's default; fast tryout off is left out; the inference timeout and
    // logging are not :deploy fields (set once deployed).
    expect(body.endpointConfig).not.toHaveProperty('dedicatedEndpointDisabled');
    expect(JSON.stringify(body)).not.toMatch(/fastTryout|inferenceTimeout|Logging/);
    expectProtoBody(body);
  });

  it('spot, a GPU partition, scale to zero, flex start, a shared endpoint and fast tryout', () => {
    const spec = parseDeploymentSpec({
      name: 'small-ft',
      project: 'my-ml-project',
      region: 'us-central1',
      model: { uri: 'gs://my-models/small-ft/' },
      machine: {
        type: 'a2-highgpu-1g',
        acceleratorType: 'NVIDIA_TESLA_A100',
        acceleratorCount: 1,
        gpuPartitionSize: '1g.5gb',
      },
      replicas: {
        min: 0,
        max: 3,
        initial: 1,
        scaleToZero: { minScaleupPeriod: '5m', idleScaledownPeriod: '1h' },
      },
      capacity: { spot: true, flexStart: { maxRuntime: '1d' }, reservation: { type: 'NO_RESERVATION' } },
      endpoint: { dedicated: false },
      fastTryout: true,
      smoke: { target: 'skip', skipReason: 'scales to zero: nothing answers until the first request' },
    });
    const body = bodyOf(spec);
    expect(body).toMatchObject({
      endpointConfig: { dedicatedEndpointDisabled: true },
      deployConfig: {
        fastTryoutEnabled: true,
        dedicatedResources: {
          machineSpec: {
            gpuPartitionSize: '1g.5gb',
            reservationAffinity: { reservationAffinityType: 'NO_RESERVATION' },
          },
          maxReplicaCount: 3,
          initialReplicaCount: 1,
          spot: true,
          flexStart: { maxRuntimeDuration: '86400s' },
          scaleToZeroSpec: { minScaleupPeriod: '300s', idleScaledownPeriod: '3600s' },
        },
      },
    });
    // min 0 is proto3's default, so canonical JSON leaves it out.
    expect((body.deployConfig as { dedicatedResources: object }).dedicatedResources).not.toHaveProperty(
      'minReplicaCount',
    );
    expectProtoBody(body);
  });
});
