import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractFiles } from '../../scripts/generate-contract';
import { routeUrl } from '../../src/http/api';
import { readDeploymentSpecDocument } from '../../src/spec';
import { type TestApi, call, startApi, staticToken } from './harness';

/**
 * The OpenAPI 3.1 document: checked in as generated, valid for a standard OpenAPI validator,
 * served as is, describing exactly the routes the server registers, its spec schema the one the
 * contract publishes.
 */

const REPO = path.resolve(__dirname, '../..');
type Json = Record<string, unknown>;

let api: TestApi;
let document: Json;
beforeAll(async () => {
  document = JSON.parse(await readFile(path.join(REPO, 'docs/openapi.json'), 'utf8')) as Json;
  // The routes need no Temporal to be listed and the document needs none to be served.
  api = await startApi({} as never, { auth: { tokens: staticToken().tokens } });
});
afterAll(() => api?.close());

describe('the OpenAPI document', () => {
  it('is checked in as generated now (run `npm run contract` after changing the API)', async () => {
    const generated = (await contractFiles()).get('docs/openapi.json');
    const checkedIn = await readFile(path.join(REPO, 'docs/openapi.json'), 'utf8');
    expect(checkedIn, 'docs/openapi.json is stale: run npm run contract').toBe(generated);
  });

  it('is a valid OpenAPI 3.1 document for a standard validator', async () => {
    const { Validator } = await import('@seriousme/openapi-schema-validator');
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('is what GET /openapi.json serves, without credentials', async () => {
    const served = await call(api, 'GET', '/openapi.json');
    expect(served.status).toBe(200);
    expect(served.body).toEqual(document);
  });

  it('documents every route the server registers, and nothing else', () => {
    const documented = Object.entries(document.paths as Record<string, Json>).flatMap(([p, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${routeUrl(p)}`),
    );
    const registered = api.app.registeredRoutes.map((route) => `${route.method} ${route.url}`);
    expect(registered.sort()).toEqual(documented.sort());
    expect(registered).toContain('POST /v1/deployments/:project/:region/:name/teardown');
  });

  it('holds the spec schema the contract publishes, and it describes every example spec', async () => {
    const components = (document.components as { schemas: Record<string, Json> }).schemas;
    const contract = JSON.parse(
      await readFile(path.join(REPO, 'docs/contract/deployment-spec.schema.json'), 'utf8'),
    ) as Json;
    const { $schema: _s, $comment: _c, title: _t, description: _d, ...contractSpec } = contract;
    expect(components.DeploymentSpec).toEqual(contractSpec);
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const validate = ajv.compile(components.DeploymentSpec!);
    const dir = path.join(REPO, 'examples');
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml'))) {
      const spec = await readDeploymentSpecDocument(path.join(dir, file));
      expect(validate(spec), `${file}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
  });

  it('asks for credentials everywhere but the document and health, and an Idempotency-Key on every POST to a deployment', () => {
    for (const [p, methods] of Object.entries(document.paths as Record<string, Record<string, Json>>)) {
      for (const [method, operation] of Object.entries(methods)) {
        const open = p === '/openapi.json' || p === '/healthz';
        expect(operation.security, `${method} ${p}`).toEqual(open ? [] : undefined);
        if (!open) expect(Object.keys(operation.responses as Json), `${method} ${p}`).toContain('401');
        const header = (operation.parameters as Json[] | undefined)?.find(
          (x) => x.name === 'Idempotency-Key',
        );
        // Storage events (/v1/events/…) are deduped by their object generation instead.
        if (p.startsWith('/v1/deployments'))
          expect(Boolean(header), `${method} ${p}`).toBe(method === 'post');
      }
    }
  });
});
