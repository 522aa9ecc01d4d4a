/**
 * Benchmark: what orchestration costs one deployment. Starts its own Temporal dev server,
 * fake-gcs-server, emulator and `garden-deploy worker` as a child process (its default API
 * budgets), then, N times each and alternating which goes first, on fresh projects whose emulator
 * deploy takes `--deploy-ms` and whose replica takes `--ramp-ms`:
 *   - garden-deploy: from `startDeployment` until the deploy request answers `serving`;
 *   - a straight script: the same activities, in the order the workflow runs them, called one
 *     after the other in this process with no Temporal (so the same Google calls, budgets and
 *     poll backoff), from validation to the smoke test.
 * Prints both and garden-deploy ÷ script (target ≤ 1.05), and how late each noticed Google:
 * completion lag = the deploy operation's end (the emulator's updateTime) → the deploy step done
 * (its activity's completion event; the script: its return), readiness lag = the replica available
 * (the deployed model's creation + the ramp) → the replica wait done.
 *
 *   npm run bench:overhead [-- --runs 3 --deploy-ms 30000 --ramp-ms 30000]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { z } from 'zod';
import { type DeploymentActivities, type OwnershipProof, createActivities } from '../src/activities';
import { startDeployment } from '../src/client';
import { type DeploymentSpecInput, deploymentWorkflowId, parseDeploymentSpec } from '../src/spec';
import { ApiBudgets, budgetedGcpClient } from '../src/worker/rate-limit';
import { DEFAULT_SETTINGS } from '../src/workflows/deployment/activities';
import { smokeTarget } from '../src/workflows/deployment/deploy-steps';
import { type BenchStack, type BenchWorker, fmt, median, startBenchStack, startWorkerProcess } from './stack';
import { googleTimelines, historyTimeline, lagsOf } from './timeline';

const TARGETS = { ratio: 1.05, completionLagMs: 1_000 };
const TASK_QUEUE = 'bench-overhead';
const REGION = 'us-central1';

const ArgsSchema = z.object({
  runs: z.coerce.number().int().min(1).max(20).default(3),
  deployMs: z.coerce.number().int().min(0).default(30_000),
  rampMs: z.coerce.number().int().min(0).default(30_000),
});
type Args = z.infer<typeof ArgsSchema>;

interface Sample {
  ms: number;
  completionMs?: number;
  readinessMs?: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string' }, 'deploy-ms': { type: 'string' }, 'ramp-ms': { type: 'string' } },
  });
  const args = ArgsSchema.parse({
    runs: values.runs,
    deployMs: values['deploy-ms'],
    rampMs: values['ramp-ms'],
  });
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const stack = await startBenchStack('overhead');
  let worker: BenchWorker | undefined;
  try {
    worker = await startWorkerProcess(stack, TASK_QUEUE);
    const { config } = worker;
    // The worker's own budgets and poll backoff, so both make the same calls at the same pace.
    const activities = createActivities({
      gcp: budgetedGcpClient(stack.gcp, new ApiBudgets(config.apiBudget, config.apiBudgetWorkers)),
      storage: stack.storage,
      options: config.activityOptions,
    });
    const tag = Date.now().toString(36);
    const project = async (
      label: string,
      timing: { deployMs: number; replicaRampMs: number } | undefined,
    ) => {
      const id = `${label}-${tag}`;
      if (timing) await stack.admin.setTiming(id, timing);
      return id;
    };
    // Warm-ups at the emulator's default (fast) timing: JIT, the first token, the first workflow context.
    await viaGardenDeploy(stack, await project('ow', undefined));
    await viaScript(stack, activities, await project('sw', undefined));

    const timing = { deployMs: args.deployMs, replicaRampMs: args.rampMs };
    const garden: Sample[] = [];
    const script: Sample[] = [];
    for (let run = 1; run <= args.runs; run++) {
      // Alternating which goes first, so a drift of the machine's load favours neither.
      const order = run % 2 === 1 ? (['garden', 'script'] as const) : (['script', 'garden'] as const);
      for (const which of order) {
        if (which === 'garden') garden.push(await viaGardenDeploy(stack, await project(`og${run}`, timing)));
        else script.push(await viaScript(stack, activities, await project(`os${run}`, timing)));
      }
      const [g, s] = [garden.at(-1)!, script.at(-1)!];
      process.stdout.write(
        `run ${run}: garden-deploy ${fmt(g.ms)}, script ${fmt(s.ms)} = ${(g.ms / s.ms).toFixed(3)} ×; ` +
          `completion lag ${lag(g.completionMs)} vs ${lag(s.completionMs)}, readiness lag ${lag(g.readinessMs)} vs ${lag(s.readinessMs)}\n`,
      );
    }
    report(args, garden, script);
  } finally {
    await worker?.process.stop(30_000);
    await stack.close();
  }
}

function specOf(project: string, modelUri: string): DeploymentSpecInput {
  return {
    name: 'overhead',
    project,
    region: REGION,
    model: { uri: modelUri },
    machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
  };
}

async function viaGardenDeploy(stack: BenchStack, project: string): Promise<Sample> {
  const start = Date.now();
  const started = await startDeployment(stack.client, specOf(project, stack.modelUri), {
    taskQueue: TASK_QUEUE,
  });
  const result = await started.result();
  const ms = Date.now() - start;
  if (result.outcome !== 'serving') throw new Error(`${started.workflowId} ended ${result.outcome}`);
  const [history, google] = await Promise.all([
    historyTimeline(stack.client, started.workflowId, started.runId),
    googleTimelines(stack.admin, project),
  ]);
  return { ms, ...lagsOf(history, google.get('overhead')) };
}

/**
 * The first deploy as a plain script: the workflow's activities in its order (validate → quota
 * check → `:deploy` → its operation → replicas → configure → smoke), each run once to its end in
 * this process, with the inputs the workflow gives them.
 */
async function viaScript(
  stack: BenchStack,
  activities: DeploymentActivities,
  project: string,
): Promise<Sample> {
  const requested = parseDeploymentSpec(specOf(project, stack.modelUri));
  const workflowId = deploymentWorkflowId(requested);
  const runId = randomUUID();
  // An activity context per call as the workflow schedules it: the budgets charge the project named
  // by the workflow id; the heartbeat timeout paces the activities' waits and heartbeats.
  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
    new MockActivityEnvironment(
      {
        workflowExecution: { workflowId, runId },
        scheduledTimestampMs: Date.now(),
        currentAttemptScheduledTimestampMs: Date.now(),
        heartbeatTimeoutMs: DEFAULT_SETTINGS.heartbeatTimeoutMs,
      },
      { logger: quietLogger },
    ).run(fn, ...args) as Promise<R>;

  const start = Date.now();
  const validated = await run(activities.validateWeights, requested);
  const { ids } = validated;
  const ownership: OwnershipProof = {
    deploymentLabel: requested.name,
    endpointDisplayName: ids.endpointDisplayName,
    modelDisplayName: ids.modelDisplayName,
    notBefore: Date.now(),
    identity: { project, region: REGION, name: requested.name, workflowId, incarnation: runId, revision: 1 },
    fingerprints: {},
  };
  const quota = await run(activities.checkServingQuota, {
    project,
    region: REGION,
    machines: validated.machines ?? [validated.spec.machine],
    maxReplicas: validated.spec.replicas.max,
  });
  const spec = { ...validated.spec, machine: quota.machine };
  const submitted = await run(activities.startDeploy, { spec, ids, ownership });
  const deployed = await run(activities.finishDeploy, {
    spec,
    ids,
    ownership,
    deadline: Date.now() + spec.timeouts.deploy,
    ...(submitted.operation ? { operation: submitted.operation } : {}),
  });
  const deployFinishedAt = Date.now();
  Object.assign(ownership.fingerprints!, deployed.fingerprints);
  const endpoint = deployed.resources.endpoint!;
  const replicas = await run(activities.waitForReplicas, {
    endpoint,
    deployedModelId: deployed.resources.deployedModelId,
    minReplicas: spec.replicas.min,
    deadline: Date.now() + spec.timeouts.replicas,
  });
  const replicasAt = Date.now();
  if (replicas.deployedModelId) {
    await run(activities.configureDeployedModel, {
      endpoint,
      deployedModelId: replicas.deployedModelId,
      ownership,
      containerLogging: spec.logging.container,
    });
  }
  const target = smokeTarget(validated, replicas.dedicatedEndpointDns, undefined);
  if (target.kind !== 'skip') {
    const smoke = await run(activities.runSmokeTests, { endpoint, target, tests: spec.smoke.tests });
    if (smoke.results.some((r) => !r.passed)) throw new Error(`the script's smoke test failed in ${project}`);
  }
  const ms = Date.now() - start;
  const google = (await googleTimelines(stack.admin, project)).get(requested.name);
  return {
    ms,
    ...lagsOf(
      {
        events: 0,
        completed: new Map([
          ['finishDeploy', deployFinishedAt],
          ['waitForReplicas', replicasAt],
        ]),
      },
      google,
    ),
  };
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

const lag = (ms: number | undefined) => (ms === undefined ? '-' : fmt(ms));

function report(args: Args, garden: Sample[], script: Sample[]): void {
  const g = median(garden.map((s) => s.ms));
  const s = median(script.map((x) => x.ms));
  const lags = (samples: Sample[], pick: (s: Sample) => number | undefined) => {
    const values = samples.map(pick).filter((v): v is number => v !== undefined);
    return values.length > 0 ? { median: median(values), max: Math.max(...values) } : undefined;
  };
  const both = (pick: (s: Sample) => number | undefined) => {
    const [gl, sl] = [lags(garden, pick), lags(script, pick)];
    return `garden-deploy median ${gl ? fmt(gl.median) : '-'} (max ${gl ? fmt(gl.max) : '-'}), script median ${sl ? fmt(sl.median) : '-'}`;
  };
  const completion = lags(garden, (x) => x.completionMs);
  process.stdout.write(
    `\n${args.runs} deployments each way (emulator: deploy ${fmt(args.deployMs)}, replica ramp ${fmt(args.rampMs)}):\n` +
      `  garden-deploy                        median ${fmt(g).padStart(9)}\n` +
      `  straight script                      median ${fmt(s).padStart(9)}\n` +
      `  garden-deploy ÷ script               ${(g / s).toFixed(3)} × (target ≤ ${TARGETS.ratio}: ${g / s <= TARGETS.ratio ? 'met' : 'NOT met'})\n` +
      `  completion lag (op done → step done) ${both((x) => x.completionMs)}` +
      (completion
        ? ` (target ≤ 1 s: ${completion.max <= TARGETS.completionLagMs ? 'met' : 'NOT met'})\n`
        : '\n') +
      `  readiness lag (replica → step done)  ${both((x) => x.readinessMs)}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench:overhead: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
