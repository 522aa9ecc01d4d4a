import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GcpApiError, InvalidRequestError, createGcpClient, routeOf } from '../../src/gcp';
import { type TestServer, countingTokenSource, googleError, sendJson, startTestServer } from './test-server';

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

function client(overrides: Parameters<typeof createGcpClient>[0] = {}, tokens = countingTokenSource()) {
  return {
    tokens,
    gcp: createGcpClient(
      { vertexBaseUrl: server.url, computeBaseUrl: server.url, ...overrides },
      { tokenSource: tokens },
    ),
  };
}

async function rejection(promise: Promise<unknown>): Promise<GcpApiError> {
  const err = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GcpApiError);
  return err as GcpApiError;
}

describe('auth headers', () => {
  it('sends the bearer token, user agent and quota project on every request, asking the source each time', async () => {
    server.handler = (_req, res) => sendJson(res, 200, { name: ENDPOINT });
    const { gcp } = client({ userAgent: 'test-agent/1.0', quotaProjectId: 'billing-project' });
    await gcp.vertex.getEndpoint(ENDPOINT);
    await gcp.vertex.getEndpoint(ENDPOINT);
    expect(server.requests).toHaveLength(2);
    for (const req of server.requests) {
      expect(req.headers.authorization).toBe('Bearer ya29.test-token-1');
      expect(req.headers['user-agent']).toBe('test-agent/1.0');
      expect(req.headers['x-goog-user-project']).toBe('billing-project');
      expect(req.url).toBe(`/v1beta1/${ENDPOINT}`);
    }
  });

  it('after a 401 refreshes the token once and retries with the new one', async () => {
    server.handler = (req, res) =>
      req.headers.authorization === 'Bearer ya29.test-token-2'
        ? sendJson(res, 200, { name: ENDPOINT })
        : sendJson(
            res,
            401,
            googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'),
          );
    const { gcp, tokens } = client();
    const endpoint = await gcp.vertex.getEndpoint(ENDPOINT);
    expect(endpoint.name).toBe(ENDPOINT);
    expect(tokens.forcedRefreshes).toBe(1);
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer ya29.test-token-1',
      'Bearer ya29.test-token-2',
    ]);
  });

  it('a second 401 is a permanent UNAUTHENTICATED error telling how to fix credentials', async () => {
    server.handler = (_req, res) =>
      sendJson(res, 401, googleError(401, 'UNAUTHENTICATED', 'invalid credentials'));
    const { gcp, tokens } = client();
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT));
    expect(server.requests).toHaveLength(2);
    expect(tokens.forcedRefreshes).toBe(1);
    expect(err).toMatchObject({ status: 'UNAUTHENTICATED', httpStatus: 401, classification: 'permanent' });
    expect(err.hint).toMatch(/gcloud auth application-default login|GOOGLE_APPLICATION_CREDENTIALS/);
  });

  it('a failing token source becomes an auth error without sending anything', async () => {
    const failing = {
      getRequestHeaders: async () => {
        throw Object.assign(
          new Error('Could not load the default credentials. subject_token=eyJabc.def.ghi'),
          {},
        );
      },
    };
    const gcp = createGcpClient({ vertexBaseUrl: server.url }, { tokenSource: failing });
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT));
    expect(server.requests).toHaveLength(0);
    expect(err).toMatchObject({ source: 'auth', status: 'UNAUTHENTICATED', classification: 'permanent' });
    expect(err.message).toContain('Could not load the default credentials');
    expect(err.message).not.toContain('eyJabc.def.ghi');
  });
});

describe('secret scrubbing', () => {
  it('no token appears in the message, stack, enumerable fields or inspection of an error even when the server echoes it', async () => {
    server.handler = (req, res) =>
      sendJson(
        res,
        403,
        googleError(
          403,
          'PERMISSION_DENIED',
          `caller with ${req.headers.authorization} lacks aiplatform.endpoints.get`,
          [
            {
              '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
              reason: 'IAM_PERMISSION_DENIED',
              domain: 'googleapis.com',
              metadata: { token: String(req.headers.authorization).slice(7) },
            },
          ],
        ),
      );
    const tokens = countingTokenSource('opaque-token-value-without-known-prefix');
    const { gcp } = client({}, tokens);
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT));
    const token = tokens.issued[0]!;
    const views = [
      err.message,
      String(err.stack),
      JSON.stringify(err),
      inspect(err, { depth: 20 }),
      JSON.stringify({ ...err }),
    ];
    for (const view of views) expect(view).not.toContain(token);
    expect(err.message).toContain('[REDACTED]');
    expect(err.status).toBe('PERMISSION_DENIED');
  });

  it('results carry no token', async () => {
    server.handler = (req, res) =>
      sendJson(res, 200, { name: ENDPOINT, displayName: 'x', labels: {}, description: 'ok' });
    const tokens = countingTokenSource('opaque-token-value-in-result');
    const { gcp } = client({}, tokens);
    const endpoint = await gcp.vertex.getEndpoint(ENDPOINT);
    expect(JSON.stringify(endpoint)).not.toContain(tokens.issued[0]);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${tokens.issued[0]}`);
  });
});

describe('bounded reads', () => {
  it('rejects a response whose declared length exceeds maxResponseBytes', async () => {
    server.handler = (_req, res) => sendJson(res, 200, { name: ENDPOINT, description: 'x'.repeat(5000) });
    const { gcp } = client({ maxResponseBytes: 1024 });
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT));
    expect(err).toMatchObject({ status: 'OUT_OF_RANGE', classification: 'permanent' });
    expect(err.message).toMatch(/exceeds the limit of 1024 bytes/);
    expect(err.hint).toMatch(/maxResponseBytes/);
  });

  it('rejects a chunked response (no content-length) once it passes the limit', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"name":"${ENDPOINT}","description":"`);
      for (let i = 0; i < 10; i++) res.write('y'.repeat(1000));
      res.end('"}');
    };
    const { gcp } = client({ maxResponseBytes: 4096 });
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT));
    expect(err.message).toMatch(/exceeds the limit of 4096 bytes/);
  });
});

describe('timeouts, aborts and network errors', () => {
  it('a server that never answers gives a retryable DEADLINE_EXCEEDED', async () => {
    server.handler = () => undefined; // never responds
    const { gcp } = client({ requestTimeoutMs: 200 });
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT));
    expect(err).toMatchObject({
      source: 'timeout',
      status: 'DEADLINE_EXCEEDED',
      classification: 'retryable',
    });
    expect(err.message).toMatch(/no complete response within 200 ms/);
  });

  it('a per-call timeout overrides the configured one', async () => {
    server.handler = () => undefined;
    const { gcp } = client({ requestTimeoutMs: 60_000 });
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT, { timeoutMs: 100 }));
    expect(err.message).toMatch(/within 100 ms/);
  });

  it('aborting rejects with the signal reason and closes the connection', async () => {
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    server.handler = () => arrived(); // hold the request open
    const { gcp } = client();
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    const call = gcp.vertex.getEndpoint(ENDPOINT, { signal: controller.signal });
    await requestArrived;
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    await expect.poll(() => server.closedEarly).toBe(1);
  });

  it('an already-aborted signal sends nothing', async () => {
    const { gcp } = client();
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(gcp.vertex.getEndpoint(ENDPOINT, { signal: controller.signal })).rejects.toThrow('stop');
    expect(server.requests).toHaveLength(0);
  });

  it('connection refused is a retryable network error naming the host', async () => {
    const closed = await startTestServer();
    const url = closed.url;
    await closed.close();
    const gcp = createGcpClient({ vertexBaseUrl: url }, { tokenSource: countingTokenSource() });
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT));
    expect(err).toMatchObject({ source: 'network', status: 'UNAVAILABLE', classification: 'retryable' });
    expect(err.message).toContain(new URL(url).host);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('a connection reset mid-body is a retryable network error', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"name":');
      setImmediate(() => res.socket?.destroy());
    };
    const { gcp } = client();
    const err = await rejection(gcp.vertex.getEndpoint(ENDPOINT));
    expect(err).toMatchObject({ source: 'network', classification: 'retryable' });
  });
});

describe('Host override for inference', () => {
  it('connects to predictionBaseUrl but names the dedicated host in Host:', async () => {
    server.handler = (_req, res) =>
      sendJson(res, 200, {
        choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
      });
    const { gcp } = client({ predictionBaseUrl: server.url });
    const target = {
      endpoint: ENDPOINT,
      host: 'ep-1.us-central1-123456789.prediction.vertexai.goog',
      via: 'dedicated' as const,
    };
    const answer = await gcp.prediction.chatCompletions(target, {
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(answer.choices[0]?.message.content).toBe('hi');
    const req = server.requests[0]!;
    expect(req.headers.host).toBe('ep-1.us-central1-123456789.prediction.vertexai.goog');
    expect(req.url).toBe(`/v1beta1/${ENDPOINT}/chat/completions`);
  });

  it('names a PSC address in Host: the same way', async () => {
    server.handler = (_req, res) => sendJson(res, 200, { predictions: ['ok'], deployedModelId: '42' });
    const { gcp } = client({ predictionBaseUrl: server.url });
    const result = await gcp.prediction.predict(
      { endpoint: ENDPOINT, host: '10.10.0.5', via: 'psc' },
      { instances: [{ prompt: 'x' }] },
    );
    expect(result.predictions).toEqual(['ok']);
    expect(server.requests[0]!.headers.host).toBe('10.10.0.5');
    expect(server.requests[0]!.url).toBe(`/v1beta1/${ENDPOINT}:predict`);
  });
});

describe('input validation', () => {
  it('rejects a malformed resource name before sending anything', async () => {
    const { gcp } = client();
    await expect(
      gcp.vertex.getEndpoint('projects/p/locations/us-central1/endpoints/../../x'),
    ).rejects.toThrow(InvalidRequestError);
    await expect(gcp.vertex.getEndpoint('endpoints/1')).rejects.toThrow(
      /expected projects\/PROJECT\/locations\/REGION\/endpoints/,
    );
    expect(server.requests).toHaveLength(0);
  });

  it('rejects a bad config naming the field', () => {
    expect(() => createGcpClient({ vertexBaseUrl: 'ftp://x' })).toThrow(/vertexBaseUrl/);
    expect(() => createGcpClient({ requestTimeoutMs: -1 })).toThrow(/requestTimeoutMs/);
    expect(() => createGcpClient({ unknownKnob: true } as never)).toThrow(/unknownKnob/);
  });
});

describe('exchanges told to the observer (metrics)', () => {
  it('names each by API, HTTP method, route without ids and status; failures by why', async () => {
    const seen: string[] = [];
    const gcp = createGcpClient(
      { vertexBaseUrl: server.url, computeBaseUrl: server.url, predictionBaseUrl: server.url },
      {
        tokenSource: countingTokenSource(),
        observe: (api, { method, route, status }) => seen.push(`${api} ${method} ${route} ${status}`),
      },
    );
    server.handler = (req, res) =>
      req.url?.includes('missing')
        ? sendJson(res, 404, googleError(404, 'NOT_FOUND', 'no such endpoint'))
        : sendJson(res, 200, {
            name: ENDPOINT,
            choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
          });
    await gcp.vertex.getEndpoint(ENDPOINT);
    await rejection(gcp.vertex.getEndpoint(`${ENDPOINT}missing`));
    await gcp.prediction.chatCompletions(
      { endpoint: ENDPOINT, host: 'ep-1.us-central1-123456789.prediction.vertexai.goog', via: 'dedicated' },
      { messages: [{ role: 'user', content: 'hello' }] },
    );
    const controller = new AbortController();
    server.handler = () => controller.abort(new Error('activity cancelled'));
    await expect(gcp.vertex.getEndpoint(ENDPOINT, { signal: controller.signal })).rejects.toThrow(
      'activity cancelled',
    );
    server.handler = () => undefined; // never answers
    await rejection(gcp.vertex.getEndpoint(ENDPOINT, { timeoutMs: 100 }));
    expect(seen).toEqual([
      'vertex GET endpoints/* 200',
      'vertex GET endpoints/* 404',
      'prediction POST endpoints/*/chat/completions 200',
      'vertex GET endpoints/* cancelled',
      'vertex GET endpoints/* timeout',
    ]);
  });

  it('turns every Google path into a template with few values', () => {
    const route = (url: string) => routeOf(new URL(url));
    const vertex = 'https://us-central1-aiplatform.googleapis.com/v1beta1/projects/p-1/locations/us-central1';
    expect(route(`${vertex}:deploy`)).toBe('locations/*:deploy');
    expect(route(`${vertex}/operations/123`)).toBe('operations/*');
    expect(route(`${vertex}/endpoints/9/operations/456:wait`)).toBe('endpoints/*/operations/*:wait');
    expect(route(`${vertex}/endpoints/9:deployModel`)).toBe('endpoints/*:deployModel');
    expect(route(`${vertex}/models/m-1@2`)).toBe('models/*');
    expect(route(`${vertex}/endpoints/9:streamRawPredict`)).toBe('endpoints/*:streamRawPredict');
    expect(route('https://compute.googleapis.com/compute/v1/projects/c/regions/r/forwardingRules/fr-1')).toBe(
      'forwardingRules/*',
    );
    expect(route('https://compute.googleapis.com/compute/v1/projects/c/regions/r/operations/op-1/wait')).toBe(
      'operations/*/wait',
    );
    expect(route('https://monitoring.googleapis.com/v3/projects/p-1/timeSeries')).toBe('timeSeries');
    expect(
      route(
        'https://cloudquotas.googleapis.com/v1/projects/p-1/locations/global/services/aiplatform.googleapis.com/quotaInfos/Q',
      ),
    ).toBe('services/*/quotaInfos/*');
    expect(route('https://logging.googleapis.com/v2/entries:list')).toBe('entries:list');
    // A base URL with a path of its own (a proxy) changes nothing.
    expect(route('http://127.0.0.1:8780/proxy/vertex/v1beta1/projects/p/locations/l/endpoints/9')).toBe(
      'endpoints/*',
    );
  });
});
