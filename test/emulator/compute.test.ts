import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectNumberFor } from '../../src/emulator';
import { closeTestEnv } from '../harness/env';
import {
  type Api,
  type TestEmulator,
  deployReady,
  pollUntil,
  startTestEmulator,
  uniqueProject,
  uploadSampleModel,
  waitForOperation,
} from './helpers';

const REGION = 'us-central1';
let t: TestEmulator;
let producer: string;
let allowed: string;
let endpoint: { name: string; privateServiceConnectConfig: { serviceAttachment: string } } & Record<
  string,
  never
>;
let attachment: string;

beforeAll(async () => {
  t = await startTestEmulator();
  producer = uniqueProject('producer');
  allowed = uniqueProject('consumer');
  // The allowlist may name projects by id or number; the consumer below is listed by number.
  const psc = {
    enable_private_service_connect: true,
    project_allowlist: [projectNumberFor(allowed), producer],
  };
  ({ endpoint } = await deployReady(
    t.api,
    producer,
    await uploadSampleModel(),
    { endpoint: 'private', model: 'private' },
    {
      endpoint_config: { endpoint_user_id: 'private', private_service_connect_config: psc },
    },
  ));
  attachment = endpoint.privateServiceConnectConfig.serviceAttachment;
});
afterAll(async () => {
  await t?.emulator.close();
  await closeTestEnv();
});

const base = (project: string) => `/compute/v1/projects/${project}/regions/${REGION}`;

async function waitCompute(
  api: Api,
  project: string,
  op: { name: string },
): Promise<Record<string, unknown>> {
  return pollUntil(`compute operation ${op.name}`, async () => {
    const res = await api.get(`${base(project)}/operations/${op.name}`);
    expect(res.status).toBe(200);
    return res.json.status === 'DONE' ? res.json : undefined;
  });
}

async function reserve(project: string, name: string, address?: string): Promise<Record<string, unknown>> {
  const res = await t.api.post(`${base(project)}/addresses`, {
    name,
    addressType: 'INTERNAL',
    subnetwork: `projects/${project}/regions/${REGION}/subnetworks/default`,
    ...(address ? { address } : {}),
  });
  expect(res.status, res.text).toBe(200);
  await waitCompute(t.api, project, res.json);
  return (await t.api.get(`${base(project)}/addresses/${name}`)).json;
}

async function connect(project: string, name: string, addressName: string): Promise<Record<string, unknown>> {
  const res = await t.api.post(`${base(project)}/forwardingRules?requestId=${randomUUID()}`, {
    name,
    target: attachment,
    network: `projects/${project}/global/networks/default`,
    IPAddress: `projects/${project}/regions/${REGION}/addresses/${addressName}`,
    loadBalancingScheme: '',
    serviceDirectoryRegistrations: [{ namespace: 'vertex', service: name }],
  });
  expect(res.status, res.text).toBe(200);
  const op = await waitCompute(t.api, project, res.json);
  expect(op.error).toBeUndefined();
  return (await t.api.get(`${base(project)}/forwardingRules/${name}`)).json;
}

describe('Private Service Connect (consumer side)', () => {
  it('exposes the service attachment on the endpoint, not a public DNS name', () => {
    expect(endpoint.dedicatedEndpointDns).toBeUndefined();
    expect(attachment).toMatch(new RegExp(`^projects/[a-z0-9-]+-tp/regions/${REGION}/serviceAttachments/`));
    expect(endpoint.privateServiceConnectConfig).toMatchObject({
      enablePrivateServiceConnect: true,
      projectAllowlist: [projectNumberFor(allowed), producer],
    });
    expect(
      (endpoint as unknown as { deployedModels: { privateEndpoints: unknown }[] }).deployedModels[0]!
        .privateEndpoints,
    ).toEqual({ serviceAttachment: attachment });
  });

  it('reserves an address idempotently per requestId, in the Compute operation shape', async () => {
    const requestId = randomUUID();
    const body = {
      name: 'psc-ip',
      addressType: 'INTERNAL',
      subnetwork: `https://www.googleapis.com/compute/v1/projects/${allowed}/regions/${REGION}/subnetworks/default`,
      address: '10.10.0.5',
    };
    const first = await t.api.post(`${base(allowed)}/addresses?requestId=${requestId}`, body);
    expect(first.status, first.text).toBe(200);
    expect(first.json).toMatchObject({
      kind: 'compute#operation',
      operationType: 'insert',
      status: 'RUNNING',
      targetLink: `https://www.googleapis.com/compute/v1/projects/${allowed}/regions/${REGION}/addresses/psc-ip`,
      region: `https://www.googleapis.com/compute/v1/projects/${allowed}/regions/${REGION}`,
    });
    expect(first.json.name).toMatch(/^operation-\d+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+$/);
    const retried = await t.api.post(`${base(allowed)}/addresses?requestId=${requestId}`, body);
    expect(retried.json.name).toBe(first.json.name);
    const waited = await t.api.post(`${base(allowed)}/operations/${first.json.name}/wait`);
    expect(waited.json).toMatchObject({ status: 'DONE', progress: 100 });
    expect(waited.json.error).toBeUndefined();
    const address = (await t.api.get(`${base(allowed)}/addresses/psc-ip`)).json;
    expect(address).toMatchObject({
      kind: 'compute#address',
      address: '10.10.0.5',
      status: 'RESERVED',
      addressType: 'INTERNAL',
      purpose: 'GCE_ENDPOINT',
    });
    expect((await t.admin.stats(allowed)).creations).toEqual({ address: 1 });
    expect((await t.admin.stats(allowed)).calls['compute.addresses.insert']).toBe(2);
  });

  it('accepts a consumer on the allowlist: PENDING → ACCEPTED, then inference through the PSC address', async () => {
    const rule = await connect(allowed, 'psc-fr', 'psc-ip');
    expect(rule).toMatchObject({
      kind: 'compute#forwardingRule',
      IPAddress: '10.10.0.5',
      target: `https://www.googleapis.com/compute/v1/${attachment}`,
      serviceDirectoryRegistrations: [{ namespace: 'vertex', service: 'psc-fr' }],
    });
    expect(rule.pscConnectionId).toMatch(/^\d+$/);
    expect(['PENDING', 'ACCEPTED']).toContain(rule.pscConnectionStatus);
    await pollUntil('ACCEPTED', async () =>
      (await t.api.get(`${base(allowed)}/forwardingRules/psc-fr`)).json.pscConnectionStatus === 'ACCEPTED'
        ? true
        : undefined,
    );
    const address = (await t.api.get(`${base(allowed)}/addresses/psc-ip`)).json;
    expect(address).toMatchObject({
      status: 'IN_USE',
      users: [
        `https://www.googleapis.com/compute/v1/projects/${allowed}/regions/${REGION}/forwardingRules/psc-fr`,
      ],
    });

    const chat = await t.api.post(
      `/v1beta1/${endpoint.name}/chat/completions`,
      { messages: [{ role: 'user', content: 'hi' }] },
      { host: '10.10.0.5' },
    );
    expect(chat.status, chat.text).toBe(200);
    expect(chat.json.object).toBe('chat.completion');
    const publicRoute = await t.api.post(`/v1beta1/${endpoint.name}/chat/completions`, {
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(publicRoute.status).toBe(400);
    expect(publicRoute.json.error.message).toContain('private endpoint');
  });

  it('keeps a connection PENDING until the producer decides', async () => {
    const waiting = uniqueProject('waiting');
    await t.admin.setTiming(waiting, { pscAcceptMs: 600_000 });
    await reserve(waiting, 'ip');
    const rule = await connect(waiting, 'fr', 'ip');
    expect(rule.pscConnectionStatus).toBe('PENDING');
  });

  it('rejects a consumer that is not on the allowlist; its address carries no traffic', async () => {
    const stranger = uniqueProject('stranger');
    const address = await reserve(stranger, 'ip');
    expect(address.address).toMatch(/^10\.\d+\.\d+\.\d+$/);
    await connect(stranger, 'fr', 'ip');
    const status = await pollUntil('decision', async () => {
      const s = (await t.api.get(`${base(stranger)}/forwardingRules/fr`)).json.pscConnectionStatus;
      return s === 'PENDING' ? undefined : s;
    });
    expect(status).toBe('REJECTED');
    await expect(
      t.api.post(
        `/v1beta1/${endpoint.name}/chat/completions`,
        { messages: [{ role: 'user', content: 'hi' }] },
        { host: address.address as string },
      ),
    ).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('answers bad requests in the Compute error envelope and changes nothing', async () => {
    const p = uniqueProject('bad');
    await reserve(p, 'ip', '10.0.0.9');
    const fr = (body: Record<string, unknown>) =>
      t.api.post(`${base(p)}/forwardingRules`, {
        name: 'fr',
        target: attachment,
        network: `projects/${p}/global/networks/default`,
        IPAddress: 'ip',
        ...body,
      });

    const scheme = await fr({ loadBalancingScheme: 'EXTERNAL' });
    expect(scheme.status).toBe(400);
    expect(scheme.json.error).toMatchObject({ code: 400, errors: [{ domain: 'global', reason: 'invalid' }] });
    expect(scheme.json.error.message).toContain(
      "Invalid value for field 'resource.loadBalancingScheme': 'EXTERNAL'",
    );
    const unknown = await fr({ ipAddress: '10.0.0.9' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.message).toContain(`Unknown name "ipAddress" at 'forwarding_rule_resource'`);
    const noNetwork = await fr({ network: undefined });
    expect(noNetwork.json.error.message).toContain('Network is required');
    const badRequestId = await t.api.post(
      `${base(p)}/addresses?requestId=00000000-0000-0000-0000-000000000000`,
      { name: 'x' },
    );
    expect(badRequestId.status).toBe(400);
    expect(badRequestId.json.error.message).toContain('zero UUID is not supported');
    const dupe = await t.api.post(`${base(p)}/addresses`, { name: 'ip', addressType: 'INTERNAL' });
    expect(dupe.status).toBe(409);
    expect(dupe.json.error.errors[0].reason).toBe('alreadyExists');
    const ipTaken = await t.api.post(`${base(p)}/addresses`, {
      name: 'ip2',
      addressType: 'INTERNAL',
      address: '10.0.0.9',
    });
    expect(ipTaken.status).toBe(400);
    const missing = await t.api.get(`${base(p)}/forwardingRules/nope`);
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({
      code: 404,
      message: `The resource 'projects/${p}/regions/${REGION}/forwardingRules/nope' was not found`,
      errors: [{ reason: 'notFound' }],
    });

    // A target that does not exist fails inside the operation: DONE, with an error.
    const ghost = await fr({ target: `projects/ghost-tp/regions/${REGION}/serviceAttachments/none` });
    expect(ghost.status).toBe(200);
    const op = await waitCompute(t.api, p, ghost.json);
    expect(op).toMatchObject({
      status: 'DONE',
      httpErrorStatusCode: 404,
      error: { errors: [{ code: 'RESOURCE_NOT_FOUND' }] },
    });
    expect((await t.api.get(`${base(p)}/forwardingRules/fr`)).status).toBe(404);
    const resources = await t.admin.resources(p);
    expect(resources.forwardingRules).toEqual([]);
    expect(resources.addresses).toHaveLength(1);
  });

  it('tears down in order (address in use → 400), and a deleted endpoint closes its connections', async () => {
    const p = uniqueProject('teardown');
    await reserve(p, 'ip');
    await connect(p, 'fr', 'ip');
    const busy = await t.api.delete(`${base(p)}/addresses/ip`);
    expect(busy.status).toBe(400);
    expect(busy.json.error.errors[0].reason).toBe('resourceInUseByAnotherResource');

    const delRule = await t.api.delete(`${base(p)}/forwardingRules/fr?requestId=${randomUUID()}`);
    expect(delRule.json.operationType).toBe('delete');
    await waitCompute(t.api, p, delRule.json);
    expect((await t.api.get(`${base(p)}/addresses/ip`)).json.status).toBe('RESERVED');
    const delAddress = await t.api.delete(`${base(p)}/addresses/ip`);
    await waitCompute(t.api, p, delAddress.json);
    const left = await t.admin.resources(p);
    expect(left.addresses).toEqual([]);
    expect(left.forwardingRules).toEqual([]);

    // Undeploy + delete the producer's endpoint: the allowed consumer's connection is CLOSED.
    const deployed = (await t.api.get(`/v1beta1/${endpoint.name}`)).json.deployedModels[0].id;
    await waitForOperation(
      t.api,
      (await t.api.post(`/v1beta1/${endpoint.name}:undeployModel`, { deployedModelId: deployed })).json.name,
    );
    await waitForOperation(t.api, (await t.api.delete(`/v1beta1/${endpoint.name}`)).json.name);
    expect((await t.api.get(`${base(allowed)}/forwardingRules/psc-fr`)).json.pscConnectionStatus).toBe(
      'CLOSED',
    );
  });
});
