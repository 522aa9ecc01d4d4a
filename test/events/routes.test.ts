import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventOutcome, TEMPORAL_DEADLINE_MS, eventsConfig } from '../../src/events';
import type { EventsServerDeps } from '../../src/http/routes/events';
import { type ServerDeps, createServer } from '../../src/http/server';
import { findFreePort } from '../../src/local-stack/process';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';
import { finalizeAttributes } from './envelope';
import {
  ALLOWED_SA,
  AUDIENCE,
  type Issuer,
  type TestApi,
  call,
  startIssuer,
  staticToken,
} from '../http/harness';

/**
 * The events routes of `garden-deploy serve`: authenticated by the server's verifier (a push
 * subscription's Google OIDC token, or a static token), then the storage-event pipeline; the ack
 * is the status code.
 */

let issuer: Issuer;
let api: TestApi;
let bucket: string;
const outcomes: EventOutcome[] = [];
const { token, tokens } = staticToken('eventarc');

beforeAll(async () => {
  const { client, storage } = await getTestEnv();
  issuer = await startIssuer();
  bucket = await createTestBucket(storage, 'routes');
  const log: string[] = [];
  const deps: ServerDeps & EventsServerDeps = {
    client,
    taskQueue: 'unused-task-queue',
    bodyLimit: 64 * 1024,
    rateLimit: { perMinute: 6_000, burst: 1_000 },
    auth: {
      tokens,
      oidc: { audiences: [AUDIENCE], allowedServiceAccounts: [ALLOWED_SA], certsUrl: issuer.certsUrl },
    },
    log: (line) => log.push(line),
    events: {
      storage,
      config: eventsConfig({ buckets: [bucket], prefix: 'models/' }),
      metrics: { handled: (_t, outcome) => outcomes.push(outcome) },
    },
  };
  const app: FastifyInstance = await createServer(deps);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  api = { app, url: `http://127.0.0.1:${port}`, log, close: () => app.close() };
});
afterAll(async () => {
  await api?.close();
  await issuer?.close();
  await closeTestEnv();
});

function envelope(object: string, generation: string) {
  return {
    message: {
      attributes: finalizeAttributes(bucket, object, generation),
      messageId: '42',
      publishTime: '2026-12-07T21:04:32.4Z',
    },
    subscription: 'projects/p/subscriptions/garden-deploy-push',
  };
}

async function putMarker(folder: string, text: string): Promise<string> {
  const { storage } = await getTestEnv();
  const file = storage.bucket(bucket).file(`models/${folder}/garden-deploy.yaml`);
  await file.save(text, { resumable: false });
  return String((await file.getMetadata())[0].generation);
}

describe('POST /v1/events/pubsub', () => {
  it('takes a push with the subscription’s OIDC token; a bad marker is 200 (no redelivery) and reported', async () => {
    const generation = await putMarker('bad', 'name: Not Valid\nproject: my-project\nregion: us-central1');
    const answer = await call(api, 'POST', '/v1/events/pubsub', {
      token: issuer.sign(),
      body: envelope('models/bad/garden-deploy.yaml', generation),
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      outcome: 'invalid',
      marker: `gs://${bucket}/models/bad/garden-deploy.yaml`,
      generation,
      issues: expect.arrayContaining([expect.objectContaining({ path: 'name' })]),
    });
    // Pushed again (Pub/Sub redelivers at least once): a duplicate, still 200.
    const again = await call(api, 'POST', '/v1/events/pubsub', {
      token: issuer.sign(),
      body: envelope('models/bad/garden-deploy.yaml', generation),
    });
    expect(again.body.outcome).toBe('duplicate');
    expect(outcomes).toEqual(expect.arrayContaining(['invalid', 'duplicate']));
    expect(api.log.some((line) => line.includes('"sender":"oidc:'))).toBe(true);
  });

  it('refuses what has no valid credentials before reading it, and a body that is no envelope', async () => {
    const body = envelope('models/x/garden-deploy.yaml', '1');
    expect((await call(api, 'POST', '/v1/events/pubsub', { body })).status).toBe(401);
    const wrongAudience = issuer.sign({ aud: 'https://elsewhere' });
    expect((await call(api, 'POST', '/v1/events/pubsub', { token: wrongAudience, body })).status).toBe(401);
    const bad = await call(api, 'POST', '/v1/events/pubsub', { token, body: { attributes: {} } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('answers 503 within its deadline when Temporal cannot be reached, so Pub/Sub redelivers later', async () => {
    const { storage } = await getTestEnv();
    // Nothing listens there: every Temporal call fails as when it is down, and the client retries.
    const connection = Connection.lazy({ address: `127.0.0.1:${await findFreePort()}` });
    const deps: ServerDeps & EventsServerDeps = {
      client: new Client({ connection }),
      taskQueue: 'unused-task-queue',
      bodyLimit: 64 * 1024,
      rateLimit: { perMinute: 6_000, burst: 1_000 },
      auth: { tokens },
      log: () => undefined,
      events: { storage, config: eventsConfig({ buckets: [bucket], prefix: 'models/' }) },
    };
    const down = await createServer(deps);
    try {
      await down.listen({ host: '127.0.0.1', port: 0 });
      const { port } = down.server.address() as AddressInfo;
      const generation = await putMarker(
        'down',
        'name: down\nproject: my-project\nregion: us-central1\n' +
          'machine: { type: g2-standard-12, acceleratorType: NVIDIA_L4, acceleratorCount: 1 }',
      );
      const answer = await call({ url: `http://127.0.0.1:${port}` } as TestApi, 'POST', '/v1/events/pubsub', {
        token,
        body: envelope('models/down/garden-deploy.yaml', generation),
      });
      expect(answer.status).toBe(503);
      expect(answer.body.error).toMatchObject({
        code: 'unavailable',
        message: expect.stringContaining(`Temporal did not answer within ${TEMPORAL_DEADLINE_MS / 1000} s`),
      });
      // Nothing was recorded: the redelivery handles it afresh.
      const [recorded] = await storage.bucket(bucket).file('models/down/garden-deploy.status.json').exists();
      expect(recorded).toBe(false);
    } finally {
      await down.close();
      // Not closed: the SDK's gRPC retry interceptor keeps retrying the aborted call on its own timers
      // (it does not watch the abort signal), and a retry firing on a closed channel throws from the
      // timer. The lazy connection never connected; it goes with the test process.
    }
  });
});

describe('the events routes refuse bad credentials before anything runs', () => {
  it('401 on either route with no token, an untrusted key or another audience: the marker is not read, no status object', async () => {
    const { storage } = await getTestEnv();
    // A marker that would be reported (a status object written next to it) once handled.
    const generation = await putMarker('unauthenticated', 'name: Not Valid');
    const object = 'models/unauthenticated/garden-deploy.yaml';
    const before = outcomes.length;
    const bearers = [
      undefined,
      issuer.sign({}, { key: 'untrusted' }),
      issuer.sign({ aud: 'https://elsewhere' }),
      'not-a-token-of-ours-0123456789',
    ];
    for (const bearer of bearers) {
      const pushed = await call(api, 'POST', '/v1/events/pubsub', {
        ...(bearer ? { token: bearer } : {}),
        body: envelope(object, generation),
      });
      expect(pushed.status).toBe(401);
      const cloudEvent = await call(api, 'POST', '/v1/events/cloudevents', {
        ...(bearer ? { token: bearer } : {}),
        headers: {
          'ce-id': `unauthenticated-${generation}`,
          'ce-source': `//storage.googleapis.com/projects/_/buckets/${bucket}`,
          'ce-specversion': '1.0',
          'ce-type': 'google.cloud.storage.object.v1.finalized',
          'ce-subject': `objects/${object}`,
        },
        body: { bucket, name: object, generation },
      });
      expect(cloudEvent.status).toBe(401);
    }
    expect(outcomes.length).toBe(before);
    const [written] = await storage
      .bucket(bucket)
      .file('models/unauthenticated/garden-deploy.status.json')
      .exists();
    expect(written).toBe(false);
  });
});

describe('POST /v1/events/cloudevents', () => {
  const ce = {
    'ce-id': '1234567',
    'ce-source': '//storage.googleapis.com/projects/_/buckets/b',
    'ce-specversion': '1.0',
    'ce-type': 'google.cloud.storage.object.v1.finalized',
  };

  it('takes binary mode (ce-* headers, StorageObjectData body)', async () => {
    const answer = await call(api, 'POST', '/v1/events/cloudevents', {
      token,
      headers: { ...ce, 'ce-subject': 'objects/models/m/config.json' },
      body: { bucket, name: 'models/m/config.json', generation: '1587627537231057' },
    });
    expect(answer).toMatchObject({ status: 200, body: { outcome: 'ignored' } });
  });

  it('takes structured mode (application/cloudevents+json)', async () => {
    const generation = await putMarker('structured', 'name: [unclosed');
    const answer = await call(api, 'POST', '/v1/events/cloudevents', {
      token,
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: '99',
        source: `//storage.googleapis.com/projects/_/buckets/${bucket}`,
        type: 'google.cloud.storage.object.v1.finalized',
        subject: 'objects/models/structured/garden-deploy.yaml',
        data: { bucket, name: 'models/structured/garden-deploy.yaml', generation },
      }),
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      outcome: 'invalid',
      issues: [{ message: expect.stringContaining('YAML') }],
    });
  });

  it('answers 400 invalid_event without the CloudEvent headers', async () => {
    const answer = await call(api, 'POST', '/v1/events/cloudevents', { token, body: { name: 'x' } });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({
      code: 'invalid_event',
      message: expect.stringContaining('ce-id'),
    });
  });
});
