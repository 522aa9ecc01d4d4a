import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessTokenSource } from '../../src/gcp';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export type Handler = (
  req: RecordedRequest,
  res: ServerResponse,
  raw: IncomingMessage,
) => void | Promise<void>;

/** A local HTTP server on a free port that records every request and answers with `handler`. */
export interface TestServer {
  url: string;
  requests: RecordedRequest[];
  handler: Handler;
  /** Connections the server saw closed before it answered (aborts, timeouts). */
  closedEarly: number;
  close(): Promise<void>;
}

export async function startTestServer(handler: Handler = defaultHandler): Promise<TestServer> {
  const state = { requests: [] as RecordedRequest[], handler, closedEarly: 0 };
  const server = http.createServer((raw, res) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const req = {
        method: raw.method ?? '',
        url: raw.url ?? '',
        headers: raw.headers,
        body: Buffer.concat(chunks),
      };
      state.requests.push(req);
      res.on('close', () => {
        if (!res.writableFinished) state.closedEarly += 1;
      });
      Promise.resolve(state.handler(req, res, raw)).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    get handler() {
      return state.handler;
    },
    set handler(h: Handler) {
      state.handler = h;
    },
    get closedEarly() {
      return state.closedEarly;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function defaultHandler(_req: RecordedRequest, res: ServerResponse): void {
  sendJson(res, 200, {});
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(data.length),
    ...headers,
  });
  res.end(data);
}

/** A Google error envelope (google.rpc.Status with the HTTP code). */
export function googleError(code: number, status: string, message: string, details: unknown[] = []): unknown {
  return { error: { code, status, message, ...(details.length ? { details } : {}) } };
}

/** Token source that hands out `token-1`, `token-2`, … and counts forced refreshes. */
export function countingTokenSource(prefix = 'ya29.test-token'): AccessTokenSource & {
  issued: string[];
  forcedRefreshes: number;
} {
  let current = `${prefix}-1`;
  const source = {
    issued: [current],
    forcedRefreshes: 0,
    async getRequestHeaders(options: { forceRefresh?: boolean } = {}) {
      if (options.forceRefresh) {
        source.forcedRefreshes += 1;
        current = `${prefix}-${source.issued.length + 1}`;
        source.issued.push(current);
      }
      return { authorization: `Bearer ${current}` };
    },
  };
  return source;
}
