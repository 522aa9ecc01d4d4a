import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorAdminClient } from '../../src/emulator';
import { closeTestEnv, getTestEnv } from '../harness/env';
import { Api, deployBody, uniqueProject, uploadSampleModel, waitForOperation } from './helpers';

afterAll(closeTestEnv);

describe('the harness emulator (shared by every test file)', () => {
  it('is up, reads the harness fake-gcs-server, and keeps projects apart in its admin API', async () => {
    const { emulatorUrl } = await getTestEnv();
    const admin = new EmulatorAdminClient(emulatorUrl);
    expect(await admin.health()).toBe(true);
    const api = new Api(emulatorUrl, await admin.issueToken());
    const project = uniqueProject('harness');
    const start = await api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(await uploadSampleModel()),
    );
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(api, start.json.name);
    expect(op.error).toBeUndefined();
    const mine = await admin.resources(project);
    expect(mine.endpoints.map((e) => e.name)).toEqual([op.response.endpoint]);
    expect((await admin.resources(uniqueProject('other'))).endpoints).toEqual([]);
    await admin.reset(project);
    expect((await admin.resources(project)).endpoints).toEqual([]);
  });
});
