import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { type Server, createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { type AuthConfig, parseTokenDigests, tokenLine } from '../../src/http/auth';
import { type ServerDeps, createServer } from '../../src/http/server';

/**
 * For tests of the HTTP API: a signing key whose JWKS a tiny local server publishes (the
 * verifier is pointed at it instead of Google's), ID tokens signed with it as Google signs them,
 * static tokens, and the API server itself, in this process on a free port.
 */

export const AUDIENCE = 'https://garden-deploy.test/api';
export const ALLOWED_SA = 'pipeline@proj-test.iam.gserviceaccount.com';
export const OTHER_SA = 'intruder@proj-test.iam.gserviceaccount.com';

export interface Issuer {
  certsUrl: string;
  /** How many times its JWKS was fetched. */
  fetches(): number;
  /** An ID token as Google's OIDC issues them (RS256, kid), with `claims` over the defaults. */
  sign(claims?: Record<string, unknown>, options?: { key?: 'trusted' | 'untrusted' }): string;
  close(): Promise<void>;
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/**
 * `extraKeys` are published in the JWKS before the signing key (e.g. ones Node cannot import);
 * `publishSigningKey: false` leaves the signing key out.
 */
export async function startIssuer({
  extraKeys = [],
  publishSigningKey = true,
}: { extraKeys?: object[]; publishSigningKey?: boolean } = {}): Promise<Issuer> {
  const trusted = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const untrusted = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('hex');
  const jwks = {
    keys: [
      ...extraKeys,
      ...(publishSigningKey
        ? [{ ...trusted.publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }]
        : []),
    ],
  };
  let fetches = 0;
  const server: Server = createHttpServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' });
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    certsUrl: `http://127.0.0.1:${port}/oauth2/v3/certs`,
    fetches: () => fetches,
    sign(claims = {}, { key = 'trusted' } = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload = {
        iss: 'https://accounts.google.com',
        aud: AUDIENCE,
        azp: '1234567890',
        sub: '1234567890',
        email: ALLOWED_SA,
        email_verified: true,
        iat: now,
        exp: now + 3600,
        ...claims,
      };
      const signed = `${b64url({ alg: 'RS256', kid, typ: 'JWT' })}.${b64url(payload)}`;
      const signature = createSign('RSA-SHA256')
        .update(signed)
        .sign((key === 'trusted' ? trusted : untrusted).privateKey)
        .toString('base64url');
      return `${signed}.${signature}`;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A random static token and the auth config that knows only its digest. */
export function staticToken(name = 'ci'): { token: string; tokens: AuthConfig['tokens'] } {
  const token = randomBytes(24).toString('hex');
  return { token, tokens: parseTokenDigests(tokenLine(name, token), 'test') };
}

export interface TestApi {
  app: FastifyInstance;
  url: string;
  /** Access log lines written so far. */
  log: string[];
  close(): Promise<void>;
}

/** The API server on a free port, logging into memory. */
export async function startApi(
  client: Client,
  options: Partial<ServerDeps> & Pick<ServerDeps, 'auth'>,
): Promise<TestApi> {
  const log: string[] = [];
  const app = await createServer({
    client,
    taskQueue: 'unused-task-queue',
    bodyLimit: 64 * 1024,
    rateLimit: { perMinute: 6_000, burst: 1_000 },
    log: (line) => log.push(line),
    ...options,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, log, close: () => app.close() };
}

export interface CallOptions {
  token?: string;
  key?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** One HTTP call: status, JSON body and headers. */
export async function call(
  api: TestApi,
  method: string,
  path: string,
  { token, key, body, headers = {} }: CallOptions = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(key ? { 'idempotency-key': key } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}
