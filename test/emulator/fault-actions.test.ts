import { describe, expect, it } from 'vitest';
import { projectNumberFor } from '../../src/emulator';
import { deployBody, pollUntil, uniqueProject, useTestEmulator, waitForOperation } from './helpers';

/** Fault actions that model failures a retrying client must survive without duplicating work. */

const t = useTestEmulator({ model: { family: 'llama', shards: 1 } });

describe('fault actions', () => {
  it('drop-response: the deploy happens but its answer is lost, so a retry meets ALREADY_EXISTS', async () => {
    const project = uniqueProject();
    const url = `/v1beta1/projects/${project}/locations/us-central1:deploy`;
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['drop-response'] }]);
    const body = deployBody(t.model, { endpoint: 'lost-ep', model: 'lost-model' });

    await expect(t.api.post(url, body)).rejects.toThrow(/socket hang up|ECONNRESET/);
    const operations = await t.admin.resources(project).then((r) => r.operations);
    expect(operations).toHaveLength(1);

    const retry = await t.api.post(url, body);
    expect(retry.status).toBe(409);
    expect(retry.json.error.status).toBe('ALREADY_EXISTS');
    const endpoints = await pollUntil('the endpoint of the lost deploy', async () => {
      const found = (await t.admin.resources(project)).endpoints;
      return found.length > 0 ? found : undefined;
    });
    expect(endpoints.map((e) => e.name)).toEqual([expect.stringMatching(/\/endpoints\/lost-ep$/)]);
  });

  it('injects 400 INVALID_ARGUMENT without touching state', async () => {
    const project = uniqueProject();
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, action: '400' }]);
    const res = await t.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(t.model, { endpoint: 'bad-ep', model: 'bad-model' }),
    );
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect((await t.admin.resources(project)).operations).toEqual([]);
  });

  it('403 refuses any route like a forbidden project, until the rule is lifted by id', async () => {
    const project = uniqueProject();
    const rulePath = `/compute/v1/projects/${project}/regions/us-central1/forwardingRules/psc-fr`;
    const [id] = await t.admin.addFaultRules([
      { route: 'compute.forwardingRules.delete', project, action: '403' },
      { route: 'vertex.endpoints.get', project, sequence: [{ type: 'forbidden' }] },
    ]);
    for (let i = 0; i < 2; i++) {
      const refused = await t.api.delete(rulePath);
      expect(refused.status).toBe(403);
      expect(refused.json.error).toEqual({
        code: 403,
        message: `Required 'compute.forwardingRules.delete' permission for 'projects/${project}/regions/us-central1/forwardingRules/psc-fr'`,
        errors: [
          {
            message: `Required 'compute.forwardingRules.delete' permission for 'projects/${project}/regions/us-central1/forwardingRules/psc-fr'`,
            domain: 'global',
            reason: 'forbidden',
          },
        ],
      });
    }
    // IAM comes after authentication: no token is still 401.
    expect((await t.api.delete(rulePath, { auth: false })).status).toBe(401);
    expect(await t.admin.clearFaults({ id: id! })).toBe(1);
    expect((await t.api.delete(rulePath)).status).toBe(404);

    const endpoint = `projects/${projectNumberFor(project)}/locations/us-central1/endpoints/e1`;
    const vertex = await t.api.get(`/v1beta1/${endpoint}`);
    expect(vertex.status).toBe(403);
    expect(vertex.json.error).toEqual({
      code: 403,
      status: 'PERMISSION_DENIED',
      message: `Permission 'aiplatform.endpoints.get' denied on resource '//aiplatform.googleapis.com/${endpoint}' (or it may not exist).`,
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'IAM_PERMISSION_DENIED',
          domain: 'aiplatform.googleapis.com',
          metadata: { permission: 'aiplatform.endpoints.get', resource: endpoint },
        },
      ],
    });
    expect((await t.api.get(`/v1beta1/${endpoint}`)).status).toBe(404);
    await expect(t.admin.addFaultRules([{ route: 'sts.token', action: '403' }])).rejects.toThrow(
      /"forbidden" does not apply to route "sts.token"/,
    );
  });

  it('creates-after-cancel: a cancel before the import lets the Endpoint and Model appear, then ends CANCELLED', async () => {
    const project = uniqueProject();
    await t.admin.setTiming(project, { importMs: 60_000, deployMs: 120_000 });
    await t.admin.addFaultRules([
      { route: 'vertex.deploy', project, sequence: ['creates-after-cancel:1000'] },
    ]);
    const start = await t.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(t.model, { endpoint: 'late-ep', model: 'late-model' }),
    );
    expect(start.status, start.text).toBe(200);
    expect((await t.api.post(`/v1beta1/${start.json.name}:cancel`)).status).toBe(200);
    // The cancel was accepted, but the operation runs on and nothing exists yet.
    const running = await t.api.get(`/v1beta1/${start.json.name}`);
    expect(running.json.done).toBeUndefined();
    expect((await t.admin.resources(project)).endpoints).toEqual([]);
    expect((await t.api.post(`/v1beta1/${start.json.name}:cancel`)).status).toBe(200);

    const op = await waitForOperation(t.api, start.json.name);
    expect(op.error).toEqual({ code: 1, message: 'Operation was cancelled.' });
    expect(op.response).toBeUndefined();
    const resources = await t.admin.resources(project);
    expect(resources.endpoints.map((e) => e.name)).toEqual([expect.stringMatching(/\/endpoints\/late-ep$/)]);
    expect(resources.endpoints[0]!.deployedModels).toBeUndefined();
    expect(resources.models.map((m) => m.name)).toEqual([expect.stringMatching(/\/models\/late-model$/)]);
    expect((await t.admin.stats(project)).creations).toEqual({ endpoint: 1, model: 1 });
  });

  it('creates-after-cancel: resources created before the cancel stay, and it still ends CANCELLED after ms', async () => {
    const project = uniqueProject();
    await t.admin.setTiming(project, { deployMs: 120_000 });
    await t.admin.addFaultRules([
      { route: 'vertex.deploy', project, sequence: [{ type: 'createsAfterCancel', ms: 1000 }] },
    ]);
    const start = await t.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(t.model, { endpoint: 'early-ep', model: 'early-model' }),
    );
    await pollUntil('the imported endpoint', async () =>
      (await t.admin.resources(project)).endpoints.length > 0 ? true : undefined,
    );
    expect((await t.api.post(`/v1beta1/${start.json.name}:cancel`)).status).toBe(200);
    expect((await t.api.get(`/v1beta1/${start.json.name}`)).json.done).toBeUndefined();
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.error.code).toBe(1);
    const resources = await t.admin.resources(project);
    expect(resources.endpoints).toHaveLength(1);
    expect(resources.endpoints[0]!.deployedModels).toBeUndefined();
    expect(resources.models).toHaveLength(1);
  });
});
