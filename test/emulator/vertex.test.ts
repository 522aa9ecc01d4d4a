import { describe, expect, it } from 'vitest';
import { checkProtoJson, projectNumberFor } from '../../src/emulator';
import {
  deployBody,
  deployReady,
  expectProtoRoundTrip,
  pollUntil,
  uniqueProject,
  useTestEmulator,
  waitForOperation,
} from './helpers';

const V1BETA1 = 'google.cloud.aiplatform.v1beta1';
const t = useTestEmulator({ model: { family: 'llama', shards: 2 } });

function expectValid(typeName: string, json: unknown): void {
  const check = checkProtoJson(typeName, json);
  expect(check.ok ? [] : check.violations).toEqual([]);
}

describe('Model Garden :deploy of custom weights', () => {
  it('runs the LRO to a DeployResponse, then ramps replicas 0 → min on a dedicated endpoint', async () => {
    const project = uniqueProject();
    const number = projectNumberFor(project);
    const start = await t.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(t.model, { endpoint: 'ep-ramp', model: 'model-ramp' }),
    );
    expect(start.status, start.text).toBe(200);
    expectValid('google.longrunning.Operation', start.json);
    expect(start.json.name).toMatch(new RegExp(`^projects/${number}/locations/us-central1/operations/\\d+$`));
    expect(start.json.done).toBeUndefined();
    expect(start.json.metadata).toMatchObject({
      '@type': `type.googleapis.com/${V1BETA1}.DeployOperationMetadata`,
      destination: `projects/${number}/locations/us-central1`,
      projectNumber: number,
      modelId: 'model-ramp',
    });

    const op = await waitForOperation(t.api, start.json.name);
    expectValid('google.longrunning.Operation', op);
    expect(op.error).toBeUndefined();
    expect(op.response).toEqual({
      '@type': `type.googleapis.com/${V1BETA1}.DeployResponse`,
      endpoint: `projects/${number}/locations/us-central1/endpoints/ep-ramp`,
      model: `projects/${number}/locations/us-central1/models/model-ramp`,
    });

    // Replicas come up one by one after the LRO: observe 0 (field absent), then 1 and 2.
    const seen = new Set<number>();
    const endpoint = await pollUntil('both replicas', async () => {
      const res = await t.api.get(`/v1beta1/${op.response.endpoint}`);
      const count: number = res.json.deployedModels[0].status.availableReplicaCount ?? 0;
      seen.add(count);
      return count === 2 ? res.json : undefined;
    });
    expect(seen.has(2)).toBe(true);
    expectValid(`${V1BETA1}.Endpoint`, endpoint);
    const deployed = endpoint.deployedModels[0];
    expect(endpoint).toMatchObject({
      name: op.response.endpoint,
      displayName: 'tiny-llama-endpoint',
      dedicatedEndpointEnabled: true,
      dedicatedEndpointDns: `ep-ramp.us-central1-${number}.prediction.vertexai.goog`,
      trafficSplit: { [deployed.id]: 100 },
    });
    expect(endpoint.etag).toMatch(/^\S+$/);
    expect(Date.parse(endpoint.createTime)).toBeLessThanOrEqual(Date.parse(endpoint.updateTime));
    expect(deployed).toMatchObject({
      model: op.response.model,
      modelVersionId: '1',
      dedicatedResources: {
        machineSpec: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
        minReplicaCount: 2,
        maxReplicaCount: 2,
      },
      status: { availableReplicaCount: 2 },
    });
    expect(endpoint.privateServiceConnectConfig).toBeUndefined();

    const model = await t.api.get(`/v1beta1/${op.response.model}`);
    expect(model.status).toBe(200);
    expectValid(`${V1BETA1}.Model`, model.json);
    expect(model.json).toMatchObject({
      name: op.response.model,
      displayName: 'tiny-llama',
      artifactUri: t.model,
      deployedModels: [{ endpoint: op.response.endpoint, deployedModelId: deployed.id }],
    });
    expect(await t.admin.stats(project)).toEqual({
      calls: expect.objectContaining({ 'vertex.deploy': 1 }),
      creations: { endpoint: 1, model: 1, deployedModel: 1 },
    });
  });

  it('accepts camelCase bodies exactly like snake_case ones', async () => {
    const project = uniqueProject();
    const body = {
      customModel: { gcsUri: t.model },
      modelConfig: { modelUserId: 'camel-model' },
      endpointConfig: { endpointUserId: 'camel-ep', dedicatedEndpointDisabled: true },
      deployConfig: {
        dedicatedResources: {
          machineSpec: { machineType: 'g2-standard-24', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 },
          minReplicaCount: 1,
        },
      },
    };
    expectProtoRoundTrip(`${V1BETA1}.DeployRequest`, body);
    const start = await t.api.post(`/v1beta1/projects/${project}/locations/europe-west4:deploy`, body);
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.response.endpoint).toBe(
      `projects/${projectNumberFor(project)}/locations/europe-west4/endpoints/camel-ep`,
    );
    const endpoint = await t.api.get(
      `/v1beta1/projects/${project}/locations/europe-west4/endpoints/camel-ep`,
    );
    // dedicated_endpoint_disabled → shared domain: no dedicated DNS.
    expect(endpoint.json.dedicatedEndpointDns).toBeUndefined();
    expect(endpoint.json.deployedModels[0].dedicatedResources.maxReplicaCount).toBe(1);
  });

  it('generates ids when none are given and reports the operation under the project id too', async () => {
    const project = uniqueProject();
    const body = { custom_model: { gcs_uri: t.model } };
    const start = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, body);
    expect(start.status, start.text).toBe(200);
    // The operation can be read back with the project id in its name; :wait returns it once done.
    const byId = start.json.name.replace(projectNumberFor(project), project);
    const waitBody = { timeout: '60s' };
    expectProtoRoundTrip('google.longrunning.WaitOperationRequest', waitBody);
    const op = (await t.api.post(`/v1beta1/${byId}:wait`, waitBody)).json;
    expect(op.done).toBe(true);
    expect(op.response.endpoint).toMatch(/\/endpoints\/mg-endpoint-\d+$/);
    expect(op.response.model).toMatch(/\/models\/\d{19}$/);
  });

  it('keeps a container_spec override on the Model and starts scale-to-zero deployments at their initial replicas', async () => {
    const project = uniqueProject();
    const containerSpec = {
      imageUri: 'us-docker.pkg.dev/my/vllm:custom',
      args: ['--max-model-len=4096'],
      deploymentTimeout: '3600s',
    };
    const body = {
      customModel: { gcsUri: t.model },
      modelConfig: { modelUserId: 'own-image', containerSpec },
      deployConfig: {
        dedicatedResources: {
          machineSpec: { machineType: 'g2-standard-8', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
          // min_replica_count 0 (the proto3 default, so left out) is allowed with scale_to_zero_spec.
          maxReplicaCount: 2,
          initialReplicaCount: 1,
          scaleToZeroSpec: { minScaleupPeriod: '300s', idleScaledownPeriod: '600s' },
        },
      },
    };
    expectProtoRoundTrip(`${V1BETA1}.DeployRequest`, body);
    const start = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, body);
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expect((await t.api.get(`/v1beta1/${op.response.model}`)).json.containerSpec).toEqual(containerSpec);
    const endpoint = await pollUntil('one replica', async () => {
      const res = await t.api.get(`/v1beta1/${op.response.endpoint}`);
      return res.json.deployedModels[0].status.availableReplicaCount === 1 ? res.json : undefined;
    });
    expect(endpoint.deployedModels[0].dedicatedResources.minReplicaCount).toBeUndefined();
    const noScaleToZero = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, {
      customModel: { gcsUri: t.model },
      deployConfig: { dedicatedResources: { minReplicaCount: 0 } },
    });
    expect(noScaleToZero.status).toBe(400);
    expect(noScaleToZero.json.error.message).toContain('0 needs scale_to_zero_spec');
  });

  it('refuses a reused endpoint_user_id or model_user_id with 409 ALREADY_EXISTS, also while the first deploy runs', async () => {
    const project = uniqueProject();
    const url = `/v1beta1/projects/${project}/locations/us-central1:deploy`;
    await t.admin.setTiming(project, { deployMs: 60_000, importMs: 60_000 });
    const first = await t.api.post(url, deployBody(t.model, { endpoint: 'dup-ep', model: 'dup-model' }));
    expect(first.status).toBe(200);
    const again = await t.api.post(url, deployBody(t.model, { endpoint: 'dup-ep', model: 'other-model' }));
    expect(again.status).toBe(409);
    expect(again.json.error).toMatchObject({ code: 409, status: 'ALREADY_EXISTS' });
    expect(again.json.error.message).toContain('dup-ep');
    const sameModel = await t.api.post(
      url,
      deployBody(t.model, { endpoint: 'other-ep', model: 'dup-model' }),
    );
    expect(sameModel.status).toBe(409);
    expect(sameModel.json.error.message).toContain('dup-model');
    // Cancel: done with CANCELLED; then the ids stay taken only if resources were created (none yet).
    const cancel = await t.api.post(`/v1beta1/${first.json.name}:cancel`);
    expect(cancel.status).toBe(200);
    const op = await t.api.get(`/v1beta1/${first.json.name}`);
    expect(op.json).toMatchObject({ done: true, error: { code: 1 } });
    expect((await t.admin.resources(project)).endpoints).toEqual([]);
    expect((await t.admin.stats(project)).calls).toMatchObject({
      'vertex.deploy': 3,
      'vertex.operations.cancel': 1,
    });
  });

  it('names an unknown or mistyped field in a 400 INVALID_ARGUMENT and creates nothing', async () => {
    const project = uniqueProject();
    const url = `/v1beta1/projects/${project}/locations/us-central1:deploy`;
    const unknown = await t.api.post(url, {
      custom_model: { gcs_uri: t.model },
      deploy_config: { dedicated_resources: { min_replica_cnt: 1 } },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.status).toBe('INVALID_ARGUMENT');
    expect(unknown.json.error.message).toBe(
      `Invalid JSON payload received. Unknown name "min_replica_cnt" at 'deploy_config.dedicated_resources': Cannot find field.`,
    );
    expect(unknown.json.error.details[0]).toEqual({
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      fieldViolations: [
        { field: 'deploy_config.dedicated_resources', description: unknown.json.error.message },
      ],
    });

    const mistyped = await t.api.post(url, {
      customModel: { gcsUri: t.model },
      deployConfig: { dedicatedResources: { minReplicaCount: 'two' } },
    });
    expect(mistyped.status).toBe(400);
    expect(mistyped.json.error.message).toBe(
      `Invalid value at 'deploy_config.dedicated_resources.min_replica_count' (TYPE_INT32), "two"`,
    );

    const badEnum = await t.api.post(url, {
      custom_model: { gcs_uri: t.model },
      deploy_config: {
        dedicated_resources: {
          machine_spec: { machine_type: 'g2-standard-12', accelerator_type: 'NVIDIA_L5' },
        },
      },
    });
    expect(badEnum.status).toBe(400);
    expect(badEnum.json.error.message).toContain(
      `'deploy_config.dedicated_resources.machine_spec.accelerator_type' (type.googleapis.com/${V1BETA1}.AcceleratorType), "NVIDIA_L5"`,
    );

    const twice = await t.api.post(url, {
      custom_model: { gcs_uri: t.model },
      customModel: { gcsUri: t.model },
    });
    expect(twice.status).toBe(400);
    expect(twice.json.error.message).toContain("'custom_model' is set twice");

    const mismatch = await t.api.post(url, {
      custom_model: { gcs_uri: t.model },
      destination: 'projects/someone-else/locations/us-central1',
    });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error.message).toContain('does not match the request URL');

    const matching = await t.api.post(url, {
      customModel: { gcsUri: t.model },
      destination: `projects/${projectNumberFor(project)}/locations/us-central1`,
    });
    expect(matching.status, matching.text).toBe(200);

    const badMachine = await t.api.post(
      url,
      deployBody(
        t.model,
        {},
        {
          deploy_config: {
            dedicated_resources: {
              machine_spec: {
                machine_type: 'g2-standard-12',
                accelerator_type: 'NVIDIA_L4',
                accelerator_count: 2,
              },
            },
          },
        },
      ),
    );
    expect(badMachine.status).toBe(400);
    expect(badMachine.json.error.message).toContain('g2-standard-12 comes with 1 x NVIDIA_L4');

    const badId = await t.api.post(url, deployBody(t.model, { endpoint: 'Bad_Id' }));
    expect(badId.status).toBe(400);
    expect(badId.json.error.details[0].fieldViolations[0].field).toBe('endpoint_config.endpoint_user_id');

    const badUri = await t.api.post(url, { custom_model: { gcs_uri: 'https://bucket/model' } });
    expect(badUri.status).toBe(400);
    expect(badUri.json.error.message).toContain('is not a gs:// URI');

    const notJson = await t.api.request('POST', url, { rawBody: '{"custom_model": ' });
    expect(notJson.status).toBe(400);
    expect(notJson.json.error.message).toMatch(/^Invalid JSON payload received\./);

    const unknownQuery = await t.api.get(
      `/v1beta1/projects/${project}/locations/us-central1/endpoints?pageSise=2`,
    );
    expect(unknownQuery.status).toBe(400);
    expect(unknownQuery.json.error.message).toContain('Unknown name "pageSise"');

    const malformed = await t.api.get('/v1beta1/projects/%E0%A4%A/locations/us-central1/endpoints');
    expect(malformed.status).toBe(400);
    const nowhere = await t.api.get('/v1beta1/projects/p/locations/l/datasets');
    expect(nowhere.status).toBe(404);
    expect(nowhere.json.error.status).toBe('NOT_FOUND');

    await waitForOperation(t.api, matching.json.name);
    const resources = await t.admin.resources(project);
    expect(resources.endpoints).toHaveLength(1); // only the one valid deploy
  });
});

describe('endpoints and models', () => {
  it('lists with filters and pages, patches labels with etags, and tears down in the only order Vertex allows', async () => {
    const project = uniqueProject();
    const base = `/v1beta1/projects/${project}/locations/us-central1`;
    const names: string[] = [];
    for (const id of ['list-a', 'list-b', 'list-c']) {
      const { operation } = await deployReady(t.api, project, t.model, { endpoint: id, model: `${id}-m` });
      names.push(operation.response.endpoint);
    }
    const labelled = await t.api.request('PATCH', `/v1beta1/${names[1]}?updateMask=labels`, {
      body: { labels: { team: 'ml', stage: 'test' } },
    });
    expect(labelled.status, labelled.text).toBe(200);
    expect(labelled.json.labels).toEqual({ team: 'ml', stage: 'test' });
    const stale = await t.api.request('PATCH', `/v1beta1/${names[1]}?updateMask=labels`, {
      body: { labels: {}, etag: 'stale' },
    });
    expect(stale.status).toBe(409);
    expect(stale.json.error.status).toBe('ABORTED');
    const badLabel = await t.api.request('PATCH', `/v1beta1/${names[1]}?updateMask=labels`, {
      body: { labels: { Team: 'x' } },
    });
    expect(badLabel.status).toBe(400);
    const modelLabels = await t.api.request(
      'PATCH',
      `/v1beta1/${base.slice('/v1beta1/'.length)}/models/list-c-m?update_mask=labels,display_name`,
      {
        body: { labels: { team: 'ml' }, displayName: 'renamed' },
      },
    );
    expect(modelLabels.json).toMatchObject({ labels: { team: 'ml' }, displayName: 'renamed' });

    const all = await t.api.get(`${base}/endpoints`);
    expectValid(`${V1BETA1}.ListEndpointsResponse`, all.json);
    expect(all.json.endpoints.map((e: { name: string }) => e.name)).toEqual(names);
    const byLabel = await t.api.get(`${base}/endpoints?filter=${encodeURIComponent('labels.team=ml')}`);
    expect(byLabel.json.endpoints.map((e: { name: string }) => e.name)).toEqual([names[1]]);
    const byId = await t.api.get(
      `${base}/endpoints?filter=${encodeURIComponent('endpoint="list-c" OR endpoint=list-a')}`,
    );
    expect(byId.json.endpoints).toHaveLength(2);
    const byName = await t.api.get(
      `${base}/endpoints?filter=${encodeURIComponent('display_name="tiny-llama-endpoint" AND NOT labels:team')}`,
    );
    expect(byName.json.endpoints.map((e: { name: string }) => e.name)).toEqual([names[0], names[2]]);
    const none = await t.api.get(
      `${base}/endpoints?filter=${encodeURIComponent('labels.team:*  labels.stage=prod')}`,
    );
    expect(none.json).toEqual({});
    const badFilter = await t.api.get(`${base}/endpoints?filter=${encodeURIComponent('owner=me')}`);
    expect(badFilter.status).toBe(400);
    expect(badFilter.json.error.message).toContain('unsupported field "owner"');

    const page1 = await t.api.get(`${base}/endpoints?pageSize=2`);
    expect(page1.json.endpoints).toHaveLength(2);
    const page2 = await t.api.get(`${base}/endpoints?pageSize=2&pageToken=${page1.json.nextPageToken}`);
    expect(page2.json.endpoints.map((e: { name: string }) => e.name)).toEqual([names[2]]);
    expect(page2.json.nextPageToken).toBeUndefined();
    const foreignToken = await t.api.get(
      `${base}/endpoints?pageSize=2&pageToken=${page1.json.nextPageToken}&filter=endpoint%3Dlist-a`,
    );
    expect(foreignToken.status).toBe(400);

    const models = await t.api.get(`${base}/models?filter=${encodeURIComponent('model=list-b-m')}`);
    expectValid(`${V1BETA1}.ListModelsResponse`, models.json);
    expect(models.json.models).toHaveLength(1);

    // Teardown order: delete endpoint with a deployed model → 400; undeploy; delete endpoint; delete model.
    const target = names[0]!;
    const endpoint = (await t.api.get(`/v1beta1/${target}`)).json;
    const early = await t.api.delete(`/v1beta1/${target}`);
    expect(early.status).toBe(400);
    expect(early.json.error.status).toBe('FAILED_PRECONDITION');
    expect(early.json.error.message).toContain('Undeploy all models');
    const modelBusy = await t.api.delete(`${base}/models/list-a-m`);
    expect(modelBusy.status).toBe(400);
    expect(modelBusy.json.error.message).toContain('is deployed or being deployed');

    const undeployBody = { deployed_model_id: endpoint.deployedModels[0].id };
    expectProtoRoundTrip(`${V1BETA1}.UndeployModelRequest`, undeployBody);
    const wrongId = await t.api.post(`/v1beta1/${target}:undeployModel`, { deployedModelId: '123' });
    expect(wrongId.status).toBe(404);
    const undeploy = await t.api.post(`/v1beta1/${target}:undeployModel`, undeployBody);
    expect(undeploy.status, undeploy.text).toBe(200);
    expect(undeploy.json.name).toMatch(new RegExp(`^${target}/operations/\\d+$`));
    const undeployed = await waitForOperation(t.api, undeploy.json.name);
    expect(undeployed.response).toEqual({ '@type': `type.googleapis.com/${V1BETA1}.UndeployModelResponse` });
    const empty = (await t.api.get(`/v1beta1/${target}`)).json;
    expect(empty.deployedModels).toBeUndefined();
    expect(empty.trafficSplit).toBeUndefined();

    const del = await t.api.delete(`/v1beta1/${target}`);
    expect(del.status).toBe(200);
    expect(del.json.metadata['@type']).toBe(`type.googleapis.com/${V1BETA1}.DeleteOperationMetadata`);
    expect((await waitForOperation(t.api, del.json.name)).response).toEqual({
      '@type': 'type.googleapis.com/google.protobuf.Empty',
    });
    expect((await t.api.get(`/v1beta1/${target}`)).status).toBe(404);
    expect((await t.api.delete(`/v1beta1/${target}`)).status).toBe(404);
    const delModel = await t.api.delete(`${base}/models/list-a-m`);
    expect(delModel.status).toBe(200);
    await waitForOperation(t.api, delModel.json.name);
    expect((await t.api.get(`${base}/models/list-a-m`)).status).toBe(404);

    const resources = await t.admin.resources(project);
    expect(resources.endpoints.map((e) => e.name)).toEqual(names.slice(1));
    expect(resources.models.map((m) => m.name).sort()).toEqual(
      [`${base.slice(9)}/models/list-b-m`, `${base.slice(9)}/models/list-c-m`].map((n) =>
        n.replace(project, projectNumberFor(project)),
      ),
    );
    expect((await t.admin.stats(project)).creations).toEqual({ endpoint: 3, model: 3, deployedModel: 3 });
  });
});
