import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { z } from 'zod';
import type { AccessTokenSource } from './auth';
import {
  GcpApiError,
  errorFromAuth,
  errorFromNetwork,
  errorFromResponse,
  errorFromTimeout,
  errorFromUnexpectedBody,
  isGcpApiError,
} from './errors';
import type { SecretRegistry } from './redact';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface HttpCall {
  method: HttpMethod;
  /** The URL as Google sees it: its host is sent as `Host:` and used for TLS SNI/verification. */
  url: URL;
  /** Connect to this origin (and path prefix) instead of `url`'s, keeping `Host:` from `url`. */
  connectTo?: URL;
  body?: { data: Buffer; contentType: string };
  accept?: string;
  signal?: AbortSignal;
  /** Buffered calls: connect → last byte. Streams: connect → headers, then the longest silence. */
  timeoutMs: number;
  /** Buffered calls: largest body. Streams: largest total of all chunks. */
  maxResponseBytes: number;
  /** Skip TLS certificate verification (PSC internal addresses only, when configured). */
  skipTlsVerify?: boolean;
  /** API name (`aiplatform.googleapis.com`) for "enable the API" hints. */
  service: string;
}

export interface BufferedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface StreamingResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body's chunks; iterate once. Leaving the loop early closes the connection. */
  body: AsyncIterable<Buffer>;
}

/** One HTTP exchange as metrics see it: no resource names, so its values stay few. */
export interface ExchangeRecord {
  method: HttpMethod;
  /** The path with its ids replaced by `*` (`routeOf`). */
  route: string;
  /** The HTTP status code, or why there was none: `network`, `timeout`, `cancelled`. */
  status: string;
  /** When the attempt began (ms since the epoch, credentials included): a trace span's start. */
  startedAt: number;
}

export interface HttpTransportOptions {
  tokenSource: AccessTokenSource;
  userAgent: string;
  quotaProjectId?: string;
  secrets: SecretRegistry;
  /** Told of every exchange once its response headers arrive or it fails (metrics). */
  observe?: (exchange: ExchangeRecord) => void;
}

/** Bytes of an error body kept for the message; the rest is discarded unread. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * Authenticated HTTP over node's `http`/`https` (undici's fetch cannot set `Host:`), with
 * per-request timeouts, AbortSignal support, bounded reads and one retry after a 401.
 */
export class HttpTransport {
  constructor(private readonly options: HttpTransportOptions) {}

  /** Sends a request and reads the whole (bounded) body; non-2xx responses throw GcpApiError. */
  async send(call: HttpCall): Promise<BufferedResponse> {
    const { res, attempt } = await this.open(call);
    try {
      const body = await attempt.readBody(call.maxResponseBytes, false);
      return { status: res.statusCode ?? 0, headers: res.headers, body };
    } finally {
      attempt.finish();
    }
  }

  /** Sends a request and returns once a 2xx response's headers arrive; the body is streamed. */
  async openStream(call: HttpCall): Promise<StreamingResponse> {
    const { res, attempt } = await this.open(call);
    return { status: res.statusCode ?? 0, headers: res.headers, body: attempt.iterate() };
  }

  /** Opens an exchange that got a 2xx response, refreshing credentials once after a 401. */
  private async open(call: HttpCall): Promise<{ res: IncomingMessage; attempt: Attempt }> {
    const first = await this.attempt(call, false);
    if (!('error' in first) || first.error.httpStatus !== 401) return unwrap(first);
    return unwrap(await this.attempt(call, true));
  }

  private async attempt(
    call: HttpCall,
    forceRefresh: boolean,
  ): Promise<{ res: IncomingMessage; attempt: Attempt } | { error: GcpApiError }> {
    const startedAt = Date.now();
    const attempt = new Attempt(call, await this.headers(call, forceRefresh));
    let res: IncomingMessage;
    try {
      res = await attempt.response();
    } catch (err) {
      attempt.finish();
      this.observe(
        call,
        startedAt,
        call.signal?.aborted
          ? 'cancelled'
          : isGcpApiError(err) && err.source === 'timeout'
            ? 'timeout'
            : 'network',
      );
      throw err;
    }
    const status = res.statusCode ?? 0;
    this.observe(call, startedAt, String(status));
    if (status >= 200 && status < 300) return { res, attempt };
    try {
      const body = await attempt.readBody(MAX_ERROR_BODY_BYTES, true);
      return {
        error: errorFromResponse({
          call: describe(call),
          service: call.service,
          httpStatus: status,
          body: Buffer.from(this.options.secrets.redact(body.toString('utf8'))),
          retryAfterHeader: headerValue(res.headers['retry-after']),
        }),
      };
    } finally {
      attempt.finish();
    }
  }

  private observe(call: HttpCall, startedAt: number, status: string): void {
    if (!this.options.observe) return;
    try {
      this.options.observe({ method: call.method, route: routeOf(call.url), status, startedAt });
    } catch {
      // Counting a call must never fail it.
    }
  }

  private async headers(call: HttpCall, forceRefresh: boolean): Promise<Record<string, string>> {
    throwIfAborted(call.signal);
    let auth: Record<string, string>;
    try {
      auth = await this.options.tokenSource.getRequestHeaders({ forceRefresh });
    } catch (err) {
      throw isGcpApiError(err) ? err : errorFromAuth(err);
    }
    this.options.secrets.rememberHeaders(auth);
    throwIfAborted(call.signal);
    const headers: Record<string, string> = {
      ...auth,
      'user-agent': this.options.userAgent,
      'x-goog-api-client': `gl-node/${process.versions.node}`,
      accept: call.accept ?? 'application/json',
    };
    if (this.options.quotaProjectId) headers['x-goog-user-project'] = this.options.quotaProjectId;
    if (call.body) {
      headers['content-type'] = call.body.contentType;
      headers['content-length'] = String(call.body.data.length);
    } else if (call.method !== 'GET') {
      headers['content-length'] = '0';
    }
    if (call.connectTo) headers.host = call.url.host;
    return headers;
  }
}

/** One HTTP exchange: owns the timer, the abort listener and the sockets. */
class Attempt {
  private readonly req: http.ClientRequest;
  private res: IncomingMessage | undefined;
  private failure: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.fail(abortReason(this.call.signal));
  private readonly responsePromise: Promise<IncomingMessage>;

  constructor(
    private readonly call: HttpCall,
    headers: Record<string, string>,
  ) {
    const target = call.connectTo ?? call.url;
    const secure = target.protocol === 'https:';
    const prefix = call.connectTo ? call.connectTo.pathname.replace(/\/+$/, '') : '';
    const realHost = call.url.hostname.replace(/^\[|\]$/g, '');
    const options: https.RequestOptions = {
      method: call.method,
      protocol: target.protocol,
      hostname: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port || (secure ? 443 : 80),
      path: `${prefix}${call.url.pathname}${call.url.search}`,
      headers,
    };
    if (secure) {
      // SNI and certificate check against the real host (an IP gets no SNI).
      if (!net.isIP(realHost)) options.servername = realHost;
      if (call.skipTlsVerify) options.rejectUnauthorized = false;
      else options.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(realHost, cert);
    }
    this.req = (secure ? https : http).request(options);
    this.responsePromise = new Promise<IncomingMessage>((resolve, reject) => {
      this.req.once('response', (res) => {
        this.res = res;
        res.once('error', () => undefined); // surfaced through reads
        resolve(res);
      });
      this.req.once('error', (err) =>
        reject(this.failure ?? errorFromNetwork(describe(call), call.url.host, err)),
      );
    });
    this.responsePromise.catch(() => undefined);
    this.armTimer('response');
    if (call.signal) {
      if (call.signal.aborted) this.onAbort();
      else call.signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.req.end(call.body?.data);
  }

  response(): Promise<IncomingMessage> {
    return this.responsePromise;
  }

  /** Reads the remaining body; over `limit` bytes is an error unless `truncate` (error bodies). */
  async readBody(limit: number, truncate: boolean): Promise<Buffer> {
    const res = await this.responsePromise;
    const declared = Number(res.headers['content-length']);
    if (!truncate && Number.isFinite(declared) && declared > limit) throw this.tooLarge(limit, declared);
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) {
          if (truncate) {
            chunks.push(chunk.subarray(0, chunk.length - (size - limit)));
            res.destroy();
            break;
          }
          throw this.tooLarge(limit);
        }
        chunks.push(chunk);
      }
    } catch (err) {
      throw this.readFailure(err);
    }
    if (this.failure) throw this.failure;
    return Buffer.concat(chunks);
  }

  /** The body as chunks, with an idle timeout between them and a bound on the total. */
  async *iterate(): AsyncGenerator<Buffer> {
    const res = await this.responsePromise;
    let size = 0;
    try {
      this.armTimer('idle');
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.call.maxResponseBytes) throw this.tooLarge(this.call.maxResponseBytes);
        // The consumer's own pace is not the server's silence.
        this.clearTimer();
        yield chunk;
        if (this.failure) throw this.failure;
        this.armTimer('idle');
      }
      if (this.failure) throw this.failure;
    } catch (err) {
      throw this.readFailure(err);
    } finally {
      this.finish();
      res.destroy();
    }
  }

  finish(): void {
    this.clearTimer();
    this.call.signal?.removeEventListener('abort', this.onAbort);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private armTimer(phase: 'response' | 'idle'): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => this.fail(errorFromTimeout(describe(this.call), this.call.timeoutMs, phase)),
      this.call.timeoutMs,
    );
    this.timer.unref?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.req.destroy(this.failure);
    this.res?.destroy(this.failure);
  }

  private readFailure(err: unknown): Error {
    if (this.failure) return this.failure;
    if (isGcpApiError(err)) {
      this.fail(err);
      return err;
    }
    return errorFromNetwork(describe(this.call), this.call.url.host, err);
  }

  private tooLarge(limit: number, declared?: number): GcpApiError {
    const err = new GcpApiError({
      source: 'response',
      call: describe(this.call),
      status: 'OUT_OF_RANGE',
      googleMessage: `response body ${declared !== undefined ? `of ${declared} bytes ` : ''}exceeds the limit of ${limit} bytes`,
      classification: 'permanent',
      hint: 'Raise maxResponseBytes/maxStreamBytes in the client config, or ask for less (smaller pageSize, fewer tokens).',
    });
    this.fail(err);
    return err;
  }
}

function unwrap<T>(result: T | { error: GcpApiError }): T {
  if (typeof result === 'object' && result !== null && 'error' in result) throw result.error;
  return result;
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new DOMException('The operation was aborted', 'AbortError');
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** `METHOD url` without the query string (page tokens and filters add nothing to a message). */
export function describe(call: Pick<HttpCall, 'method' | 'url'>): string {
  return `${call.method} ${call.url.origin}${call.url.pathname}`;
}

const VERSION_SEGMENT = /^v\d+(?:(?:alpha|beta)\d*)?$/;
/** Literal path segments where Google's collection/id alternation breaks (OpenAI-compatible chat). */
const LITERAL_SEGMENTS = new Set(['completions']);

/**
 * The call's path after its API version, as a template: resource names alternate collection and
 * id (`projects/P/locations/L/endpoints/E:deployModel`), and every id becomes `*`; the leading
 * project and location or region, on nearly every call, are left out (`endpoints/*:deployModel`).
 */
export function routeOf(url: URL): string {
  const segments = url.pathname.split('/').filter(Boolean);
  const version = segments.findIndex((segment) => VERSION_SEGMENT.test(segment));
  const template = segments
    .slice(version + 1)
    .map((segment, index) => {
      const colon = segment.indexOf(':');
      const base = colon >= 0 ? segment.slice(0, colon) : segment;
      const verb = colon >= 0 ? segment.slice(colon) : '';
      return (index % 2 === 0 || LITERAL_SEGMENTS.has(base) ? base : '*') + verb;
    })
    .join('/');
  return template.replace(/^projects\/\*\//, '').replace(/^(?:locations|regions)\/\*\//, '');
}

/** Per-call options every client method accepts. */
export interface CallOptions {
  /** Aborts the request; the returned promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Overrides the configured timeout for this call. */
  timeoutMs?: number;
}

export function jsonBody(value: unknown): { data: Buffer; contentType: string } {
  return { data: Buffer.from(JSON.stringify(value)), contentType: 'application/json; charset=utf-8' };
}

/**
 * The buffered JSON call of the management clients (Vertex, Compute): the query parameters that are
 * set, a JSON body when there is one, the configured timeout unless the call overrides it, and the
 * answer checked against `schema`.
 */
export async function sendJsonCall<S extends z.ZodType>(
  transport: HttpTransport,
  config: { requestTimeoutMs: number; maxResponseBytes: number },
  request: {
    service: string;
    method: HttpMethod;
    url: URL;
    /** Query parameters; an array is a repeated parameter (`?k=a&k=b`). */
    query?: Record<string, string | number | readonly string[] | undefined>;
    body?: unknown;
    options: CallOptions;
  },
  schema: S,
): Promise<z.output<S>> {
  const url = request.url;
  for (const [key, value] of Object.entries(request.query ?? {})) {
    if (Array.isArray(value)) for (const item of value) url.searchParams.append(key, item);
    else if (value !== undefined) url.searchParams.set(key, String(value));
  }
  const call = {
    method: request.method,
    url,
    ...(request.body !== undefined ? { body: jsonBody(request.body) } : {}),
    signal: request.options.signal,
    timeoutMs: request.options.timeoutMs ?? config.requestTimeoutMs,
    maxResponseBytes: config.maxResponseBytes,
    service: request.service,
  };
  const res = await transport.send(call);
  return parseJsonBody(call, res.body, schema);
}

/** Parses a JSON body and checks it against the documented shape. */
export function parseJsonBody<S extends z.ZodType>(
  call: Pick<HttpCall, 'method' | 'url'>,
  body: Buffer,
  schema: S,
): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8') || '{}');
  } catch {
    throw errorFromUnexpectedBody(describe(call), `not JSON (${body.length} bytes)`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    throw errorFromUnexpectedBody(describe(call), issues.join('; '));
  }
  return parsed.data;
}
