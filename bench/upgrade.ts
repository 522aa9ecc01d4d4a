/**
 * Benchmark: what an upgrade costs the clients of a deployment. Starts its own Temporal dev
 * server, fake-gcs-server, emulator and a worker (heartbeat throttle 1 s, as `garden-deploy worker`
 * defaults to), deploys the sample model, then, N times each, with a load generator sending chat
 * requests to the endpoint the whole time:
 *   - upgrades to a new fine-tune (canary 10 % → 50 % → 100 %): requests failed during the upgrade
 *     (target 0), and how the answers split between the revisions;
 *   - upgrades to a revision that fails half of its requests: the time from the failing gate
 *     evaluation to the endpoint's traffic being 100 % on the old revision again, as the emulator
 *     sees it (target 5 s, a gate interval of 500 ms included), and the requests failed meanwhile.
 * Prints every run, the medians and each as a ratio to its target.
 *
 *   npm run bench:upgrade [-- --runs 3]
 */
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { z } from 'zod';
import { createActivities } from '../src/activities';
import { getProgress, startDeployment, upgradeDeployment } from '../src/client';
import { dedicatedTarget } from '../src/gcp';
import type { DeploymentSpecInput } from '../src/spec';
import { startLoad } from '../test/harness/load';
import { type BenchStack, fmt, median, startBenchStack } from './stack';

const RESTORE_TARGET_MS = 5_000;
const ArgsSchema = z.object({ runs: z.coerce.number().int().min(1).max(20).default(3) });

interface UpgradeSample {
  sent: number;
  failed: number;
  toNew: number;
}

interface RollbackSample {
  restoreMs: number;
  failedAfterGate: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' } } });
  const args = ArgsSchema.parse(values);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const stack = await startBenchStack('upgrade');
  try {
    const worker = await Worker.create({
      connection: stack.native,
      namespace: stack.namespace,
      taskQueue: 'bench-upgrade',
      workflowBundle: { code: stack.workflowCode },
      activities: createActivities({
        gcp: stack.gcp,
        storage: stack.storage,
        options: { poll: { initialMs: 200, maxMs: 1_000 } },
      }),
      maxHeartbeatThrottleInterval: '1s',
    });
    const upgrades: UpgradeSample[] = [];
    const rollbacks: RollbackSample[] = [];
    await worker.runUntil(async () => {
      for (let run = 1; run <= args.runs; run++) {
        upgrades.push(await upgradeUnderLoad(stack, run));
        rollbacks.push(await failingRevision(stack, run));
      }
    });
    const failed = upgrades.reduce((sum, s) => sum + s.failed, 0);
    const sent = upgrades.reduce((sum, s) => sum + s.sent, 0);
    const restore = median(rollbacks.map((s) => s.restoreMs));
    process.stdout.write(
      `\n${args.runs} upgrades under load (canary 10 % → 50 % → 100 %):\n` +
        `  requests failed during the upgrades      ${failed} of ${sent} (target 0)\n` +
        `${args.runs} upgrades to a revision failing 50 % of its requests:\n` +
        `  failing gate → 100 % on the old revision median ${fmt(restore).padStart(8)}  = ${(restore / RESTORE_TARGET_MS).toFixed(2)} × the 5 s target\n`,
    );
    if (failed > 0) process.exitCode = 1;
  } finally {
    await stack.close();
  }
}

/** A serving deployment of its own project, and a load generator on its endpoint. */
async function servingDeployment(stack: BenchStack, name: string, gates: DeploymentSpecInput['gates']) {
  const project = `${name}-${Date.now().toString(36)}`;
  await stack.admin.setTiming(project, {
    importMs: 100,
    deployMs: 500,
    deployModelMs: 500,
    replicaRampMs: 500,
  });
  const spec: DeploymentSpecInput = {
    name,
    project,
    region: 'us-central1',
    model: { uri: stack.modelUri },
    machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
    strategy: { canary: { percent: 10, bake: '4s' }, linear: { step: 50, interval: '2s' } },
    gates,
  };
  const started = await startDeployment(stack.client, spec, { taskQueue: 'bench-upgrade' });
  const serving = await started.result();
  if (serving.outcome !== 'serving') throw new Error(`${name} ended ${serving.outcome}`);
  const target = dedicatedTarget({
    name: serving.resources.endpoint!,
    dedicatedEndpointDns: serving.resources.dedicatedEndpointDns!,
  });
  return { project, spec, serving, load: startLoad(stack.gcp, target, { workers: 4, pauseMs: 10 }) };
}

async function upgradeUnderLoad(stack: BenchStack, run: number): Promise<UpgradeSample> {
  const d = await servingDeployment(stack, `bench-up-${run}`, { interval: '500ms', minRequests: 5 });
  const next = { ...d.spec, model: { uri: await stack.uploadModel(`v2-${run}`) } };
  const result = await (await upgradeDeployment(stack.client, next)).result();
  const report = await d.load.stop();
  if (result.outcome !== 'completed') throw new Error(`run ${run}: the upgrade ended ${result.outcome}`);
  const r1 = d.serving.resources.deployedModelId!;
  const toNew = report.ok - (report.byDeployedModel[r1] ?? 0);
  process.stdout.write(
    `run ${run}: upgrade under load: ${report.failures.length} of ${report.sent} requests failed; ` +
      `${report.byDeployedModel[r1] ?? 0} answered by r1, ${toNew} by r2\n`,
  );
  for (const failure of report.failures.slice(0, 3)) process.stdout.write(`  failed: ${failure.message}\n`);
  return { sent: report.sent, failed: report.failures.length, toNew };
}

async function failingRevision(stack: BenchStack, run: number): Promise<RollbackSample> {
  const d = await servingDeployment(stack, `bench-fail-${run}`, { interval: '500ms', minRequests: 5 });
  const next = { ...d.spec, model: { uri: await stack.uploadModel(`bad-${run}`) } };
  await stack.admin.addFaultRules([
    { route: 'inference.*', project: d.project, model: `${d.spec.name}-r2`, action: '500', probability: 0.5 },
  ]);
  const r1 = d.serving.resources.deployedModelId!;
  const upgrade = await upgradeDeployment(stack.client, next);
  // The endpoint's split as the emulator holds it: when does r1 have all the traffic again?
  let shifted = false;
  let restoredAt = 0;
  const watching = (async () => {
    for (;;) {
      const endpoint = (await stack.admin.resources(d.project)).endpoints.find(
        (e) => e.name === d.serving.resources.endpoint,
      );
      const split = (endpoint?.trafficSplit ?? {}) as Record<string, number>;
      if ((split[r1] ?? 0) < 100) shifted = true;
      else if (shifted) return (restoredAt = Date.now());
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const result = await upgrade.result();
  await watching;
  const report = await d.load.stop();
  if (result.outcome !== 'rolled-back' || !result.failedGate)
    throw new Error(`run ${run}: the failing revision ended ${result.outcome}`);
  const gateAt = Date.parse(result.failedGate.at);
  const failedAfterGate = report.failures.filter((f) => f.at > gateAt).length;
  const status = await getProgress(stack.client, `deploy/${d.project}/us-central1/${d.spec.name}`);
  process.stdout.write(
    `run ${run}: failing revision rolled back (${result.failedGate.summary}); 100 % on r1 ` +
      `${fmt(restoredAt - gateAt)} after the gate failed; ${failedAfterGate} request(s) failed after it ` +
      `(stage now ${status.stage})\n`,
  );
  return { restoreMs: restoredAt - gateAt, failedAfterGate };
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:upgrade: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
