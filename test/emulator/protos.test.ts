import { describe, expect, it } from 'vitest';
import { ProtoJsonError, checkProtoJson, parseProtoJson, roundTripProtoJson } from '../../src/emulator';

const DEPLOY = 'google.cloud.aiplatform.v1beta1.DeployRequest';
const ENDPOINT = 'google.cloud.aiplatform.v1beta1.Endpoint';

function firstViolation(typeName: string, body: unknown): { field: string; description: string } | undefined {
  const result = checkProtoJson(typeName, body);
  return result.ok ? undefined : result.violations[0];
}

describe('proto3 JSON checks against the official v1beta1 types', () => {
  it('accepts proto and JSON names alike and returns canonical lowerCamelCase', () => {
    const snake = parseProtoJson(DEPLOY, {
      custom_model: { gcs_uri: 'gs://b/m' },
      deploy_config: { dedicated_resources: { min_replica_count: 1 } },
    });
    const camel = parseProtoJson(DEPLOY, {
      customModel: { gcsUri: 'gs://b/m' },
      deployConfig: { dedicatedResources: { minReplicaCount: 1 } },
    });
    expect(snake).toEqual(camel);
    expect(camel).toEqual({
      customModel: { gcsUri: 'gs://b/m' },
      deployConfig: { dedicatedResources: { minReplicaCount: 1 } },
    });
  });

  it('names the first unknown field by its proto path, with indexes and map keys', () => {
    expect(firstViolation(DEPLOY, { endpoint_config: { endpointUserId: 'a', labels: { x: 'y' } } })).toEqual({
      field: 'endpoint_config',
      description: `Invalid JSON payload received. Unknown name "labels" at 'endpoint_config': Cannot find field.`,
    });
    expect(
      firstViolation(DEPLOY, {
        deployConfig: {
          dedicatedResources: {
            autoscalingMetricSpecs: [{ metricName: 'm' }, { metricName: 'm', targt: 1 }],
          },
        },
      })?.field,
    ).toBe('deploy_config.dedicated_resources.autoscaling_metric_specs[1]');
    expect(firstViolation(ENDPOINT, { trafficSplit: { '123': 'all' } })?.field).toBe('traffic_split[123]');
    expect(firstViolation(DEPLOY, { nope: 1 })).toEqual({
      field: '',
      description: 'Invalid JSON payload received. Unknown name "nope": Cannot find field.',
    });
  });

  it('checks scalar types the way ESF does: int64 as string or number, enums by name or number, ranges', () => {
    const spec = (machineSpec: unknown) => ({ deployConfig: { dedicatedResources: { machineSpec } } });
    expect(parseProtoJson(DEPLOY, spec({ acceleratorCount: '2', acceleratorType: 3 }))).toEqual(
      spec({ acceleratorCount: 2, acceleratorType: 'NVIDIA_TESLA_V100' }),
    );
    expect(firstViolation(DEPLOY, spec({ acceleratorCount: 1.5 }))?.description).toBe(
      `Invalid value at 'deploy_config.dedicated_resources.machine_spec.accelerator_count' (TYPE_INT32), 1.5`,
    );
    expect(firstViolation(DEPLOY, spec({ acceleratorCount: 2 ** 31 }))?.field).toBe(
      'deploy_config.dedicated_resources.machine_spec.accelerator_count',
    );
    expect(firstViolation(DEPLOY, spec({ machineType: ['g2'] }))?.description).toContain(
      'Proto field is not repeating, cannot start list.',
    );
    const container = (spec: unknown) => ({ modelConfig: { containerSpec: spec } });
    expect(parseProtoJson(DEPLOY, container({ sharedMemorySizeMb: 4096 }))).toEqual(
      container({ sharedMemorySizeMb: '4096' }),
    );
    expect(firstViolation(DEPLOY, container({ sharedMemorySizeMb: '12x' }))?.description).toBe(
      `Invalid value at 'model_config.container_spec.shared_memory_size_mb' (TYPE_INT64), "12x"`,
    );
    expect(parseProtoJson(DEPLOY, { modelConfig: { acceptEula: 'true' } })).toEqual({
      modelConfig: { acceptEula: true },
    });
  });

  it('checks well-known types in their JSON forms: Duration, Timestamp, Struct, Any', () => {
    const container = (deploymentTimeout: unknown) => ({
      modelConfig: { containerSpec: { deploymentTimeout } },
    });
    expect(checkProtoJson(DEPLOY, container('3600s')).ok).toBe(true);
    expect(checkProtoJson(DEPLOY, container('1.5s')).ok).toBe(true);
    expect(firstViolation(DEPLOY, container('1h'))?.description).toContain(
      '(type.googleapis.com/google.protobuf.Duration), "1h"',
    );
    expect(checkProtoJson(ENDPOINT, { createTime: '2025-03-13T21:44:44.538780Z' }).ok).toBe(true);
    expect(firstViolation(ENDPOINT, { createTime: 'yesterday' })?.field).toBe('create_time');
    const op = {
      name: 'projects/1/locations/l/operations/2',
      metadata: {
        '@type': 'type.googleapis.com/google.cloud.aiplatform.v1beta1.DeployOperationMetadata',
        projectNumber: 123,
        bogus: true,
      },
    };
    expect(firstViolation('google.longrunning.Operation', op)?.description).toBe(
      `Invalid JSON payload received. Unknown name "bogus" at 'metadata': Cannot find field.`,
    );
    const predict = {
      instances: [{ prompt: 'x', nested: { any: ['json', 1, null] } }],
      parameters: { max_tokens: 3 },
    };
    expect(parseProtoJson('google.cloud.aiplatform.v1beta1.PredictRequest', predict)).toEqual(predict);
  });

  it('refuses two members of a oneof, a field given twice, and absurd nesting', () => {
    expect(
      firstViolation(DEPLOY, {
        customModel: { gcsUri: 'gs://b/m' },
        publisherModelName: 'publishers/google/models/x',
      })?.description,
    ).toBe(
      `Invalid JSON payload received. Oneof field 'artifacts' is already set. Cannot set 'publisherModelName'.`,
    );
    expect(firstViolation(DEPLOY, { modelConfig: { modelUserId: 'a', model_user_id: 'b' } })?.field).toBe(
      'model_config.model_user_id',
    );
    let deep: unknown = 'x';
    for (let i = 0; i < 200; i++) deep = [deep];
    expect(
      firstViolation('google.cloud.aiplatform.v1beta1.PredictRequest', { instances: [deep] })?.description,
    ).toContain('Nesting deeper than 64 levels');
  });

  it('round-trips bodies through the binary message; unknown fields cannot travel', () => {
    const body = {
      custom_model: { gcs_uri: 'gs://b/m' },
      model_config: {
        model_user_id: 'm',
        container_spec: { image_uri: 'img', deployment_timeout: '7200s', env: [{ name: 'A', value: '1' }] },
      },
      endpoint_config: {
        private_service_connect_config: {
          enable_private_service_connect: true,
          project_allowlist: ['p1', 'p2'],
        },
      },
      deploy_config: {
        dedicated_resources: {
          machine_spec: {
            machine_type: 'a3-highgpu-8g',
            accelerator_type: 'NVIDIA_H100_80GB',
            accelerator_count: 8,
          },
          min_replica_count: 1,
        },
        system_labels: { k: 'v' },
      },
    };
    expect(roundTripProtoJson(DEPLOY, body)).toEqual(parseProtoJson(DEPLOY, body));
    expect(() => roundTripProtoJson(DEPLOY, { ...body, extra: 1 })).toThrow(ProtoJsonError);
    const op = {
      name: 'projects/1/locations/l/operations/2',
      done: true,
      error: {
        code: 9,
        message: 'boom',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'R',
            domain: 'd',
            metadata: { a: 'b' },
          },
        ],
      },
    };
    expect(roundTripProtoJson('google.longrunning.Operation', op)).toEqual(op);
  });
});
