import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmulatorAdminError, projectNumberFor, readEmulatorConfigFile } from '../../src/emulator';
import {
  deployBody,
  deployReady,
  parseSse,
  pollUntil,
  startTestEmulator,
  uniqueProject,
  useTestEmulator,
  waitForOperation,
} from './helpers';

const t = useTestEmulator({ model: {} });

const list = (project: string) => t.api.get(`/v1beta1/projects/${project}/locations/us-central1/endpoints`);

describe('fault injection', () => {
  it('plays an exact sequence per route and project, then passes; 429 carries Retry-After', async () => {
    const project = uniqueProject();
    const other = uniqueProject();
    await t.admin.addFaultRules([
      {
        route: 'vertex.endpoints.list',
        project,
        sequence: [
          '429',
          '503',
          { type: 'error', status: 500 },
          '504',
          { type: 'error', status: 429, retryAfterSeconds: 7 },
          'pass',
        ],
      },
    ]);
    const statuses: number[] = [];
    const responses = [];
    for (let i = 0; i < 8; i++) {
      const res = await list(project);
      statuses.push(res.status);
      responses.push(res);
    }
    expect(statuses).toEqual([429, 503, 500, 504, 429, 200, 200, 200]);
    expect(responses[0]!.headers['retry-after']).toBe('1');
    expect(responses[0]!.json.error).toMatchObject({
      status: 'RESOURCE_EXHAUSTED',
      details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1s' }],
    });
    expect(responses[1]!.json.error.status).toBe('UNAVAILABLE');
    expect(responses[3]!.json.error.status).toBe('DEADLINE_EXCEEDED');
    expect(responses[4]!.headers['retry-after']).toBe('7');
    // Another project and another route are untouched.
    expect((await list(other)).status).toBe(200);
    expect((await t.api.get(`/v1beta1/projects/${project}/locations/us-central1/models`)).status).toBe(200);
    // Faulted calls are counted like any other.
    expect((await t.admin.stats(project)).calls).toEqual({
      'vertex.endpoints.list': 8,
      'vertex.models.list': 1,
    });
    expect((await t.admin.faults()).rules.find((r) => r.project === project)?.consumed).toBe(6);
  });

  it('repeats a sequence when asked, matches the project by number too, and uses the Compute envelope', async () => {
    const project = uniqueProject();
    await t.admin.addFaultRules([
      { route: 'compute.addresses.get', project, sequence: ['503', 'pass'], repeat: true },
    ]);
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const spelled = i % 2 === 0 ? project : projectNumberFor(project);
      const res = await t.api.get(`/compute/v1/projects/${spelled}/regions/us-central1/addresses/none`);
      statuses.push(res.status);
      if (res.status === 503)
        expect(res.json.error.errors[0]).toMatchObject({ domain: 'global', reason: 'backendError' });
    }
    expect(statuses).toEqual([503, 404, 503, 404]);
  });

  it('draws probabilities from a seeded generator: same seed, same faults', async () => {
    const project = uniqueProject();
    const run = async () => {
      await t.admin.setFaults({
        seed: 1234,
        rules: [{ route: 'vertex.endpoints.*', project, action: '503', probability: 0.5 }],
      });
      const statuses = [];
      for (let i = 0; i < 30; i++) statuses.push((await list(project)).status);
      return statuses;
    };
    const first = await run();
    expect(new Set(first)).toEqual(new Set([200, 503]));
    expect(await run()).toEqual(first);
    await t.admin.setFaults({ rules: [{ route: '*', project, action: '500', probability: 1 }] });
    expect((await list(project)).status).toBe(500);
    expect(
      (await t.api.post(`/compute/v1/projects/${project}/regions/us-central1/addresses`, { name: 'a' }))
        .status,
    ).toBe(500);
    await t.admin.setFaults({ rules: [{ route: '*', project, action: '500', probability: 0 }] });
    expect((await list(project)).status).toBe(200);
    expect(await t.admin.clearFaults({ project })).toBe(1);
    expect((await t.admin.faults()).rules).toEqual([]);
  });

  it('drops connections and delays answers', async () => {
    const project = uniqueProject();
    await t.admin.addFaultRules([
      { route: 'vertex.endpoints.list', project, sequence: ['drop', 'latency:1500'] },
    ]);
    await expect(list(project)).rejects.toThrow(/socket hang up|ECONNRESET/);
    const order: string[] = [];
    const slow = list(project).then((res) => order.push(`slow:${res.status}`));
    await t.api
      .get(`/v1beta1/projects/${project}/locations/us-central1/models`)
      .then((res) => order.push(`fast:${res.status}`));
    await slow;
    expect(order).toEqual(['fast:200', 'slow:200']);
  });

  it('fails the deploy LRO with RESOURCE_EXHAUSTED accelerator quota', async () => {
    const project = uniqueProject();
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['quota'] }]);
    const start = await t.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(t.model, { endpoint: 'q', model: 'q' }),
    );
    expect(start.status).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.error.code).toBe(8);
    expect(op.error.message).toContain('aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus');
    expect(op.error.details[0]).toMatchObject({
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'RESOURCE_EXHAUSTED',
    });
    const endpoint = (await t.admin.resources(project)).endpoints[0]!;
    expect(endpoint.deployedModels).toBeUndefined();
  });

  it('keeps replicas at zero forever with never-ready, while an unfaulted deploy ramps', async () => {
    const project = uniqueProject();
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['never-ready'] }]);
    const start = await t.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(t.model, { endpoint: 'stuck', model: 'stuck' }),
    );
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.error).toBeUndefined();
    // A second deploy with the same ramp, started later, becomes fully ready: the first one's ramp is over.
    await deployReady(t.api, project, t.model, { endpoint: 'fine', model: 'fine' });
    const stuck = (await t.api.get(`/v1beta1/${op.response.endpoint}`)).json;
    expect(stuck.deployedModels[0].status.availableReplicaCount).toBeUndefined();
    const chat = await t.api.post(
      `/v1beta1/${stuck.name}/chat/completions`,
      { messages: [{ role: 'user', content: 'x' }] },
      { host: stuck.dedicatedEndpointDns },
    );
    expect(chat.status).toBe(503);
  });

  it('breaks a stream in-band with stream-error, and smoke queries with plain errors', async () => {
    const project = uniqueProject();
    const { endpoint } = await deployReady(t.api, project, t.model, { endpoint: 'smoke', model: 'smoke' });
    await t.admin.addFaultRules([
      { route: 'inference.chatCompletions', project, sequence: ['stream-error', '500'] },
      { route: 'inference.predict', project, action: '503' },
    ]);
    const host = endpoint.dedicatedEndpointDns;
    const stream = await t.api.post(
      `/v1beta1/${endpoint.name}/chat/completions`,
      { messages: [{ role: 'user', content: 'x' }], stream: true },
      { host },
    );
    expect(stream.status).toBe(200);
    const events = parseSse(stream.text);
    expect(events.at(-1)).toBe('[DONE]');
    expect(JSON.parse(events.at(-2)!).error).toMatchObject({ code: 500 });
    const failed = await t.api.post(
      `/v1beta1/${endpoint.name}/chat/completions`,
      { messages: [{ role: 'user', content: 'x' }] },
      { host },
    );
    expect(failed.status).toBe(500);
    expect(
      (await t.api.post(`/v1beta1/${endpoint.name}:predict`, { instances: [{ prompt: 'x' }] }, { host }))
        .status,
    ).toBe(503);
  });

  it('refuses invalid rules with a message naming the problem', async () => {
    const bad = (rule: unknown) => t.admin.addFaultRules([rule as never]);
    await expect(bad({ route: 'vertex.endpoints.get', sequence: ['quota'] })).rejects.toThrow(
      /"quotaExhausted" only applies to route "vertex.deploy"/,
    );
    await expect(bad({ route: 'vertex.deploy', sequence: ['418'] })).rejects.toThrow(
      /unknown fault action "418"/,
    );
    await expect(bad({ route: 'vertex.deploy', sequence: ['503'], action: '503' })).rejects.toThrow(
      /exactly one of "sequence" or "action"/,
    );
    await expect(bad({ route: 'vertex.deploy', sequence: ['503'], probability: 0.5 })).rejects.toBeInstanceOf(
      EmulatorAdminError,
    );
  });

  it('takes faults from a YAML config file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'emulator-faults-'));
    try {
      const file = path.join(dir, 'emulator.yaml');
      await writeFile(
        file,
        'faults:\n  seed: 7\n  rules:\n    - route: vertex.models.get\n      sequence: ["504"]\n',
      );
      const config = (await readEmulatorConfigFile(file)) as { faults: never };
      const own = await startTestEmulator({ faults: config.faults });
      try {
        const get = () => own.api.get(`/v1beta1/projects/${uniqueProject()}/locations/us-central1/models/m`);
        expect((await get()).status).toBe(504);
        expect((await get()).status).toBe(404);
        expect((await own.admin.faults()).seed).toBe(7);
      } finally {
        await own.emulator.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts calls and creations exactly, per project', async () => {
    const project = uniqueProject();
    await deployReady(t.api, project, t.model, { endpoint: 'count', model: 'count' });
    const stats = await pollUntil('stats', async () => t.admin.stats(project));
    expect(stats.calls['vertex.deploy']).toBe(1);
    expect(stats.creations).toEqual({ endpoint: 1, model: 1, deployedModel: 1 });
    await t.admin.reset(project);
    expect(await t.admin.stats(project)).toEqual({ calls: {}, creations: {} });
    expect(await t.admin.resources(project)).toEqual({
      endpoints: [],
      models: [],
      operations: [],
      addresses: [],
      forwardingRules: [],
      computeOperations: [],
    });
  });
});
