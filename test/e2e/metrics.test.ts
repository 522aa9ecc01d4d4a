import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teardownDeployment, upgradeDeployment } from '../../src/client';
import { findFreePort } from '../../src/local-stack/process';
import { METRICS } from '../../src/metrics';
import { freshProject, publicSpec, uploadModel } from '../activities/env';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import { E2E_WAIT, deploy, expectNothingLeft, uniqueName } from './harness';
import { workerProcesses } from './worker-process';

/**
 * `garden-deploy worker` with GARDEN_DEPLOY_METRICS_ADDRESS serves one Prometheus endpoint with the
 * SDK's metrics and the product's, and the product's counters move as a deployment is deployed,
 * upgraded and torn down. A worker process of its own: the runtime (and its exporter) is installed
 * once per process.
 */

let modelUri: string;
const workers = workerProcesses('metrics');

beforeAll(async () => {
  modelUri = await uploadModel();
}, 120_000);

afterAll(async () => {
  await workers.stop();
  await closeTestEnv();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

const counter = (metric: { name: string }) => `${metric.name}_total`;

describe('Prometheus metrics of the worker', () => {
  it('serves the SDK’s metrics and the product’s, which move as a deployment deploys, upgrades and is torn down', async () => {
    const project = await freshProject('e2e-metrics', { deployModelMs: 300 });
    const taskQueue = uniqueTaskQueue('e2e-metrics');
    const { client } = await getTestEnv();
    const address = `127.0.0.1:${await findFreePort()}`;
    const worker = await workers.start(taskQueue, { GARDEN_DEPLOY_METRICS_ADDRESS: address });
    const scrape = async () => {
      const res = await fetch(`http://${address}/metrics`);
      expect(res.status).toBe(200);
      return parseExposition(await res.text());
    };
    /** Scrapes until `ready` holds (the exporter reads what was recorded so far). */
    const until = (what: string, ready: (samples: Sample[]) => boolean) =>
      eventually(
        what,
        async () => {
          const samples = await scrape();
          return ready(samples) ? samples : undefined;
        },
        E2E_WAIT,
      );

    // The SDK's own: slots and pollers of a polling worker.
    const idle = await until(
      'the SDK’s worker metrics',
      (s) => total(s, 'temporal_worker_task_slots_available', { task_queue: taskQueue }) > 0,
    );
    expect(total(idle, 'temporal_num_pollers', { task_queue: taskQueue })).toBeGreaterThan(0);
    expect(total(idle, counter(METRICS.deploymentsStarted))).toBe(0);

    const spec = {
      ...publicSpec(project, modelUri, uniqueName('metrics')),
      // No traffic here: the canary passes as idle (onIdle: promote) once its bake ends.
      strategy: { canary: { percent: 10, bake: '1s' } },
      gates: { interval: '200ms', minRequests: 0, onIdle: 'promote' as const },
    };
    const started = await deploy(client, taskQueue, spec, 'metrics');
    expect((await started.result()).outcome).toBe('serving');

    const serving = await until(
      'the first deploy’s metrics',
      (s) => total(s, counter(METRICS.stageTransitions), { stage: 'SERVING' }) >= 1,
    );
    expect(total(serving, counter(METRICS.deploymentsStarted), { kind: 'deploy' })).toBe(1);
    for (const stage of ['VALIDATING', 'DEPLOYING', 'WAITING_FOR_REPLICAS'])
      expect(total(serving, counter(METRICS.stageTransitions), { stage }), stage).toBe(1);
    // Every step that ran, once, as succeeded (workflow time, in seconds).
    const steps = `${METRICS.stepDuration.name}_count`;
    for (const step of ['validate', 'deploy', 'waitForReplicas'])
      expect(total(serving, steps, { step, status: 'succeeded' }), step).toBe(1);
    expect(total(serving, steps, { status: 'failed' })).toBe(0);
    // Google: the Model Garden deploy and the reads after it, by service, route and status.
    const calls = counter(METRICS.gcpCalls);
    expect(total(serving, calls, { service: 'vertex', status: '200' })).toBeGreaterThan(0);
    expect(
      total(serving, calls, { service: 'vertex', method: 'POST locations/*:deploy', status: '200' }),
    ).toBe(1);
    const methods = serving.filter((s) => s.name === calls).map((s) => s.labels.method!);
    for (const method of methods) expect(method).not.toMatch(new RegExp(project));
    // Each budgeted call waited (0 s or more) for the Vertex budget of its project.
    expect(total(serving, `${METRICS.apiBudgetWait.name}_count`, { service: 'vertex' })).toBeGreaterThan(0);
    // The SDK's task latencies, in seconds.
    expect(
      total(serving, 'temporal_activity_schedule_to_start_latency_count', { task_queue: taskQueue }),
    ).toBeGreaterThan(0);
    expect(
      total(serving, 'temporal_workflow_task_schedule_to_start_latency_count', { task_queue: taskQueue }),
    ).toBeGreaterThan(0);

    // An upgrade: its gates are evaluated (idle: nothing is served here) and it completes.
    const upgrade = await upgradeDeployment(client, { ...spec, model: { uri: await uploadModel() } });
    expect((await upgrade.result()).outcome).toBe('completed');
    const upgraded = await until(
      'the upgrade’s metrics',
      (s) => total(s, counter(METRICS.upgradesEnded), { outcome: 'completed' }) === 1,
    );
    expect(total(upgraded, counter(METRICS.gateEvaluations), { verdict: 'idle' })).toBeGreaterThan(0);
    expect(
      total(upgraded, counter(METRICS.gateChecks), { gate: 'traffic', verdict: 'skipped' }),
    ).toBeGreaterThan(0);
    expect(total(upgraded, counter(METRICS.stageTransitions), { stage: 'UPGRADING' })).toBe(1);
    expect(
      total(upgraded, counter(METRICS.compensations), {
        scope: 'upgrade',
        task: 'retirePrevious',
        outcome: 'done',
      }),
    ).toBe(2); // undeploy r1, then delete its model
    expect(
      total(upgraded, calls, { service: 'vertex', method: 'POST endpoints/*:deployModel', status: '200' }),
    ).toBe(1);
    expect(total(upgraded, calls, { service: 'monitoring', method: 'GET timeSeries' })).toBeGreaterThan(0);

    // The teardown: its compensations, and how the deployment ended.
    expect((await (await teardownDeployment(client, started.workflowId)).result()).outcome).toBe('torn-down');
    await expectNothingLeft(project);
    const ended = await until(
      'the teardown’s metrics',
      (s) => total(s, counter(METRICS.deploymentsEnded), { outcome: 'torn-down' }) === 1,
    );
    expect(total(ended, counter(METRICS.stageTransitions), { stage: 'TORN_DOWN' })).toBe(1);
    const removed = { scope: 'deployment', outcome: 'removed' };
    for (const task of ['undeployModels', 'deleteEndpoint', 'deleteModel'])
      expect(total(ended, counter(METRICS.compensations), { ...removed, task }), task).toBeGreaterThan(0);
    expect(total(ended, counter(METRICS.compensations), { outcome: 'blocked' })).toBe(0);
    // The upgrade's staging endpoint, then the deployment's.
    expect(total(ended, calls, { service: 'vertex', method: 'DELETE endpoints/*', status: '200' })).toBe(2);

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  }, 180_000);

  it('names the variable and exits 1 when the metrics port is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      await expect(
        workers.start(uniqueTaskQueue('e2e-metrics-taken'), {
          GARDEN_DEPLOY_METRICS_ADDRESS: `127.0.0.1:${port}`,
        }),
      ).rejects.toThrow(
        new RegExp(
          `worker exited \\(1\\) before polling:[^]*cannot serve metrics at GARDEN_DEPLOY_METRICS_ADDRESS=127\\.0\\.0\\.1:${port}`,
        ),
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  }, 60_000);
});
