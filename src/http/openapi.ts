import { z } from 'zod';
import { REQUEST_ID_PATTERN } from '../client';
import { DeploymentSpecSchema } from '../spec';
import { type ApiOperation, IdempotencyKeySchema } from './api';
import { ErrorBodySchema } from './errors';
import { RequestStateSchema } from './schemas';

/**
 * The OpenAPI 3.1 document of the API, generated from the operations the route modules serve and
 * their zod schemas (the same way `npm run contract` makes the workflow contract): served at
 * GET /openapi.json and checked in as docs/openapi.json, which a test compares with a fresh one.
 */

type JsonSchema = Record<string, unknown>;

/** Shared schemas, referenced by name instead of inlined. */
const COMPONENTS: Array<[string, z.ZodType]> = [
  ['DeploymentSpec', DeploymentSpecSchema],
  ['Error', ErrorBodySchema],
  ['RequestState', RequestStateSchema],
];

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const component = COMPONENTS.find(([, known]) => known === schema);
  if (component) return { $ref: `#/components/schemas/${component[0]}` };
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    io,
    target: 'draft-2020-12',
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** Answers every (authenticated) operation may give besides its own. */
const COMMON_ERRORS: Record<number, string> = {
  401: 'No credentials, or not valid ones (missing, malformed, expired, another audience); nothing was done',
  403: 'Valid credentials of a caller that is not allowed; nothing was done',
  429: 'Too many requests from this caller; see Retry-After',
  500: 'Unexpected error; the server log has it under the X-Request-Id',
  503: 'Temporal, or the signing keys of ID tokens, cannot be reached; retry later',
};

function parametersOf(operation: ApiOperation): JsonSchema[] {
  const from = (schema: z.ZodObject | undefined, where: 'path' | 'query') =>
    Object.entries(schema?.shape ?? {}).map(([name, field]) => {
      const fieldSchema = jsonSchema(field as z.ZodType, 'input');
      const { description, ...rest } = fieldSchema;
      return {
        name,
        in: where,
        required: where === 'path' || !(field as z.ZodType).safeParse(undefined).success,
        ...(description ? { description } : {}),
        schema: rest,
      };
    });
  const idempotency = operation.mutating
    ? [
        {
          name: 'Idempotency-Key',
          in: 'header',
          required: true,
          description: IdempotencyKeySchema.description,
          schema: { type: 'string', pattern: REQUEST_ID_PATTERN.source },
        },
      ]
    : [];
  return [...from(operation.params, 'path'), ...from(operation.query, 'query'), ...idempotency];
}

function operationObject(operation: ApiOperation): JsonSchema {
  const responses: JsonSchema = {};
  for (const [status, response] of Object.entries(operation.responses)) {
    responses[status] =
      Number(status) >= 400
        ? errorResponse(response.description)
        : {
            description: response.description,
            ...(response.schema
              ? { content: { 'application/json': { schema: jsonSchema(response.schema, 'output') } } }
              : {}),
          };
  }
  if (operation.params || operation.query || operation.body || operation.mutating)
    responses['400'] ??= errorResponse('Invalid input: each problem with its field path; nothing was done');
  if (operation.body) responses['413'] ??= errorResponse('The body is larger than the server accepts');
  if (!operation.public)
    for (const [status, description] of Object.entries(COMMON_ERRORS))
      responses[status] ??= errorResponse(description);
  return {
    operationId: operation.operationId,
    summary: operation.summary,
    description: operation.description,
    tags: [operation.tag],
    ...(operation.public ? { security: [] } : {}),
    ...(parametersOf(operation).length ? { parameters: parametersOf(operation) } : {}),
    ...(operation.body
      ? {
          requestBody: {
            required: !operation.optionalBody,
            content: { 'application/json': { schema: jsonSchema(operation.body, 'input') } },
          },
        }
      : {}),
    responses,
  };
}

export function openApiDocument(operations: ApiOperation[]): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const operation of operations) {
    const path = (paths[operation.path] ??= {});
    path[operation.method.toLowerCase()] = operationObject(operation);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'garden-deploy',
      version: '1',
      description:
        'Deploy and control fine-tuned LLM deployments on Vertex AI (`garden-deploy serve`). Every call but ' +
        'this document needs `Authorization: Bearer <token>`: a static token or a Google-signed OIDC ID token. ' +
        'Calls that change something need an `Idempotency-Key`. See the README, section HTTP API.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'A static token (stored hashed by the server) or a Google-signed OIDC ID token',
        },
      },
      schemas: Object.fromEntries(
        COMPONENTS.map(([name, schema]) => {
          const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
            io: 'input',
            target: 'draft-2020-12',
            unrepresentable: 'any',
          }) as JsonSchema;
          return [name, rest];
        }),
      ),
    },
  };
}
