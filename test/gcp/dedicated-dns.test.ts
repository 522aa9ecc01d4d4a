import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dedicatedEndpointDns } from '../../src/emulator';
import {
  DEFAULT_DEDICATED_DNS_SUFFIX,
  InvalidRequestError,
  type PredictionTarget,
  createGcpClient,
  dedicatedTarget,
  parseGcpClientConfig,
} from '../../src/gcp';
import { type TestServer, sendJson, startTestServer } from './test-server';
import { spyTokenSource } from './tls-server';

/** A dedicated DNS name comes from an API answer: credentials go only to Google's prediction domain. */

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';
const GOOD = 'ep-1.us-central1-123456789.prediction.vertexai.goog';

describe('dedicatedTarget', () => {
  it('accepts a host under .prediction.vertexai.goog, whatever its case', () => {
    expect(DEFAULT_DEDICATED_DNS_SUFFIX).toBe('.prediction.vertexai.goog');
    expect(dedicatedTarget({ name: ENDPOINT, dedicatedEndpointDns: GOOD }).host).toBe(GOOD);
    expect(dedicatedTarget({ name: ENDPOINT, dedicatedEndpointDns: GOOD.toUpperCase() }).host).toBe(
      GOOD.toUpperCase(),
    );
    // What the emulator answers passes the same check.
    const emulated = dedicatedEndpointDns({ id: 'ep-1', location: 'us-central1', project: '42' });
    expect(dedicatedTarget({ name: ENDPOINT, dedicatedEndpointDns: emulated }).host).toBe(emulated);
  });

  it('refuses any other host, naming it and the expected suffix', () => {
    for (const host of [
      'evil.example.com',
      'ep-1.prediction.vertexai.goog.evil.example.com',
      'ep-1.evilprediction.vertexai.goog',
      'prediction.vertexai.goog',
      'ep-1.us-central1-1.aiplatform.googleapis.com',
    ]) {
      const refuse = () => dedicatedTarget({ name: ENDPOINT, dedicatedEndpointDns: host });
      expect(refuse, host).toThrow(InvalidRequestError);
      expect(refuse, host).toThrow(
        `the dedicated endpoint host "${host}" of ${ENDPOINT} does not end in ".prediction.vertexai.goog"`,
      );
      expect(refuse, host).toThrow(/dedicatedDnsSuffixes/);
    }
  });

  it('takes the suffixes from the client config when given', () => {
    const { dedicatedDnsSuffixes } = parseGcpClientConfig({
      dedicatedDnsSuffixes: ['.prediction.vertexai.goog', '.vertex.corp.example'],
    });
    const corp = { name: ENDPOINT, dedicatedEndpointDns: 'ep-1.vertex.corp.example' };
    expect(dedicatedTarget(corp, dedicatedDnsSuffixes).host).toBe('ep-1.vertex.corp.example');
    expect(() => dedicatedTarget(corp)).toThrow(/does not end in ".prediction.vertexai.goog"/);
    expect(() =>
      dedicatedTarget({ name: ENDPOINT, dedicatedEndpointDns: 'x.evil.example' }, dedicatedDnsSuffixes),
    ).toThrow(/does not end in ".prediction.vertexai.goog" or ".vertex.corp.example"/);
  });
});

describe('dedicatedDnsSuffixes config', () => {
  it('defaults to Google’s prediction domain and rejects what is not a DNS suffix', () => {
    expect(parseGcpClientConfig({}).dedicatedDnsSuffixes).toEqual(['.prediction.vertexai.goog']);
    expect(() => parseGcpClientConfig({ dedicatedDnsSuffixes: ['prediction.vertexai.goog'] })).toThrow(
      /dedicatedDnsSuffixes\.0: must be a DNS suffix starting with "\."/,
    );
    expect(() => parseGcpClientConfig({ dedicatedDnsSuffixes: [] })).toThrow(
      /dedicatedDnsSuffixes: give at least one suffix/,
    );
  });
});

describe('PredictionClient and dedicated hosts', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer((_req, res) => sendJson(res, 200, { predictions: ['ok'] }));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('refuses a hand-built dedicated target outside the suffixes before a token is fetched', async () => {
    const tokens = spyTokenSource();
    const gcp = createGcpClient({ predictionBaseUrl: server.url }, { tokenSource: tokens });
    const rogue: PredictionTarget = { endpoint: ENDPOINT, host: 'collector.evil.example', via: 'dedicated' };
    await expect(gcp.prediction.predict(rogue, { instances: [1] })).rejects.toThrow(
      /"collector\.evil\.example" of .* does not end in ".prediction.vertexai.goog"/,
    );
    await expect(
      gcp.prediction.chatCompletionsStream(rogue, { messages: [{ role: 'user', content: 'x' }] }).next(),
    ).rejects.toThrow(InvalidRequestError);
    expect(tokens.calls).toBe(0);
    expect(server.requests).toHaveLength(0);

    const good = await gcp.prediction.predict(
      dedicatedTarget({ name: ENDPOINT, dedicatedEndpointDns: GOOD }),
      {
        instances: [1],
      },
    );
    expect(good.predictions).toEqual(['ok']);
    expect(server.requests[0]!.headers.host).toBe(GOOD);
    expect(tokens.calls).toBe(1);
  });
});
