import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectNumberFor } from '../../src/emulator';
import { closeTestEnv } from '../harness/env';
import {
  Api,
  type TestEmulator,
  V1BETA1,
  chatSequence,
  deployRevision,
  expectValidProto,
  parseSse,
  startTestEmulator,
  twoRevisions,
  uniqueProject,
  uploadSampleModel,
  waitForOperation,
  waitForReplica,
} from './helpers';

/** Inference routed by the traffic split: weights, determinism, attribution headers, per-revision faults. */

let t: TestEmulator;
let gcsUri: string;
let dir: string;

beforeAll(async () => {
  t = await startTestEmulator();
  gcsUri = await uploadSampleModel({ family: 'llama', shards: 1 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'emulator-routing-'));
});
afterAll(async () => {
  await t?.emulator.close();
  await rm(dir, { recursive: true, force: true });
  await closeTestEnv();
});

const modelName = (project: string, id: string) =>
  `projects/${projectNumberFor(project)}/locations/us-central1/models/${id}`;

describe('routing by traffic_split', () => {
  it('sends about 10 % of 1 000 calls to a 10 % canary, and none to a model at 0 %', async () => {
    const project = uniqueProject('split');
    const { endpoint, host, r1, r2Model } = await twoRevisions(t.api, project, gcsUri);
    const r2 = await deployRevision(t.api, endpoint, r2Model, { [r1]: 90, '0': 10 });
    const served = await chatSequence(t.api, endpoint, host, 1000);
    const toCanary = served.filter((m) => m === r2Model).length;
    expect(toCanary).toBeGreaterThan(60);
    expect(toCanary).toBeLessThan(140);
    expect(served.filter((m) => m === modelName(project, 'tiny-r1')).length).toBe(1000 - toCanary);
    // The admin record of who answered agrees call for call.
    expect((await t.admin.served(project)).endpoints[endpoint]).toEqual({
      [r1]: { '200': 1000 - toCanary },
      [r2]: { '200': toCanary },
    });

    const moved = await t.api.request('PATCH', `/v1beta1/${endpoint}?updateMask=trafficSplit`, {
      body: { trafficSplit: { [r1]: 100, [r2]: 0 } },
    });
    expect(moved.status, moved.text).toBe(200);
    const after = await chatSequence(t.api, endpoint, host, 200);
    expect(new Set(after)).toEqual(new Set([modelName(project, 'tiny-r1')]));
  });

  it('routes identically, call by call, in another emulator with the same seed, also across a restart', async () => {
    const project = uniqueProject('seed');
    const stateFile = path.join(dir, 'routing.json');
    const setUp = async (api: Api) => {
      const revisions = await twoRevisions(api, project, gcsUri);
      const start = await api.post(`/v1beta1/${revisions.endpoint}:deployModel`, {
        deployedModel: {
          id: '7',
          model: revisions.r2Model,
          dedicatedResources: {
            machineSpec: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
            minReplicaCount: 1,
          },
        },
        trafficSplit: { [revisions.r1]: 80, '0': 20 },
      });
      expect(start.status, start.text).toBe(200);
      return { ...revisions, operation: start.json.name as string };
    };

    // Emulator A saves its state; it stops while the deployModel runs and again midway through the calls.
    let a = await startTestEmulator({ stateFile, timing: { deployModelMs: 400 } });
    const { endpoint, host, operation } = await setUp(a.api);
    const token = a.api.token!;
    await a.emulator.close();
    a = await startTestEmulator({ stateFile });
    let api = new Api(a.emulator.url, token);
    expect((await waitForOperation(api, operation)).response.deployedModel.id).toBe('7');
    await waitForReplica(api, endpoint, '7');
    const firstHalf = await chatSequence(api, endpoint, host, 300);
    await a.emulator.close();
    a = await startTestEmulator({ stateFile });
    api = new Api(a.emulator.url, token);
    const secondHalf = await chatSequence(api, endpoint, host, 300);
    await a.emulator.close();

    const b = await startTestEmulator({ routingSeed: 1 });
    try {
      const other = await setUp(b.api);
      await waitForOperation(b.api, other.operation);
      await waitForReplica(b.api, other.endpoint, '7');
      const whole = await chatSequence(b.api, other.endpoint, other.host, 600);
      expect([...firstHalf, ...secondHalf]).toEqual(whole);
      expect(new Set(whole)).toEqual(new Set([modelName(project, 'tiny-r1'), modelName(project, 'tiny-r2')]));
    } finally {
      await b.emulator.close();
    }
  });

  it('names the serving deployed model on every answer: JSON, SSE, vLLM errors and injected errors', async () => {
    const project = uniqueProject('headers');
    const { endpoint, host, r1 } = await twoRevisions(t.api, project, gcsUri);
    const expectNamed = (res: { headers: Record<string, unknown> }, what: string) => {
      expect(res.headers['x-vertex-ai-endpoint-id'], what).toBe('canary');
      expect(res.headers['x-vertex-ai-deployed-model-id'], what).toBe(r1);
      expect(res.headers['x-vertex-ai-model'], what).toBe(modelName(project, 'tiny-r1'));
    };
    const chat = { messages: [{ role: 'user', content: 'hello' }] };
    const json = await t.api.post(`/v1beta1/${endpoint}/chat/completions`, chat, { host });
    expectNamed(json, 'chat');
    const sse = await t.api.post(
      `/v1beta1/${endpoint}/chat/completions`,
      { ...chat, stream: true },
      { host },
    );
    expect(parseSse(sse.text).at(-1)).toBe('[DONE]');
    expectNamed(sse, 'stream');
    const stream = await t.api.post(
      `/v1beta1/${endpoint}:streamRawPredict`,
      { instances: [{ prompt: 'hi', stream: true }] },
      { host },
    );
    expectNamed(stream, 'streamRawPredict');
    const vllm400 = await t.api.post(`/v1beta1/${endpoint}/chat/completions`, { messages: [] }, { host });
    expect(vllm400.status).toBe(400);
    expectNamed(vllm400, 'vLLM 400');
    const predict = await t.api.post(
      `/v1beta1/${endpoint}:predict`,
      { instances: [{ prompt: 'x' }] },
      { host },
    );
    expectValidProto(`${V1BETA1}.PredictResponse`, predict.json);
    expect(predict.json).toMatchObject({
      deployedModelId: r1,
      model: modelName(project, 'tiny-r1'),
      modelVersionId: '1',
      modelDisplayName: 'tiny-llama',
    });
    expectNamed(predict, 'predict');
    await t.admin.addFaultRules([{ route: 'inference.predict', project, sequence: ['503'] }]);
    const injected = await t.api.post(
      `/v1beta1/${endpoint}:predict`,
      { instances: [{ prompt: 'x' }] },
      { host },
    );
    expect(injected.status).toBe(503);
    expectNamed(injected, 'injected 503');
    // Not routed: no model to name.
    const unauthenticated = await t.api.post(
      `/v1beta1/${endpoint}:predict`,
      { instances: [] },
      { host, auth: false },
    );
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers['x-vertex-ai-deployed-model-id']).toBeUndefined();
    expect((await t.admin.served(project)).endpoints[endpoint]).toEqual({
      [r1]: { '200': 4, '400': 1, '503': 1 },
    });
  });
});

describe('fault rules for one revision', () => {
  it('fails about a fifth of one revision’s calls with "model" and probability 0.2, and none of the other’s', async () => {
    const project = uniqueProject('permodel');
    const { endpoint, host, r1, r2Model } = await twoRevisions(t.api, project, gcsUri);
    const r2 = await deployRevision(t.api, endpoint, r2Model, { [r1]: 50, '0': 50 });
    await t.admin.addFaultRules([
      { route: 'inference.*', project, model: 'tiny-r2', action: '500', probability: 0.2 },
    ]);
    const calls = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        t.api.post(`/v1beta1/${endpoint}:predict`, { instances: [{ prompt: `p${i}` }] }, { host }),
      ),
    );
    const served = (await t.admin.served(project)).endpoints[endpoint]!;
    expect(served[r1]).toEqual({ '200': expect.any(Number) });
    const r2Total = (served[r2]!['200'] ?? 0) + (served[r2]!['500'] ?? 0);
    expect(served[r1]!['200']! + r2Total).toBe(400);
    expect(served[r2]!['500']! / r2Total).toBeGreaterThan(0.1);
    expect(served[r2]!['500']! / r2Total).toBeLessThan(0.3);
    for (const failed of calls.filter((c) => c.status === 500)) {
      expect(failed.headers['x-vertex-ai-deployed-model-id']).toBe(r2);
      expect(failed.json.error.status).toBe('INTERNAL');
    }
  });

  it('refuses "model" on routes that are not inference, and with deploy-only actions', async () => {
    const add = (rule: unknown) => t.admin.addFaultRules([rule as never]);
    await expect(add({ route: 'vertex.endpoints.get', model: 'tiny-r2', action: '500' })).rejects.toThrow(
      /"model" selects inference calls .*use route "inference\.\*"/,
    );
    await expect(add({ route: '*', model: 'tiny-r2', action: 'quota' })).rejects.toThrow(
      /"quotaExhausted" acts on a deployment operation, not on the inference calls a "model" rule selects/,
    );
    await expect(add({ route: 'inference.*', model: 'Tiny R2', action: '500' })).rejects.toThrow(
      /model must be a Model id/,
    );
    await expect(add({ route: 'vertex.endpoints.get', action: 'never-ready' })).rejects.toThrow(
      /"replicasNeverReady" only applies to route "vertex.deploy" or "vertex.endpoints.deployModel"/,
    );
  });
});
