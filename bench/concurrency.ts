/**
 * Benchmark: N deployments at once on ONE worker process. For each N it starts its own Temporal
 * (the pinned dev server; `--temporal cluster`: the production cluster's temporal-server on
 * PostgreSQL, as `npm run test:cluster` runs it), fake-gcs-server (one tiny sample model) and
 * emulator, and `garden-deploy worker`
 * (src/worker/main.ts) as a child process with every project's API budget set to `--budget` calls
 * per second; each project's emulator deploy takes `--deploy-ms` and its replica `--ramp-ms`. Then:
 *   - one deployment alone, after a warm-up one: the ideal;
 *   - N deployments spread over `--projects` projects, started `--start-concurrency` at a time;
 *     wall time until all serve (the DeployStage search attribute, counted by a visibility query
 *     every 500 ms: cheap at any N) ÷ the ideal;
 *   - start → `:deploy` call (the emulator's operation createTime), median and worst;
 *   - the worker's peak RSS (/proc/PID/status every 500 ms, and the kernel's VmHWM);
 *   - the peak calls per second of each project and service, from the emulator's call rates, vs
 *     the budget;
 *   - history events per deployment and the workflow's lag behind Google (a sample of histories);
 *   - CPU seconds of the worker, the Temporal server and this process (emulator and client);
 * then tears every deployment down, checks the emulator holds nothing, stops everything and
 * checks no process is left. Prints each N's figures as ratios to the acceptance targets.
 *
 *   npm run bench:concurrency [-- 50 200 1000] [--projects 20 --budget 20 --sample 100]
 *     [--temporal cluster] [--worker-env GARDEN_DEPLOY_MAX_CONCURRENT_ACTIVITIES=1000 …]
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { z } from 'zod';
import { startDeployment, teardownDeployment } from '../src/client';
import type { CallService } from '../src/emulator/call-rates';
import { DeployStage, DeploymentName } from '../src/search-attributes';
import type { DeploymentSpecInput } from '../src/spec';
import { WorkerEnvSchema, describeWorkerConfig } from '../src/worker/config';
import {
  type BenchStack,
  type BenchWorker,
  cpuSeconds,
  isRunning,
  mapLimit,
  median,
  quantile,
  sampleRss,
  startBenchStack,
  startWorkerProcess,
} from './stack';
import { type GoogleTimeline, googleTimelines, historyTimeline, lagsOf } from './timeline';

const TARGETS = { wallRatio: 1.5, rssBytes: 512 * 1024 ** 2, historyEvents: 150, completionLagMs: 1_000 };
const REGION = 'us-central1';
const TASK_QUEUE = 'bench-concurrency';
const MIB = 1024 ** 2;

const ArgsSchema = z.object({
  counts: z.array(z.coerce.number().int().min(1).max(5_000)).default([50]),
  projects: z.coerce.number().int().min(1).max(200).default(20),
  budget: z.coerce.number().positive().max(10_000).default(20),
  deployMs: z.coerce.number().int().min(0).default(30_000),
  rampMs: z.coerce.number().int().min(0).default(30_000),
  startConcurrency: z.coerce.number().int().min(1).max(500).default(20),
  sample: z.coerce.number().int().min(1).max(5_000).default(100),
  timeoutMin: z.coerce
    .number()
    .positive()
    .max(24 * 60)
    .default(45),
  temporal: z.enum(['dev', 'cluster']).default('dev'),
  /** `KEY=VALUE` worker variables on top of the budgets (e.g. GARDEN_DEPLOY_MAX_CONCURRENT_ACTIVITIES=1000). */
  workerEnv: z
    .array(z.string().regex(/^[A-Z_][A-Z0-9_]*=.*$/, 'a worker variable is KEY=VALUE'))
    .default([])
    .transform((pairs) =>
      Object.fromEntries(
        pairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
      ),
    ),
});
type Args = z.infer<typeof ArgsSchema>;

/** The stages a first deploy ends in when it does not serve. */
const ENDED_BADLY = ['FAILED', 'CANCELLED', 'ROLLED_BACK', 'CLEANUP_BLOCKED'];

interface Started {
  name: string;
  project: string;
  workflowId: string;
  /** When the start call was made (epoch ms). */
  calledAt: number;
}

interface RunResult {
  n: number;
  projects: number;
  idealMs: number;
  wallMs: number;
  serving: number;
  failed: number;
  startErrors: string[];
  startsMs: number;
  toDeploy: number[];
  /** Start call → the SERVING upsert in its history, of the sampled deployments. */
  toServing: number[];
  /** The same figures of the deployment that ran alone. */
  alone: {
    events: number;
    completionMs?: number;
    readinessMs?: number;
    toDeployMs?: number;
    toServingMs?: number;
  };
  rss: { peakSampleBytes: number; hwmBytes: number };
  /** Per service: the highest calls in one second of any one project, and the calls per deployment. */
  calls: Map<CallService, { peak: number; perDeployment: number }>;
  budget: Record<string, unknown>;
  events: number[];
  completionLags: number[];
  readinessLags: number[];
  cpu: { worker: number; temporal: number; bench: number };
  /** The machine's 1-minute load average when the N deployments were started and when all served. */
  load: [number, number];
  teardownMs: number;
  left: string[];
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      projects: { type: 'string' },
      budget: { type: 'string' },
      'deploy-ms': { type: 'string' },
      'ramp-ms': { type: 'string' },
      'start-concurrency': { type: 'string' },
      sample: { type: 'string' },
      'timeout-min': { type: 'string' },
      'worker-env': { type: 'string', multiple: true },
      temporal: { type: 'string' },
    },
  });
  const args = ArgsSchema.parse({
    ...(positionals.length > 0 ? { counts: positionals } : {}),
    projects: values.projects,
    budget: values.budget,
    deployMs: values['deploy-ms'],
    rampMs: values['ramp-ms'],
    startConcurrency: values['start-concurrency'],
    sample: values.sample,
    timeoutMin: values['timeout-min'],
    workerEnv: values['worker-env'],
    temporal: values.temporal,
  });
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const results: RunResult[] = [];
  for (const n of args.counts) {
    const result = await runOnce(n, args);
    results.push(result);
    report(result, args);
  }
  if (results.length > 1) summary(results);
}

/**
 * The worker's API budget variables, each set to `budget`: whichever this worker version reads
 * (`GARDEN_DEPLOY_API_BUDGET_<SERVICE>`, calls per second per project and region).
 */
function budgetEnv(budget: number): Record<string, string> {
  return Object.fromEntries(
    Object.keys(WorkerEnvSchema.shape)
      .filter(
        (name) => /^GARDEN_DEPLOY_API_BUDGET_/.test(name) && name !== 'GARDEN_DEPLOY_API_BUDGET_WORKERS',
      )
      .map((name) => [name, String(budget)]),
  );
}

function specOf(name: string, project: string, modelUri: string): DeploymentSpecInput {
  return {
    name,
    project,
    region: REGION,
    model: { uri: modelUri },
    machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
  };
}

async function runOnce(n: number, args: Args): Promise<RunResult> {
  process.stdout.write(
    `\n=== N = ${n}: starting the stack (Temporal: ${args.temporal}) and one worker process\n`,
  );
  const stack = await startBenchStack(`concurrency-${n}`, args.temporal);
  let worker: BenchWorker | undefined;
  let rss: ReturnType<typeof sampleRss> | undefined;
  try {
    worker = await startWorkerProcess(stack, TASK_QUEUE, { ...budgetEnv(args.budget), ...args.workerEnv });
    const { apiBudget, gcpRateLimitPerSecond, maxConcurrentActivities, maxConcurrentWorkflowTasks } =
      describeWorkerConfig(worker.config);
    const { maxCachedWorkflows } = worker.config;
    const budget = {
      apiBudget,
      gcpRateLimitPerSecond,
      maxConcurrentActivities,
      maxConcurrentWorkflowTasks,
      maxCachedWorkflows,
    };
    process.stdout.write(`worker pid ${worker.process.pid}: ${JSON.stringify(budget)}\n`);
    rss = sampleRss(worker.process.pid);
    let workerGone: string | undefined;
    void worker.process.exited.then(({ code, signal }) => {
      workerGone = `the worker exited (${code ?? signal}); its log: ${worker?.process.logFile}`;
    });
    const alive = () => {
      if (workerGone) throw new Error(workerGone);
    };

    const { client, admin, modelUri } = stack;
    const tag = Date.now().toString(36);
    const projects = Array.from({ length: Math.min(args.projects, n) }, (_, p) => `bc${p}-${tag}`);
    const [warmupProject, idealProject] = [`bw-${tag}`, `bi-${tag}`];
    const perProject = Math.ceil(n / projects.length);
    await mapLimit([idealProject, ...projects], 10, async (project) => {
      await admin.setTiming(project, { deployMs: args.deployMs, replicaRampMs: args.rampMs });
      // Enough serving GPU quota that the quota check never refuses a deployment.
      await admin.setQuota(project, { region: REGION, limits: { NVIDIA_L4: perProject + 1 } });
    });

    // First run: JIT, the first token, the first workflow context; its emulator timing is the default (fast).
    await startDeployment(client, specOf('warmup', warmupProject, modelUri), { taskQueue: TASK_QUEUE });
    await untilServing(client, `${DeploymentName.name} = 'warmup'`, 1, 120_000, alive);
    const idealStart = Date.now();
    const alone: Started = {
      name: 'ideal',
      project: idealProject,
      workflowId: (
        await startDeployment(client, specOf('ideal', idealProject, modelUri), { taskQueue: TASK_QUEUE })
      ).workflowId,
      calledAt: idealStart,
    };
    const ideal = await untilServing(client, `${DeploymentName.name} = 'ideal'`, 1, 600_000, alive);
    const idealMs = ideal.at - idealStart;
    process.stdout.write(`one deployment alone: ${(idealMs / 1000).toFixed(1)} s\n`);

    await admin.resetCallRates();
    const cpuAtStart = await cpuNow(stack, worker);
    const loadAtStart = os.loadavg()[0]!;
    const t0 = Date.now();
    const started: Started[] = [];
    const startErrors: string[] = [];
    let lastStarted = t0;
    const starting = mapLimit(
      Array.from({ length: n }, (_, i) => i),
      args.startConcurrency,
      async (i) => {
        const name = `c${i}`;
        const project = projects[i % projects.length]!;
        const calledAt = Date.now();
        const requestId = `bench-${tag}-${i}`;
        // Under load a start can time out; the same request id attaches to what got through.
        for (let attempt = 1; ; attempt++) {
          try {
            const s = await startDeployment(client, specOf(name, project, modelUri), {
              taskQueue: TASK_QUEUE,
              requestId,
            });
            started.push({ name, project, workflowId: s.workflowId, calledAt });
            lastStarted = Date.now();
            return;
          } catch (err) {
            if (attempt >= 3) {
              startErrors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
              return;
            }
          }
        }
      },
    );
    const done = await untilServing(
      client,
      `${DeploymentName.name} STARTS_WITH 'c'`,
      n,
      args.timeoutMin * 60_000,
      alive,
      (s) =>
        `${((Date.now() - t0) / 1000).toFixed(0)} s: ${started.length}/${n} started, ${s.serving} serving, ` +
        `${s.failed} failed; worker RSS ${(rss!.current() / MIB).toFixed(0)} MiB`,
      () => startErrors.length,
    );
    await starting;
    const wallMs = done.at - t0;
    const cpuAtEnd = await cpuNow(stack, worker);
    const loadAtEnd = os.loadavg()[0]!;
    process.stdout.write(
      `${done.serving}/${n} serving after ${(wallMs / 1000).toFixed(1)} s${done.timedOut ? ' (timed out)' : ''}\n`,
    );

    // Google's side: when each :deploy came, when its operation ended and its replica was up.
    const google = new Map<string, GoogleTimeline>();
    await mapLimit([idealProject, ...projects], 4, async (project) => {
      for (const [model, timeline] of await googleTimelines(admin, project))
        google.set(`${project}/${model}`, timeline);
    });
    const toDeploy = started.flatMap((s) => {
      const g = google.get(`${s.project}/${s.name}`);
      return g ? [g.deployCalledAt - s.calledAt] : [];
    });

    const calls = new Map<CallService, { peak: number; perDeployment: number }>();
    for (const project of projects) {
      for (const rate of await admin.callRates({ project })) {
        const c = calls.get(rate.service) ?? { peak: 0, perDeployment: 0 };
        c.peak = Math.max(c.peak, rate.peakPerSecond);
        c.perDeployment += rate.total / n;
        calls.set(rate.service, c);
      }
    }

    const picks = started.filter((_, i) => i % Math.max(1, Math.floor(started.length / args.sample)) === 0);
    const timelineOf = async (s: Started) => {
      const history = await historyTimeline(client, s.workflowId);
      const g = google.get(`${s.project}/${s.name}`);
      return {
        events: history.events,
        ...lagsOf(history, g),
        toDeployMs: g && g.deployCalledAt - s.calledAt,
        toServingMs: history.servingAt && history.servingAt - s.calledAt,
      };
    };
    const sampled = await mapLimit(picks.slice(0, args.sample), 8, timelineOf);
    const aloneTimeline = await timelineOf(alone);
    const defined = (values: Array<number | undefined>) => values.filter((v): v is number => v !== undefined);

    process.stdout.write('tearing every deployment down\n');
    const teardownStart = Date.now();
    await mapLimit(
      [
        ...started.map((s) => s.workflowId),
        `deploy/${warmupProject}/${REGION}/warmup`,
        `deploy/${idealProject}/${REGION}/ideal`,
      ],
      args.startConcurrency,
      async (workflowId) => {
        await teardownDeployment(client, workflowId, { reason: 'bench' }).catch((err: unknown) =>
          process.stdout.write(`teardown of ${workflowId} refused: ${(err as Error).message}\n`),
        );
      },
    );
    await untilNoneRunning(client, 15 * 60_000, alive);
    const teardownMs = Date.now() - teardownStart;
    const leftover = await admin.resources();
    const left = [
      ...leftover.endpoints.map((r) => r.name),
      ...leftover.models.map((r) => r.name),
      ...leftover.operations.filter((op) => op.done !== true).map((op) => `running ${op.name}`),
    ];

    return {
      n,
      projects: projects.length,
      idealMs,
      wallMs,
      serving: done.serving,
      failed: done.failed,
      startErrors,
      startsMs: lastStarted - t0,
      toDeploy,
      toServing: defined(sampled.map((s) => s.toServingMs)),
      alone: aloneTimeline,
      rss: await rss.stop(),
      calls,
      budget,
      events: sampled.map((s) => s.events),
      completionLags: defined(sampled.map((s) => s.completionMs)),
      readinessLags: defined(sampled.map((s) => s.readinessMs)),
      load: [loadAtStart, loadAtEnd],
      cpu: {
        worker: cpuAtEnd.worker - cpuAtStart.worker,
        temporal: cpuAtEnd.temporal - cpuAtStart.temporal,
        bench: cpuAtEnd.bench - cpuAtStart.bench,
      },
      teardownMs,
      left,
    };
  } finally {
    await rss?.stop();
    await worker?.process.stop(30_000);
    await stack.close();
    const running = [worker?.process.pid, ...Object.values(stack.pids)].filter(
      (pid): pid is number => pid !== undefined && isRunning(pid),
    );
    // Reported, not thrown: a throw here would replace the run's own error or result.
    if (running.length > 0 || existsSync(stack.dir)) {
      process.stderr.write(
        `bench:concurrency: left behind: processes ${running.join(', ') || 'none'}, directory ${stack.dir}\n`,
      );
      process.exitCode = 1;
    } else process.stdout.write('stopped: no server or worker process left, temporary directory removed\n');
  }
}

async function cpuNow(stack: BenchStack, worker: BenchWorker) {
  const own = process.cpuUsage();
  return {
    worker: await cpuSeconds(worker.process.pid),
    temporal: await cpuSeconds(stack.pids.temporal),
    bench: (own.user + own.system) / 1e6,
  };
}

interface ServingCount {
  at: number;
  serving: number;
  failed: number;
  timedOut: boolean;
}

/** How often the serving deployments are counted: the wall times' resolution, the same for the ideal. */
const COUNT_INTERVAL_MS = 500;

/**
 * Counts, every COUNT_INTERVAL_MS, the deployments matching `query` that serve and those whose first deploy
 * ended otherwise (visibility counts: one cheap query each, whatever N), until `target` serve or
 * every one is accounted for (`missing` never started). `at` is when the last count was taken.
 */
async function untilServing(
  client: Client,
  query: string,
  target: number,
  timeoutMs: number,
  alive: () => void,
  describe?: (count: ServingCount) => string,
  missing: () => number = () => 0,
): Promise<ServingCount> {
  const start = Date.now();
  let lastReport = start;
  const stages = ENDED_BADLY.map((stage) => `'${stage}'`).join(', ');
  for (;;) {
    alive();
    const [serving, failed] = await Promise.all([
      client.workflow.count(`${query} AND ${DeployStage.name} = 'SERVING'`),
      client.workflow.count(`${query} AND ${DeployStage.name} IN (${stages})`),
    ]);
    const now = Date.now();
    const count = {
      at: now,
      serving: serving.count,
      failed: failed.count,
      timedOut: now - start > timeoutMs,
    };
    if (count.serving >= target || count.serving + count.failed + missing() >= target || count.timedOut)
      return count;
    if (describe && now - lastReport >= 10_000) {
      process.stdout.write(`  ${describe(count)}\n`);
      lastReport = now;
    }
    await new Promise((resolve) => setTimeout(resolve, COUNT_INTERVAL_MS));
  }
}

/** Waits until no workflow runs: every teardown has ended its deployment. */
async function untilNoneRunning(client: Client, timeoutMs: number, alive: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    alive();
    const { count } = await client.workflow.count(`ExecutionStatus = 'Running'`);
    if (count === 0) return;
    if (Date.now() > deadline) throw new Error(`${count} deployments still running after their teardown`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const ratio = (value: number, target: number) => `${(value / target).toFixed(2)} ×`;
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

function report(r: RunResult, args: Args): void {
  const wallRatio = r.wallMs / r.idealMs;
  const rss = Math.max(r.rss.peakSampleBytes, r.rss.hwmBytes);
  const counted = [...r.calls].filter(([service]) => service !== 'sts');
  const over = counted.filter(([, c]) => c.peak > args.budget);
  const maxEvents = r.events.length > 0 ? Math.max(...r.events) : undefined;
  const maxCompletion = r.completionLags.length > 0 ? Math.max(...r.completionLags) : undefined;
  const spread = (values: number[], unit: (v: number) => string) =>
    values.length > 0
      ? `median ${unit(median(values))}, p95 ${unit(quantile(values, 0.95))}, max ${unit(Math.max(...values))}`
      : 'not measured';
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const opt = (v: number | undefined, unit: (v: number) => string) => (v === undefined ? '-' : unit(v));
  const rows: Array<[string, string]> = [
    ['worker settings', JSON.stringify(r.budget)],
    ['one deployment alone (ideal)', seconds(r.idealMs)],
    [
      `all ${r.n} serving`,
      `${seconds(r.wallMs)} = ${ratio(wallRatio, 1)} the ideal (target ≤ ${TARGETS.wallRatio}: ${verdict(r.serving === r.n && wallRatio <= TARGETS.wallRatio)})` +
        (r.serving < r.n
          ? `; only ${r.serving} served, ${r.failed} failed, ${r.startErrors.length} not started`
          : ''),
    ],
    [`starts sent (${args.startConcurrency} at a time)`, seconds(r.startsMs)],
    ['start → :deploy call', `${spread(r.toDeploy, seconds)} (alone: ${opt(r.alone.toDeployMs, seconds)})`],
    [
      `start → serving (its history, sampled)`,
      `${spread(r.toServing, seconds)} (alone: ${opt(r.alone.toServingMs, seconds)})`,
    ],
    [
      'worker peak RSS',
      `${(rss / MIB).toFixed(0)} MiB (sampled ${(r.rss.peakSampleBytes / MIB).toFixed(0)}, VmHWM ${(r.rss.hwmBytes / MIB).toFixed(0)}) = ${ratio(rss, TARGETS.rssBytes)} 512 MiB (${verdict(rss <= TARGETS.rssBytes)})`,
    ],
    [
      'peak calls/s of one project',
      `${counted.map(([service, c]) => `${service} ${c.peak}`).join(', ')} (budget ${args.budget}: ${verdict(over.length === 0)})`,
    ],
    [
      'calls per deployment',
      [...r.calls].map(([service, c]) => `${service} ${c.perDeployment.toFixed(1)}`).join(', '),
    ],
    [
      `history events (${r.events.length} sampled)`,
      maxEvents === undefined
        ? 'none sampled'
        : `median ${median(r.events)}, max ${maxEvents} = ${ratio(maxEvents, TARGETS.historyEvents)} 150 (${verdict(maxEvents <= TARGETS.historyEvents)}; alone: ${r.alone.events})`,
    ],
    [
      'completion lag (op done → step done)',
      spread(r.completionLags, ms) +
        (maxCompletion === undefined
          ? ''
          : ` (target ≤ 1 s: ${verdict(maxCompletion <= TARGETS.completionLagMs)})`) +
        ` (alone: ${opt(r.alone.completionMs, ms)})`,
    ],
    [
      'readiness lag (replica up → step done)',
      `${spread(r.readinessLags, ms)} (alone: ${opt(r.alone.readinessMs, ms)})`,
    ],
    [
      'CPU seconds while deploying',
      `worker ${r.cpu.worker.toFixed(0)}, Temporal ${r.cpu.temporal.toFixed(0)}, emulator + client ${r.cpu.bench.toFixed(0)} ` +
        `(of ${((r.wallMs / 1000) * os.availableParallelism()).toFixed(0)} on ${os.availableParallelism()} cores; ` +
        `load average ${r.load[0].toFixed(1)} at the start, ${r.load[1].toFixed(1)} at the end)`,
    ],
    [
      'teardown of all',
      `${seconds(r.teardownMs)}; left in the emulator: ${r.left.length === 0 ? 'nothing' : r.left.slice(0, 5).join(', ')}`,
    ],
    ...r.startErrors.slice(0, 3).map((e): [string, string] => ['start failed', e]),
  ];
  process.stdout.write(
    `\nN = ${r.n} deployments over ${r.projects} projects on one worker, Temporal ${args.temporal} (emulator: deploy ${seconds(args.deployMs)}, ` +
      `replica ramp ${seconds(args.rampMs)}; budget ${args.budget} calls/s per project and service)\n` +
      rows.map(([label, value]) => `  ${label.padEnd(40)} ${value}\n`).join(''),
  );
}

function summary(results: RunResult[]): void {
  process.stdout.write(`\n     N   ideal    wall  ratio  peak RSS  max events  completion lag max\n`);
  for (const r of results) {
    const rss = Math.max(r.rss.peakSampleBytes, r.rss.hwmBytes);
    process.stdout.write(
      `${String(r.n).padStart(6)} ${seconds(r.idealMs).padStart(7)} ${seconds(r.wallMs).padStart(7)} ${(r.wallMs / r.idealMs).toFixed(2).padStart(6)} ` +
        `${`${(rss / MIB).toFixed(0)} MiB`.padStart(9)} ${String(r.events.length ? Math.max(...r.events) : '-').padStart(11)} ` +
        `${r.completionLags.length ? `${Math.max(...r.completionLags).toFixed(0)} ms` : '-'}\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench:concurrency: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
