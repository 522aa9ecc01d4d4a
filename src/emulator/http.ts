import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { ApiError } from './errors';
import type { FaultAction } from './faults';
import type { Serving } from './traffic';

/** The API families routes belong to (a runtime list: the admin call rates are filtered by them). */
export const ROUTE_APIS = [
  'vertex',
  'compute',
  'inference',
  'monitoring',
  'cloudquotas',
  'logging',
  'sts',
  'admin',
] as const;

/** Which API family a route belongs to: decides the error envelope, auth and host rules. */
export type RouteApi = (typeof ROUTE_APIS)[number];

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Path parameters captured by the route pattern, already URL-decoded. */
  params: string[];
  now: number;
  /** Fault decided for this call that the handler itself must act on (deploy and stream faults). */
  fault: FaultAction;
  /** For inference: the endpoint named by the Host header (dedicated DNS or PSC address), if any. */
  hostEndpoint?: string;
  /** For inference: the deployed model the traffic split routed the call to. */
  serving?: Serving;
  /** The request body, when dispatch read it to learn the call's project (`Route.projectFromBody`). */
  body?: Buffer;
}

export interface Route {
  /** Stable id used in statistics and fault rules, e.g. `vertex.deploy`. */
  id: string;
  method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
  pattern: RegExp;
  api: RouteApi;
  /** The project (id or number) a call is about, from the path parameters. */
  project?: (params: string[]) => string | undefined;
  /**
   * For APIs that name the project in the body (Logging's `resourceNames`): dispatch reads the
   * body first, so statistics, fault rules and forbidden projects see the project as for others.
   */
  projectFromBody?: (body: unknown) => string | undefined;
  /** IAM permission named in the 403 for a forbidden project. */
  permission?: string;
  handler: (ctx: RequestContext) => Promise<void> | void;
}

/**
 * The route builder of the management APIs (Vertex, Compute): anchored patterns, the project taken
 * from the path, handlers that are given the emulator core.
 */
export function managementRoute<Core>(
  core: Core,
  api: RouteApi,
  project: (params: string[]) => string | undefined,
) {
  return (
    id: string,
    method: Route['method'],
    pattern: string,
    permission: string,
    handler: (core: Core, ctx: RequestContext) => Promise<void> | void,
  ): Route => ({
    id,
    method,
    pattern: new RegExp(`^${pattern}$`),
    api,
    project,
    permission,
    handler: (ctx) => handler(core, ctx),
  });
}

export const MANAGEMENT_BODY_LIMIT = 1024 * 1024;
/** The SDK documents 10 MB for rawPredict; the same bound serves every inference route. */
export const INFERENCE_BODY_LIMIT = 10 * 1024 * 1024;

/** Reads the whole body, refusing more than `limit` bytes without buffering them. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw payloadTooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function payloadTooLarge(limit: number): ApiError {
  return new ApiError('INVALID_ARGUMENT', `Request payload size exceeds the limit: ${limit} bytes.`, {
    httpStatus: 413,
  });
}

/**
 * Holds a call for `ms` (injected latency); false once the caller has hung up, so nothing is
 * answered to nobody. The timer is unref'd: a held call never keeps the process alive.
 */
export async function holdCall(ctx: RequestContext, ms: number): Promise<boolean> {
  if (!ctx.res.closed) await delay(ms, undefined, { ref: false });
  return !ctx.res.closed;
}

/** Parses a JSON body; an empty body is `{}` (as for bodiless POSTs such as `:cancel`). */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ApiError('INVALID_ARGUMENT', `Invalid JSON payload received. ${(err as Error).message}`);
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Server-sent events: one `data:` line per event, blank-line separated. */
export function startEventStream(
  res: ServerResponse,
  headers: Record<string, string> = {},
): (data: string) => void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...headers,
  });
  return (data: string) => {
    res.write(`data: ${data}\n\n`);
  };
}
