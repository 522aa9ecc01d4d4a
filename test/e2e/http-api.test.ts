import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentSpecInput } from '../../src/spec';
import { freshProject, publicSpec, uploadModel } from '../activities/env';
import { getTestEnv } from '../harness/env';
import { eventually } from '../harness/eventually';
import {
  ALLOWED_SA,
  AUDIENCE,
  type Issuer,
  OTHER_SA,
  type TestApi,
  call,
  startApi,
  startIssuer,
  staticToken,
} from '../http/harness';
import { E2E_SETTINGS, E2E_WAIT, expectNothingLeft, uniqueName, useWorkerAndModel } from './harness';

/**
 * The HTTP API's acceptance, end to end on the dev server, fake GCS and the emulator: create →
 * progress → upgrade → rollback → teardown over HTTP, once with a static bearer token and once with
 * a Google-style OIDC ID token (signed by a test key whose JWKS the verifier is pointed at). Each
 * mutating call is retried with its Idempotency-Key: one workflow, one Update each.
 */

const t = useWorkerAndModel();
let issuer: Issuer;
let api: TestApi;
let staticBearer: string;

beforeAll(async () => {
  const { client } = await getTestEnv();
  issuer = await startIssuer();
  const known = staticToken('pipeline');
  staticBearer = known.token;
  api = await startApi(client, {
    taskQueue: t.worker.taskQueue,
    settings: E2E_SETTINGS,
    auth: {
      tokens: known.tokens,
      oidc: { audiences: [AUDIENCE], allowedServiceAccounts: [ALLOWED_SA], certsUrl: issuer.certsUrl },
    },
  });
});
afterAll(async () => {
  await api?.close();
  await issuer?.close();
});

/** Polls a request until it is no longer running (each poll waits up to 20 s on the server). */
async function settled(bearer: string, deploymentPath: string, requestId: string) {
  return eventually(
    `request ${requestId}`,
    async () => {
      const answer = await call(api, 'GET', `${deploymentPath}/requests/${requestId}?wait=20`, {
        token: bearer,
      });
      expect(answer.status).toBe(200);
      return answer.body.state === 'running' ? undefined : answer.body;
    },
    { timeoutMs: 180_000 },
  );
}

/** How many times the deployment's history accepted Update `requestId`. */
async function acceptedCount(workflowId: string, requestId: string): Promise<number> {
  const { client } = await getTestEnv();
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter(
    (event) =>
      event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId === requestId,
  ).length;
}

/** How many Updates the deployment's latest run has accepted, of any id. */
async function updateCount(workflowId: string): Promise<number> {
  const { client } = await getTestEnv();
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((event) => event.workflowExecutionUpdateAcceptedEventAttributes)
    .length;
}

/** How many events the deployment's latest run has: a request sent again would add some. */
async function historyLength(workflowId: string): Promise<number> {
  const { client } = await getTestEnv();
  return ((await client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).length;
}

describe.concurrent('the HTTP API, end to end', { timeout: 300_000 }, () => {
  it.each([
    ['a static bearer token', 'token:pipeline'],
    ['a Google OIDC ID token', `oidc:${ALLOWED_SA}`],
  ])('create → progress → upgrade → rollback → teardown with %s', async (_kind, principal) => {
    const bearer = principal.startsWith('token:') ? staticBearer : issuer.sign();
    const { client } = await getTestEnv();
    const project = await freshProject('http', { deployModelMs: 300 });
    const spec: DeploymentSpecInput = {
      ...publicSpec(project, t.modelUri, uniqueName('http')),
      gates: { interval: '200ms', minRequests: 0, onIdle: 'promote' },
    };
    const path = `/v1/deployments/${project}/${spec.region}/${spec.name}`;
    const workflowId = `deploy/${project}/${spec.region}/${spec.name}`;

    // Create, and the same call again: one workflow, one deploy request.
    const key = randomUUID();
    const created = await call(api, 'POST', '/v1/deployments', { token: bearer, key, body: spec });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ workflowId, requestId: `create:${key}`, started: true });
    const again = await call(api, 'POST', '/v1/deployments', { token: bearer, key, body: spec });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ workflowId, runId: created.body.runId, started: false });
    const reused = await call(api, 'POST', '/v1/deployments', {
      token: bearer,
      key,
      body: { ...spec, labels: { team: 'other' } },
    });
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('idempotency_key_reused');
    const other = await call(api, 'POST', '/v1/deployments', {
      token: bearer,
      key: randomUUID(),
      body: spec,
    });
    expect(other.status).toBe(409);
    const deployed = await settled(bearer, path, `create:${key}`);
    expect(deployed).toMatchObject({ state: 'done', outcome: { outcome: 'serving' } });
    expect(await acceptedCount(workflowId, `create:${key}`)).toBe(1);

    const unknown = await call(api, 'GET', `${path}/requests/cancel:never-sent?wait=5`, { token: bearer });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');

    // Progress and listing by search attribute.
    const progress = await call(api, 'GET', path, { token: bearer });
    expect(progress.status).toBe(200);
    expect(progress.body).toMatchObject({
      workflowId,
      status: 'RUNNING',
      stage: 'SERVING',
      deployment: spec.name,
    });
    await eventually(
      'the deployment in the listing',
      async () => {
        const listed = await call(api, 'GET', `/v1/deployments?project=${project}&stage=SERVING`, {
          token: bearer,
        });
        return listed.body.deployments?.some((d: { workflowId: string }) => d.workflowId === workflowId);
      },
      E2E_WAIT,
    );

    // Upgrade (sent twice: one Update), held at its canary; then rolled back.
    const upgradeKey = randomUUID();
    const next = {
      ...spec,
      model: { uri: await uploadModel() },
      strategy: { canary: { percent: 10, bake: '1h' } },
    };
    const upgrade = await call(api, 'POST', `${path}/upgrade`, {
      token: bearer,
      key: upgradeKey,
      body: next,
    });
    expect(upgrade.status).toBe(202);
    expect(upgrade.body).toMatchObject({
      requestId: `upgrade:${upgradeKey}`,
      state: 'running',
      operation: 'upgrade',
    });
    const upgradeAgain = await call(api, 'POST', `${path}/upgrade`, {
      token: bearer,
      key: upgradeKey,
      body: next,
    });
    expect(upgradeAgain.status).toBe(202);
    expect(upgradeAgain.body.requestId).toBe(upgrade.body.requestId);
    await eventually(
      'the canary',
      async () =>
        (await call(api, 'GET', path, { token: bearer })).body.progress?.upgrade?.phase === 'shifting',
      E2E_WAIT,
    );
    expect(await acceptedCount(workflowId, `upgrade:${upgradeKey}`)).toBe(1);

    const rollbackKey = randomUUID();
    const rollback = await call(api, 'POST', `${path}/rollback?wait=30`, {
      token: bearer,
      key: rollbackKey,
      body: { reason: 'over HTTP' },
    });
    expect([200, 202]).toContain(rollback.status);
    const rolledBack = await settled(bearer, path, `rollback:${rollbackKey}`);
    expect(rolledBack).toMatchObject({
      state: 'done',
      outcome: { outcome: 'serving', upgrade: { outcome: 'rolled-back' } },
    });
    const rollbackAgain = await call(api, 'POST', `${path}/rollback?wait=30`, {
      token: bearer,
      key: rollbackKey,
      body: { reason: 'over HTTP' },
    });
    expect(rollbackAgain).toMatchObject({
      status: 200,
      body: { state: 'done', outcome: rolledBack.outcome },
    });
    expect(await acceptedCount(workflowId, `rollback:${rollbackKey}`)).toBe(1);
    expect(await settled(bearer, path, `upgrade:${upgradeKey}`)).toMatchObject({
      state: 'done',
      outcome: { outcome: 'rolled-back' },
    });

    // The same key with another reason is another request; a request that does not apply is refused.
    const otherReason = await call(api, 'POST', `${path}/rollback`, {
      token: bearer,
      key: rollbackKey,
      body: { reason: 'something else' },
    });
    expect(otherReason.status).toBe(422);
    const pause = await call(api, 'POST', `${path}/pause`, { token: bearer, key: randomUUID() });
    expect(pause.status).toBe(409);
    expect(pause.body.error).toMatchObject({ code: 'refused', message: expect.stringMatching(/upgrade/) });
    const scaleKey = randomUUID();
    const scale = await call(api, 'POST', `${path}/scale?wait=30`, {
      token: bearer,
      key: scaleKey,
      body: { max: 2 },
    });
    expect([200, 202]).toContain(scale.status);
    expect(await settled(bearer, path, `scale:${scaleKey}`)).toMatchObject({ state: 'done' });

    // Without credentials, or as a caller not allowed: refused, and nothing reaches the deployment.
    const updates = await updateCount(workflowId);
    const refusedKey = randomUUID();
    const noToken = await call(api, 'POST', `${path}/teardown`, { key: refusedKey });
    expect(noToken.status).toBe(401);
    const notAllowed = issuer.sign({ email: OTHER_SA });
    for (const [operation, body] of [
      ['teardown', undefined],
      ['scale', { max: 3 }],
    ] as const) {
      const answer = await call(api, 'POST', `${path}/${operation}`, {
        token: notAllowed,
        key: refusedKey,
        body,
      });
      expect(answer).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    }
    expect(await updateCount(workflowId)).toBe(updates);
    expect(await acceptedCount(workflowId, `teardown:${refusedKey}`)).toBe(0);

    // Teardown: nothing left.
    const teardownKey = randomUUID();
    const teardown = await call(api, 'POST', `${path}/teardown?wait=30`, { token: bearer, key: teardownKey });
    expect([200, 202]).toContain(teardown.status);
    const tornDown = await settled(bearer, path, `teardown:${teardownKey}`);
    expect(tornDown).toMatchObject({ state: 'done', outcome: { outcome: 'torn-down' } });
    await expectNothingLeft(project);
    const after = await call(api, 'GET', path, { token: bearer });
    expect(after.body.status).toBe('COMPLETED');
    // Retried after the deployment completed: the first call's answer, nothing sent again.
    const eventsBefore = await historyLength(workflowId);
    const teardownAgain = await call(api, 'POST', `${path}/teardown`, { token: bearer, key: teardownKey });
    expect(teardownAgain).toMatchObject({
      status: 200,
      body: { requestId: `teardown:${teardownKey}`, state: 'done', outcome: tornDown.outcome },
    });
    expect(await historyLength(workflowId)).toBe(eventsBefore);
    expect(await acceptedCount(workflowId, `teardown:${teardownKey}`)).toBe(1);
    // The create retried after its deployment completed: its own answer, no second deployment.
    const createAgain = await call(api, 'POST', '/v1/deployments', { token: bearer, key, body: spec });
    expect(createAgain).toMatchObject({
      status: 200,
      body: { workflowId, runId: created.body.runId, started: false, state: 'done' },
    });

    // The access log knows who did it, never how.
    const mine = api.log.map((line) => JSON.parse(line) as { principal: string | null; route: string });
    expect(mine.some((line) => line.principal === principal && line.route.endsWith('/teardown'))).toBe(true);
    expect(api.log.join('\n')).not.toContain(bearer);
    const { runId } = await client.workflow.getHandle(workflowId).describe();
    expect(runId).toBe(created.body.runId);
  });
});
