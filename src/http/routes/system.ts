import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type ApiOperation, addRoute } from '../api';
import { HttpError } from '../errors';
import { healthOf } from '../health';
import { openApiDocument } from '../openapi';
import { apiOperations } from '../server';

/** What needs no credentials: the API's own description, and a liveness probe. */

const openApi: ApiOperation = {
  operationId: 'getOpenApi',
  method: 'GET',
  path: '/openapi.json',
  summary: 'This API’s OpenAPI 3.1 document',
  description: 'Generated from the same schemas the server checks requests with (also docs/openapi.json).',
  tag: 'system',
  public: true,
  responses: { 200: { description: 'The OpenAPI document' } },
};

const health: ApiOperation = {
  operationId: 'getHealth',
  method: 'GET',
  path: '/healthz',
  summary: 'Liveness',
  description:
    'Answers while the server runs; says nothing about Temporal or the workers. 503 once the server stopped ' +
    'doing part of its work for good (the storage-event subscription it pulls is gone), with why.',
  tag: 'system',
  public: true,
  responses: {
    200: { description: 'Running', schema: z.object({ status: z.literal('ok') }) },
    503: { description: 'Failing for good (code unavailable, the message says why): restart it once fixed' },
  },
};

export const operations: ApiOperation[] = [openApi, health];

export function register(app: FastifyInstance): void {
  let document: Promise<unknown> | undefined;
  addRoute(app, openApi, async () => {
    document ??= apiOperations().then(openApiDocument);
    return { status: 200, body: await document };
  });
  const state = healthOf(app);
  addRoute(app, health, async () => {
    if (state.failing !== undefined) throw new HttpError(503, 'unavailable', state.failing);
    return { status: 200, body: { status: 'ok' } };
  });
}
