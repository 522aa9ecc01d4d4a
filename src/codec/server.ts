import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import { PayloadDecryptionError } from './aes-gcm';

/**
 * An HTTP codec server (Temporal's codec-server protocol): `POST …/encode` and `POST …/decode`
 * with `{"payloads": [{"metadata": {"k": "<base64>"}, "data": "<base64>"}]}`, answered in the same
 * shape. The Web UI and `temporal --codec-endpoint` call it to show payloads decoded to whoever may
 * reach it: CORS lets only the configured UI origins read its answers, and an optional bearer
 * token keeps other callers out. Only the last path segment counts (`/{namespace}/decode` works).
 */

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** The port of Temporal's codec-server samples. */
export const DEFAULT_CODEC_PORT = 8888;
const MAX_PAYLOADS = 10_000;
const MAX_TOKEN_HEADER = 4096;

const Base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64');
const PayloadJsonSchema = z.object({
  metadata: z.record(z.string().max(256), Base64).nullish(),
  data: Base64.nullish(),
});
export const PayloadsBodySchema = z.object({
  payloads: z.array(PayloadJsonSchema).max(MAX_PAYLOADS, `at most ${MAX_PAYLOADS} payloads per request`),
});
type PayloadJson = z.infer<typeof PayloadJsonSchema>;

/** Temporal namespaces are DNS-like names; anything else is refused rather than logged. */
const NamespaceSchema = z.string().regex(/^[A-Za-z0-9._-]{1,255}$/);

/** An http(s) origin as browsers send it: scheme, host and port only. */
export const OriginSchema = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}, 'must be an origin such as http://localhost:8233 (scheme, host and port; no path or trailing slash)');

/** The origins a browser gives a Web UI on this machine's `port`: both names of the loopback. */
export function localUiOrigins(port: number, host = '127.0.0.1'): string[] {
  return [...new Set([`http://localhost:${port}`, `http://${host}:${port}`])];
}

export interface CodecHandlerOptions {
  codec: PayloadCodec;
  /** Origins whose pages (the Temporal Web UI) may call it from a browser. */
  corsOrigins: string[];
  /** When set, every encode/decode needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /** When set, only these namespaces (the `X-Namespace` header) are served. */
  namespaces?: string[];
  maxBodyBytes?: number;
  /** One line per request: method, path, status, payload count, namespace; never payloads. */
  log?: (line: string) => void;
}

export interface CodecServerOptions extends CodecHandlerOptions {
  port: number;
  /** Default 127.0.0.1: the codec decrypts for whoever reaches it. */
  host?: string;
}

export interface RunningCodecServer {
  /** `http://host:port`, the `--ui-codec-endpoint` / `--codec-endpoint` value. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** An answer other than 200, with the message sent back as `{"error": "..."}`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export async function startCodecServer(options: CodecServerOptions): Promise<RunningCodecServer> {
  for (const origin of options.corsOrigins) {
    if (!OriginSchema.safeParse(origin).success)
      throw new Error(`CORS origin ${JSON.stringify(origin)} is not an origin`);
  }
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    void handleCodecRequest(options, req, res);
  });
  // Bounded: a slow or stuck client cannot hold a connection open.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${hostInUrl}:${port}`, port, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** One request of the protocol: also what another HTTP server (a future `serve`) mounts under a path. */
export async function handleCodecRequest(
  options: CodecHandlerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  let count: number | undefined;
  let namespace: string | undefined;
  try {
    const origin = req.headers.origin;
    const corsAllowed = origin !== undefined && options.corsOrigins.includes(origin);
    res.setHeader('Vary', 'Origin');
    if (corsAllowed) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      // The UI may send cookies with `codec.includeCredentials`; only to origins listed, never `*`.
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
    const operation = path.split('/').pop();
    if (operation !== 'encode' && operation !== 'decode') {
      throw new HttpError(404, 'not found: POST …/encode or …/decode');
    }
    if (origin !== undefined && !corsAllowed) {
      throw new HttpError(
        403,
        `origin ${origin} may not call this codec server (allowed: ${options.corsOrigins.join(', ') || 'none'})`,
      );
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST, OPTIONS' });
    if (options.authToken !== undefined) checkToken(req.headers.authorization, options.authToken);
    namespace = namespaceOf(req, options.namespaces);
    // JSON only: a text/plain POST from any page would skip the browser's CORS preflight.
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      throw new HttpError(415, 'Content-Type must be application/json');
    }
    const body = await readBody(req, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(400, 'the body is not valid JSON; expected {"payloads": [...]}');
    }
    const parsed = PayloadsBodySchema.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues.map(
        (issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`,
      );
      throw new HttpError(
        400,
        `expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}: ${problems.slice(0, 5).join('; ')}`,
      );
    }
    const payloads = parsed.data.payloads.map(fromJson);
    count = payloads.length;
    let result: Payload[];
    try {
      result =
        operation === 'encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
    } catch (err) {
      if (err instanceof PayloadDecryptionError) throw new HttpError(400, err.message);
      throw err;
    }
    send(res, 200, { payloads: result.map(toJson) });
  } catch (err) {
    if (err instanceof HttpError) {
      if (err.status === 413) res.setHeader('Connection', 'close');
      for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
      send(res, err.status, { error: err.message });
    } else {
      options.log?.(
        `codec server: internal error on ${req.method} ${path}: ${err instanceof Error ? err.name : 'error'}`,
      );
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    }
  } finally {
    options.log?.(
      `${req.method} ${path} ${res.statusCode}${count === undefined ? '' : ` ${count} payloads`}` +
        `${namespace ? ` namespace=${namespace}` : ''}`,
    );
  }
}

/** Constant time over the token's digest, so neither its bytes nor its length leak by timing. */
function checkToken(header: string | undefined, token: string): void {
  const unauthorized = new HttpError(401, 'missing or wrong bearer token (Authorization: Bearer <token>)', {
    'WWW-Authenticate': 'Bearer',
  });
  if (!header || header.length > MAX_TOKEN_HEADER) throw unauthorized;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthorized;
  const digest = (value: string) => createHash('sha256').update(value).digest();
  if (!timingSafeEqual(digest(match[1]!), digest(token))) throw unauthorized;
}

function namespaceOf(req: IncomingMessage, allowed: string[] | undefined): string | undefined {
  const header = req.headers['x-namespace'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && !NamespaceSchema.safeParse(value).success) {
    throw new HttpError(400, 'X-Namespace is not a namespace name');
  }
  if (allowed && (value === undefined || !allowed.includes(value))) {
    throw new HttpError(
      403,
      `this codec server serves namespace${allowed.length > 1 ? 's' : ''} ${allowed.join(', ')} only (X-Namespace)`,
    );
  }
  return value;
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `the body is over ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function fromJson(payload: PayloadJson): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')]),
    ),
    data: Buffer.from(payload.data ?? '', 'base64'),
  };
}

function toJson(payload: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([key, value]) => [
        key,
        Buffer.from(value).toString('base64'),
      ]),
    ),
    data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
