import { describe, expect, it } from 'vitest';
import { projectNumberFor } from '../../src/emulator';
import {
  L4_MACHINE,
  V1BETA1,
  deployRevision,
  expectProtoRoundTrip,
  expectValidProto,
  pollUntil,
  twoRevisions,
  uniqueProject,
  uploadSampleModel,
  useTestEmulator,
  waitForOperation,
} from './helpers';

/** endpoints.deployModel, traffic splits (UpdateEndpoint, undeployModel) and their validation. */

const t = useTestEmulator({ model: { family: 'llama', shards: 1 } });

const resources = { machineSpec: L4_MACHINE, minReplicaCount: 1, maxReplicaCount: 1 };

async function undeploy(endpoint: string, deployedModelId: string, trafficSplit?: Record<string, number>) {
  const res = await t.api.post(`/v1beta1/${endpoint}:undeployModel`, {
    deployedModelId,
    ...(trafficSplit ? { trafficSplit } : {}),
  });
  expect(res.status, res.text).toBe(200);
  expect((await waitForOperation(t.api, res.json.name)).error).toBeUndefined();
}

describe('endpoints.deployModel', () => {
  it('deploys a second revision beside the first; "0" in the split becomes its generated id', async () => {
    const project = uniqueProject('dm');
    const { endpoint, r1, r2Model } = await twoRevisions(t.api, project, t.model);
    // Long enough to see it running on a loaded machine.
    await t.admin.setTiming(project, { deployModelMs: 2_000 });
    // The model named by project id and version, as clients may write it.
    const body = {
      deployedModel: {
        model: `projects/${project}/locations/us-central1/models/tiny-r2@1`,
        displayName: 'canary',
        dedicatedResources: resources,
        enableContainerLogging: true,
      },
      trafficSplit: { [r1]: 90, '0': 10 },
    };
    expectProtoRoundTrip(`${V1BETA1}.DeployModelRequest`, body);
    const start = await t.api.post(`/v1beta1/${endpoint}:deployModel`, body);
    expect(start.status, start.text).toBe(200);
    expectValidProto('google.longrunning.Operation', start.json);
    expect(start.json.name).toMatch(new RegExp(`^${endpoint}/operations/\\d+$`));
    expect(start.json.metadata['@type']).toBe(`type.googleapis.com/${V1BETA1}.DeployModelOperationMetadata`);
    expect(start.json.metadata.genericMetadata.createTime).toBeDefined();
    expect(start.json.done).toBeUndefined();
    // Running: nothing deployed yet, the split unchanged.
    expect((await t.api.get(`/v1beta1/${endpoint}`)).json.trafficSplit).toEqual({ [r1]: 100 });

    const op = await waitForOperation(t.api, start.json.name);
    expectValidProto('google.longrunning.Operation', op);
    expect(op.error).toBeUndefined();
    expect(op.response['@type']).toBe(`type.googleapis.com/${V1BETA1}.DeployModelResponse`);
    const deployed = op.response.deployedModel;
    expect(deployed).toMatchObject({
      model: r2Model,
      displayName: 'canary',
      enableContainerLogging: true,
      dedicatedResources: resources,
      modelVersionId: '1',
    });
    expect(deployed.id).toMatch(/^\d+$/);
    expect(deployed.status.availableReplicaCount).toBeUndefined(); // replicas ramp up from 0

    const ep = (await t.api.get(`/v1beta1/${endpoint}`)).json;
    expectValidProto(`${V1BETA1}.Endpoint`, ep);
    expect(ep.trafficSplit).toEqual({ [r1]: 90, [deployed.id]: 10 });
    expect(ep.deployedModels.map((m: { id: string }) => m.id)).toEqual([r1, deployed.id]);
    const model = (await t.api.get(`/v1beta1/${r2Model}`)).json;
    expect(model.deployedModels).toContainEqual({ endpoint, deployedModelId: deployed.id });
    expect((await t.admin.stats(project)).creations.deployedModel).toBe(3);
    const listed = (await t.admin.resources(project)).operations.find((o) => o.name === op.name);
    expect(listed?.response).toEqual(op.response);
    await pollUntil('the new revision to be ready', async () => {
      const now = (await t.api.get(`/v1beta1/${endpoint}`)).json;
      return now.deployedModels[1].status.availableReplicaCount === 1 ? true : undefined;
    });
  });

  it('leaves the split alone when none is given; a given id is kept and makes a retry ALREADY_EXISTS', async () => {
    const project = uniqueProject('dmid');
    const { endpoint, r1, r2Model } = await twoRevisions(t.api, project, t.model);
    const id = await deployRevision(t.api, endpoint, r2Model, {}, { id: '4242' });
    expect(id).toBe('4242');
    const ep = (await t.api.get(`/v1beta1/${endpoint}`)).json;
    expect(ep.trafficSplit).toEqual({ [r1]: 100 });
    expect(ep.deployedModels[1]).toMatchObject({ id: '4242', displayName: 'tiny-llama' });
    const body = (deployedModelId: string) => ({
      deployedModel: { id: deployedModelId, model: r2Model, dedicatedResources: resources },
    });
    const again = await t.api.post(`/v1beta1/${endpoint}:deployModel`, body('4242'));
    expect(again.status).toBe(409);
    expect(again.json.error.message).toBe(`A DeployedModel with ID "4242" already exists on ${endpoint}.`);

    await t.admin.setTiming(project, { deployModelMs: 600_000 });
    const first = await t.api.post(`/v1beta1/${endpoint}:deployModel`, body('4343'));
    expect(first.status, first.text).toBe(200);
    // The retry of a call whose answer was lost: the id is taken by the running operation.
    const retry = await t.api.post(`/v1beta1/${endpoint}:deployModel`, body('4343'));
    expect(retry.status).toBe(409);
    expect(retry.json.error.status).toBe('ALREADY_EXISTS');
    expect(retry.json.error.message).toContain(first.json.name);
    expect(retry.json.error.details[0]).toEqual({
      '@type': 'type.googleapis.com/google.rpc.ResourceInfo',
      resourceType: 'aiplatform.googleapis.com/DeployedModel',
      resourceName: `${endpoint}/deployedModels/4343`,
      description: `Deployed model 4343 of ${endpoint}.`,
    });

    // While it runs, neither the Model nor the endpoint can go, and it cannot be cancelled.
    // Only the running operation holds the Model and the endpoint now.
    await undeploy(endpoint, r1, { '4242': 100 });
    await undeploy(endpoint, '4242');
    const home = endpoint.replace(/canary$/, 'r2-home');
    await undeploy(home, (await t.api.get(`/v1beta1/${home}`)).json.deployedModels[0].id);
    const delModel = await t.api.delete(`/v1beta1/${r2Model}`);
    expect(delModel.status).toBe(400);
    expect(delModel.json.error).toMatchObject({ status: 'FAILED_PRECONDITION' });
    expect(delModel.json.error.message).toContain(endpoint);
    const delEndpoint = await t.api.delete(`/v1beta1/${endpoint}`);
    expect(delEndpoint.json.error.status).toBe('FAILED_PRECONDITION');
    expect(delEndpoint.json.error.message).toContain(first.json.name);
    const cancel = await t.api.post(`/v1beta1/${first.json.name}:cancel`);
    expect(cancel.status).toBe(400);
    expect(cancel.json.error.status).toBe('FAILED_PRECONDITION');
  });

  it('refuses bad requests, naming the field and what to send instead', async () => {
    const project = uniqueProject('dmbad');
    const { endpoint, r1, r2Model } = await twoRevisions(t.api, project, t.model);
    const post = (body: unknown) => t.api.post(`/v1beta1/${endpoint}:deployModel`, body);
    const refusal = async (body: unknown, status: string, field: string | undefined, text: string) => {
      const res = await post(body);
      expect(res.json?.error?.status, JSON.stringify(body)).toBe(status);
      expect(res.json.error.message).toContain(text);
      if (field) expect(res.json.error.details[0].fieldViolations[0].field).toBe(field);
    };
    const dm = (extra: Record<string, unknown>) => ({
      deployedModel: { model: r2Model, dedicatedResources: resources, ...extra },
    });

    await refusal({}, 'INVALID_ARGUMENT', 'deployed_model', 'deployed_model is required');
    await refusal(
      { deployedModel: { dedicatedResources: resources } },
      'INVALID_ARGUMENT',
      'deployed_model.model',
      'deployed_model.model is required',
    );
    await refusal(dm({ model: 'tiny-r2' }), 'INVALID_ARGUMENT', 'deployed_model.model', 'not a Model name');
    await refusal(
      dm({ model: `projects/${project}/locations/us-central1/models/nope` }),
      'NOT_FOUND',
      undefined,
      'models/nope',
    );
    await refusal(
      dm({ model: `projects/${project}/locations/us-central1/models/tiny-r2@7` }),
      'NOT_FOUND',
      undefined,
      'tiny-r2@7',
    );
    await refusal(
      dm({ model: r2Model.replace(projectNumberFor(project), projectNumberFor('elsewhere')) }),
      'INVALID_ARGUMENT',
      'deployed_model.model',
      'another project',
    );
    await refusal(
      { deployedModel: { model: r2Model } },
      'INVALID_ARGUMENT',
      'deployed_model.dedicated_resources',
      'dedicated_resources is required',
    );
    await refusal(
      dm({ dedicatedResources: { ...resources, machineSpec: { machineType: 'g2-standard-12' } } }),
      'INVALID_ARGUMENT',
      'deployed_model.dedicated_resources.machine_spec',
      'deployed_model.dedicated_resources.machine_spec: machine type "g2-standard-12"',
    );
    await refusal(
      dm({ dedicatedResources: { machineSpec: L4_MACHINE } }),
      'INVALID_ARGUMENT',
      'deployed_model.dedicated_resources.min_replica_count',
      'at least 1',
    );
    await refusal(
      dm({ dedicatedResources: { machineSpec: L4_MACHINE, minReplicaCount: 3, maxReplicaCount: 2 } }),
      'INVALID_ARGUMENT',
      'deployed_model.dedicated_resources.max_replica_count',
      'max_replica_count (2) must not be less than min_replica_count (3)',
    );
    await refusal(dm({ id: 'canary' }), 'INVALID_ARGUMENT', 'deployed_model.id', '1 to 10 digits');
    await refusal(dm({ id: '0' }), 'INVALID_ARGUMENT', 'deployed_model.id', 'not all zeros');
    await refusal(
      { ...dm({}), trafficSplit: { [r1]: 80, '0': 10 } },
      'INVALID_ARGUMENT',
      'traffic_split',
      'needs to be 100',
    );
    await refusal(
      { ...dm({}), trafficSplit: { '123': 50, '0': 50 } },
      'INVALID_ARGUMENT',
      'traffic_split',
      'The following DeployedModel ID(s) [123] do not exist.',
    );
    await refusal(
      { ...dm({ id: '77' }), trafficSplit: { '77': 50, '0': 50 } },
      'INVALID_ARGUMENT',
      'traffic_split',
      'as "0" and as its id "77"',
    );
    const unknownField = await post({ ...dm({}), trafficSplits: {} });
    expect(unknownField.status).toBe(400);
    expect(unknownField.json.error.message).toContain('Unknown name "trafficSplits"');
    // Nothing was accepted.
    expect((await t.admin.resources(project)).operations.filter((o) => o.name.startsWith(endpoint))).toEqual(
      [],
    );

    // The given id stands for "0" in the split.
    const id = await deployRevision(t.api, endpoint, r2Model, { [r1]: 0, '55': 100 }, { id: '55' });
    expect((await t.api.get(`/v1beta1/${endpoint}`)).json.trafficSplit).toEqual({ [r1]: 0, '55': 100 });
    expect(id).toBe('55');
    await refusal(dm({ id: '55' }), 'ALREADY_EXISTS', undefined, '"55" already exists');
  });

  it('fails the operation for a Model whose serving container never started', async () => {
    const project = uniqueProject('dmbroken');
    const [{ endpoint }, broken] = await Promise.all([
      twoRevisions(t.api, project, t.model),
      (async () => {
        const start = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, {
          custom_model: { gcs_uri: await uploadSampleModel({ variant: 'missing-tokenizer' }) },
          model_config: { model_user_id: 'broken' },
          endpoint_config: { endpoint_user_id: 'broken' },
        });
        return waitForOperation(t.api, start.json.name);
      })(),
    ]);
    expect(broken.error.code).toBe(9);
    const start = await t.api.post(`/v1beta1/${endpoint}:deployModel`, {
      deployedModel: {
        model: `projects/${project}/locations/us-central1/models/broken`,
        dedicatedResources: resources,
      },
    });
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.error).toMatchObject({ code: 9 });
    expect(op.error.message).toContain('cannot be served');
    expect((await t.api.get(`/v1beta1/${endpoint}`)).json.deployedModels).toHaveLength(1);
  });

  it('takes the deploy faults: quota ends RESOURCE_EXHAUSTED deploying nothing, never-ready keeps 0 replicas', async () => {
    const project = uniqueProject('dmquota');
    const { endpoint, r1, r2Model, host } = await twoRevisions(t.api, project, t.model);
    await t.admin.addFaultRules([
      { route: 'vertex.endpoints.deployModel', project, sequence: ['quota', 'never-ready'] },
    ]);
    const body = {
      deployedModel: { model: r2Model, dedicatedResources: resources },
      trafficSplit: { [r1]: 50, '0': 50 },
    };
    const quota = await t.api.post(`/v1beta1/${endpoint}:deployModel`, body);
    expect(quota.status).toBe(200);
    const failed = await waitForOperation(t.api, quota.json.name);
    expectValidProto('google.longrunning.Operation', failed);
    expect(failed.error.code).toBe(8);
    expect(failed.error.message).toContain('custom_model_serving_nvidia_l4_gpus');
    expect(failed.error.details[0]).toMatchObject({ reason: 'RESOURCE_EXHAUSTED' });
    const unchanged = (await t.api.get(`/v1beta1/${endpoint}`)).json;
    expect(unchanged.deployedModels).toHaveLength(1);
    expect(unchanged.trafficSplit).toEqual({ [r1]: 100 });

    const never = await t.api.post(`/v1beta1/${endpoint}:deployModel`, body);
    const done = await waitForOperation(t.api, never.json.name);
    expect(done.error).toBeUndefined();
    const id = done.response.deployedModel.id;
    // Calls routed to it meet the 503 of a model without replicas, and say who it was.
    const calls = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.api.post(`/v1beta1/${endpoint}:predict`, { instances: [{ prompt: 'x' }] }, { host }),
      ),
    );
    const toCanary = calls.filter((c) => c.headers['x-vertex-ai-deployed-model-id'] === id);
    expect(toCanary.length).toBeGreaterThan(0);
    for (const c of toCanary) {
      expect(c.status).toBe(503);
      expect(c.json.error.message).toContain('0 of 1 replicas are available');
    }
    expect(calls.filter((c) => c.status === 200).length).toBe(20 - toCanary.length);
  });
});

describe('traffic_split', () => {
  it('UpdateEndpoint (PATCH ?updateMask=trafficSplit) sets it, checking ids, sums and the etag', async () => {
    const project = uniqueProject('patch');
    const { endpoint, r1, r2Model, host } = await twoRevisions(t.api, project, t.model);
    const r2 = await deployRevision(t.api, endpoint, r2Model, { [r1]: 100 });
    const patch = (mask: string, body: unknown) =>
      t.api.request('PATCH', `/v1beta1/${endpoint}?updateMask=${mask}`, { body });
    const current = (await t.api.get(`/v1beta1/${endpoint}`)).json;

    const moved = await patch('trafficSplit', { trafficSplit: { [r1]: 30, [r2]: 70 }, etag: current.etag });
    expect(moved.status, moved.text).toBe(200);
    expectValidProto(`${V1BETA1}.Endpoint`, moved.json);
    expect(moved.json.trafficSplit).toEqual({ [r1]: 30, [r2]: 70 });
    expect(moved.json.etag).not.toBe(current.etag);

    const stale = await patch('trafficSplit', { trafficSplit: { [r1]: 100 }, etag: current.etag });
    expect(stale.status).toBe(409);
    expect(stale.json.error.status).toBe('ABORTED');
    const zero = await patch('traffic_split', { trafficSplit: { '0': 100 } });
    expect(zero.status).toBe(400);
    expect(zero.json.error.message).toBe('The following DeployedModel ID(s) [0] do not exist.');
    const unknown = await patch('trafficSplit', { trafficSplit: { [r1]: 50, '999': 50 } });
    expect(unknown.json.error.message).toBe('The following DeployedModel ID(s) [999] do not exist.');
    const sum = await patch('trafficSplit', { trafficSplit: { [r1]: 50, [r2]: 40 } });
    expect(sum.status).toBe(400);
    expect(sum.json.error.details[0].fieldViolations[0].field).toBe('traffic_split');
    const range = await patch('trafficSplit', { trafficSplit: { [r1]: 150, [r2]: -50 } });
    expect(range.json.error.message).toContain('whole percentage from 0 to 100');
    expect((await t.api.get(`/v1beta1/${endpoint}`)).json.trafficSplit).toEqual({ [r1]: 30, [r2]: 70 });

    // Masks combine; an empty split means the endpoint takes no traffic.
    const cleared = await patch('labels,traffic_split', { labels: { stage: 'paused' } });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.json.trafficSplit).toBeUndefined();
    expect(cleared.json.labels).toEqual({ stage: 'paused' });
    const noTraffic = await t.api.post(
      `/v1beta1/${endpoint}:predict`,
      { instances: [{ prompt: 'x' }] },
      { host },
    );
    expect(noTraffic.status).toBe(400);
    expect(noTraffic.json.error.status).toBe('FAILED_PRECONDITION');
    expect(noTraffic.json.error.message).toContain('receives traffic');
  });

  it('undeployModel: "0" does not exist, the leaving model may be named at 0 but not with traffic', async () => {
    const project = uniqueProject('undeploy');
    const { endpoint, r1, r2Model } = await twoRevisions(t.api, project, t.model);
    const r2 = await deployRevision(t.api, endpoint, r2Model, { [r1]: 50, '0': 50 });
    const undeploy = (body: unknown) => t.api.post(`/v1beta1/${endpoint}:undeployModel`, body);

    const zero = await undeploy({ deployedModelId: r2, trafficSplit: { '0': 100 } });
    expect(zero.status).toBe(400);
    expect(zero.json.error).toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'The following DeployedModel ID(s) [0] do not exist.',
    });
    const keepsTraffic = await undeploy({ deployedModelId: r2, trafficSplit: { [r2]: 10, [r1]: 90 } });
    expect(keepsTraffic.json.error.status).toBe('FAILED_PRECONDITION');
    expect(keepsTraffic.json.error.message).toContain(`10% to deployed model ${r2}`);
    const short = await undeploy({ deployedModelId: r2, trafficSplit: { [r2]: 0, [r1]: 90 } });
    expect(short.json.error.status).toBe('INVALID_ARGUMENT');
    const noSplit = await undeploy({ deployedModelId: r2 });
    expect(noSplit.json.error.status).toBe('FAILED_PRECONDITION');

    // python-aiplatform's shape: the leaving model at 0, the rest summing to 100.
    const ok = await undeploy({ deployedModelId: r2, trafficSplit: { [r2]: 0, [r1]: 100 } });
    expect(ok.status, ok.text).toBe(200);
    expect((await waitForOperation(t.api, ok.json.name)).error).toBeUndefined();
    const ep = (await t.api.get(`/v1beta1/${endpoint}`)).json;
    expect(ep.trafficSplit).toEqual({ [r1]: 100 });
    expect(ep.deployedModels.map((m: { id: string }) => m.id)).toEqual([r1]);
    // The last model: naming it at 0 empties the split.
    const last = await undeploy({ deployedModelId: r1, trafficSplit: { [r1]: 0 } });
    expect(last.status, last.text).toBe(200);
    await waitForOperation(t.api, last.json.name);
    expect((await t.api.get(`/v1beta1/${endpoint}`)).json.trafficSplit).toBeUndefined();
  });
});
