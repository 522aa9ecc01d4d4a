import { describe, expect, it } from 'vitest';
import {
  DEFAULT_VERTEX_BASE_URL,
  InvalidRequestError,
  createGcpClient,
  dedicatedTarget,
  parseGcpClientConfig,
  pscTarget,
  vertexBaseUrlFor,
} from '../../src/gcp';

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';

describe('config', () => {
  it('defaults point at Google', () => {
    const config = createGcpClient({}, { tokenSource: { getRequestHeaders: async () => ({}) } }).config;
    expect(config).toMatchObject({
      vertexBaseUrl: DEFAULT_VERTEX_BASE_URL,
      computeBaseUrl: 'https://compute.googleapis.com',
      pscSkipTlsVerify: false,
    });
    expect(config.predictionBaseUrl).toBeUndefined();
  });

  it('resolves the regional Vertex host, global and multi-region hosts', () => {
    expect(vertexBaseUrlFor(DEFAULT_VERTEX_BASE_URL, 'us-central1')).toBe(
      'https://us-central1-aiplatform.googleapis.com',
    );
    expect(vertexBaseUrlFor(DEFAULT_VERTEX_BASE_URL, 'global')).toBe('https://aiplatform.googleapis.com');
    expect(vertexBaseUrlFor(DEFAULT_VERTEX_BASE_URL, 'us')).toBe('https://aiplatform.us.rep.googleapis.com');
    expect(vertexBaseUrlFor('http://127.0.0.1:8780/', 'europe-west4')).toBe('http://127.0.0.1:8780');
    expect(() => vertexBaseUrlFor(DEFAULT_VERTEX_BASE_URL, 'us-central1.evil.com/x')).toThrow(
      /not a Vertex AI location/,
    );
  });

  it('names every bad field', () => {
    expect(() => parseGcpClientConfig({ predictionBaseUrl: 'http://x/?q=1', maxResponseBytes: 0 })).toThrow(
      /predictionBaseUrl: must not contain a query or fragment; maxResponseBytes/,
    );
  });
});

describe('prediction targets', () => {
  it('dedicatedTarget takes the endpoint DNS, stripping a scheme', () => {
    expect(
      dedicatedTarget({
        name: ENDPOINT,
        dedicatedEndpointDns: 'https://ep-1.us-central1-123.prediction.vertexai.goog/',
      }),
    ).toEqual({
      endpoint: ENDPOINT,
      host: 'ep-1.us-central1-123.prediction.vertexai.goog',
      via: 'dedicated',
    });
  });

  it('dedicatedTarget explains a private endpoint without DNS', () => {
    expect(() => dedicatedTarget({ name: ENDPOINT })).toThrow(InvalidRequestError);
    expect(() => dedicatedTarget({ name: ENDPOINT })).toThrow(/use pscTarget/);
  });

  it('pscTarget accepts an IP or DNS name and nothing else', () => {
    expect(pscTarget(ENDPOINT, '10.10.0.5')).toEqual({ endpoint: ENDPOINT, host: '10.10.0.5', via: 'psc' });
    expect(pscTarget(ENDPOINT, 'llm.internal.example').host).toBe('llm.internal.example');
    expect(() => pscTarget(ENDPOINT, 'not a host')).toThrow(/not an IP address or DNS name/);
  });
});
