/**
 * Benchmark: how fast a cancel takes effect. Starts its own Temporal dev server, fake-gcs-server,
 * emulator and a worker (heartbeat throttle 1 s, as `garden-deploy worker` defaults to), deploys
 * the sample model with a deploy operation that would run two minutes, and `cancel`s it N times,
 * measuring from the moment the request is sent:
 *   - until the running deploy activity sees its cancellation (it stops waiting on Google);
 *   - until Google's operation is cancelled (the emulator's operation is done, code CANCELLED);
 *   - until the cancel request answers with the outcome (everything removed).
 * Prints every run and the medians, and each as a ratio to the 2 s target.
 *
 *   npm run bench:cancel [-- --runs 5]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cancellationSignal } from '@temporalio/activity';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { z } from 'zod';
import { createActivities } from '../src/activities';
import { cancelDeployment, startDeployment } from '../src/client';
import { progressQuery } from '../src/workflows/messages';
import { fmt, median as medianOf, startBenchStack } from './stack';

const TARGET_MS = 2_000;
const ArgsSchema = z.object({ runs: z.coerce.number().int().min(1).max(50).default(5) });

interface Sample {
  activityMs: number;
  operationMs: number;
  outcomeMs: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' } } });
  const args = ArgsSchema.parse(values);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const stack = await startBenchStack('cancel');
  try {
    const { client, admin, gcp, storage, modelUri } = stack;
    const activities = createActivities({
      gcp,
      storage,
      options: { poll: { initialMs: 200, maxMs: 1_000 } },
    });
    let activityStoppedAt = 0;
    const finishDeploy = activities.finishDeploy;
    // When the activity learns of the cancellation (the answer to one of its heartbeats).
    activities.finishDeploy = (input) => {
      cancellationSignal().addEventListener('abort', () => (activityStoppedAt = performance.now()), {
        once: true,
      });
      return finishDeploy(input);
    };
    const worker = await Worker.create({
      connection: stack.native,
      namespace: stack.namespace,
      taskQueue: 'bench-cancel',
      workflowBundle: { code: stack.workflowCode },
      activities,
      maxHeartbeatThrottleInterval: '1s',
    });
    const samples: Sample[] = [];
    await worker.runUntil(async () => {
      for (let run = 1; run <= args.runs; run++) {
        const project = `bench-cancel-${run}-${Date.now().toString(36)}`;
        await admin.setTiming(project, { importMs: 100, deployMs: 120_000 });
        const started = await startDeployment(
          client,
          {
            name: `cancel-${run}`,
            project,
            region: 'us-central1',
            model: { uri: modelUri },
            machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
          },
          { taskQueue: 'bench-cancel', settings: { lateResourceGraceMs: 1_000 } },
        );
        const handle = client.workflow.getHandle(started.workflowId);
        // Cancel while the deploy activity waits on a running operation, its heartbeats established.
        for (;;) {
          const progress = await handle.query(progressQuery);
          const running = (await admin.resources(project)).operations.some((op) => op.done !== true);
          if (progress.stage === 'DEPLOYING' && progress.resources.deployOperation && running) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        await new Promise((r) => setTimeout(r, 3_000));
        activityStoppedAt = 0;
        const sent = performance.now();
        const request = await cancelDeployment(client, started.workflowId, { reason: 'bench' });
        let operationMs = Number.NaN;
        const watchOperation = (async () => {
          for (;;) {
            const ops = (await admin.resources(project)).operations;
            if (ops.length > 0 && ops.every((op) => op.done === true)) return performance.now() - sent;
            await new Promise((r) => setTimeout(r, 10));
          }
        })();
        operationMs = await watchOperation;
        const outcome = await request.result();
        const outcomeMs = performance.now() - sent;
        if (outcome.outcome !== 'cancelled') throw new Error(`run ${run} ended ${outcome.outcome}`);
        for (let i = 0; i < 500 && activityStoppedAt === 0; i++) await new Promise((r) => setTimeout(r, 10));
        const sample = { activityMs: activityStoppedAt - sent, operationMs, outcomeMs };
        samples.push(sample);
        process.stdout.write(
          `run ${run}: activity stopped after ${fmt(sample.activityMs)}, operation cancelled after ` +
            `${fmt(sample.operationMs)}, cancel answered (all removed) after ${fmt(sample.outcomeMs)}\n`,
        );
      }
    });
    const median = (pick: (s: Sample) => number) => medianOf(samples.map(pick));
    const line = (what: string, ms: number) =>
      `  ${what.padEnd(34)} median ${fmt(ms).padStart(8)}  = ${(ms / TARGET_MS).toFixed(2)} × the 2 s target\n`;
    process.stdout.write(`\n${args.runs} cancels during a running deploy operation:\n`);
    process.stdout.write(
      line(
        'cancel reaches the running activity',
        median((s) => s.activityMs),
      ),
    );
    process.stdout.write(
      line(
        'cancel reaches Google’s operation',
        median((s) => s.operationMs),
      ),
    );
    process.stdout.write(
      line(
        'cancel answered, all removed',
        median((s) => s.outcomeMs),
      ),
    );
  } finally {
    await stack.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:cancel: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
