import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SmokeInput } from '../../src/activities/contract';
import { resolveActivityDeps } from '../../src/activities/deps';
import { runSmokeTestsActivity } from '../../src/activities/smoke-tests';
import { type GcpClientConfigInput, createGcpClient } from '../../src/gcp';
import { parseDeploymentSpec } from '../../src/spec';
import { type TestServer, sendJson, startTestServer } from '../gcp/test-server';
import { type TrustedTlsServer, hasOpenssl, spyTokenSource, startTrustedTlsServer } from '../gcp/tls-server';
import { failureOf, inActivity } from './env';

/**
 * The smoke-test activity against local servers standing in for the model's host: the body each
 * mode sends, regex matching that cannot stall the worker, and where a token may go.
 */

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';
const DEDICATED = 'ep-1.us-central1-123456789.prediction.vertexai.goog';
const CERT_NAME = 'llm.ml-vpc.internal.test';

/** Smoke tests as the workflow passes them: parsed (and checked) by the spec. */
function smokeTests(tests: unknown[]): SmokeInput['tests'] {
  return parseDeploymentSpec({
    name: 'llama-ft',
    project: 'my-project',
    region: 'us-central1',
    model: { uri: 'gs://bucket/models/llama/' },
    smoke: { tests },
  }).smoke.tests;
}

function activity(config: GcpClientConfigInput) {
  const tokens = spyTokenSource();
  const gcp = createGcpClient(config, { tokenSource: tokens });
  const ctx = resolveActivityDeps({ gcp, storage: {} as Storage, options: { transientRetries: 0 } });
  return { tokens, run: (input: SmokeInput) => inActivity().exec(runSmokeTestsActivity(ctx), input) };
}

function chatAnswer(content: string) {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  };
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  server.requests.length = 0;
});

describe('stream-raw-predict', () => {
  it('sends the documented body: one instance with prompt, max_tokens and stream: true', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const text of ['Hello', ' garden']) {
        res.write(
          `data: ${JSON.stringify({ object: 'text_completion', choices: [{ index: 0, text }] })}\n\n`,
        );
      }
      res.end('data: [DONE]\n\n');
    };
    const { run } = activity({ predictionBaseUrl: server.url });
    const { results } = await run({
      endpoint: ENDPOINT,
      target: { kind: 'dedicated', host: DEDICATED },
      tests: smokeTests([{ name: 'raw', prompt: 'Say hello', mode: 'stream-raw-predict', maxTokens: 8 }]),
    });
    expect(server.requests[0]!.url).toBe(`/v1beta1/${ENDPOINT}:streamRawPredict`);
    expect(JSON.parse(server.requests[0]!.body.toString())).toEqual({
      instances: [{ prompt: 'Say hello', max_tokens: 8, stream: true }],
    });
    expect(results).toEqual([
      expect.objectContaining({ name: 'raw', passed: true, answerPreview: 'Hello garden' }),
    ]);
  });
});

describe('expect.regex', () => {
  it('a catastrophic-backtracking pattern against a long answer gets its result (RE2 runs in linear time)', async () => {
    const answer = `${'a'.repeat(50_000)}b`;
    server.handler = (_req, res) => sendJson(res, 200, chatAnswer(answer));
    const { run } = activity({ predictionBaseUrl: server.url });
    const { results } = await run({
      endpoint: ENDPOINT,
      target: { kind: 'dedicated', host: DEDICATED },
      tests: smokeTests([
        { name: 'redos', prompt: 'a?', expect: { regex: '^(a+)+$' } },
        { name: 'redos-ok', prompt: 'a?', expect: { regex: '^(a+)+b$' } },
        { name: 'case', prompt: 'a?', expect: { regex: 'A+B$', ignoreCase: true } },
        { name: 'case-strict', prompt: 'a?', expect: { regex: 'A+B$' } },
      ]),
    });
    expect(results.map((r) => [r.name, r.passed, r.failure])).toEqual([
      ['redos', false, 'the answer does not match /^(a+)+$/'],
      ['redos-ok', true, undefined],
      ['case', true, undefined],
      ['case-strict', false, 'the answer does not match /A+B$/'],
    ]);
  });

  it('a pattern RE2 cannot compile (a spec that skipped parsing) is a failed result, not a crash', async () => {
    server.handler = (_req, res) => sendJson(res, 200, chatAnswer('aa'));
    const { run } = activity({ predictionBaseUrl: server.url });
    const [test] = smokeTests([{ name: 'backref', prompt: 'a?' }]);
    const { results } = await run({
      endpoint: ENDPOINT,
      target: { kind: 'dedicated', host: DEDICATED },
      tests: [{ ...test!, expect: { ...test!.expect, regex: '(a)\\1' } }],
    });
    expect(results[0]).toMatchObject({ passed: false });
    expect(results[0]!.failure).toMatch(/^\/\(a\)\\1\/ is not a regular expression RE2 accepts: .*\\1/);
  });
});

describe('where the token may go', () => {
  it('refuses a PSC IP without tlsServerName before a token is fetched, saying how to fix it', async () => {
    const { tokens, run } = activity({});
    const failure = await failureOf(
      run({
        endpoint: ENDPOINT,
        target: { kind: 'psc', ipAddress: '10.10.0.5' },
        tests: smokeTests([{ prompt: 'hi' }]),
      }),
    );
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`smoke-testing ${ENDPOINT}`);
    expect(failure.message).toContain('access.tlsServerName');
    expect(failure.message).toContain('GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY=true');
    expect(tokens.calls).toBe(0);
  });

  it('refuses a dedicated host outside the configured DNS suffixes before a token is fetched', async () => {
    const { tokens, run } = activity({ predictionBaseUrl: server.url });
    const input = (host: string): SmokeInput => ({
      endpoint: ENDPOINT,
      target: { kind: 'dedicated', host },
      tests: smokeTests([{ prompt: 'hi' }]),
    });
    const failure = await failureOf(run(input('collector.evil.example')));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('"collector.evil.example"');
    expect(failure.message).toContain('does not end in ".prediction.vertexai.goog"');
    expect(tokens.calls).toBe(0);
    expect(server.requests).toHaveLength(0);

    server.handler = (_req, res) => sendJson(res, 200, chatAnswer('hello'));
    const corp = activity({ predictionBaseUrl: server.url, dedicatedDnsSuffixes: ['.vertex.corp.example'] });
    const { results } = await corp.run(input('ep-1.vertex.corp.example'));
    expect(results[0]).toMatchObject({ passed: true });
    expect(server.requests[0]!.headers.host).toBe('ep-1.vertex.corp.example');
  });

  describe.skipIf(!hasOpenssl)('over TLS', () => {
    let tlsServer: TrustedTlsServer;
    beforeAll(async () => {
      tlsServer = await startTrustedTlsServer([CERT_NAME]);
      tlsServer.handler = (_req, res) => sendJson(res, 200, chatAnswer('hello from psc'));
    });
    afterAll(async () => {
      await tlsServer?.close();
    });

    it('passes the target’s tlsServerName on: the PSC call is verified against it', async () => {
      const { run } = activity({ predictionBaseUrl: tlsServer.url });
      const { results } = await run({
        endpoint: ENDPOINT,
        target: { kind: 'psc', ipAddress: '10.10.0.5', tlsServerName: CERT_NAME },
        tests: smokeTests([{ prompt: 'hi' }]),
      });
      expect(results[0]).toMatchObject({ passed: true, answerPreview: 'hello from psc' });
      expect(tlsServer.requests[0]).toMatchObject({ servername: CERT_NAME, headers: { host: CERT_NAME } });
    });
  });
});
