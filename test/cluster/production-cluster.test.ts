import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Storage } from '@google-cloud/storage';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getProgress, listDeployments, startDeployment, teardownDeployment } from '../../src/client';
import {
  EmulatorAdminClient,
  type RunningEmulator,
  startEmulator,
  writeEmulatorCredentials,
} from '../../src/emulator';
import { type TemporalCluster, startTemporalCluster } from '../../src/local-stack/cluster';
import { type FakeGcsServer, startFakeGcs } from '../../src/local-stack/fake-gcs';
import { type ManagedProcess, findFreePort } from '../../src/local-stack/process';
import { requireTool } from '../../src/local-stack/tools';
import { startLocalWorker } from '../../src/local-stack/worker';
import { generateSampleModel } from '../../src/sample-model';
import { createStorage } from '../../src/storage';
import { FAST_TIMING, publicSpec } from '../activities/env';
import { E2E_SETTINGS, uniqueName } from '../e2e/harness';
import { workerEnv as testWorkerEnv } from '../e2e/worker-process';
import { cliCommand, ensureBuilt } from '../harness/built-cli';
import { eventually } from '../harness/eventually';

/**
 * The production cluster on real parts, natively: PostgreSQL, the Temporal server 1.29.1 with SQL
 * visibility on config/temporal/ (the configuration docker-compose.yml runs), its Web UI server,
 * and three `garden-deploy worker` processes over fake-gcs-server and the emulator. A batch of
 * deployments runs while workers are SIGKILLed and the Temporal server restarts: every deployment
 * serves after exactly one `:deploy`, SQL visibility finds them by their search attributes, and
 * their teardown leaves nothing in the emulator.
 */

const REPO = path.resolve(__dirname, '../..');
const BATCH = 8;
const WORKERS = 3;
/** Conditions here span whole deployments and restarts on a loaded machine. */
const WAIT = { timeoutMs: 180_000, intervalMs: 250 };
// Each deployment takes about 20 s after its `:deploy`, so the batch is still deploying or waiting
// for replicas when workers die and the server restarts.
const TIMING = { ...FAST_TIMING, deployMs: 4_000, replicaRampMs: 15_000 };

let dir: string;
let cluster: TemporalCluster | undefined;
let gcs: FakeGcsServer | undefined;
let emulator: RunningEmulator | undefined;
let connection: Connection | undefined;
let client: Client;
let storage: Storage;
let admin: EmulatorAdminClient;
let workerEnv: NodeJS.ProcessEnv;
let modelUri: string;
const taskQueue = uniqueName('cluster');
const workers = new Set<ManagedProcess>();
let workersStarted = 0;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(path.join(os.tmpdir(), 'garden-deploy-cluster-'));
  const logDir = path.join(dir, 'logs');
  const bundle = path.join(dir, 'workflow-bundle.js');
  // Settled together, each kept as it comes up: afterAll stops whatever started when another fails.
  const starts = await Promise.allSettled([
    startTemporalCluster({ logDir, ui: true }).then((c) => (cluster = c)),
    findFreePort().then(async (port) => {
      gcs = await startFakeGcs({
        binary: requireTool('fakeGcs'),
        port,
        rootDir: path.join(dir, 'gcs'),
        logFile: path.join(logDir, 'fake-gcs.log'),
      });
    }),
    // As the Dockerfile builds it (in a child: bundling resolves the workflow sources as Node does).
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/build-workflow-bundle.ts', bundle], {
      cwd: REPO,
    }),
  ]);
  for (const start of starts) if (start.status === 'rejected') throw start.reason;
  const [startedCluster, startedGcs] = [cluster!, gcs!];
  emulator = await startEmulator({ port: 0, gcsEndpoint: startedGcs.endpoint });
  admin = new EmulatorAdminClient(emulator.url);
  storage = createStorage({ endpoint: startedGcs.endpoint });
  connection = await Connection.connect({ address: startedCluster.address });
  client = new Client({ connection, namespace: startedCluster.namespace });

  const bucket = uniqueName('cluster-models');
  await storage.createBucket(bucket);
  modelUri = (await generateSampleModel({ location: `gs://${bucket}/models/tiny/`, shards: 1 }, { storage }))
    .modelUri;
  workerEnv = testWorkerEnv({
    temporalAddress: startedCluster.address,
    namespace: startedCluster.namespace,
    taskQueue,
    dataDir: dir,
    emulatorUrl: emulator.url,
    credentialsFile: await writeEmulatorCredentials(path.join(dir, 'adc'), emulator.url),
    gcsEndpoint: startedGcs.endpoint,
    workflowBundle: bundle,
  });
});

afterAll(async () => {
  await Promise.allSettled([...workers].map((worker) => worker.stop(5_000)));
  await connection?.close();
  await emulator?.close();
  await Promise.allSettled([cluster?.stop(), gcs?.stop()]);
  if (dir && !process.env.GARDEN_DEPLOY_KEEP_TEST_DATA) await rm(dir, { recursive: true, force: true });
});

/** `garden-deploy worker` as users run it, waited on until Temporal sees it polling. */
async function startWorker(): Promise<ManagedProcess> {
  const cli = cliCommand('worker');
  const worker = await startLocalWorker({
    ...cli,
    env: workerEnv,
    temporalAddress: cluster!.address,
    namespace: cluster!.namespace,
    taskQueue,
    logFile: path.join(dir, 'logs', `worker-${++workersStarted}.log`),
  });
  workers.add(worker);
  void worker.exited.finally(() => workers.delete(worker));
  return worker;
}

/** SIGKILLs one worker and starts another in its place. */
async function killAndReplace(): Promise<void> {
  const [victim] = workers;
  process.kill(victim!.pid, 'SIGKILL');
  await victim!.exited;
  await startWorker();
}

describe('the production cluster (PostgreSQL, Temporal server with SQL visibility, three workers)', () => {
  it('serves a batch of deployments through worker SIGKILLs and a server restart: one :deploy each, nothing left after teardown', async () => {
    await Promise.all(Array.from({ length: WORKERS }, startWorker));
    const projects = Array.from({ length: BATCH }, (_, i) => `cluster-${i}-${uniqueName('p').slice(2)}`);
    await Promise.all(projects.map((project) => admin.setTiming(project, TIMING)));
    const started = await Promise.all(
      projects.map((project, i) =>
        startDeployment(client, publicSpec(project, modelUri, `cluster-${i}`), {
          taskQueue,
          settings: E2E_SETTINGS,
        }),
      ),
    );

    // A worker dies once deploy operations are in flight: the emulator has answered their `:deploy`.
    await eventually(
      'three :deploy calls',
      async () => {
        const stats = await Promise.all(projects.map((project) => admin.stats(project)));
        return stats.filter((s) => s.calls['vertex.deploy']).length >= 3;
      },
      WAIT,
    );
    await killAndReplace();

    // The server goes away and comes back on the same address and databases.
    await cluster!.restartServer();

    // Another worker dies while replicas come up.
    await eventually(
      'a deployment waiting for replicas',
      async () => {
        // All at once, so one slow query does not let the others' 15 s windows pass unseen; right
        // after the restart a query may fail: that deployment counts as not yet.
        const statuses = await Promise.all(
          started.map(({ workflowId }) => getProgress(client, workflowId).catch(() => undefined)),
        );
        return statuses.some((status) => status?.progress?.stage === 'WAITING_FOR_REPLICAS');
      },
      WAIT,
    );
    await killAndReplace();

    const results = await Promise.all(started.map((s) => s.result()));
    expect(results.map((r) => r.outcome)).toEqual(projects.map(() => 'serving'));
    for (const project of projects) {
      const stats = await admin.stats(project);
      expect(stats.calls['vertex.deploy'], `:deploy calls of ${project}`).toBe(1);
      expect(stats.creations, `creations in ${project}`).toEqual({ endpoint: 1, model: 1, deployedModel: 1 });
    }

    // SQL visibility finds the batch by the project's search attributes (ModelUri, DeployStage).
    const prefix = modelUri.slice(0, modelUri.indexOf('/models/') + 1);
    const listed = await eventually(
      'the batch listed as serving',
      async () => {
        const found = await listDeployments(client, { modelUri: prefix, stage: 'SERVING' });
        return found.length === BATCH ? found : undefined;
      },
      WAIT,
    );
    expect(listed.map((d) => d.deployment).sort()).toEqual(projects.map((_, i) => `cluster-${i}`).sort());

    // The Web UI server reaches the cluster through its own API.
    const namespace = await fetch(`${cluster!.uiUrl}/api/v1/namespaces/${cluster!.namespace}`);
    expect(namespace.status).toBe(200);

    const teardowns = await Promise.all(
      started.map(async (s) => (await teardownDeployment(client, s.workflowId)).result()),
    );
    expect(teardowns.map((t) => t.outcome)).toEqual(projects.map(() => 'torn-down'));
    const left = await admin.resources();
    expect({
      endpoints: left.endpoints.map((r) => r.name),
      models: left.models.map((r) => r.name),
      addresses: left.addresses.map((r) => r.name),
      forwardingRules: left.forwardingRules.map((r) => r.name),
    }).toEqual({ endpoints: [], models: [], addresses: [], forwardingRules: [] });

    // SIGTERM: each worker drains and exits 0.
    for (const worker of [...workers]) {
      await worker.stop(30_000);
      expect(await worker.exited).toEqual({ code: 0, signal: null });
    }
  });
});
