import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { sendJson } from './test-server';

export const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

export interface TlsRequest {
  /** SNI of the connection the request came on (false: none). */
  servername: string | false;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A local HTTPS server whose certificate (for `names` only) is signed by a throw-away CA that this
 * test process trusts: verification really succeeds for those names and really fails for others.
 */
export interface TrustedTlsServer {
  url: string;
  /** SNI names of every TLS handshake, refused ones included (kept-alive connections shake hands once). */
  sniNames: string[];
  /** Requests that got past the handshake (headers include `authorization`). */
  requests: TlsRequest[];
  handler: (req: TlsRequest, res: ServerResponse) => void;
  close(): Promise<void>;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

export async function startTrustedTlsServer(names: string[]): Promise<TrustedTlsServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gcp-trusted-tls-'));
  const file = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1']
      .concat(['-subj', '/CN=garden-deploy test CA', '-addext', 'basicConstraints=critical,CA:TRUE'])
      .concat(['-addext', 'keyUsage=critical,keyCertSign']),
  );
  openssl(['req', ...ec, '-keyout', file('leaf.key'), '-out', file('leaf.csr'), '-subj', `/CN=${names[0]}`]);
  writeFileSync(
    file('leaf.ext'),
    `basicConstraints=CA:FALSE\nsubjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`,
  );
  openssl(
    ['x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key')].concat([
      '-CAcreateserial',
      '-out',
      file('leaf.pem'),
      '-days',
      '1',
      '-extfile',
      file('leaf.ext'),
    ]),
  );
  const ca = readFileSync(file('ca.pem'), 'utf8');
  const key = readFileSync(file('leaf.key'));
  const cert = readFileSync(file('leaf.pem'));
  rmSync(dir, { recursive: true, force: true });

  // The transport uses node's global agent: trust the CA there (this test file's process only).
  const previousCa = https.globalAgent.options.ca;
  https.globalAgent.options.ca = [...tls.rootCertificates, ca];

  const context = tls.createSecureContext({ key, cert });
  const state = {
    sniNames: [] as string[],
    requests: [] as TlsRequest[],
    handler: (_req: TlsRequest, res: ServerResponse) => sendJson(res, 200, { predictions: ['ok'] }),
  };
  const server = https.createServer(
    {
      key,
      cert,
      SNICallback: (name, cb) => {
        state.sniNames.push(name);
        cb(null, context);
      },
    },
    (raw, res) => {
      const chunks: Buffer[] = [];
      raw.on('data', (c: Buffer) => chunks.push(c));
      raw.on('end', () => {
        const req = {
          servername: (raw.socket as tls.TLSSocket).servername ?? false,
          url: raw.url ?? '',
          headers: raw.headers,
          body: Buffer.concat(chunks),
        };
        state.requests.push(req);
        state.handler(req, res);
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get sniNames() {
      return state.sniNames;
    },
    get requests() {
      return state.requests;
    },
    get handler() {
      return state.handler;
    },
    set handler(h) {
      state.handler = h;
    },
    async close() {
      https.globalAgent.options.ca = previousCa;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A token source that counts how often a token was asked for. */
export function spyTokenSource(): { calls: number; getRequestHeaders(): Promise<Record<string, string>> } {
  const source = {
    calls: 0,
    async getRequestHeaders() {
      source.calls += 1;
      return { authorization: 'Bearer ya29.spy-token' };
    },
  };
  return source;
}
