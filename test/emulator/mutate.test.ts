import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkProtoJson } from '../../src/emulator';
import {
  type GcpClient,
  InvalidRequestError,
  createGcpClient,
  isGcpApiError,
  readMutateDeployedModelResponse,
} from '../../src/gcp';
import { closeTestEnv } from '../harness/env';
import {
  type TestEmulator,
  deployReady,
  expectProtoRoundTrip,
  pollUntil,
  startTestEmulator,
  uniqueProject,
  uploadSampleModel,
  waitForOperation,
} from './helpers';

/** `endpoints.mutateDeployedModel` and `operations.wait`, driven by the real client over HTTP. */

const V1BETA1 = 'google.cloud.aiplatform.v1beta1';
let t: TestEmulator;
let gcp: GcpClient;
let model: string;

beforeAll(async () => {
  t = await startTestEmulator();
  const token = t.api.token!;
  gcp = createGcpClient(
    { vertexBaseUrl: t.emulator.url },
    { tokenSource: { getRequestHeaders: async () => ({ authorization: `Bearer ${token}` }) } },
  );
  model = await uploadSampleModel({ family: 'llama', shards: 1 });
});
afterAll(async () => {
  await t?.emulator.close();
  await closeTestEnv();
});

function expectValid(typeName: string, json: unknown): void {
  const check = checkProtoJson(typeName, json);
  expect(check.ok ? [] : check.violations).toEqual([]);
}

/** A ready deployment (2 replicas, max 2) of its own project. */
async function ready(label: string) {
  const project = uniqueProject(label);
  const { endpoint } = await deployReady(t.api, project, model, { endpoint: label, model: label });
  return {
    project,
    endpoint: endpoint.name as string,
    deployedModelId: endpoint.deployedModels[0].id as string,
  };
}

const available = async (endpoint: string): Promise<number> =>
  (await gcp.vertex.getEndpoint(endpoint)).deployedModels[0]?.status?.availableReplicaCount ?? 0;

describe('endpoints.mutateDeployedModel', () => {
  it('raises the minimum: new replicas ramp up, the operation ends once they are available', async () => {
    const { project, endpoint, deployedModelId } = await ready('raise');
    // The 3rd replica comes up 1.5 s after the change applies, the 4th 1.5 s later.
    await t.admin.setTiming(project, { replicaRampMs: 3000 });
    const started = await gcp.vertex.mutateDeployedModel({
      endpoint,
      deployedModelId,
      minReplicaCount: 4,
      maxReplicaCount: 4,
    });
    expect(started.done).toBe(false);
    expect(started.name).toMatch(new RegExp(`^${endpoint}/operations/\\d+$`));
    expect(started.metadata?.['@type']).toBe(
      `type.googleapis.com/${V1BETA1}.MutateDeployedModelOperationMetadata`,
    );
    const raw = await t.api.get(`/v1beta1/${started.name}`);
    expectValid('google.longrunning.Operation', raw.json);

    await pollUntil('a 3rd replica', async () => ((await available(endpoint)) === 3 ? true : undefined));
    expect((await gcp.vertex.getOperation(started.name)).done).toBe(false);
    const done = await gcp.vertex.waitOperation(started.name, 30_000);
    expect(done.done).toBe(true);
    const deployed = readMutateDeployedModelResponse(done);
    expect(deployed).toMatchObject({
      id: deployedModelId,
      dedicatedResources: { minReplicaCount: 4, maxReplicaCount: 4 },
      status: { availableReplicaCount: 4 },
    });
    const finished = await t.api.get(`/v1beta1/${started.name}`);
    expectValid('google.longrunning.Operation', finished.json);
    expect(finished.json.response['@type']).toBe(
      `type.googleapis.com/${V1BETA1}.MutateDeployedModelResponse`,
    );
    const ep = await gcp.vertex.getEndpoint(endpoint);
    expect(ep.deployedModels[0]?.dedicatedResources).toMatchObject({
      machineSpec: { machineType: 'g2-standard-12' },
      minReplicaCount: 4,
      maxReplicaCount: 4,
    });
  });

  it('lowers the minimum: surplus replicas go at once when the operation completes', async () => {
    const { endpoint, deployedModelId } = await ready('lower');
    const op = await gcp.vertex.mutateDeployedModel({ endpoint, deployedModelId, minReplicaCount: 1 });
    const done = await gcp.vertex.waitOperation(op.name, 30_000);
    expect(done.error).toBeUndefined();
    expect(readMutateDeployedModelResponse(done).status?.availableReplicaCount).toBe(1);
    // Only the minimum was in the mask: the maximum stays.
    expect((await gcp.vertex.getEndpoint(endpoint)).deployedModels[0]).toMatchObject({
      dedicatedResources: { minReplicaCount: 1, maxReplicaCount: 2 },
      status: { availableReplicaCount: 1 },
    });
  });

  it('takes snake_case bodies and masks, required_replica_count and enable_container_logging', async () => {
    const { project, endpoint, deployedModelId } = await ready('snake');
    // 998 new replicas over 10 minutes: the 1st (the 3rd replica) is up in ~0.6 s, the last far later.
    await t.admin.setTiming(project, { replicaRampMs: 600_000 });
    const body = {
      deployed_model: {
        id: deployedModelId,
        dedicated_resources: { min_replica_count: 1000, max_replica_count: 1000, required_replica_count: 3 },
        enable_container_logging: true,
      },
      update_mask:
        'dedicated_resources.min_replica_count,dedicated_resources.max_replica_count,' +
        'dedicated_resources.required_replica_count,enable_container_logging',
    };
    expectProtoRoundTrip(`${V1BETA1}.MutateDeployedModelRequest`, body);
    const start = await t.api.post(`/v1beta1/${endpoint}:mutateDeployedModel`, body);
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.error).toBeUndefined();
    const replicas: number = op.response.deployedModel.status.availableReplicaCount;
    expect(replicas).toBeGreaterThanOrEqual(3);
    expect(replicas).toBeLessThan(1000);
    expect(op.response.deployedModel).toMatchObject({
      enableContainerLogging: true,
      dedicatedResources: { minReplicaCount: 1000, requiredReplicaCount: 3 },
    });
    expect((await t.api.get(`/v1beta1/${endpoint}`)).json.deployedModels[0].enableContainerLogging).toBe(
      true,
    );
  });

  it('refuses what it cannot do, naming the field and what to do instead', async () => {
    const { endpoint, deployedModelId } = await ready('refuse');
    const url = `/v1beta1/${endpoint}:mutateDeployedModel`;
    const post = (body: unknown) => t.api.post(url, body);

    const immutable = await post({
      deployedModel: { id: deployedModelId, displayName: 'x' },
      updateMask: 'displayName',
    });
    expect(immutable.status).toBe(400);
    expect(immutable.json.error.status).toBe('INVALID_ARGUMENT');
    expect(immutable.json.error.message).toContain('update_mask path "displayName" cannot be mutated');
    expect(immutable.json.error.message).toContain('dedicated_resources.min_replica_count');
    const mixed = await post({
      deployedModel: { id: deployedModelId },
      updateMask: 'dedicated_resources.minReplicaCount',
    });
    expect(mixed.status).toBe(400);

    const noMask = await post({
      deployedModel: { id: deployedModelId, dedicatedResources: { minReplicaCount: 3 } },
    });
    expect(noMask.status).toBe(400);
    expect(noMask.json.error.details[0].fieldViolations[0].field).toBe('update_mask');
    const noId = await post({
      deployedModel: { dedicatedResources: { minReplicaCount: 3 } },
      updateMask: 'dedicatedResources.minReplicaCount',
    });
    expect(noId.status).toBe(400);
    expect(noId.json.error.message).toContain('deployed_model.id is required');
    const noModel = await post({ updateMask: 'dedicatedResources.minReplicaCount' });
    expect(noModel.status).toBe(400);
    const unknownField = await post({
      deployedModel: { id: deployedModelId, minReplicas: 3 },
      updateMask: 'x',
    });
    expect(unknownField.status).toBe(400);
    expect(unknownField.json.error.message).toContain('Unknown name "minReplicas"');

    const unknownId = await gcp.vertex
      .mutateDeployedModel({ endpoint, deployedModelId: '123', minReplicaCount: 1 })
      .catch((err: unknown) => err);
    expect(isGcpApiError(unknownId) && unknownId.status).toBe('NOT_FOUND');

    // Raising the minimum above the unchanged maximum (2).
    const aboveMax = await gcp.vertex
      .mutateDeployedModel({ endpoint, deployedModelId, minReplicaCount: 3 })
      .catch((err: unknown) => err);
    expect(isGcpApiError(aboveMax) && aboveMax.httpStatus).toBe(400);
    expect(isGcpApiError(aboveMax) && aboveMax.googleMessage).toContain(
      'max_replica_count (2) must not be less than min_replica_count (3)',
    );
    const zero = await post({
      deployedModel: { id: deployedModelId },
      updateMask: 'dedicatedResources.minReplicaCount',
    });
    expect(zero.status).toBe(400);
    expect(zero.json.error.message).toContain('min_replica_count must be at least 1');
    await expect(
      gcp.vertex.mutateDeployedModel({ endpoint, deployedModelId, minReplicaCount: 3, maxReplicaCount: 2 }),
    ).rejects.toBeInstanceOf(InvalidRequestError);

    // One change at a time per deployed model.
    const first = await gcp.vertex.mutateDeployedModel({ endpoint, deployedModelId, minReplicaCount: 1 });
    const second = await post({
      deployedModel: { id: deployedModelId, dedicatedResources: { minReplicaCount: 2 } },
      updateMask: 'dedicatedResources.minReplicaCount',
    });
    expect(second.status).toBe(400);
    expect(second.json.error.status).toBe('FAILED_PRECONDITION');
    expect(second.json.error.message).toContain(first.name);
    expect((await gcp.vertex.waitOperation(first.name, 30_000)).done).toBe(true);
  });
});

describe('operations.wait', () => {
  it('returns a running operation when the timeout passes first', async () => {
    const { project, endpoint, deployedModelId } = await ready('wait');
    await t.admin.setTiming(project, { mutateMs: 60_000 });
    const op = await gcp.vertex.mutateDeployedModel({ endpoint, deployedModelId, maxReplicaCount: 3 });
    const waited = await gcp.vertex.waitOperation(op.name, 100);
    expect(waited).toMatchObject({ name: op.name, done: false });
    await expect(gcp.vertex.waitOperation('operations/1', 100)).rejects.toBeInstanceOf(InvalidRequestError);
  });
});
