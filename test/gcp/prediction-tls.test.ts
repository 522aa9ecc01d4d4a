import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  GcpApiError,
  InvalidRequestError,
  type PredictionTarget,
  PredictionClient,
  createGcpClient,
  parseGcpClientConfig,
  pscTarget,
} from '../../src/gcp';
import type { GcpClientConfigInput } from '../../src/gcp';
import { type BufferedResponse, type HttpCall, HttpTransport } from '../../src/gcp/http';
import { SecretRegistry } from '../../src/gcp/redact';
import { type TestServer, startTestServer } from './test-server';
import { type TrustedTlsServer, hasOpenssl, spyTokenSource, startTrustedTlsServer } from './tls-server';

/**
 * PSC inference never sends the token over TLS it did not verify: against a real HTTPS server whose
 * certificate names only CERT_NAME, signed by a CA this process trusts.
 */

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';
const PSC_IP = '10.10.0.5';
const CERT_NAME = 'llm.ml-vpc.internal.test';
const request = { instances: [{ prompt: 'hi' }] };

let server: TrustedTlsServer;
beforeAll(async () => {
  if (hasOpenssl) server = await startTrustedTlsServer([CERT_NAME]);
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  if (!server) return;
  server.requests.length = 0;
  server.sniNames.length = 0;
});

/**
 * The real transport, except that every connection goes to the local server: how the Google path
 * (no predictionBaseUrl, port 443 of the PSC IP) is exercised on one machine. Records each call.
 */
class LocalRedirectTransport extends HttpTransport {
  readonly calls: HttpCall[] = [];
  constructor(
    readonly tokens = spyTokenSource(),
    private readonly to = server.url,
  ) {
    super({ tokenSource: tokens, userAgent: 'test', secrets: new SecretRegistry() });
  }
  override send(call: HttpCall): Promise<BufferedResponse> {
    this.calls.push(call);
    return super.send({ ...call, connectTo: new URL(this.to) });
  }
}

/** A PredictionClient as on Google (no predictionBaseUrl) over the redirecting transport. */
function googleLike(config: GcpClientConfigInput = {}) {
  const transport = new LocalRedirectTransport();
  return { transport, prediction: new PredictionClient(transport, parseGcpClientConfig(config)) };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('the call succeeded'),
    (err: unknown) => err,
  );
}

describe.skipIf(!hasOpenssl)('PSC inference with tlsServerName', () => {
  it('connects to the PSC IP, with SNI, certificate check and Host all on the named host', async () => {
    const { transport, prediction } = googleLike();
    const target = pscTarget(ENDPOINT, PSC_IP, { tlsServerName: CERT_NAME });
    expect(target).toEqual({ endpoint: ENDPOINT, host: PSC_IP, via: 'psc', tlsServerName: CERT_NAME });

    expect((await prediction.predict(target, request)).predictions).toEqual(['ok']);
    // Where the call was headed before the test redirected it: the PSC IP on 443.
    expect(transport.calls[0]!.connectTo?.href).toBe(`https://${PSC_IP}/`);
    expect(transport.calls[0]!.url.href).toBe(`https://${CERT_NAME}/v1beta1/${ENDPOINT}:predict`);
    expect(transport.calls[0]!.skipTlsVerify).toBe(false);
    expect(server.requests[0]).toMatchObject({
      servername: CERT_NAME,
      headers: { host: CERT_NAME, authorization: 'Bearer ya29.spy-token' },
    });
  });

  it('brackets an IPv6 PSC address in the connection URL', async () => {
    const { transport, prediction } = googleLike();
    await prediction.predict(pscTarget(ENDPOINT, 'fd20::5', { tlsServerName: CERT_NAME }), request);
    expect(transport.calls[0]!.connectTo?.href).toBe('https://[fd20::5]/');
  });

  it('verifies against tlsServerName through an https predictionBaseUrl too', async () => {
    const tokens = spyTokenSource();
    const gcp = createGcpClient({ predictionBaseUrl: server.url }, { tokenSource: tokens });
    const answer = await gcp.prediction.predict(
      pscTarget(ENDPOINT, PSC_IP, { tlsServerName: CERT_NAME }),
      request,
    );
    expect(answer.predictions).toEqual(['ok']);
    expect(server.requests[0]).toMatchObject({ servername: CERT_NAME, headers: { host: CERT_NAME } });
  });

  it('refuses a certificate that does not name tlsServerName, before any request is sent, even with the opt-out', async () => {
    for (const pscSkipTlsVerify of [false, true]) {
      const { prediction } = googleLike({ pscSkipTlsVerify });
      const target = pscTarget(ENDPOINT, PSC_IP, { tlsServerName: 'other.ml-vpc.internal.test' });
      const err = await rejection(prediction.predict(target, request));
      expect(err).toBeInstanceOf(GcpApiError);
      expect(err).toMatchObject({ source: 'network', classification: 'permanent' });
      expect((err as GcpApiError).googleMessage).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    }
    expect(server.sniNames).toEqual(['other.ml-vpc.internal.test', 'other.ml-vpc.internal.test']);
    expect(server.requests).toEqual([]);
  });

  it('refuses a PSC IP without tlsServerName before a token is fetched, saying how to fix it', async () => {
    const { transport, prediction } = googleLike();
    const target = pscTarget(ENDPOINT, PSC_IP);
    const messages = [{ role: 'user', content: 'hi' }];
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['predict', () => prediction.predict(target, request)],
      ['chatCompletions', () => prediction.chatCompletions(target, { messages })],
      ['chatCompletionsStream', () => prediction.chatCompletionsStream(target, { messages }).next()],
      ['rawPredict', () => prediction.rawPredict(target, { json: request })],
      ['streamRawPredict', () => prediction.streamRawPredict(target, { json: request }).next()],
    ];
    for (const [method, call] of calls) {
      const err = await rejection(call());
      expect(err, method).toBeInstanceOf(InvalidRequestError);
      const message = (err as Error).message;
      expect(message).toContain(`PSC address ${PSC_IP} of ${ENDPOINT}`);
      expect(message).toContain('access.tlsServerName');
      expect(message).toContain('GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY=true');
    }
    expect(transport.tokens.calls).toBe(0);
    expect(transport.calls).toEqual([]);
    expect(server.sniNames).toEqual([]);
  });

  it('the explicit opt-out calls a bare PSC IP without verification, as before', async () => {
    const { transport, prediction } = googleLike({ pscSkipTlsVerify: true });
    expect((await prediction.predict(pscTarget(ENDPOINT, PSC_IP), request)).predictions).toEqual(['ok']);
    expect(transport.calls[0]!).toMatchObject({ skipTlsVerify: true });
    expect(transport.calls[0]!.url.host).toBe(PSC_IP);
    expect(server.requests[0]).toMatchObject({ servername: false, headers: { host: PSC_IP } });
  });

  it('a PSC target given by a private DNS name is verified against that name', async () => {
    const { transport, prediction } = googleLike();
    expect((await prediction.predict(pscTarget(ENDPOINT, CERT_NAME), request)).predictions).toEqual(['ok']);
    expect(transport.calls[0]!).toMatchObject({ skipTlsVerify: false });
    expect(server.requests[0]).toMatchObject({ servername: CERT_NAME });
    const err = await rejection(
      prediction.predict(pscTarget(ENDPOINT, 'other.ml-vpc.internal.test'), request),
    );
    expect(err).toMatchObject({ source: 'network', classification: 'permanent' });
    expect(server.requests).toHaveLength(1);
  });
});

describe('PSC inference through a plain-http predictionBaseUrl (the local emulator)', () => {
  let plain: TestServer;
  beforeAll(async () => {
    plain = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ predictions: ['ok'] }));
    });
  });
  afterAll(async () => {
    await plain?.close();
  });

  it('is allowed without tlsServerName, and Host keeps the PSC address the emulator routes by', async () => {
    const tokens = spyTokenSource();
    const gcp = createGcpClient({ predictionBaseUrl: plain.url }, { tokenSource: tokens });
    const targets: PredictionTarget[] = [
      pscTarget(ENDPOINT, PSC_IP),
      pscTarget(ENDPOINT, PSC_IP, { tlsServerName: CERT_NAME }),
    ];
    for (const target of targets) {
      expect((await gcp.prediction.predict(target, request)).predictions).toEqual(['ok']);
    }
    expect(plain.requests.map((r) => r.headers.host)).toEqual([PSC_IP, PSC_IP]);
    expect(tokens.calls).toBe(2);
  });
});

describe('tlsServerName validation', () => {
  it('pscTarget takes only a DNS name as tlsServerName', () => {
    for (const bad of ['10.0.0.9', 'fd20::5', 'not a host', 'https://llm.example/x', '-bad.example']) {
      expect(() => pscTarget(ENDPOINT, PSC_IP, { tlsServerName: bad }), bad).toThrow(InvalidRequestError);
      expect(() => pscTarget(ENDPOINT, PSC_IP, { tlsServerName: bad }), bad).toThrow(/is not a DNS name/);
    }
  });

  it('a hand-built target with a bad tlsServerName is refused before a token is fetched', async () => {
    const tokens = spyTokenSource();
    const gcp = createGcpClient({}, { tokenSource: tokens });
    const target: PredictionTarget = {
      endpoint: ENDPOINT,
      host: PSC_IP,
      via: 'psc',
      tlsServerName: '10.0.0.9',
    };
    await expect(gcp.prediction.predict(target, request)).rejects.toThrow(/is not a DNS name/);
    expect(tokens.calls).toBe(0);
  });
});
