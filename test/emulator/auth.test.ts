import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GoogleAuth } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectNumberFor, writeEmulatorCredentials } from '../../src/emulator';
import { closeTestEnv } from '../harness/env';
import { Api, type TestEmulator, pollUntil, startTestEmulator, uniqueProject } from './helpers';

let t: TestEmulator;
let dir: string;
const FORBIDDEN = 'forbidden-project';

beforeAll(async () => {
  t = await startTestEmulator({ forbiddenProjects: [FORBIDDEN] });
  dir = await mkdtemp(path.join(os.tmpdir(), 'emulator-adc-'));
});
afterAll(async () => {
  await t?.emulator.close();
  await rm(dir, { recursive: true, force: true });
  await closeTestEnv();
});

describe('auth', () => {
  it('gives google-auth-library ADC (external_account → emulator STS) a token every API accepts', async () => {
    const credentialsFile = await writeEmulatorCredentials(dir, t.emulator.url);
    const credentials = JSON.parse(await readFile(credentialsFile, 'utf8'));
    expect(credentials).toMatchObject({ type: 'external_account', token_url: `${t.emulator.url}/v1/token` });

    const previous = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = credentialsFile;
    let token: string | null | undefined;
    let projectId: string | undefined;
    try {
      const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
      token = await auth.getAccessToken();
      projectId = await auth.getProjectId();
    } finally {
      if (previous === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = previous;
    }
    expect(token).toMatch(/^ya29\.emulator-/);
    // ADC's project lookup (Cloud Resource Manager) is answered by the emulator as well.
    expect(projectId).toBe('garden-deploy-local');
    const tokens = await t.admin.tokens();
    expect(tokens.map((x) => x.accessToken)).toContain(token);
    expect(tokens.find((x) => x.accessToken === token)?.scope).toBe(
      'https://www.googleapis.com/auth/cloud-platform',
    );

    const api = new Api(t.emulator.url, token!);
    const project = uniqueProject();
    expect((await api.get(`/v1beta1/projects/${project}/locations/us-central1/endpoints`)).status).toBe(200);
    expect((await api.get(`/compute/v1/projects/${project}/regions/us-central1/addresses/none`)).status).toBe(
      404,
    );
  });

  it('refuses calls without a token (401), with an unknown one (401) and for a forbidden project (403)', async () => {
    const project = uniqueProject();
    const vertex = `/v1beta1/projects/${project}/locations/us-central1/endpoints`;
    const missing = await t.api.get(vertex, { auth: false });
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toContain('Bearer');
    expect(missing.json.error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
    expect(missing.json.error.message).toContain('missing required authentication credential');

    const unknown = await t.api.get(vertex, {
      auth: false,
      headers: { authorization: 'Bearer ya29.not-issued' },
    });
    expect(unknown.status).toBe(401);
    expect(unknown.json.error.message).toContain('invalid authentication credentials');
    expect(unknown.text).not.toContain('ya29.not-issued');

    const compute = await t.api.get(`/compute/v1/projects/${project}/regions/us-central1/addresses/a`, {
      auth: false,
    });
    expect(compute.status).toBe(401);
    expect(compute.json.error.errors[0]).toMatchObject({ domain: 'global', reason: 'required' });

    const forbidden = await t.api.get(`/v1beta1/projects/${FORBIDDEN}/locations/us-central1/endpoints`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.error).toMatchObject({ status: 'PERMISSION_DENIED' });
    expect(forbidden.json.error.message).toBe(
      `Permission 'aiplatform.endpoints.list' denied on resource '//aiplatform.googleapis.com/projects/${FORBIDDEN}/locations/us-central1/endpoints' (or it may not exist).`,
    );
    // The same project by number is just as forbidden.
    const byNumber = await t.api.post(
      `/v1beta1/projects/${projectNumberFor(FORBIDDEN)}/locations/us-central1:deploy`,
      {},
    );
    expect(byNumber.status).toBe(403);
    const computeForbidden = await t.api.post(
      `/compute/v1/projects/${FORBIDDEN}/regions/us-central1/addresses`,
      { name: 'a' },
    );
    expect(computeForbidden.status).toBe(403);
    expect(computeForbidden.json.error.message).toBe(
      `Required 'compute.addresses.create' permission for 'projects/${FORBIDDEN}/regions/us-central1/addresses'`,
    );
  });

  it('answers malformed token exchanges with OAuth errors', async () => {
    const form = (fields: Record<string, string>) =>
      t.api.request('POST', '/v1/token', {
        rawBody: new URLSearchParams(fields).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        auth: false,
      });
    const wrongGrant = await form({
      grant_type: 'password',
      subject_token: 'x',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
    expect(wrongGrant.status).toBe(400);
    expect(wrongGrant.json).toEqual({
      error: 'unsupported_grant_type',
      error_description: expect.stringContaining('token-exchange'),
    });
    const noSubject = await form({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
    expect(noSubject.status).toBe(400);
    expect(noSubject.json.error).toBe('invalid_request');
    expect(noSubject.json.error_description).toContain('subject_token');
    const ok = await form({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'anything',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({
      token_type: 'Bearer',
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      expires_in: 3600,
    });
  });

  it('expires tokens after their lifetime', async () => {
    const short = await startTestEmulator({ timing: { tokenLifetimeSeconds: 1 } });
    try {
      const path = `/v1beta1/projects/${uniqueProject()}/locations/us-central1/endpoints`;
      expect((await short.api.get(path)).status).toBe(200);
      await pollUntil(
        'token expiry',
        async () => ((await short.api.get(path)).status === 401 ? true : undefined),
        5_000,
      );
    } finally {
      await short.emulator.close();
    }
  });
});
