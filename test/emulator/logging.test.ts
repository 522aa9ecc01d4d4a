import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectNumberFor } from '../../src/emulator';
import { closeTestEnv } from '../harness/env';
import {
  type ApiResponse,
  type TestEmulator,
  deployBody,
  deployReady,
  expectProtoRoundTrip,
  expectValidProto,
  startTestEmulator,
  uniqueProject,
  uploadSampleModel,
  waitForOperation,
} from './helpers';

/** Cloud Logging entries.list over the serving containers' lines. */

const REQUEST = 'google.logging.v2.ListLogEntriesRequest';
const RESPONSE = 'google.logging.v2.ListLogEntriesResponse';
const LOG_ID = 'aiplatform.googleapis.com%2Fprediction_container';

interface Entry {
  logName: string;
  timestamp: string;
  severity: string;
  insertId: string;
  labels: Record<string, string>;
  resource: { type: string; labels: Record<string, string> };
  jsonPayload: { message: string };
}

let t: TestEmulator;
let project: string;
/** A ready deployment and one whose server ran out of memory, on their own endpoints. */
let ready: { endpointId: string; deployedModelId: string };
const failedEndpoint = 'oom';
let since: string;

beforeAll(async () => {
  t = await startTestEmulator();
  const model = await uploadSampleModel({ family: 'llama', shards: 1 });
  project = uniqueProject('logs');
  since = new Date(Date.now() - 1000).toISOString();
  const { endpoint } = await deployReady(t.api, project, model, { endpoint: 'ready', model: 'ready' });
  ready = { endpointId: 'ready', deployedModelId: endpoint.deployedModels[0].id };
  await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['oom'] }]);
  const start = await t.api.post(
    `/v1beta1/projects/${project}/locations/us-central1:deploy`,
    deployBody(model, { endpoint: failedEndpoint, model: 'oom' }),
  );
  expect((await waitForOperation(t.api, start.json.name)).error.code).toBe(9);
});
afterAll(async () => {
  await t?.emulator.close();
  await closeTestEnv();
});

async function list(body: Record<string, unknown>): Promise<ApiResponse> {
  return t.api.post('/v2/entries:list', body);
}

/** A list call that must succeed, checked against the official messages. */
async function entries(body: Record<string, unknown>): Promise<{ entries: Entry[]; nextPageToken?: string }> {
  expectProtoRoundTrip(REQUEST, body);
  const res = await list(body);
  expect(res.status, res.text).toBe(200);
  expectValidProto(RESPONSE, res.json);
  return {
    entries: res.json.entries ?? [],
    ...(res.json.nextPageToken ? { nextPageToken: res.json.nextPageToken } : {}),
  };
}

const ofEndpoint = (id: string) =>
  `resource.type="aiplatform.googleapis.com/Endpoint" AND resource.labels.endpoint_id="${id}"`;

describe('entries.list', () => {
  it('reads one deployed model with the filter a client writes, oldest first by default', async () => {
    const filter = [
      ofEndpoint(ready.endpointId),
      'resource.labels.location="us-central1"',
      `logName="projects/${project}/logs/${LOG_ID}"`,
      `labels.deployed_model_id="${ready.deployedModelId}"`,
      `timestamp>="${since}"`,
    ].join(' AND ');
    const { entries: found } = await entries({
      resourceNames: [`projects/${project}`],
      filter,
      pageSize: 1000,
    });
    expect(found.length).toBeGreaterThan(10);
    for (const entry of found) {
      expect(entry).toMatchObject({
        logName: `projects/${project}/logs/${LOG_ID}`,
        resource: {
          type: 'aiplatform.googleapis.com/Endpoint',
          labels: {
            endpoint_id: 'ready',
            location: 'us-central1',
            resource_container: projectNumberFor(project),
          },
        },
        labels: { deployed_model_id: ready.deployedModelId },
      });
      expect(entry.labels.replica_id).toMatch(/^predictor-resource-pool-\d+-[0-9a-f]{10}-[a-z0-9]{5}$/);
      expect(Date.parse(entry.timestamp)).toBeGreaterThanOrEqual(Date.parse(since));
    }
    // Both replicas started; each said where it listens.
    const replicas = new Set(found.map((e) => e.labels.replica_id));
    expect(replicas.size).toBe(2);
    const uvicorn = found.filter((e) =>
      e.jsonPayload.message.includes('Uvicorn running on http://0.0.0.0:8080'),
    );
    expect(uvicorn).toHaveLength(2);
    expect(found.some((e) => e.jsonPayload.message.includes('Application startup complete'))).toBe(true);
    const times = found.map((e) => Date.parse(e.timestamp));
    expect(times).toEqual([...times].sort((a, b) => a - b));

    // The same by project number, with labels."KEY", a lower-case and, and newest first.
    const desc = await entries({
      resourceNames: [`projects/${projectNumberFor(project)}`],
      filter: `${ofEndpoint('ready')} and labels."deployed_model_id"="${ready.deployedModelId}"`,
      orderBy: 'timestamp desc',
      pageSize: 1000,
    });
    expect(desc.entries.map((e) => e.insertId)).toEqual(found.map((e) => e.insertId).reverse());
  });

  it('filters by severity and time, and pages without losing or repeating an entry', async () => {
    const resourceNames = [`projects/${project}`];
    const all = (await entries({ resourceNames, pageSize: 1000 })).entries;
    expect(new Set(all.map((e) => e.resource.labels.endpoint_id))).toEqual(
      new Set(['ready', failedEndpoint]),
    );
    const errors = (await entries({ resourceNames, filter: 'severity>=ERROR', pageSize: 1000 })).entries;
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => ['ERROR', 'CRITICAL', 'ALERT', 'EMERGENCY'].includes(e.severity))).toBe(true);
    const info = (await entries({ resourceNames, filter: 'severity = INFO', pageSize: 1000 })).entries;
    expect(info.length + errors.length).toBe(all.length);

    const middle = all[Math.floor(all.length / 2)]!.timestamp;
    const before = (await entries({ resourceNames, filter: `timestamp < "${middle}"`, pageSize: 1000 }))
      .entries;
    const after = (await entries({ resourceNames, filter: `timestamp >= "${middle}"`, pageSize: 1000 }))
      .entries;
    expect(before.length + after.length).toBe(all.length);
    expect(before.every((e) => e.timestamp < middle)).toBe(true);

    const paged: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await entries({
        resourceNames,
        orderBy: 'timestamp desc',
        pageSize: 7,
        ...(pageToken ? { pageToken } : {}),
      });
      expect(page.entries.length).toBeLessThanOrEqual(7);
      paged.push(...page.entries.map((e) => e.insertId));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(paged).toEqual(all.map((e) => e.insertId).reverse());
    // The default page is 50.
    const first = await entries({ resourceNames });
    expect(first.entries).toHaveLength(Math.min(50, all.length));

    const foreign = await list({ resourceNames, filter: 'severity>=ERROR', pageToken: first.nextPageToken });
    expect(foreign.status).toBe(400);
    expect(foreign.json.error.details[0].fieldViolations[0].field).toBe('page_token');
    expect((await t.admin.stats(project)).calls['logging.entries.list']).toBeGreaterThan(5);
  });

  it.each([
    ['no resource_names', { resourceNames: [] }, 'resource_names', 'resource_names is required'],
    [
      '101 resource names',
      { resourceNames: Array.from({ length: 101 }, (_, i) => `projects/p${i}`) },
      'resource_names',
      'at most 100',
    ],
    [
      'an organization',
      { resourceNames: ['organizations/123'] },
      'resource_names[0]',
      'the emulator reads projects/PROJECT_ID',
    ],
    ['a negative page size', { pageSize: -1 }, 'page_size', 'got -1'],
    ['a page size over 1000', { pageSize: 1001 }, 'page_size', 'to 1000'],
    ['another order', { orderBy: 'severity desc' }, 'order_by', '"timestamp asc"'],
    ['OR', { filter: 'severity>=ERROR OR severity=INFO' }, 'filter', 'not supported at "OR"'],
    ['NOT', { filter: 'NOT severity>=ERROR' }, 'filter', 'not supported at "NOT"'],
    ['a payload search', { filter: 'textPayload:"CUDA"' }, 'filter', 'not supported at "textPayload : CUDA"'],
    ['an unknown severity', { filter: 'severity>=LOUD' }, 'filter', 'not a LogSeverity'],
    ['a time that is no time', { filter: 'timestamp>="yesterday"' }, 'filter', 'not an RFC 3339 time'],
    ['a filter over 20 000 characters', { filter: `labels.x="${'a'.repeat(20_000)}"` }, 'filter', '20000'],
    ['an unknown field', { pageSise: 5 }, '', 'Unknown name "pageSise"'],
  ])('refuses %s, naming the field', async (_what, over, field, message) => {
    const res = await list({ resourceNames: [`projects/${project}`], ...over });
    expect(res.status, res.text).toBe(400);
    expect(res.json.error.status).toBe('INVALID_ARGUMENT');
    expect(res.json.error.message).toContain(message);
    const violation = res.json.error.details?.[0]?.fieldViolations?.[0];
    if (field) expect(violation.field).toBe(field);
  });

  it('answers {} when nothing matches, is denied by a 403 rule on logging.*, and forgets entries on reset', async () => {
    const other = uniqueProject('no-logs');
    expect((await list({ resourceNames: [`projects/${other}`] })).json).toEqual({});
    await t.admin.addFaultRules([{ route: 'logging.*', project: other, action: '403' }]);
    const denied = await list({ resourceNames: [`projects/${other}`] });
    expect(denied.status).toBe(403);
    expect(denied.json.error.message).toBe(
      `Permission 'logging.logEntries.list' denied on resource '//logging.googleapis.com/projects/${other}' (or it may not exist).`,
    );
    expect(
      (await t.api.post('/v2/entries:list', { resourceNames: [`projects/${other}`] }, { auth: false }))
        .status,
    ).toBe(401);

    const scratch = uniqueProject('reset-logs');
    const start = await t.api.post(
      `/v1beta1/projects/${scratch}/locations/us-central1:deploy`,
      deployBody(await uploadSampleModel({ family: 'llama', shards: 1 })),
    );
    await waitForOperation(t.api, start.json.name);
    expect((await entries({ resourceNames: [`projects/${scratch}`] })).entries.length).toBeGreaterThan(0);
    await t.admin.reset(scratch);
    expect((await list({ resourceNames: [`projects/${scratch}`] })).json).toEqual({});
    // Other projects keep theirs.
    expect((await entries({ resourceNames: [`projects/${project}`] })).entries.length).toBeGreaterThan(0);
  });
});
