import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcpApiError, type PredictionTarget, createGcpClient } from '../../src/gcp';
import { countingTokenSource } from './test-server';

/** TLS behaviour of inference calls against an HTTPS server with a self-signed certificate. */

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';
const DEDICATED_HOST = 'ep-1.us-central1-123.prediction.vertexai.goog';
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let server: https.Server | undefined;
let url = '';
let dir = '';
const sniNames: string[] = [];
const hostHeaders: string[] = [];

beforeAll(async () => {
  if (!hasOpenssl) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'gcp-tls-test-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${DEDICATED_HOST}`,
      '-addext',
      `subjectAltName=DNS:${DEDICATED_HOST},IP:127.0.0.1`,
    ],
    { stdio: 'ignore' },
  );
  const context = tls.createSecureContext({ key: readFileSync(key), cert: readFileSync(cert) });
  server = https.createServer(
    {
      key: readFileSync(key),
      cert: readFileSync(cert),
      SNICallback: (name, cb) => {
        sniNames.push(name);
        cb(null, context);
      },
    },
    (req, res) => {
      hostHeaders.push(String(req.headers.host));
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ predictions: ['ok'] }));
      });
    },
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server!.close(() => resolve()));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const client = (pscSkipTlsVerify: boolean) =>
  createGcpClient({ predictionBaseUrl: url, pscSkipTlsVerify }, { tokenSource: countingTokenSource() });
const psc: PredictionTarget = { endpoint: ENDPOINT, host: '10.10.0.5', via: 'psc' };
const dedicated: PredictionTarget = { endpoint: ENDPOINT, host: DEDICATED_HOST, via: 'dedicated' };
const request = { instances: [{ prompt: 'hi' }] };

describe.skipIf(!hasOpenssl)('TLS for inference', () => {
  it('verifies certificates by default: an untrusted certificate on a PSC address is a permanent TLS error', async () => {
    const err = await client(false)
      .prediction.predict(psc, request)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GcpApiError);
    expect(err).toMatchObject({ source: 'network', classification: 'permanent' });
    expect((err as GcpApiError).hint).toMatch(
      /access\.tlsServerName.*GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY=true/,
    );
  });

  it('pscSkipTlsVerify lets a PSC address through, with Host naming the address', async () => {
    const before = hostHeaders.length;
    const result = await client(true).prediction.predict(psc, request);
    expect(result.predictions).toEqual(['ok']);
    expect(hostHeaders.slice(before)).toEqual(['10.10.0.5']);
  });

  it('pscSkipTlsVerify never applies to a dedicated host, which gets SNI with its real name', async () => {
    const before = sniNames.length;
    const err = await client(true)
      .prediction.predict(dedicated, request)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ source: 'network', classification: 'permanent' });
    expect(sniNames.slice(before)).toContain(DEDICATED_HOST);
  });
});
