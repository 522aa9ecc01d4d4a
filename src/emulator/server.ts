import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIPv4 } from 'node:net';
import { createStorage } from '../storage';
import { adminRoutes } from './admin';
import { OAuthError, STS_PATH } from './auth';
import { computeRoutes, pscConnectionStatus } from './compute';
import { EmulatorCore, endpointName } from './core';
import { deployModelRoutes } from './deploy-model';
import { endpointUpdateRoutes } from './endpoint-update';
import { ApiError, statusNameForHttp } from './errors';
import type { FaultAction } from './faults';
import { MANAGEMENT_BODY_LIMIT, type RequestContext, type Route, holdCall, readBody, sendJson } from './http';
import { inferenceRoutes } from './inference';
import { loggingRoutes } from './logging';
import { recordWhenAnswered } from './metrics';
import { monitoringRoutes } from './monitoring';
import { type EmulatorOptions, parseEmulatorConfig } from './options';
import { cloudQuotasRoutes } from './quotas';
import { routeInference, servedModelSpellings, servingHeaders } from './traffic';
import { vertexRoutes } from './vertex';

export interface RunningEmulator {
  /** Base URL, e.g. `http://127.0.0.1:8780`: use it in place of `https://{region}-aiplatform.googleapis.com` and `https://compute.googleapis.com`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting calls, waits for in-flight model reads, saves the state file. */
  close(): Promise<void>;
}

const UNAUTHENTICATED_MESSAGE =
  'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const INVALID_CREDENTIALS_MESSAGE =
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

const FAULT_MESSAGES: Record<number, string> = {
  400: 'Request contains an invalid argument.',
  429: "Quota exceeded for quota metric 'Resource management (CRUD) requests' and limit 'Resource management (CRUD) requests per minute per region' of service 'aiplatform.googleapis.com'.",
  500: 'Internal error encountered.',
  503: 'The service is currently unavailable.',
  504: 'The request timed out. Please try again.',
};

type HostTarget =
  | { kind: 'shared' }
  | { kind: 'dedicated'; endpoint: string }
  | { kind: 'psc'; endpoint?: string; accepted: boolean };

const DEDICATED_HOST_RE = /^([a-z0-9-]+)\.([a-z0-9-]+?)-(\d+)\.prediction\.vertexai\.goog$/;

/** Which endpoint (if any) a `Host` header addresses: a dedicated DNS name or a PSC forwarding rule's IP. */
function classifyHost(core: EmulatorCore, hostHeader: string | undefined, now: number): HostTarget {
  const host = (hostHeader ?? '')
    .replace(/^\[(.*)\](:\d+)?$/, '$1')
    .replace(/:\d+$/, '')
    .toLowerCase();
  const dedicated = DEDICATED_HOST_RE.exec(host);
  if (dedicated) {
    const [, id, location, project] = dedicated as unknown as [string, string, string, string];
    return { kind: 'dedicated', endpoint: endpointName({ project, location }, id) };
  }
  if (isIPv4(host)) {
    const rules = Object.values(core.state.forwardingRules).filter((rule) => rule.ipAddress === host);
    if (rules.length > 0) {
      const accepted = rules.find((rule) => pscConnectionStatus(core, rule, now) === 'ACCEPTED');
      const endpoint =
        accepted &&
        Object.values(core.state.endpoints).find((e) => e.psc?.serviceAttachment === accepted.target);
      return endpoint
        ? { kind: 'psc', endpoint: endpoint.name, accepted: true }
        : { kind: 'psc', accepted: false };
    }
  }
  return { kind: 'shared' };
}

function renderError(res: ServerResponse, api: Route['api'] | undefined, error: ApiError): void {
  const headers = { ...error.options.headers };
  if (error.httpStatus === 401) headers['www-authenticate'] = 'Bearer realm="https://accounts.google.com/"';
  sendJson(res, error.httpStatus, api === 'compute' ? error.toComputeBody() : error.toVertexBody(), headers);
}

function faultError(action: Extract<FaultAction, { type: 'error' }>): ApiError {
  const retryAfter = action.retryAfterSeconds ?? (action.status === 429 ? 1 : undefined);
  return new ApiError(statusNameForHttp(action.status), action.message ?? FAULT_MESSAGES[action.status]!, {
    ...(retryAfter !== undefined
      ? {
          headers: { 'retry-after': String(retryAfter) },
          details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` }],
        }
      : {}),
  });
}

function authError(core: EmulatorCore, req: IncomingMessage, url: URL, now: number): ApiError | undefined {
  // Google APIs also take the token as the `access_token` query parameter.
  const queryToken = url.searchParams.get('access_token');
  const check = core.tokens.check(
    req.headers.authorization ?? (queryToken ? `Bearer ${queryToken}` : undefined),
    now,
  );
  if (check === 'valid') return undefined;
  return new ApiError(
    'UNAUTHENTICATED',
    check === 'missing' ? UNAUTHENTICATED_MESSAGE : INVALID_CREDENTIALS_MESSAGE,
    {
      computeReason: check === 'missing' ? 'required' : 'authError',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason:
            check === 'expired'
              ? 'ACCESS_TOKEN_EXPIRED'
              : check === 'missing'
                ? 'CREDENTIALS_MISSING'
                : 'ACCESS_TOKEN_TYPE_UNSUPPORTED',
          domain: 'googleapis.com',
        },
      ],
    },
  );
}

/** The service an API's 403s name. */
const SERVICES: Partial<Record<Route['api'], string>> = {
  monitoring: 'monitoring.googleapis.com',
  cloudquotas: 'cloudquotas.googleapis.com',
  logging: 'logging.googleapis.com',
};

function forbiddenError(route: Route, path: string, project: string | undefined): ApiError {
  // Logging names its project in the body; the others in the path.
  const resource =
    route.api === 'logging'
      ? `projects/${project ?? '-'}`
      : path
          .replace(/^\/(v1|v1beta1|v3|compute\/v1)\//, '')
          .replace(/:[A-Za-z]+$/, '')
          .replace(/\/timeSeries$/, '');
  const permission = route.permission ?? 'unknown';
  const service = SERVICES[route.api] ?? 'aiplatform.googleapis.com';
  return route.api === 'compute'
    ? new ApiError('PERMISSION_DENIED', `Required '${permission}' permission for '${resource}'`, {
        computeReason: 'forbidden',
      })
    : new ApiError(
        'PERMISSION_DENIED',
        `Permission '${permission}' denied on resource '//${service}/${resource}' (or it may not exist).`,
        {
          details: [
            {
              '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
              reason: 'IAM_PERMISSION_DENIED',
              domain: service,
              metadata: { permission, resource },
            },
          ],
        },
      );
}

/** Cloud Resource Manager v1 `projects.get`: how ADC learns the project of external-account credentials. */
function getProject(core: EmulatorCore, ctx: RequestContext): void {
  const ref = core.resolveProject(ctx.params[0]!);
  if (!ref.id)
    throw new ApiError(
      'NOT_FOUND',
      `Project ${ctx.params[0]} not found or you do not have permission to access it.`,
    );
  sendJson(ctx.res, 200, {
    projectNumber: ref.number,
    projectId: ref.id,
    lifecycleState: 'ACTIVE',
    name: ref.id,
  });
}

/** The body as JSON, or undefined: its handler reports a malformed body properly. */
function tryParseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Lets the handler run to completion, then cuts the connection instead of answering. */
function loseResponse(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead = (() => res) as typeof res.writeHead;
  res.write = (() => true) as typeof res.write;
  res.end = (() => {
    req.socket.destroy();
    return res;
  }) as typeof res.end;
}

async function stsToken(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const body = await readBody(ctx.req, MANAGEMENT_BODY_LIMIT);
  try {
    sendJson(ctx.res, 200, core.tokens.exchange(new URLSearchParams(body.toString('utf8')), ctx.now));
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    sendJson(ctx.res, err.httpStatus, { error: err.error, error_description: err.description });
  }
}

/** Starts the emulator: one HTTP server for Vertex, Compute, inference, Monitoring, Cloud Quotas, Logging, STS and the admin API. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const { storage: givenStorage, log: givenLog, ...rest } = options;
  const config = parseEmulatorConfig(rest);
  const log = givenLog ?? ((line: string) => process.stderr.write(`garden-deploy emulator: ${line}\n`));
  const storage = givenStorage ?? createStorage(config.gcsEndpoint ? { endpoint: config.gcsEndpoint } : {});
  const core = new EmulatorCore(config, storage, log);

  const routes: Route[] = [];
  routes.push(
    ...vertexRoutes(core),
    ...deployModelRoutes(core),
    ...inferenceRoutes(),
    ...endpointUpdateRoutes(core),
    ...monitoringRoutes(core),
    ...cloudQuotasRoutes(core),
    ...loggingRoutes(core),
    ...computeRoutes(core),
    {
      id: 'resourcemanager.projects.get',
      method: 'GET',
      pattern: /^\/v1\/projects\/([^/:]+)$/,
      api: 'vertex',
      project: (params) => params[0],
      permission: 'resourcemanager.projects.get',
      handler: (ctx) => getProject(core, ctx),
    },
    {
      id: 'sts.token',
      method: 'POST',
      pattern: new RegExp(`^${STS_PATH}$`),
      api: 'sts',
      handler: (ctx) => stsToken(core, ctx),
    },
    ...adminRoutes(core, () => routes),
  );

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const now = core.now();
    // The clock's timer may fire a few ms late: a call at a due time still sees it applied.
    core.advance(now);
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const candidates = routes.filter((r) => r.pattern.test(url.pathname));
    const route = candidates.find((r) => r.method === req.method);
    if (!route) {
      req.resume();
      throw new ApiError(
        'NOT_FOUND',
        `The requested URL ${url.pathname} was not found on this server (${req.method}).`,
      );
    }
    let params: string[];
    try {
      params = (route.pattern.exec(url.pathname) ?? []).slice(1).map((p) => decodeURIComponent(p ?? ''));
    } catch {
      req.resume();
      throw new ApiError('INVALID_ARGUMENT', `The request path ${url.pathname} has a malformed %-escape.`);
    }
    const ctx: RequestContext = { req, res, url, params, now, fault: { type: 'pass' } };
    if (route.api === 'admin') return route.handler(ctx);

    const host = classifyHost(core, req.headers.host, now);
    if (host.kind !== 'shared' && route.api !== 'inference') {
      throw new ApiError(
        'NOT_FOUND',
        `The requested URL ${url.pathname} was not found on this server (prediction host).`,
      );
    }
    if (route.projectFromBody) ctx.body = await readBody(req, MANAGEMENT_BODY_LIMIT);
    const project = route.projectFromBody
      ? route.projectFromBody(tryParseJson(ctx.body!))
      : route.project?.(params);
    core.countCall(project ? core.resolveProject(project).number : undefined, route, now);
    if (host.kind === 'psc' && !host.accepted) {
      // No accepted PSC connection: packets to this address go nowhere.
      req.socket.destroy();
      return;
    }
    if (host.kind !== 'shared') ctx.hostEndpoint = host.endpoint;

    // Inference is routed by the traffic split first, so a fault rule can pick one revision.
    const routing = route.api === 'inference' ? routeInference(core, ctx) : undefined;
    const serving = routing?.serving;
    const fault = core.faults.decide({
      route: route.id,
      projects: project ? core.projectAliases(project) : [],
      ...(serving ? { models: servedModelSpellings(core, serving.deployed) } : {}),
    });
    // From here the routed model answers (an injected error included): name it, record the answer.
    const takenByModel = () => {
      if (!serving || ctx.serving) return;
      ctx.serving = serving;
      for (const [name, value] of Object.entries(servingHeaders(serving))) res.setHeader(name, value);
      recordWhenAnswered(core.served, res, serving, now, () => core.now());
    };
    // A caller that hung up during the added latency gets no answer (nor keeps the process alive).
    if (fault.type === 'latency' && !(await holdCall(ctx, fault.ms))) return;
    if (fault.type === 'drop') {
      req.socket.destroy();
      return;
    }
    if (fault.type === 'error') {
      req.resume();
      takenByModel();
      throw faultError(fault);
    }
    ctx.fault = fault;
    if (route.api !== 'sts') {
      const denied = authError(core, req, url, now);
      if (denied) throw denied;
      // A `403` fault refuses like a forbidden project: after authentication, as IAM does.
      if (fault.type === 'forbidden' || (project && core.isForbidden(project))) {
        req.resume();
        throw forbiddenError(route, url.pathname, project);
      }
    }
    takenByModel();
    if (fault.type === 'dropResponse') loseResponse(req, res);
    if (routing?.error) {
      req.resume();
      throw routing.error;
    }
    await route.handler(ctx);
  }

  const server: Server = createServer((req, res) => {
    dispatch(req, res)
      .catch((err: unknown) => {
        const api = routes.find((r) => r.pattern.test(new URL(req.url ?? '/', 'http://x').pathname))?.api;
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (err instanceof ApiError) return renderError(res, api, err);
        log(`internal error on ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
        renderError(res, api, new ApiError('INTERNAL', 'Internal error encountered.'));
      })
      .finally(() => core.scheduleFlush());
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(
      err.code === 'EADDRINUSE'
        ? `port ${config.port} on ${config.host} is already in use; choose another with --port (0 picks a free one)`
        : `could not listen on ${config.host}:${config.port}: ${err.message}`,
    );
  });
  const port = (server.address() as AddressInfo).port;
  const publicHost =
    config.host === '0.0.0.0' || config.host === '::'
      ? '127.0.0.1'
      : config.host.includes(':')
        ? `[${config.host}]`
        : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${publicHost}:${port}`,
    port,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        core.close();
        await core.settle();
      })();
      return closing;
    },
  };
}
