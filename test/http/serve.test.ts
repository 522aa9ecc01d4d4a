import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InvalidSpecError, type DeploymentSpecInput, parseDeploymentSpec } from '../../src/spec';
import { publicSpec } from '../activities/env';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import {
  AUDIENCE,
  type Issuer,
  OTHER_SA,
  type TestApi,
  call,
  startApi,
  startIssuer,
  staticToken,
} from './harness';

/**
 * The API's refusals on the real Temporal dev server: a call without valid credentials (401), of a
 * caller not allowed (403), with an invalid spec (400, the same issues and field paths the CLI
 * prints), without an Idempotency-Key (400), too large (413) or too frequent (429) is answered
 * without starting anything; the access log names the caller and never holds a token.
 */

let issuer: Issuer;
let api: TestApi;
let token: string;
const NOW = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  const { client } = await getTestEnv();
  issuer = await startIssuer();
  const known = staticToken('ci');
  token = known.token;
  api = await startApi(client, {
    taskQueue: uniqueTaskQueue('http'),
    auth: {
      tokens: known.tokens,
      oidc: { audiences: [AUDIENCE], allowedServiceAccounts: [], certsUrl: issuer.certsUrl },
    },
  });
});
afterAll(async () => {
  await api?.close();
  await issuer?.close();
  await closeTestEnv();
});

function freshSpec(): DeploymentSpecInput {
  return publicSpec(`http-${randomUUID().slice(0, 8)}`, 'gs://nowhere/models/tiny/', 'refused');
}

/** Describes the deployment's workflow id: nothing may have been started under it. */
async function expectNotStarted(
  spec: Pick<DeploymentSpecInput, 'project' | 'region' | 'name'>,
): Promise<void> {
  const { client } = await getTestEnv();
  const workflowId = `deploy/${spec.project}/${spec.region}/${spec.name}`;
  await expect(client.workflow.getHandle(workflowId).describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
}

const create = (spec: unknown, options: { token?: string; key?: string } = {}) =>
  call(api, 'POST', '/v1/deployments', { key: randomUUID(), ...options, body: spec });

describe('refused before anything starts', () => {
  it.each([
    ['no credentials', undefined],
    ['an unknown static token', 'not-a-token-of-ours-0123456789'],
    ['an expired ID token', 'expired'],
    ['an ID token for another audience', 'audience'],
  ])('401 with %s', async (_what, credential) => {
    const spec = freshSpec();
    const bearer =
      credential === 'expired'
        ? issuer.sign({ exp: NOW() - 3600, iat: NOW() - 7200 })
        : credential === 'audience'
          ? issuer.sign({ aud: 'https://elsewhere.test' })
          : credential;
    const answer = await create(spec, bearer ? { token: bearer } : {});
    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('unauthenticated');
    expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    await expectNotStarted(spec);
  });

  it('403 with a valid ID token of a service account not allowed', async () => {
    const spec = freshSpec();
    const answer = await create(spec, { token: issuer.sign({ email: OTHER_SA }) });
    expect(answer.status).toBe(403);
    expect(answer.body.error).toEqual({
      code: 'forbidden',
      message: `${OTHER_SA} is not allowed to call this API`,
    });
    await expectNotStarted(spec);
  });

  it('400 with an invalid spec: every issue with its field path, the list the CLI prints', async () => {
    const spec = {
      ...freshSpec(),
      replicas: { min: -1 },
      smoke: { tests: [{ mode: 'shout', prompt: 'hi' }] },
      colour: 'blue',
    };
    const answer = await create(spec, { token });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_spec');
    let expected: InvalidSpecError | undefined;
    try {
      parseDeploymentSpec(spec);
    } catch (err) {
      expected = err as InvalidSpecError;
    }
    expect(answer.body.error.issues).toEqual(expected!.issues);
    const paths = (answer.body.error.issues as Array<{ path: string }>).map((issue) => issue.path);
    expect(paths).toEqual(expect.arrayContaining(['replicas.min', 'smoke.tests[0].mode', '']));
    await expectNotStarted(spec);
  });

  it('400 for an upgrade whose spec names another deployment than its path: an issue at each field', async () => {
    const spec = freshSpec();
    const upgrade = (path: string) =>
      call(api, 'POST', `/v1/deployments/${path}/upgrade`, { token, key: randomUUID(), body: spec });
    const otherName = await upgrade(`${spec.project}/${spec.region}/another-one`);
    expect(otherName.status).toBe(400);
    expect(otherName.body.error).toMatchObject({
      code: 'invalid_spec',
      issues: [
        { path: 'name', message: expect.stringMatching(/the spec is for deployment .*, not deploy\//) },
      ],
    });
    const otherRegion = await upgrade(`${spec.project}/europe-west4/${spec.name}`);
    expect(otherRegion.status).toBe(400);
    expect(otherRegion.body.error.issues.map((issue: { path: string }) => issue.path)).toEqual(['region']);
    await expectNotStarted(spec);
  });

  it('400 without an Idempotency-Key, or with a malformed one', async () => {
    const spec = freshSpec();
    const none = await call(api, 'POST', '/v1/deployments', { token, body: spec });
    expect(none.status).toBe(400);
    expect(none.body.error.code).toBe('idempotency_key_required');
    const bad = await create(spec, { token, key: 'has spaces in it' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_idempotency_key');
    await expectNotStarted(spec);
  });

  it('413 for a body over the limit', async () => {
    const spec = { ...freshSpec(), labels: { big: 'x'.repeat(70 * 1024) } };
    const answer = await create(spec, { token });
    expect(answer.status).toBe(413);
    expect(answer.body.error.code).toBe('payload_too_large');
    await expectNotStarted(spec);
  });

  it('415 for a body that is not JSON, 400 for malformed JSON', async () => {
    const spec = freshSpec();
    const text = await call(api, 'POST', '/v1/deployments', {
      token,
      key: randomUUID(),
      body: JSON.stringify(spec),
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('unsupported_media_type');
    const malformed = await create('{"name": ', { token });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('bad_request');
    await expectNotStarted(spec);
  });

  it('404 for a deployment that does not exist, in the one error shape', async () => {
    const spec = freshSpec();
    const path = `/v1/deployments/${spec.project}/${spec.region}/${spec.name}`;
    const read = await call(api, 'GET', path, { token });
    expect(read.status).toBe(404);
    expect(read.body.error.code).toBe('not_found');
    const cancel = await call(api, 'POST', `${path}/cancel`, { token, key: randomUUID() });
    expect(cancel.status).toBe(404);
    await expectNotStarted(spec);
    expect((await call(api, 'GET', '/v2/nothing', { token })).status).toBe(404);
  });
});

describe('limits and the access log', () => {
  it('429 with Retry-After once a caller spent its burst; other callers are not affected', async () => {
    const { client } = await getTestEnv();
    const other = staticToken('other');
    const limited = await startApi(client, {
      auth: { tokens: [...staticToken('ci').tokens, ...other.tokens] },
      rateLimit: { perMinute: 1, burst: 2 },
    });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await call(limited, 'GET', '/v1/deployments?limit=1', { token: other.token })).status);
      expect(statuses).toEqual([200, 200, 429]);
      const refused = await call(limited, 'GET', '/v1/deployments?limit=1', { token: other.token });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.body.error.code).toBe('rate_limited');
      // Guessing tokens is limited by address.
      const guesses = [];
      for (let i = 0; i < 3; i++)
        guesses.push(
          (await call(limited, 'GET', '/v1/deployments', { token: `guess-${i}-0123456789abcdef` })).status,
        );
      expect(guesses).toEqual([401, 401, 429]);
    } finally {
      await limited.close();
    }
  });

  it('429 on the routes without credentials too, by client address', async () => {
    const { client } = await getTestEnv();
    const limited = await startApi(client, {
      auth: { tokens: staticToken('ci').tokens },
      rateLimit: { perMinute: 1, burst: 2 },
    });
    try {
      const statuses = [];
      for (const path of ['/openapi.json', '/healthz', '/openapi.json'])
        statuses.push((await call(limited, 'GET', path)).status);
      expect(statuses).toEqual([200, 200, 429]);
      const refused = await call(limited, 'GET', '/healthz');
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.body.error.code).toBe('rate_limited');
    } finally {
      await limited.close();
    }
  });

  it('one JSON line per request: method, route, status, principal, client address, duration, request id; no token, no body', async () => {
    const idToken = issuer.sign({ email: OTHER_SA });
    const marker = `marker-${randomUUID()}`;
    const answer = await call(api, 'GET', '/v1/deployments?limit=1', { token });
    await create({ ...freshSpec(), labels: { note: marker } }, { token: idToken });
    const lines = api.log.map((line) => JSON.parse(line) as Record<string, unknown>);
    const mine = lines.find((line) => line.requestId === answer.headers.get('x-request-id'));
    expect(mine).toMatchObject({
      method: 'GET',
      route: '/v1/deployments',
      status: 200,
      principal: 'token:ci',
      client: '127.0.0.1',
      durationMs: expect.any(Number),
    });
    const unauthenticated = await call(api, 'GET', '/v1/deployments?limit=1');
    const refusedLine = api.log.find((line) => line.includes(unauthenticated.headers.get('x-request-id')!));
    expect(JSON.parse(refusedLine!)).toMatchObject({ status: 401, principal: null, client: '127.0.0.1' });
    const text = api.log.join('\n');
    for (const secret of [token, idToken, idToken.split('.')[2]!, 'Bearer', marker])
      expect(text).not.toContain(secret);
  });
});
