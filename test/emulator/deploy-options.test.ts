import { describe, expect, it } from 'vitest';
import { parseProtoJson, projectNumberFor } from '../../src/emulator';
import {
  L4_MACHINE,
  V1BETA1,
  deployReady,
  expectProtoRoundTrip,
  expectValidProto,
  pollUntil,
  uniqueProject,
  useTestEmulator,
  waitForOperation,
} from './helpers';

/** Every DeployRequest / DeployModelRequest field that applies to custom weights, and UpdateEndpointLongRunning. */

const t = useTestEmulator({ model: { family: 'llama', shards: 1 } });

const METRIC = 'aiplatform.googleapis.com/prediction/online';

const containerSpec = {
  imageUri:
    'us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:20250601_0916_RC01',
  command: ['vllm', 'serve'],
  args: ['--max-model-len=2048', '--gpu-memory-utilization', '0.85', '--enable-prefix-caching'],
  env: [{ name: 'VLLM_LOGGING_LEVEL', value: 'INFO' }],
  ports: [{ containerPort: 8080 }],
  predictRoute: '/generate',
  healthRoute: '/ping',
  startupProbe: { httpGet: { path: '/ping', port: 8080 }, periodSeconds: 10, failureThreshold: 60 },
  healthProbe: { httpGet: { path: '/ping', port: 8080 }, periodSeconds: 30, timeoutSeconds: 5 },
  // int64: a JSON number is accepted; the Model reports the proto3-JSON string.
  sharedMemorySizeMb: 16384,
  deploymentTimeout: '3600s',
};

const dedicatedResources = {
  machineSpec: {
    machineType: 'a2-highgpu-1g',
    acceleratorType: 'NVIDIA_TESLA_A100',
    acceleratorCount: 1,
    gpuPartitionSize: '3g.20gb',
    multihostGpuNodeCount: 2,
    reservationAffinity: {
      reservationAffinityType: 'SPECIFIC_RESERVATION',
      key: 'compute.googleapis.com/reservation-name',
      values: ['projects/p/zones/us-central1-a/reservations/a100s'],
    },
  },
  // min_replica_count 0 (left out) with scale to zero, starting with the initial count.
  maxReplicaCount: 2,
  requiredReplicaCount: 1,
  initialReplicaCount: 1,
  autoscalingMetricSpecs: [
    { metricName: `${METRIC}/accelerator/duty_cycle`, target: 70 },
    { metricName: `${METRIC}/request_count` },
  ],
  spot: true,
  flexStart: { maxRuntimeDuration: '86400s' },
  scaleToZeroSpec: { minScaleupPeriod: '300s', idleScaledownPeriod: '3600s' },
};

describe(':deploy with every option that applies to custom weights', () => {
  it('takes them all, and the Model and the deployed model report them as requested', async () => {
    const project = uniqueProject('options');
    const body = {
      customModel: { gcsUri: t.model },
      modelConfig: { modelUserId: 'all-options', modelDisplayName: 'all-options', containerSpec },
      endpointConfig: { endpointUserId: 'all-options', dedicatedEndpointDisabled: true },
      deployConfig: {
        dedicatedResources,
        fastTryoutEnabled: true,
        systemLabels: { 'model-garden': 'custom' },
      },
    };
    expectProtoRoundTrip(`${V1BETA1}.DeployRequest`, body);
    const start = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, body);
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.error, JSON.stringify(op.error)).toBeUndefined();

    const endpoint = await pollUntil('the initial replica', async () => {
      const res = await t.api.get(`/v1beta1/${op.response.endpoint}`);
      return res.json.deployedModels?.[0]?.status?.availableReplicaCount === 1 ? res.json : undefined;
    });
    expectValidProto(`${V1BETA1}.Endpoint`, endpoint);
    // Dedicated DNS disabled: served on the shared domain.
    expect(endpoint.dedicatedEndpointEnabled).toBeUndefined();
    expect(endpoint.dedicatedEndpointDns).toBeUndefined();
    const deployed = endpoint.deployedModels[0];
    expect(deployed.dedicatedResources).toEqual({
      ...dedicatedResources,
      // The server's default target is filled in.
      autoscalingMetricSpecs: [
        { metricName: `${METRIC}/accelerator/duty_cycle`, target: 70 },
        { metricName: `${METRIC}/request_count`, target: 60 },
      ],
    });
    expect(deployed.fasterDeploymentConfig).toEqual({ fastTryoutEnabled: true });
    expect(deployed.systemLabels).toEqual({ 'model-garden': 'custom' });

    const created = await t.api.get(`/v1beta1/${op.response.model}`);
    expectValidProto(`${V1BETA1}.Model`, created.json);
    expect(created.json.containerSpec).toEqual({ ...containerSpec, sharedMemorySizeMb: '16384' });
    expect(created.json.containerSpec).toEqual(
      parseProtoJson(`${V1BETA1}.ModelContainerSpec`, containerSpec),
    );
  });

  it('keeps Model Garden defaults: machine, one replica, a dedicated endpoint, the default container', async () => {
    const project = uniqueProject('defaults');
    const start = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, {
      customModel: { gcsUri: t.model },
      endpointConfig: { endpointUserId: 'defaults', dedicatedEndpointEnabled: true },
    });
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    const endpoint = (await t.api.get(`/v1beta1/${op.response.endpoint}`)).json;
    expect(endpoint.dedicatedEndpointDns).toBe(
      `defaults.us-central1-${projectNumberFor(project)}.prediction.vertexai.goog`,
    );
    expect(endpoint.deployedModels[0].dedicatedResources).toEqual({
      machineSpec: L4_MACHINE,
      minReplicaCount: 1,
      maxReplicaCount: 1,
    });
    const created = (await t.api.get(`/v1beta1/${op.response.model}`)).json;
    expect(created.containerSpec).toMatchObject({ ports: [{ containerPort: 8080 }], healthRoute: '/ping' });
  });

  const RESOURCES = 'deploy_config.dedicated_resources';
  const CONTAINER = 'model_config.container_spec';
  const resources = (over: Record<string, unknown>) => ({
    deployConfig: {
      dedicatedResources: { machineSpec: L4_MACHINE, minReplicaCount: 2, maxReplicaCount: 2, ...over },
    },
  });
  const machine = (over: Record<string, unknown>) => resources({ machineSpec: { ...L4_MACHINE, ...over } });
  const container = (over: Record<string, unknown>) => ({
    modelConfig: { containerSpec: { imageUri: containerSpec.imageUri, ...over } },
  });

  it.each([
    [
      'min 0 without scale to zero',
      resources({ minReplicaCount: undefined }),
      `${RESOURCES}.min_replica_count`,
      '0 needs scale_to_zero_spec',
    ],
    [
      'scale to zero with min 1',
      resources({ minReplicaCount: 1, scaleToZeroSpec: {} }),
      `${RESOURCES}.scale_to_zero_spec`,
      'needs min_replica_count 0',
    ],
    [
      'an initial count with min 2',
      resources({ initialReplicaCount: 1 }),
      `${RESOURCES}.initial_replica_count`,
      'only with min_replica_count 0',
    ],
    [
      'required above min',
      resources({ requiredReplicaCount: 3 }),
      `${RESOURCES}.required_replica_count`,
      'must not exceed min_replica_count (2)',
    ],
    [
      'max below min',
      resources({ maxReplicaCount: 1 }),
      `${RESOURCES}.max_replica_count`,
      'must not be less than min_replica_count (2)',
    ],
    [
      'an unknown autoscaling metric',
      resources({ autoscalingMetricSpecs: [{ metricName: `${METRIC}/gpu_memory`, target: 50 }] }),
      `${RESOURCES}.autoscaling_metric_specs[0]`,
      'is not supported',
    ],
    [
      'a duty cycle target over 100',
      resources({
        autoscalingMetricSpecs: [{ metricName: `${METRIC}/accelerator/duty_cycle`, target: 150 }],
      }),
      `${RESOURCES}.autoscaling_metric_specs[0]`,
      'a percentage from 1 to 100',
    ],
    [
      'flex start over 7 days',
      resources({ flexStart: { maxRuntimeDuration: '691200s' } }),
      `${RESOURCES}.flex_start.max_runtime_duration`,
      'at most 7 days',
    ],
    [
      'a scale-up period under 300s',
      resources({ minReplicaCount: undefined, scaleToZeroSpec: { minScaleupPeriod: '60s' } }),
      `${RESOURCES}.scale_to_zero_spec.min_scaleup_period`,
      'between 300s and 28800s',
    ],
    [
      'an idle period over 8 hours',
      resources({ minReplicaCount: undefined, scaleToZeroSpec: { idleScaledownPeriod: '30000s' } }),
      `${RESOURCES}.scale_to_zero_spec.idle_scaledown_period`,
      'between 300s and 28800s',
    ],
    [
      'SPECIFIC_RESERVATION without key and values',
      machine({ reservationAffinity: { reservationAffinityType: 'SPECIFIC_RESERVATION' } }),
      `${RESOURCES}.machine_spec.reservation_affinity.key`,
      'SPECIFIC_RESERVATION needs',
    ],
    [
      'ANY_RESERVATION with values',
      machine({ reservationAffinity: { reservationAffinityType: 'ANY_RESERVATION', values: ['r'] } }),
      `${RESOURCES}.machine_spec.reservation_affinity.values`,
      'apply to SPECIFIC_RESERVATION only',
    ],
    [
      'a reservation without its type',
      machine({ reservationAffinity: { key: 'k' } }),
      `${RESOURCES}.machine_spec.reservation_affinity.reservation_affinity_type`,
      'is required',
    ],
    [
      'a GPU partition of two GPUs',
      resources({
        machineSpec: {
          machineType: 'g2-standard-24',
          acceleratorType: 'NVIDIA_L4',
          acceleratorCount: 2,
          gpuPartitionSize: '1g.10gb',
        },
      }),
      `${RESOURCES}.machine_spec.gpu_partition_size`,
      'needs accelerator_count 1',
    ],
    [
      'a GPU partition that is no MIG profile',
      machine({ gpuPartitionSize: 'half' }),
      `${RESOURCES}.machine_spec.gpu_partition_size`,
      'MIG profile',
    ],
    [
      'a negative host count',
      machine({ multihostGpuNodeCount: -1 }),
      `${RESOURCES}.machine_spec.multihost_gpu_node_count`,
      'must not be negative',
    ],
    [
      'a container without image',
      { modelConfig: { containerSpec: { args: ['--port=8080'] } } },
      `${CONTAINER}.image_uri`,
      'image_uri is required',
    ],
    [
      'two ports',
      container({ ports: [{ containerPort: 8080 }, { containerPort: 9000 }] }),
      `${CONTAINER}.ports`,
      'the first one only',
    ],
    [
      'a deployment timeout over 2 hours',
      container({ deploymentTimeout: '7201s' }),
      `${CONTAINER}.deployment_timeout`,
      'at most 2 hours',
    ],
    [
      'an invalid env name',
      container({ env: [{ name: '1LOG', value: 'x' }] }),
      `${CONTAINER}.env[0].name`,
      'not a valid environment variable name',
    ],
    [
      'a probe without a check',
      container({ startupProbe: { periodSeconds: 5 } }),
      `${CONTAINER}.startup_probe`,
      'exactly one of exec, http_get, grpc or tcp_socket',
    ],
    [
      'a route without a slash',
      container({ predictRoute: 'generate' }),
      `${CONTAINER}.predict_route`,
      'starting with "/"',
    ],
    [
      'negative shared memory',
      container({ sharedMemorySizeMb: '-1' }),
      `${CONTAINER}.shared_memory_size_mb`,
      'must not be negative',
    ],
    [
      'dedicated both disabled and enabled',
      { endpointConfig: { dedicatedEndpointDisabled: true, dedicatedEndpointEnabled: true } },
      'endpoint_config.dedicated_endpoint_disabled',
      'contradict',
    ],
  ])('refuses %s, naming the field', async (_what, extra, field, message) => {
    const project = uniqueProject('refused');
    // As JSON: a field set to undefined is left out.
    const body: unknown = JSON.parse(
      JSON.stringify({ customModel: { gcsUri: t.model }, ...resources({}), ...extra }),
    );
    expectProtoRoundTrip(`${V1BETA1}.DeployRequest`, body);
    const res = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, body);
    expect(res.status, res.text).toBe(400);
    expect(res.json.error.status).toBe('INVALID_ARGUMENT');
    expect(res.json.error.details[0].fieldViolations[0].field).toBe(field);
    expect(res.json.error.message).toContain(message);
    expect((await t.admin.resources(project)).operations).toEqual([]);
  });
});

describe('endpoints.deployModel with the same resources', () => {
  it('takes scale to zero, capacity options and logging flags, and reports them', async () => {
    const project = uniqueProject('dm-options');
    const { endpoint, operation } = await deployReady(t.api, project, t.model, {
      endpoint: 'home',
      model: 'm1',
    });
    const resources = {
      machineSpec: { ...L4_MACHINE, reservationAffinity: { reservationAffinityType: 'ANY_RESERVATION' } },
      maxReplicaCount: 3,
      initialReplicaCount: 2,
      requiredReplicaCount: 1,
      autoscalingMetricSpecs: [{ metricName: `${METRIC}/cpu/utilization`, target: 80 }],
      spot: true,
      scaleToZeroSpec: { idleScaledownPeriod: '600s' },
    };
    const body = {
      deployedModel: {
        model: operation.response.model,
        dedicatedResources: resources,
        enableContainerLogging: true,
        enableAccessLogging: true,
      },
      trafficSplit: { [endpoint.deployedModels[0].id]: 100, '0': 0 },
    };
    expectProtoRoundTrip(`${V1BETA1}.DeployModelRequest`, body);
    const start = await t.api.post(`/v1beta1/${endpoint.name}:deployModel`, body);
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expectValidProto('google.longrunning.Operation', op);
    const expected = {
      dedicatedResources: resources,
      enableContainerLogging: true,
      enableAccessLogging: true,
    };
    expect(op.response.deployedModel).toMatchObject(expected);
    const read = (await t.api.get(`/v1beta1/${endpoint.name}`)).json;
    expectValidProto(`${V1BETA1}.Endpoint`, read);
    expect(
      read.deployedModels.find((m: { id: string }) => m.id === op.response.deployedModel.id),
    ).toMatchObject(expected);

    const refused = await t.api.post(`/v1beta1/${endpoint.name}:deployModel`, {
      deployedModel: {
        model: operation.response.model,
        dedicatedResources: { ...resources, minReplicaCount: 1 },
      },
    });
    expect(refused.status).toBe(400);
    expect(refused.json.error.details[0].fieldViolations[0].field).toBe(
      'deployed_model.dedicated_resources.scale_to_zero_spec',
    );
  });
});

describe('UpdateEndpointLongRunning (:update)', () => {
  it('sets the inference timeout in an operation whose response is the Endpoint', async () => {
    const project = uniqueProject('update');
    const { endpoint } = await deployReady(t.api, project, t.model, {
      endpoint: 'timeout',
      model: 'timeout',
    });
    const body = {
      endpoint: {
        name: endpoint.name.replace(projectNumberFor(project), project),
        clientConnectionConfig: { inferenceTimeout: '600s' },
      },
    };
    expectProtoRoundTrip(`${V1BETA1}.UpdateEndpointLongRunningRequest`, body);
    const start = await t.api.post(`/v1beta1/${endpoint.name}:update`, body);
    expect(start.status, start.text).toBe(200);
    expectValidProto('google.longrunning.Operation', start.json);
    expect(start.json.name).toMatch(new RegExp(`^${endpoint.name}/operations/\\d+$`));
    expect(start.json.metadata['@type']).toBe(
      `type.googleapis.com/${V1BETA1}.UpdateEndpointOperationMetadata`,
    );
    const op = await waitForOperation(t.api, start.json.name);
    expectValidProto('google.longrunning.Operation', op);
    expect(op.response).toMatchObject({
      '@type': `type.googleapis.com/${V1BETA1}.Endpoint`,
      name: endpoint.name,
      clientConnectionConfig: { inferenceTimeout: '600s' },
    });
    const read = (await t.api.get(`/v1beta1/${endpoint.name}`)).json;
    expectValidProto(`${V1BETA1}.Endpoint`, read);
    expect(read.clientConnectionConfig).toEqual({ inferenceTimeout: '600s' });
    expect(read.etag).not.toBe(endpoint.etag);
    expect((await t.admin.stats(project)).calls['vertex.endpoints.update']).toBe(1);
    expect((await t.admin.routes()).map((r) => r.id)).toContain('vertex.endpoints.update');

    const other = await t.api.post(`/v1beta1/${endpoint.name}:update`, {
      endpoint: { displayName: 'renamed', clientConnectionConfig: { inferenceTimeout: '60s' } },
    });
    expect(other.status).toBe(400);
    expect(other.json.error.details[0].fieldViolations[0].field).toBe('endpoint.display_name');
    expect(other.json.error.message).toContain(
      "Currently we only support updating the client_connection_config field, all the other fields' update will be blocked.",
    );
    const tooLong = await t.api.post(`/v1beta1/${endpoint.name}:update`, {
      endpoint: { clientConnectionConfig: { inferenceTimeout: '7200s' } },
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.error.details[0].fieldViolations[0].field).toBe(
      'endpoint.client_connection_config.inference_timeout',
    );
    const elsewhere = await t.api.post(`/v1beta1/${endpoint.name}:update`, {
      endpoint: { name: `${endpoint.name}x` },
    });
    expect(elsewhere.status).toBe(400);
    expect((await t.api.post(`/v1beta1/${endpoint.name}:update`, {})).status).toBe(400);

    // An Endpoint without client_connection_config clears it.
    const cleared = await waitForOperation(
      t.api,
      (await t.api.post(`/v1beta1/${endpoint.name}:update`, { endpoint: {} })).json.name,
    );
    expect(cleared.response.clientConnectionConfig).toBeUndefined();
  });
});
