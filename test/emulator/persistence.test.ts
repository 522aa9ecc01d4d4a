import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateFileError, startEmulator } from '../../src/emulator';
import { closeTestEnv } from '../harness/env';
import {
  Api,
  L4_MACHINE,
  deployBody,
  deployReady,
  pollUntil,
  startTestEmulator,
  uniqueProject,
  uploadSampleModel,
  waitForOperation,
} from './helpers';

let dir: string;
let model: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'emulator-state-'));
  model = await uploadSampleModel();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await closeTestEnv();
});

describe('state file', () => {
  it('survives a restart: resources, operations, counts and tokens; a deploy interrupted midway finishes', async () => {
    const stateFile = path.join(dir, 'state.json');
    const project = uniqueProject();
    const first = await startTestEmulator({ stateFile });
    const { endpoint } = await deployReady(first.api, project, model, { endpoint: 'kept', model: 'kept' });
    const address = await first.api.post(`/compute/v1/projects/${project}/regions/us-central1/addresses`, {
      name: 'kept-ip',
      addressType: 'INTERNAL',
    });
    await first.api.post(
      `/compute/v1/projects/${project}/regions/us-central1/operations/${address.json.name}/wait`,
    );
    // A second deploy is still running when the emulator stops.
    await first.admin.setTiming(project, { importMs: 300, deployMs: 600 });
    const running = await first.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(model, { endpoint: 'resumed', model: 'resumed' }),
    );
    expect(running.status).toBe(200);
    const statsBefore = await first.admin.stats(project);
    const token = first.api.token!;
    await first.emulator.close();
    expect(JSON.parse(await readFile(stateFile, 'utf8')).version).toBe(1);

    const second = await startTestEmulator({ stateFile });
    try {
      expect(await second.admin.stats(project)).toEqual(statsBefore);
      const api = new Api(second.emulator.url, token); // a token issued before the restart
      const kept = await api.get(`/v1beta1/${endpoint.name}`);
      expect(kept.status).toBe(200);
      expect(kept.json.etag).toBe(endpoint.etag);
      expect(kept.json.deployedModels[0].status.availableReplicaCount).toBe(2);
      expect(
        (await api.get(`/compute/v1/projects/${project}/regions/us-central1/addresses/kept-ip`)).json.status,
      ).toBe('RESERVED');
      expect((await second.admin.timing(project)).deployMs).toBe(600);

      const resumed = await waitForOperation(api, running.json.name);
      expect(resumed.error).toBeUndefined();
      expect(resumed.response.endpoint).toMatch(/\/endpoints\/resumed$/);
      const chat = await api.post(
        `/v1beta1/${endpoint.name}/chat/completions`,
        { messages: [{ role: 'user', content: 'still here?' }] },
        { host: endpoint.dedicatedEndpointDns },
      );
      expect(chat.status).toBe(200);
    } finally {
      await second.emulator.close();
    }
  });

  it('keeps a deploy fault in its operation: creates-after-cancel still holds after a restart', async () => {
    const stateFile = path.join(dir, 'late-cancel.json');
    const project = uniqueProject();
    const first = await startTestEmulator({
      stateFile,
      faults: { rules: [{ route: 'vertex.deploy', project, sequence: ['creates-after-cancel:500'] }] },
    });
    await first.admin.setTiming(project, { importMs: 60_000, deployMs: 120_000 });
    const start = await first.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(model, { endpoint: 'late', model: 'late' }),
    );
    expect(start.status, start.text).toBe(200);
    const token = first.api.token!;
    await first.emulator.close();

    // Fault rules are not saved; the accepted operation carries its fault with it.
    const second = await startTestEmulator({ stateFile });
    try {
      const api = new Api(second.emulator.url, token);
      expect((await api.post(`/v1beta1/${start.json.name}:cancel`)).status).toBe(200);
      expect((await api.get(`/v1beta1/${start.json.name}`)).json.done).toBeUndefined();
      const op = await waitForOperation(api, start.json.name);
      expect(op.error.code).toBe(1);
      const resources = await second.admin.resources(project);
      expect(resources.endpoints.map((e) => e.name)).toEqual([expect.stringMatching(/\/endpoints\/late$/)]);
      expect(resources.models).toHaveLength(1);
    } finally {
      await second.emulator.close();
    }
  });

  it('keeps quota settings, the inference timeout, logging flags and a never-ready container across a restart', async () => {
    const stateFile = path.join(dir, 'serving.json');
    const project = uniqueProject();
    const first = await startTestEmulator({ stateFile });
    await first.admin.setQuota(project, {
      region: 'us-central1',
      limits: { NVIDIA_L4: 9 },
      usage: { NVIDIA_L4: 1 },
    });
    const { endpoint, operation } = await deployReady(first.api, project, model, {
      endpoint: 'kept',
      model: 'kept',
    });
    const updated = await first.api.post(`/v1beta1/${endpoint.name}:update`, {
      endpoint: { clientConnectionConfig: { inferenceTimeout: '900s' } },
    });
    await waitForOperation(first.api, updated.json.name);
    const deployModel = await first.api.post(`/v1beta1/${endpoint.name}:deployModel`, {
      deployedModel: {
        id: '5',
        model: operation.response.model,
        dedicatedResources: { machineSpec: L4_MACHINE, minReplicaCount: 1 },
        enableAccessLogging: true,
        enableContainerLogging: true,
      },
    });
    await waitForOperation(first.api, deployModel.json.name);
    const stuck = await first.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(
        model,
        { endpoint: 'stuck', model: 'stuck' },
        {
          model_config: {
            model_user_id: 'stuck',
            container_spec: { image_uri: 'vllm', args: ['--port=9000'] },
          },
        },
      ),
    );
    await waitForOperation(first.api, stuck.json.name);
    // A timeout update still running when the emulator stops.
    await first.admin.setTiming(project, { mutateMs: 300 });
    const pending = await first.api.post(`/v1beta1/${endpoint.name}:update`, {
      endpoint: { clientConnectionConfig: { inferenceTimeout: '1200s' } },
    });
    const token = first.api.token!;
    await first.emulator.close();

    const second = await startTestEmulator({ stateFile });
    try {
      const api = new Api(second.emulator.url, token);
      expect(await second.admin.quota(project, 'us-central1')).toMatchObject({
        limits: { NVIDIA_L4: 9 },
        // 1 extra + 2 replicas + deployed model 5 + the stuck deployment's 2 replicas.
        usage: { NVIDIA_L4: 6 },
      });
      const read = (await api.get(`/v1beta1/${endpoint.name}`)).json;
      expect(read.clientConnectionConfig).toEqual({ inferenceTimeout: '900s' });
      expect(read.deployedModels.find((m: { id: string }) => m.id === '5')).toMatchObject({
        enableAccessLogging: true,
        enableContainerLogging: true,
      });
      expect((await waitForOperation(api, pending.json.name)).response.clientConnectionConfig).toEqual({
        inferenceTimeout: '1200s',
      });
      // Logs are not saved; the stuck container goes on restarting and logging.
      await pollUntil('a restart after the restart', async () => {
        const res = await api.post('/v2/entries:list', {
          resourceNames: [`projects/${project}`],
          filter: 'resource.labels.endpoint_id="stuck"',
        });
        return (res.json.entries ?? []).some((e: { jsonPayload: { message: string } }) =>
          e.jsonPayload.message.includes('Uvicorn running on http://0.0.0.0:9000'),
        )
          ? true
          : undefined;
      });
      const stuckEndpoint = (
        await api.get(`/v1beta1/projects/${project}/locations/us-central1/endpoints/stuck`)
      ).json;
      expect(stuckEndpoint.deployedModels[0].status.availableReplicaCount).toBeUndefined();
    } finally {
      await second.emulator.close();
    }
  });

  it('refuses a file that is not an emulator state file, saying what to do', async () => {
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, '{"version": 2}');
    await expect(startEmulator({ port: 0, stateFile: broken })).rejects.toThrow(StateFileError);
    await expect(startEmulator({ port: 0, stateFile: broken })).rejects.toThrow(
      /is not an emulator state file .*delete it or point --state-file elsewhere/,
    );
    await writeFile(broken, 'not json');
    await expect(startEmulator({ port: 0, stateFile: broken })).rejects.toThrow(/is not valid JSON/);
  });
});
