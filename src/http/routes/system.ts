import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type ApiOperation, addRoute } from '../api';
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
  description: 'Answers while the server runs; says nothing about Temporal or the workers.',
  tag: 'system',
  public: true,
  responses: { 200: { description: 'Running', schema: z.object({ status: z.literal('ok') }) } },
};

export const operations: ApiOperation[] = [openApi, health];

export function register(app: FastifyInstance): void {
  let document: Promise<unknown> | undefined;
  addRoute(app, openApi, async () => {
    document ??= apiOperations().then(openApiDocument);
    return { status: 200, body: await document };
  });
  addRoute(app, health, async () => ({ status: 200, body: { status: 'ok' } }));
}
