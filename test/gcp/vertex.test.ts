import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkProtoJson, roundTripProtoJson, vertexProtoRoot } from '../../src/emulator/protos';
import {
  ACCELERATOR_TYPES,
  GcpApiError,
  InvalidRequestError,
  buildDeployRequest,
  createGcpClient,
  deleteIfExists,
  findEndpointsByLabels,
  isAlreadyExists,
  labelsFilter,
  readDeployResponse,
  readMutateDeployedModelResponse,
} from '../../src/gcp';
import { type TestServer, countingTokenSource, googleError, sendJson, startTestServer } from './test-server';

const V1BETA1 = 'google.cloud.aiplatform.v1beta1';
const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/llama-ft';
const MODEL = 'projects/my-project/locations/us-central1/models/llama-ft';

const FULL_INPUT = {
  project: 'my-project',
  location: 'us-central1',
  gcsUri: 'gs://my-bucket/models/llama-3.1-8b-ft',
  modelUserId: 'llama-ft',
  modelDisplayName: 'Llama 3.1 8B fine-tune',
  endpointUserId: 'llama-ft',
  endpointDisplayName: 'llama-ft endpoint',
  machine: { machineType: 'g2-standard-24', acceleratorType: 'NVIDIA_L4' as const, acceleratorCount: 2 },
  minReplicaCount: 1,
  maxReplicaCount: 3,
  privateServiceConnect: { projectAllowlist: ['consumer-project'] },
};

/** The body must be valid proto3 JSON of the message and survive a binary round trip unchanged. */
function expectProtoBody(typeName: string, body: unknown): void {
  const check = checkProtoJson(`${V1BETA1}.${typeName}`, body);
  expect(check.ok ? [] : check.violations).toEqual([]);
  expect(roundTripProtoJson(`${V1BETA1}.${typeName}`, body)).toEqual(body);
}

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

/** `{region}` in the base URL shows which regional host each call went to. */
function client() {
  return createGcpClient(
    { vertexBaseUrl: `${server.url}/host-{region}` },
    { tokenSource: countingTokenSource() },
  );
}

function sentJson(index = 0): unknown {
  return JSON.parse(server.requests[index]!.body.toString('utf8'));
}

describe('deploy request body', () => {
  it('builds the documented DeployRequest for custom weights, valid against the official proto', () => {
    const body = buildDeployRequest(FULL_INPUT);
    expect(body).toEqual({
      customModel: { gcsUri: 'gs://my-bucket/models/llama-3.1-8b-ft' },
      modelConfig: { modelUserId: 'llama-ft', modelDisplayName: 'Llama 3.1 8B fine-tune' },
      endpointConfig: {
        endpointUserId: 'llama-ft',
        endpointDisplayName: 'llama-ft endpoint',
        privateServiceConnectConfig: {
          enablePrivateServiceConnect: true,
          projectAllowlist: ['consumer-project'],
        },
      },
      deployConfig: {
        dedicatedResources: {
          machineSpec: { machineType: 'g2-standard-24', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 },
          minReplicaCount: 1,
          maxReplicaCount: 3,
        },
      },
    });
    expectProtoBody('DeployRequest', body);
  });

  it('a minimal request defaults maxReplicaCount to minReplicaCount and stays proto-valid', () => {
    const body = buildDeployRequest({
      project: 'my-project',
      location: 'us-central1',
      gcsUri: 'gs://bucket/m',
    });
    expect(body).toEqual({
      customModel: { gcsUri: 'gs://bucket/m' },
      deployConfig: { dedicatedResources: { minReplicaCount: 1, maxReplicaCount: 1 } },
    });
    expectProtoBody('DeployRequest', body);
  });

  it('our accelerator list is exactly the proto enum', () => {
    const values = Object.keys(vertexProtoRoot().lookupEnum(`${V1BETA1}.AcceleratorType`).values);
    expect([...ACCELERATOR_TYPES].sort()).toEqual(
      values.filter((v) => v !== 'ACCELERATOR_TYPE_UNSPECIFIED').sort(),
    );
  });

  const bad: Array<[string, object, RegExp]> = [
    ['a non-gs URI', { gcsUri: 'https://storage.googleapis.com/b/m' }, /gcsUri: must be gs:\/\/BUCKET/],
    ['a bucket root', { gcsUri: 'gs://my-bucket' }, /gcsUri/],
    [
      'an accelerator type without count',
      { machine: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4' } },
      /acceleratorType and acceleratorCount must be given together/,
    ],
    [
      'an unknown accelerator',
      { machine: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L5', acceleratorCount: 1 } },
      /machine.acceleratorType/,
    ],
    [
      'max below min',
      { minReplicaCount: 3, maxReplicaCount: 2 },
      /maxReplicaCount must be ≥ minReplicaCount/,
    ],
    ['an endpoint ID with capitals', { endpointUserId: 'Llama_FT' }, /endpointUserId/],
    ['a model ID starting with a digit', { modelUserId: '1model' }, /modelUserId/],
    [
      'a PSC config without projects',
      { privateServiceConnect: { projectAllowlist: [] } },
      /list at least one consumer project/,
    ],
    ['an unknown field', { labels: { a: 'b' } }, /Unrecognized key.*labels|labels/],
  ];
  it.each(bad)(
    'rejects %s with a message naming the field, sending nothing',
    async (_what, patch, message) => {
      const input = { ...FULL_INPUT, ...patch };
      expect(() => buildDeployRequest(input as never)).toThrow(InvalidRequestError);
      expect(() => buildDeployRequest(input as never)).toThrow(message);
      await expect(client().vertex.deploy(input as never)).rejects.toThrow(InvalidRequestError);
      expect(server.requests).toHaveLength(0);
    },
  );
});

describe('VertexClient calls', () => {
  it('deploy POSTs to {destination}:deploy on the regional host and returns the running operation', async () => {
    const opName = 'projects/123/locations/us-central1/operations/777';
    server.handler = (_req, res) =>
      sendJson(res, 200, {
        name: opName,
        metadata: { '@type': `type.googleapis.com/${V1BETA1}.DeployOperationMetadata`, projectNumber: '123' },
      });
    const op = await client().vertex.deploy(FULL_INPUT);
    expect(op).toEqual({
      name: opName,
      done: false,
      metadata: expect.objectContaining({ projectNumber: '123' }),
    });
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/host-us-central1/v1beta1/projects/my-project/locations/us-central1:deploy');
    expect(req.headers['content-type']).toMatch(/^application\/json/);
    expect(sentJson()).toEqual(buildDeployRequest(FULL_INPUT));
  });

  it('getOperation goes to the host of the region in the name and maps the three states', async () => {
    const running = 'projects/123/locations/europe-west4/operations/1';
    const succeeded = 'projects/123/locations/europe-west4/operations/2';
    const failed = 'projects/123/locations/europe-west4/operations/3';
    server.handler = (req, res) => {
      if (req.url.endsWith('/1')) return sendJson(res, 200, { name: running });
      if (req.url.endsWith('/2'))
        return sendJson(res, 200, {
          name: succeeded,
          done: true,
          response: {
            '@type': `type.googleapis.com/${V1BETA1}.DeployResponse`,
            endpoint: ENDPOINT,
            model: MODEL,
          },
        });
      return sendJson(res, 200, {
        name: failed,
        done: true,
        error: {
          code: 8,
          message: 'Quota exceeded for aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus',
        },
      });
    };
    const vertex = client().vertex;
    const a = await vertex.getOperation(running);
    expect(a).toEqual({ name: running, done: false });
    expect(() => readDeployResponse(a)).toThrow(/still running/);

    const b = await vertex.getOperation(succeeded);
    expect(readDeployResponse(b)).toMatchObject({ endpoint: ENDPOINT, model: MODEL });

    const c = await vertex.getOperation(failed);
    expect(c.done).toBe(true);
    expect(c.error).toBeInstanceOf(GcpApiError);
    expect(c.error).toMatchObject({ status: 'RESOURCE_EXHAUSTED', classification: 'permanent' });
    expect(() => readDeployResponse(c)).toThrow(/custom_model_serving_nvidia_l4_gpus/);

    expect(server.requests.map((r) => r.url)).toEqual([
      `/host-europe-west4/v1beta1/${running}`,
      `/host-europe-west4/v1beta1/${succeeded}`,
      `/host-europe-west4/v1beta1/${failed}`,
    ]);
  });

  it('an operation body without a name is an unexpected-response error, not a silent success', async () => {
    server.handler = (_req, res) => sendJson(res, 200, { done: true });
    await expect(
      client().vertex.getOperation('projects/1/locations/us-central1/operations/5'),
    ).rejects.toMatchObject({
      source: 'response',
      classification: 'permanent',
    });
  });

  it('cancelOperation POSTs {name}:cancel with an empty body', async () => {
    const name = `${ENDPOINT}/operations/42`;
    await client().vertex.cancelOperation(name);
    const req = server.requests[0]!;
    expect([req.method, req.url, req.body.length, req.headers['content-length']]).toEqual([
      'POST',
      `/host-us-central1/v1beta1/${name}:cancel`,
      0,
      '0',
    ]);
  });

  it('listEndpoints sends filter and paging; findEndpointsByLabels follows every page', async () => {
    server.handler = (req, res) => {
      const url = new URL(req.url, 'http://x');
      const token = url.searchParams.get('pageToken');
      const page = token ? Number(token) : 0;
      sendJson(res, 200, {
        endpoints: [
          { name: `projects/my-project/locations/us-central1/endpoints/e${page}`, labels: { owner: 'gd' } },
        ],
        ...(page < 2 ? { nextPageToken: String(page + 1) } : {}),
      });
    };
    const vertex = client().vertex;
    const labels = { owner: 'gd', deployment: 'llama-ft' };
    const found = await findEndpointsByLabels(
      vertex,
      { project: 'my-project', location: 'us-central1' },
      labels,
    );
    expect(found.map((e) => e.name.split('/').pop())).toEqual(['e0', 'e1', 'e2']);
    const first = new URL(server.requests[0]!.url, 'http://x');
    expect(first.pathname).toBe(
      '/host-us-central1/v1beta1/projects/my-project/locations/us-central1/endpoints',
    );
    expect(first.searchParams.get('filter')).toBe('labels.owner="gd" AND labels.deployment="llama-ft"');
    expect(first.searchParams.get('pageSize')).toBe('100');
    expect(new URL(server.requests[2]!.url, 'http://x').searchParams.get('pageToken')).toBe('2');
  });

  it('labelsFilter rejects labels Google would not accept', () => {
    expect(labelsFilter({ a: 'b' })).toBe('labels.a="b"');
    expect(() => labelsFilter({ 'Bad Key': 'x' })).toThrow(/label keys/);
    expect(() => labelsFilter({ ok: 'has"quote' })).toThrow(/label values/);
    expect(() => labelsFilter({})).toThrow(/at least one label/);
  });

  it('undeployModel sends a proto-valid UndeployModelRequest body', async () => {
    server.handler = (_req, res) => sendJson(res, 200, { name: `${ENDPOINT}/operations/9` });
    const op = await client().vertex.undeployModel({
      endpoint: ENDPOINT,
      deployedModelId: '8204437019208712192',
    });
    expect(op.done).toBe(false);
    expect(server.requests[0]!.url).toBe(`/host-us-central1/v1beta1/${ENDPOINT}:undeployModel`);
    expect(sentJson()).toEqual({ deployedModelId: '8204437019208712192' });
    expectProtoBody('UndeployModelRequest', sentJson());
  });

  it('mutateDeployedModel sends a proto-valid MutateDeployedModelRequest masking only the counts given', async () => {
    server.handler = (_req, res) => sendJson(res, 200, { name: `${ENDPOINT}/operations/10` });
    const vertex = client().vertex;
    const op = await vertex.mutateDeployedModel({
      endpoint: ENDPOINT,
      deployedModelId: '8204437019208712192',
      minReplicaCount: 2,
      maxReplicaCount: 4,
    });
    expect(op).toEqual({ name: `${ENDPOINT}/operations/10`, done: false });
    expect(server.requests[0]!.url).toBe(`/host-us-central1/v1beta1/${ENDPOINT}:mutateDeployedModel`);
    expect(sentJson()).toEqual({
      deployedModel: {
        id: '8204437019208712192',
        dedicatedResources: { minReplicaCount: 2, maxReplicaCount: 4 },
      },
      updateMask: 'dedicatedResources.minReplicaCount,dedicatedResources.maxReplicaCount',
    });
    expectProtoBody('MutateDeployedModelRequest', sentJson());

    await vertex.mutateDeployedModel({ endpoint: ENDPOINT, deployedModelId: '1', maxReplicaCount: 3 });
    expect(sentJson(1)).toEqual({
      deployedModel: { id: '1', dedicatedResources: { maxReplicaCount: 3 } },
      updateMask: 'dedicatedResources.maxReplicaCount',
    });
    for (const input of [
      { endpoint: ENDPOINT, deployedModelId: '1' },
      { endpoint: ENDPOINT, deployedModelId: '1', minReplicaCount: 0 },
      { endpoint: MODEL, deployedModelId: '1', minReplicaCount: 1 },
    ]) {
      await expect(vertex.mutateDeployedModel(input)).rejects.toBeInstanceOf(InvalidRequestError);
    }
    expect(server.requests).toHaveLength(2);
  });

  it('readMutateDeployedModelResponse returns the mutated deployed model, or throws the operation error', () => {
    const name = `${ENDPOINT}/operations/10`;
    const deployedModel = { id: '1', dedicatedResources: { minReplicaCount: 2 } };
    expect(
      readMutateDeployedModelResponse({
        name,
        done: true,
        response: { '@type': `type.googleapis.com/${V1BETA1}.MutateDeployedModelResponse`, deployedModel },
      }),
    ).toMatchObject(deployedModel);
    expect(() => readMutateDeployedModelResponse({ name, done: false })).toThrow(/still running/);
    expect(() => readMutateDeployedModelResponse({ name, done: true, response: {} })).toThrow(
      /MutateDeployedModelResponse.deployedModel/,
    );
  });

  it('waitOperation POSTs {name}:wait with a Duration timeout and outlasts it with the HTTP timeout', async () => {
    const name = `${ENDPOINT}/operations/11`;
    server.handler = (_req, res) => {
      // 50 ms is past the configured 10 ms request timeout, which the 1.5 s hold stretches.
      setTimeout(() => sendJson(res, 200, { name, done: true, response: {} }), 50);
    };
    const vertex = createGcpClient(
      { vertexBaseUrl: `${server.url}/host-{region}`, requestTimeoutMs: 10 },
      { tokenSource: countingTokenSource() },
    ).vertex;
    const op = await vertex.waitOperation(name, 1500);
    expect(op).toMatchObject({ name, done: true });
    const req = server.requests[0]!;
    expect([req.method, req.url]).toEqual(['POST', `/host-us-central1/v1beta1/${name}:wait`]);
    expect(sentJson()).toEqual({ timeout: '1.5s' });
    const wait = 'google.longrunning.WaitOperationRequest';
    expect(checkProtoJson(wait, sentJson()).ok).toBe(true);
    expect(roundTripProtoJson(wait, sentJson())).toEqual(sentJson());
    await expect(vertex.waitOperation(name, -1)).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it('setEndpointLabels PATCHes with updateMask=labels and a proto-valid Endpoint body', async () => {
    server.handler = (req, res) =>
      sendJson(res, 200, { name: ENDPOINT, ...(JSON.parse(req.body.toString()) as object) });
    const endpoint = await client().vertex.setEndpointLabels(
      ENDPOINT,
      { owner: 'garden-deploy' },
      { etag: 'abc' },
    );
    expect(endpoint.labels).toEqual({ owner: 'garden-deploy' });
    const req = server.requests[0]!;
    expect(req.method).toBe('PATCH');
    expect(req.url).toBe(`/host-us-central1/v1beta1/${ENDPOINT}?updateMask=labels`);
    expect(sentJson()).toEqual({ labels: { owner: 'garden-deploy' }, etag: 'abc' });
    expectProtoBody('Endpoint', sentJson());
  });

  it('deletes use DELETE; deleteIfExists treats NOT_FOUND as done and rethrows anything else', async () => {
    server.handler = (req, res) =>
      req.url.includes('/models/')
        ? sendJson(res, 404, googleError(404, 'NOT_FOUND', 'Model does not exist.'))
        : sendJson(res, 400, googleError(400, 'FAILED_PRECONDITION', 'Endpoint has deployed models.'));
    const vertex = client().vertex;
    await expect(deleteIfExists(() => vertex.deleteModel(MODEL))).resolves.toBeUndefined();
    await expect(deleteIfExists(() => vertex.deleteEndpoint(ENDPOINT))).rejects.toMatchObject({
      status: 'FAILED_PRECONDITION',
    });
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      `DELETE /host-us-central1/v1beta1/${MODEL}`,
      `DELETE /host-us-central1/v1beta1/${ENDPOINT}`,
    ]);
  });

  it('isAlreadyExists recognises a colliding deploy', async () => {
    server.handler = (_req, res) =>
      sendJson(res, 409, googleError(409, 'ALREADY_EXISTS', 'Endpoint llama-ft already exists.'));
    const err = await client()
      .vertex.deploy(FULL_INPUT)
      .catch((e: unknown) => e);
    expect(isAlreadyExists(err)).toBe(true);
    expect(isAlreadyExists(new Error('ALREADY_EXISTS'))).toBe(false);
  });

  it('getEndpoint parses deployed models, replicas and the dedicated DNS', async () => {
    server.handler = (_req, res) =>
      sendJson(res, 200, {
        name: ENDPOINT,
        deployedModels: [
          { id: '1', model: MODEL, status: { availableReplicaCount: 2, message: 'ok' }, unknownField: 1 },
        ],
        trafficSplit: { '1': 100 },
        dedicatedEndpointDns: 'llama-ft.us-central1-123.prediction.vertexai.goog',
      });
    const endpoint = await client().vertex.getEndpoint(ENDPOINT);
    expect(endpoint.deployedModels[0]?.status?.availableReplicaCount).toBe(2);
    expect(endpoint.dedicatedEndpointDns).toBe('llama-ft.us-central1-123.prediction.vertexai.goog');
    expect(endpoint.labels).toEqual({});
  });

  it('rejects an endpoint whose replica count is not a number', async () => {
    server.handler = (_req, res) =>
      sendJson(res, 200, {
        name: ENDPOINT,
        deployedModels: [{ id: '1', status: { availableReplicaCount: 'two' } }],
      });
    await expect(client().vertex.getEndpoint(ENDPOINT)).rejects.toMatchObject({ source: 'response' });
  });
});
