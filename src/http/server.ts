import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { DeploymentSettings } from '../workflows/types';
import type { ApiOperation } from './api';
import { type AuthConfig, Authenticator } from './auth';
import { HttpError, toHttpError } from './errors';
import { type Clock, type RateLimit, RateLimiter } from './rate-limit';
import * as control from './routes/control';
import * as deployments from './routes/deployments';
import * as events from './routes/events';
import * as system from './routes/system';

/**
 * `garden-deploy serve`'s HTTP server (Fastify), built from its dependencies so tests start it in
 * this process on port 0. Every route comes from a route module in ROUTE_MODULES; each request is
 * authenticated (unless its operation is public), rate-limited per caller, and logged as one JSON
 * line without headers or bodies.
 */

export interface ServerDeps {
  /** Connected with the CLI's data converter (`connectTemporal`: the payload codec when configured). */
  client: Client;
  /** Task queue of the garden-deploy workers. */
  taskQueue: string;
  /** Operator tuning given to the deployments it starts. */
  settings?: DeploymentSettings;
  auth: AuthConfig;
  bodyLimit: number;
  rateLimit: RateLimit;
  clock?: Clock;
  /** One JSON line per request (and per unexpected error). Default: stdout. */
  log?: (line: string) => void;
}

export interface RegisteredRoute {
  method: string;
  /** Fastify's syntax: `/v1/deployments/:project`. */
  url: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    registeredRoutes: RegisteredRoute[];
  }
}

/** A route module: registers its routes on the app. */
export type RouteModule = (app: FastifyInstance, deps: ServerDeps) => void;

/** What a file under ./routes/ exports: its routes and the operations they serve (for OpenAPI). */
export interface RouteModuleExports {
  register: RouteModule;
  operations: ApiOperation[];
}

/** Every route module, in one table, in registration order. */
const ROUTE_MODULES: Record<string, RouteModuleExports> = { system, deployments, control, events };

/** The route modules, in table order. */
export async function routeModules(): Promise<RouteModuleExports[]> {
  return Object.values(ROUTE_MODULES);
}

/** Every operation the server serves: what the OpenAPI document describes. */
export async function apiOperations(): Promise<ApiOperation[]> {
  return (await routeModules()).flatMap((module) => module.operations);
}

export async function createServer(deps: ServerDeps): Promise<FastifyInstance> {
  const clock = deps.clock ?? { now: Date.now };
  const log = deps.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const authenticator = new Authenticator(deps.auth, () => clock.now());
  const limiter = new RateLimiter(deps.rateLimit, clock);
  const app = Fastify({
    logger: false,
    bodyLimit: deps.bodyLimit,
    genReqId: () => randomUUID(),
    // Routes are documented one by one: no implicit HEAD twins.
    exposeHeadRoutes: false,
    // A slow or stuck client cannot hold a connection open: a request (at most a 60 s wait and the
    // Temporal calls around it) has two minutes, an idle socket one more.
    requestTimeout: 120_000,
    connectionTimeout: 180_000,
  });
  app.decorateRequest('principal', undefined);
  // JSON only: a spec sent as text/plain is 415, not a string for the schema to puzzle over.
  app.removeContentTypeParser('text/plain');

  const throttle = (caller: string) => {
    const wait = limiter.take(caller);
    if (wait > 0)
      throw new HttpError(429, 'rate_limited', `too many requests; retry in ${wait} s`, undefined, {
        'retry-after': String(wait),
      });
  };

  // Before the body is read: an unauthenticated or throttled call costs nothing and starts nothing.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const operation = request.routeOptions.config?.operation;
    // What needs no credentials is limited by client address.
    if (operation?.public) return throttle(`public:${request.ip}`);
    const outcome = await authenticator.authenticate(request.headers.authorization);
    // Failed attempts are rate-limited by address, so guessing tokens is slow too.
    throttle(outcome.ok ? outcome.principal.id : `address:${request.ip}`);
    if (!outcome.ok) {
      const code = { 401: 'unauthenticated', 403: 'forbidden', 503: 'unavailable' }[outcome.status];
      throw new HttpError(
        outcome.status,
        code,
        outcome.message,
        undefined,
        outcome.status === 401 ? { 'www-authenticate': 'Bearer' } : {},
      );
    }
    request.principal = outcome.principal;
  });

  app.addHook('onResponse', async (request, reply) => {
    log(
      JSON.stringify({
        time: new Date(clock.now()).toISOString(),
        requestId: request.id,
        method: request.method,
        route: request.routeOptions.url ?? '(no route)',
        status: reply.statusCode,
        principal: request.principal?.id ?? null,
        // The TCP peer (behind a load balancer or proxy, its address): not a secret, and what the
        // rate limit knows unauthenticated callers by.
        client: request.ip,
        durationMs: Math.round(reply.elapsedTime),
      }),
    );
  });

  app.setErrorHandler(async (err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const known = toHttpError(err);
    if (known) return reply.code(known.status).headers(known.headers).send(known.body());
    // Names and first lines only: a stack or a cause could carry request data.
    log(
      JSON.stringify({
        level: 'error',
        requestId: request.id,
        error: (err as Error)?.name ?? 'Error',
        message: String((err as Error)?.message ?? err).split('\n')[0],
      }),
    );
    return reply
      .code(500)
      .send(
        new HttpError(
          500,
          'internal',
          `internal error; the server log has it under request id ${request.id}`,
        ).body(),
      );
  });
  app.setNotFoundHandler(async (request, reply) =>
    reply
      .code(404)
      .send(
        new HttpError(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`).body(),
      ),
  );

  // What was registered, for the test that holds it against the OpenAPI document.
  const registered: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) registered.push({ method, url: route.url });
  });
  app.decorate('registeredRoutes', registered);
  for (const module of await routeModules()) module.register(app, deps);
  return app;
}
