import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GcpApiError, createGcpClient } from '../../src/gcp';
import { type TestServer, googleError, sendJson, startTestServer } from './test-server';

/**
 * The real google-auth-library ADC path: an `external_account` credentials file whose token URL is
 * our test server's STS endpoint, as the local emulator does.
 */

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';
const SUBJECT_TOKEN = 'subject-token-that-must-never-leak-0123456789';

let server: TestServer;
let dir: string;
let credentialsFile: string;
let stsCalls: URLSearchParams[];

beforeEach(async () => {
  stsCalls = [];
  server = await startTestServer();
  dir = await mkdtemp(path.join(os.tmpdir(), 'gcp-adc-test-'));
  await writeFile(path.join(dir, 'subject-token'), SUBJECT_TOKEN);
  credentialsFile = path.join(dir, 'adc.json');
  await writeFile(
    credentialsFile,
    JSON.stringify({
      type: 'external_account',
      audience: '//iam.googleapis.com/projects/0/locations/global/workloadIdentityPools/test/providers/test',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${server.url}/v1/token`,
      credential_source: { file: path.join(dir, 'subject-token') },
    }),
  );
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function handleSts(
  req: { method: string; url: string; body: Buffer },
  res: Parameters<TestServer['handler']>[1],
) {
  const form = new URLSearchParams(req.body.toString());
  stsCalls.push(form);
  sendJson(res, 200, {
    access_token: `ya29.sts-issued-${stsCalls.length}`,
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: 3600,
  });
}

describe('Application Default Credentials (google-auth-library)', () => {
  it('exchanges the subject token at STS with the cloud-platform scope, caches the token, and refreshes once after a 401', async () => {
    let rejectFirst = true;
    server.handler = (req, res) => {
      if (req.url === '/v1/token') return handleSts(req, res);
      if (req.headers.authorization === 'Bearer ya29.sts-issued-1' && rejectFirst) {
        rejectFirst = false;
        return sendJson(res, 401, googleError(401, 'UNAUTHENTICATED', 'token revoked'));
      }
      sendJson(res, 200, { name: ENDPOINT });
    };
    const gcp = createGcpClient({ vertexBaseUrl: server.url, credentialsFile });
    await gcp.vertex.getEndpoint(ENDPOINT);
    await gcp.vertex.getEndpoint(ENDPOINT);

    expect(stsCalls).toHaveLength(2); // first token, then the forced refresh; the third call reuses the cache
    expect(stsCalls[0]!.get('subject_token')).toBe(SUBJECT_TOKEN);
    expect(stsCalls[0]!.get('scope')).toBe('https://www.googleapis.com/auth/cloud-platform');
    const apiAuth = server.requests.filter((r) => r.url !== '/v1/token').map((r) => r.headers.authorization);
    expect(apiAuth).toEqual([
      'Bearer ya29.sts-issued-1',
      'Bearer ya29.sts-issued-2',
      'Bearer ya29.sts-issued-2',
    ]);
  });

  it('an STS rejection is a permanent auth error that leaks neither the subject token nor any access token', async () => {
    server.handler = (req, res) => {
      if (req.url === '/v1/token') {
        return sendJson(res, 400, {
          error: 'invalid_grant',
          error_description: `subject_token ${SUBJECT_TOKEN} is not valid; request was ${req.body.toString()}`,
        });
      }
      sendJson(res, 200, { name: ENDPOINT });
    };
    const gcp = createGcpClient({ vertexBaseUrl: server.url, credentialsFile });
    const err = await gcp.vertex.getEndpoint(ENDPOINT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GcpApiError);
    expect(err).toMatchObject({ source: 'auth', classification: 'permanent' });
    for (const view of [
      (err as Error).message,
      JSON.stringify(err),
      inspect(err, { depth: 20 }),
      String((err as Error).stack),
    ]) {
      expect(view).not.toContain(SUBJECT_TOKEN);
    }
    expect(server.requests.filter((r) => r.url !== '/v1/token')).toHaveLength(0);
  });
});
