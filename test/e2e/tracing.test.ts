import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardownDeployment } from '../../src/client';
import { createGcpClient, everyApiAt } from '../../src/gcp';
import { clientTracingInterceptors, installTracing, traceGcpCall } from '../../src/tracing';
import { freshProject, getActivityTestEnv, publicSpec, uploadModel } from '../activities/env';
import { closeTestEnv, getTestEnv } from '../harness/env';
import { type TestWorker, deploy, startTestWorker, uniqueName } from './harness';

/**
 * Tracing end to end: a client, an in-process worker with the SDK's OpenTelemetry interceptors and
 * the traced Google client, spans collected in memory. One deployment gives one trace: the client's
 * StartWorkflow span above the workflow's, activities under it, one span per Google call under them.
 */

const exporter = new InMemorySpanExporter();
// Simple (not batched): every span is in the exporter once it ends.
const tracing = installTracing('garden-deploy-test', { processor: new SimpleSpanProcessor(exporter) });
const PROMPT = 'Tracing canary prompt: name three colours of the sea';

let worker: TestWorker;
let modelUri: string;

beforeAll(async () => {
  const { emulatorUrl, credentialsFile } = await getActivityTestEnv();
  const gcp = createGcpClient({ ...everyApiAt(emulatorUrl), credentialsFile }, { observe: traceGcpCall });
  [worker, modelUri] = await Promise.all([startTestWorker(undefined, { tracing, gcp }), uploadModel()]);
});

afterAll(async () => {
  await worker?.stop();
  await closeTestEnv();
});

describe('tracing', () => {
  it('traces client → workflow → activities → Google calls in one tree, without secrets or prompts', async () => {
    const { connection, namespace } = await getTestEnv();
    const client = new Client({
      connection,
      namespace,
      interceptors: { workflow: clientTracingInterceptors() },
    });
    const project = await freshProject('e2e-tracing');
    const spec = {
      ...publicSpec(project, modelUri, uniqueName('traced')),
      smoke: { tests: [{ prompt: PROMPT }] },
    };
    const started = await deploy(client, worker.taskQueue, spec, 'traced');
    await expect(started.result()).resolves.toMatchObject({ outcome: 'serving' });
    // Torn down, so the workflow's run span ends (and is exported) too.
    expect((await (await teardownDeployment(client, started.workflowId)).result()).outcome).toBe('torn-down');
    await started.handle.result();

    const spans = exporter.getFinishedSpans();
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const parentOf = (s: ReadableSpan) => (s.parentSpanId ? byId.get(s.parentSpanId) : undefined);
    const ancestors = (s: ReadableSpan): ReadableSpan[] => {
      const up: ReadableSpan[] = [];
      for (let p = parentOf(s); p; p = parentOf(p)) up.push(p);
      return up;
    };

    // The client starts a deployment with update-with-start: its span is the trace's root.
    const start = spans.find((s) => /^(?:UpdateWithStart|Start)Workflow:/.test(s.name));
    expect(start, `a client start span among ${spans.map((s) => s.name).join(', ')}`).toBeDefined();
    const traceId = start!.spanContext().traceId;
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);

    const run = inTrace.find((s) => s.name.startsWith('RunWorkflow:'));
    expect(run, 'the workflow run span').toBeDefined();
    expect(ancestors(run!)).toContain(start);
    const handler = inTrace.find((s) => s.name.startsWith('HandleUpdate:'));
    expect(handler, 'the workflow update handler span').toBeDefined();
    expect(ancestors(handler!)).toContain(start);
    const scheduled = inTrace.filter((s) => s.name.startsWith('StartActivity:'));
    expect(scheduled.length).toBeGreaterThan(0);
    for (const s of scheduled) expect(ancestors(s), s.name).toContain(start);

    const activities = inTrace.filter((s) => s.name.startsWith('RunActivity:'));
    const names = new Set(activities.map((s) => s.name));
    expect(names).toContain('RunActivity:validateWeights');
    expect(names).toContain('RunActivity:startDeploy');
    for (const activity of activities) expect(parentOf(activity)?.name).toMatch(/^StartActivity:/);

    const deployCalls = inTrace.filter((s) => s.name.startsWith('gcp '));
    expect(deployCalls.map((s) => s.name)).toContainEqual('gcp vertex POST locations/*:deploy');
    // Every Google call, the teardown's (its own trace, from its update) included, is under an activity.
    const calls = spans.filter((s) => s.name.startsWith('gcp '));
    for (const call of calls) {
      expect(parentOf(call)?.name, call.name).toMatch(/^RunActivity:/);
      expect(call.attributes).toMatchObject({
        'gcp.service': expect.any(String),
        'http.route': expect.any(String),
        'http.response.status': expect.any(String),
      });
      expect(String(call.attributes['http.route'])).not.toContain(project);
    }

    const { admin } = await getActivityTestEnv();
    const tokens = (await admin.tokens()).map((t) => t.accessToken);
    expect(tokens.length).toBeGreaterThan(0);
    const text = JSON.stringify(
      spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })),
    );
    for (const token of tokens) expect(text.includes(token), 'an access token in a span').toBe(false);
    expect(text).not.toMatch(/bearer/i);
    expect(text).not.toContain(PROMPT);
  });
});
