import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeTestEnv } from '../harness/env';
import {
  type TestEmulator,
  deployBody,
  pollUntil,
  startTestEmulator,
  uniqueProject,
  uploadSampleModel,
} from './helpers';

/** Fault actions that model failures a retrying client must survive without duplicating work. */

let t: TestEmulator;
let validModel: string;

beforeAll(async () => {
  t = await startTestEmulator();
  validModel = await uploadSampleModel({ family: 'llama', shards: 1 });
});
afterAll(async () => {
  await t?.emulator.close();
  await closeTestEnv();
});

describe('fault actions', () => {
  it('drop-response: the deploy happens but its answer is lost, so a retry meets ALREADY_EXISTS', async () => {
    const project = uniqueProject();
    const url = `/v1beta1/projects/${project}/locations/us-central1:deploy`;
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['drop-response'] }]);
    const body = deployBody(validModel, { endpoint: 'lost-ep', model: 'lost-model' });

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
      deployBody(validModel, { endpoint: 'bad-ep', model: 'bad-model' }),
    );
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect((await t.admin.resources(project)).operations).toEqual([]);
  });
});
