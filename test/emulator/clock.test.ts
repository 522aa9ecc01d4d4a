import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatorAdminError, projectNumberFor } from '../../src/emulator';
import {
  Api,
  type ApiResponse,
  deployBody,
  startTestEmulator,
  uniqueProject,
  useTestEmulator,
} from './helpers';

/**
 * The emulator's clock moves with wall time: operations end and replicas come up at their due
 * times with no request arriving, a held `:wait` answers when its operation ends, and the admin API
 * counts the calls of each project and service per second. The idle pauses below are the point of
 * these tests (no traffic while time passes), not synchronisation.
 */

const t = useTestEmulator({ model: {} });
const REGION = 'us-central1';
/** Far beyond every due time here, far below the 10 s `:wait` timeouts. */
const SENTINEL_MS = 5_000;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'emulator-clock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The call's answer, or 'sentinel' when it has not come within `SENTINEL_MS`. */
async function within(call: Promise<ApiResponse>): Promise<ApiResponse | 'sentinel'> {
  const abort = new AbortController();
  try {
    return await Promise.race([
      call,
      delay(SENTINEL_MS, 'sentinel' as const, { signal: abort.signal, ref: false }),
    ]);
  } finally {
    abort.abort();
  }
}

/** A pause in which the test calls nothing. */
const idle = (ms: number) => delay(ms);

async function startDeploy(api: Api, project: string, id: string): Promise<string> {
  const start = await api.post(
    `/v1beta1/projects/${project}/locations/${REGION}:deploy`,
    deployBody(t.model, { endpoint: id, model: id }),
  );
  expect(start.status, start.text).toBe(200);
  return start.json.name as string;
}

describe('the clock', () => {
  it('ends a deploy and ramps its replicas at their due times with no request in between', async () => {
    const project = uniqueProject('idle');
    await t.admin.setTiming(project, { importMs: 50, deployMs: 300, replicaRampMs: 300 });
    const operation = await startDeploy(t.api, project, 'idle');

    await idle(2_000);
    const askedAt = Date.now();
    const endpoint = await t.api.get(`/v1beta1/projects/${project}/locations/${REGION}/endpoints/idle`);
    expect(endpoint.status, endpoint.text).toBe(200);
    // Had the deploy waited for this call to end, its ramp would only start now: no replica yet.
    expect(endpoint.json.deployedModels[0].status.availableReplicaCount).toBe(2);
    expect(Date.parse(endpoint.json.deployedModels[0].status.lastUpdateTime)).toBeLessThan(askedAt);
    const done = (await t.api.get(`/v1beta1/${operation}`)).json;
    expect(done.done).toBe(true);
    expect(Date.parse(done.metadata.genericMetadata.updateTime)).toBeLessThan(askedAt);

    // A mutation applies, ramps its new replicas and ends, all while nobody asks.
    await t.admin.setTiming(project, { mutateMs: 50, replicaRampMs: 300 });
    const mutate = await t.api.post(`/v1beta1/${endpoint.json.name}:mutateDeployedModel`, {
      deployedModel: {
        id: endpoint.json.deployedModels[0].id,
        dedicatedResources: { minReplicaCount: 4, maxReplicaCount: 4 },
      },
      updateMask: 'dedicated_resources.min_replica_count,dedicated_resources.max_replica_count',
    });
    expect(mutate.status, mutate.text).toBe(200);
    await idle(1_500);
    const mutatedAt = Date.now();
    const mutated = (await t.api.get(`/v1beta1/${mutate.json.name}`)).json;
    expect(mutated.done).toBe(true);
    expect(mutated.error).toBeUndefined();
    expect(mutated.response.deployedModel.status.availableReplicaCount).toBe(4);
    expect(Date.parse(mutated.metadata.genericMetadata.updateTime)).toBeLessThan(mutatedAt);
  });

  it('answers a held Vertex :wait as soon as its operation ends, not at its timeout', async () => {
    const project = uniqueProject('wait');
    await t.admin.setTiming(project, { importMs: 50, deployMs: 300 });
    const operation = await startDeploy(t.api, project, 'waited');

    const answer = await within(t.api.post(`/v1beta1/${operation}:wait`, { timeout: '10s' }));
    expect(answer, 'the :wait still held after 5 s').not.toBe('sentinel');
    const { status, json, text } = answer as ApiResponse;
    expect(status, text).toBe(200);
    expect(json.done).toBe(true);
    expect(json.error).toBeUndefined();
    // Nothing else asked in between.
    expect((await t.admin.stats(project)).calls).toEqual({
      'vertex.deploy': 1,
      'vertex.operations.wait': 1,
    });
  });

  it('answers a held Compute operations/wait as soon as the operation is DONE', async () => {
    const project = uniqueProject('cwait');
    await t.admin.setTiming(project, { computeOperationMs: 300 });
    const base = `/compute/v1/projects/${project}/regions/${REGION}`;
    const insert = await t.api.post(`${base}/addresses`, { name: 'held', addressType: 'INTERNAL' });
    expect(insert.status, insert.text).toBe(200);
    expect(insert.json.status).toBe('RUNNING');

    const answer = await within(t.api.post(`${base}/operations/${insert.json.name}/wait`));
    expect(answer, 'the wait still held after 5 s').not.toBe('sentinel');
    expect((answer as ApiResponse).json).toMatchObject({ status: 'DONE', progress: 100 });
    expect((await t.api.get(`${base}/addresses/held`)).status).toBe(200);
  });

  it('arms its timer again after a restart: a deploy pending in the state file ends on time', async () => {
    const stateFile = path.join(dir, 'state.json');
    const project = uniqueProject('restart');
    const first = await startTestEmulator({ stateFile });
    await first.admin.setTiming(project, { importMs: 100, deployMs: 800, replicaRampMs: 200 });
    const operation = await startDeploy(first.api, project, 'resumed');
    const token = first.api.token!;
    await first.emulator.close();

    const second = await startTestEmulator({ stateFile });
    try {
      await idle(2_500);
      const askedAt = Date.now();
      const done = (await new Api(second.emulator.url, token).get(`/v1beta1/${operation}`)).json;
      expect(done.done).toBe(true);
      expect(done.error).toBeUndefined();
      expect(Date.parse(done.metadata.genericMetadata.updateTime)).toBeLessThan(askedAt);
    } finally {
      await second.emulator.close();
    }
  });
});

describe('admin call rates', () => {
  it('counts the calls of each project and service per wall-clock second, :wait included', async () => {
    const [a, b] = [uniqueProject('rates-a'), uniqueProject('rates-b')];
    const vertex = (p: string) => `/v1beta1/projects/${p}/locations/${REGION}/endpoints`;
    const compute = `/compute/v1/projects/${a}/regions/${REGION}`;
    for (let i = 0; i < 3; i++) expect((await t.api.get(vertex(a))).status).toBe(200);
    const insert = await t.api.post(`${compute}/addresses`, { name: 'counted', addressType: 'INTERNAL' });
    expect((await t.api.post(`${compute}/operations/${insert.json.name}/wait`)).json.status).toBe('DONE');
    // Refused calls are calls too.
    expect((await t.api.get(`/v3/projects/${a}/timeSeries`)).status).toBe(400);
    for (let i = 0; i < 2; i++) expect((await t.api.get(vertex(b))).status).toBe(200);

    const rates = await t.admin.callRates({ project: a });
    expect(rates.map((r) => [r.service, r.total])).toEqual([
      ['compute', 2],
      ['monitoring', 1],
      ['vertex', 3],
    ]);
    for (const rate of rates) {
      expect(rate).toMatchObject({ project: projectNumberFor(a), projectId: a });
      const counts = rate.perSecond.map((s) => s.count);
      expect(counts.reduce((x, y) => x + y, 0)).toBe(rate.total);
      expect(rate.peakPerSecond).toBe(Math.max(...counts));
      const seconds = rate.perSecond.map((s) => s.second);
      expect(seconds).toEqual([...seconds].sort((x, y) => x - y));
      expect(Math.abs(seconds.at(-1)! - Date.now() / 1000)).toBeLessThan(60);
    }
    // By number too, one service, and every project at once.
    expect(await t.admin.callRates({ project: projectNumberFor(a), service: 'compute' })).toEqual([rates[0]]);
    const all = await t.admin.callRates();
    expect(all.find((r) => r.projectId === b)).toMatchObject({ service: 'vertex', total: 2 });

    await t.admin.resetCallRates(a);
    expect(await t.admin.callRates({ project: a })).toEqual([]);
    expect((await t.admin.callRates({ project: b }))[0]?.total).toBe(2);
    // The exact per-route counts are another read, which this reset leaves alone.
    expect((await t.admin.stats(a)).calls['vertex.endpoints.list']).toBe(3);
    await expect(t.admin.callRates({ service: 'admin' as never })).rejects.toThrow(EmulatorAdminError);
  });
});
