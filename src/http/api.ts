import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { REQUEST_ID_PATTERN } from '../client';
import { DeploymentSpecSchema, specIssues } from '../spec';
import type { Principal } from './auth';
import { HttpError } from './errors';

/**
 * An API operation, described once: the route registers from it (path, parameters, body checked
 * by its zod schemas, credentials and Idempotency-Key required or not) and the OpenAPI document is
 * generated from it, so the two cannot disagree.
 */
export interface ApiOperation {
  operationId: string;
  method: 'GET' | 'POST';
  /** OpenAPI style: `/v1/deployments/{project}`. */
  path: string;
  summary: string;
  description: string;
  tag: string;
  /** Served without credentials (the OpenAPI document, health). */
  public?: boolean;
  /** Changes something: needs an `Idempotency-Key` header. */
  mutating?: boolean;
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** JSON body; `optionalBody` when it may be left out. */
  body?: z.ZodType;
  optionalBody?: boolean;
  /** Successful answers (errors are documented for every operation). */
  responses: Record<number, { description: string; schema?: z.ZodType }>;
}

/** What a handler gets: the checked parts of the request and who sent it. */
export interface RouteInput<P = Record<string, string>, Q = Record<string, unknown>, B = unknown> {
  params: P;
  query: Q;
  body: B;
  principal?: Principal;
  /** Present on every mutating operation (checked before the handler runs). */
  idempotencyKey: string;
}

export interface RouteAnswer {
  status: number;
  body: unknown;
}

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    operation?: ApiOperation;
  }
}

/** Fastify's `:param` syntax for an OpenAPI path. */
export function routeUrl(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

/** Registers `operation` with its handler; parameters, query and body are checked against its schemas. */
export function addRoute<P, Q, B>(
  app: FastifyInstance,
  operation: ApiOperation,
  handler: (input: RouteInput<P, Q, B>, request: FastifyRequest) => Promise<RouteAnswer>,
): void {
  app.route({
    method: operation.method,
    url: routeUrl(operation.path),
    config: { operation },
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const idempotencyKey = operation.mutating ? idempotencyKeyOf(request) : '';
      const input = {
        params: check(operation.params, request.params, 'invalid_request', 'invalid path'),
        query: check(operation.query, request.query ?? {}, 'invalid_request', 'invalid query parameters'),
        body:
          operation.body && (request.body !== undefined || !operation.optionalBody)
            ? check(
                operation.body,
                request.body,
                operation.body === DeploymentSpecSchema ? 'invalid_spec' : 'invalid_request',
                operation.body === DeploymentSpecSchema ? 'invalid deployment spec' : 'invalid request body',
              )
            : undefined,
        ...(request.principal ? { principal: request.principal } : {}),
        idempotencyKey,
      } as RouteInput<P, Q, B>;
      const answer = await handler(input, request);
      return reply.code(answer.status).send(answer.body);
    },
  });
}

function check(schema: z.ZodType | undefined, value: unknown, code: string, message: string): unknown {
  if (!schema) return value;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new HttpError(400, code, message, specIssues(parsed.error));
  return parsed.data;
}

export const IdempotencyKeySchema = z
  .string()
  .regex(REQUEST_ID_PATTERN)
  .describe(
    'Makes the call safe to retry: the same key with the same body gets the first call’s answer and runs ' +
      'nothing twice; the same key with another body is refused (422). 1-128 of letters, digits, ".", "_", ":", "-"',
  );

function idempotencyKeyOf(request: FastifyRequest): string {
  const key = request.headers[IDEMPOTENCY_KEY_HEADER];
  if (typeof key !== 'string' || key === '')
    throw new HttpError(
      400,
      'idempotency_key_required',
      'this call changes something: send an Idempotency-Key header (e.g. a UUID), the same one when retrying it',
    );
  if (!IdempotencyKeySchema.safeParse(key).success)
    throw new HttpError(
      400,
      'invalid_idempotency_key',
      'the Idempotency-Key is 1-128 of letters, digits, ".", "_", ":" or "-"',
    );
  return key;
}
