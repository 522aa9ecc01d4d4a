import pc from 'picocolors';
import type { DeploymentStatus, RunningActivity, StepView } from '../client';
import { formatDuration } from '../spec';
import type { QuotaReading } from '../activities/contract';
import type { RootCause } from '../diagnosis/container-logs';
import { STEP_TITLE, trafficBar } from '../workflows/progress';
import type {
  CleanupTaskProgress,
  DeployProgress,
  DeploymentResult,
  RevisionSummary,
  ScaleOutcome,
  StepStatus,
  TeardownResult,
  TrafficShare,
  UpgradeProgress,
  UpgradeResult,
} from '../workflows/types';

/**
 * How a deployment's progress looks in a terminal: a block of lines redrawn in place on a TTY,
 * or one appended line per change when output goes to a file or CI log.
 */

type Colors = ReturnType<typeof pc.createColors>;

const ICON: Record<StepStatus, string> = {
  pending: '·',
  running: '▶',
  succeeded: '✔',
  failed: '✖',
  skipped: '↷',
  cancelled: '◼',
  compensating: '↺',
  compensated: '⌫',
};

function paintStatus(c: Colors, status: StepStatus): (text: string) => string {
  switch (status) {
    case 'running':
    case 'compensating':
      return c.cyan;
    case 'succeeded':
      return c.green;
    case 'failed':
      return c.red;
    case 'cancelled':
    case 'compensated':
      return c.yellow;
    default:
      return c.dim;
  }
}

/** The live facts of a running activity: attempt, heartbeat, why the last attempt failed. */
function activityFacts(activity: RunningActivity, now: number | undefined): string[] {
  const facts: string[] = [];
  if (activity.attempt > 1 || activity.lastFailure) {
    facts.push(
      activity.maximumAttempts > 0
        ? `attempt ${activity.attempt} of ${activity.maximumAttempts}`
        : `attempt ${activity.attempt}`,
    );
  }
  if (activity.replicas) {
    const { available, target, message } = activity.replicas;
    facts.push(`replicas ${available}/${target}${message ? ` (${message})` : ''}`);
  }
  if (activity.phase) facts.push(activity.phase);
  if (activity.operationName) facts.push(`operation ${activity.operationName}`);
  if (activity.lastFailure) facts.push(`last attempt failed: ${activity.lastFailure}`);
  const next = activity.nextAttemptAt ? Date.parse(activity.nextAttemptAt) : undefined;
  if (now !== undefined && next !== undefined && next > now)
    facts.push(`${activity.waiting ? 'next check' : 'retry'} in ${formatDuration(next - now)}`);
  return facts;
}

/**
 * A step's detail; durations only when `now` is given (the appended-lines log leaves them out, and
 * names the status itself, which the redrawn frame shows as an icon).
 */
export function stepDetail(step: StepView, now?: number): string {
  const facts: string[] = [];
  if (now !== undefined && step.status === 'compensating') facts.push('undoing');
  if (now !== undefined && step.status === 'compensated') facts.push('undone');
  if (step.activity) facts.push(...activityFacts(step.activity, now));
  else if (step.attempts > 1) facts.push(`${step.attempts} attempts`);
  if (step.detail && step.status !== 'running' && step.status !== 'compensating') facts.push(step.detail);
  if (now !== undefined && step.startedAt) {
    const end = step.finishedAt ? Date.parse(step.finishedAt) : step.status === 'running' ? now : undefined;
    if (end !== undefined) facts.push(formatDuration(Math.max(0, end - Date.parse(step.startedAt))));
  }
  return facts.join(' · ');
}

export interface ViewOptions {
  color: boolean;
  /** Epoch ms for elapsed times (default: now). */
  now?: number;
  /** Link to the workflow in the Temporal UI. */
  uiUrl?: string;
}

/** The first deploy's percentage; none once upgrades began (an upgrade shows its own phase). */
function deployPercent(status: DeploymentStatus): number | undefined {
  return status.progress?.upgrade ? undefined : status.percent;
}

/** The whole picture: headline, steps, replicas, last error, notes. */
export function renderStatus(status: DeploymentStatus, options: ViewOptions): string[] {
  const c = pc.createColors(options.color);
  const now = options.now ?? Date.now();
  const end = status.closedAt ? Date.parse(status.closedAt) : now;
  const headline = [
    c.bold(status.deployment ?? status.workflowId),
    stageText(c, status),
    deployPercent(status) === undefined ? undefined : `${status.percent}%`,
    formatDuration(Math.max(0, end - Date.parse(status.startedAt))),
  ].filter(Boolean);
  const lines = [
    headline.join('  '),
    c.dim(
      `${status.workflowId} · ${status.status}${status.taskQueue ? ` · task queue ${status.taskQueue}` : ''}`,
    ),
  ];
  if (options.uiUrl) lines.push(c.dim(options.uiUrl));
  const revision = status.progress?.revision;
  const scale = status.progress?.scale;
  if (revision) {
    lines.push(
      `  Revision ${revision.number} (${revision.state}) ${revision.modelUri}` +
        (scale ? ` · replicas ${scale.min}${scale.max === scale.min ? '' : `–${scale.max}`}` : ''),
    );
  }
  const upgrade = status.progress?.upgrade;
  // While an upgrade runs it is what moves: the first deploy's steps (long done) make way for it.
  const upgrading = status.status === 'RUNNING' && upgrade !== undefined && !upgrade.endedAt;
  if (upgrading) {
    lines.push(...renderUpgrade(upgrade, now, c));
    const pending = status.activities.filter((a) => !a.step || a.compensation);
    for (const activity of pending)
      lines.push(
        `    ${c.cyan(ICON.running)} ${activity.activityType.padEnd(22)} ${activityFacts(activity, now).join(' · ')}`.trimEnd(),
      );
  } else if (upgrade?.endedAt && upgrade.outcome) {
    lines.push(
      c.dim(
        `  Last upgrade r${upgrade.from} → r${upgrade.revision}: ${upgrade.outcome}${upgrade.reason ? ` (${upgrade.reason})` : ''}`,
      ),
    );
  }
  const traffic = status.progress?.traffic ?? [];
  if (status.status === 'RUNNING' && traffic.length > 0) lines.push(...renderTraffic(traffic, c));
  const revisions = status.progress?.revisions ?? [];
  if (revisions.length > 1) lines.push(...renderRevisions(revisions, c));
  if (!upgrading && revisions.length > 1 && status.steps.length > 0)
    lines.push(c.dim('  First deploy (r1):'));
  for (const step of upgrading ? [] : status.steps) {
    const paint = paintStatus(c, step.status);
    const detail = stepDetail(step, now);
    lines.push(`  ${paint(ICON[step.status])} ${STEP_TITLE[step.name].padEnd(24)} ${detail}`.trimEnd());
  }
  if (status.steps.length === 0 && !upgrading) {
    for (const activity of status.activities) {
      const facts = activityFacts(activity, now);
      lines.push(
        `  ${c.cyan(ICON.running)} ${activity.activityType.padEnd(24)} ${facts.join(' · ')}`.trimEnd(),
      );
    }
  }
  const quota = status.progress?.quota;
  if (quota?.warning) lines.push(c.yellow(`  Quota not checked: ${quota.warning}`));
  else if (quota?.reading && status.status === 'RUNNING' && status.stage !== 'SERVING')
    lines.push(c.dim(`  Quota: ${quotaText(quota.reading)}`));
  const rootCause = status.progress?.rootCause;
  if (rootCause) lines.push(...renderRootCause(rootCause, c));
  const lastError = unshownLastError(status);
  if (lastError)
    lines.push(c.red(`  Last error${lastError.step ? ` (${lastError.step})` : ''}: ${lastError.message}`));
  if (status.failure && !status.failure.startsWith(status.progress?.lastError?.message ?? '\0'))
    lines.push(c.red(`  Failed: ${status.failure}`));
  // A completed run's result lists what was removed; a failed run has only its progress.
  if (status.status !== 'RUNNING' && status.status !== 'COMPLETED')
    lines.push(...renderRemoved(status.progress?.removed ?? [], c));
  const cleanup = status.progress?.cleanup;
  if (cleanup?.state === 'blocked') lines.push(...renderBlocked(cleanup.tasks, status.workflowId, c));
  const windowEnd = status.progress?.rollbackWindowEndsAt;
  if (status.status === 'RUNNING' && status.stage === 'SERVING' && windowEnd) {
    lines.push(`  Open to rollback until ${windowEnd}: garden-deploy rollback ${status.workflowId}`);
  }
  for (const note of status.notes) lines.push(c.yellow(`  Note: ${note}`));
  return lines;
}

/** `NVIDIA_L4_GPUS… 1 of 8 used, 2 asked`. */
function quotaText(reading: QuotaReading): string {
  return `${reading.quotaId}: ${reading.usage} of ${reading.limit} used, ${reading.requested} asked`;
}

/** Why the container did not start: its class, what to change, and its last lines. */
function renderRootCause(rootCause: RootCause, c: Colors): string[] {
  const lines = [c.red(`  Root cause (${rootCause.class}): ${rootCause.explanation}`)];
  if (rootCause.lines.length > 0) {
    lines.push(c.dim('  Container’s last lines:'));
    for (const line of rootCause.lines.slice(-MAX_CONTAINER_LINES)) lines.push(c.dim(`    ${line}`));
  }
  return lines;
}

const MAX_CONTAINER_LINES = 20;

const UPGRADE_PHASE_TEXT: Record<UpgradeProgress['phase'], string> = {
  validating: 'validating the new weights',
  staging: 'staging: own endpoint, replicas, smoke tests',
  'freeing-staging': 'freeing the staging endpoint',
  deploying: 'deploying on the endpoint at 0 %',
  shifting: 'shifting traffic',
  'final-bake': 'final bake at 100 %',
  retaining: 'previous revision kept at 0 %',
  retiring: 'retiring the previous revision',
  'rolling-back': 'rolling back',
  done: 'done',
};

/** The running upgrade: phase, traffic step, bake left, pause, the latest gates. */
function renderUpgrade(upgrade: UpgradeProgress, now: number, c: Colors): string[] {
  const step = upgrade.step;
  const bakeLeft = step?.bakeEndsAt ? Date.parse(step.bakeEndsAt) - now : undefined;
  const facts = [
    UPGRADE_PHASE_TEXT[upgrade.phase],
    step ? `step ${step.index}/${step.of} at ${step.percent} %` : undefined,
    bakeLeft !== undefined && bakeLeft > 0 && !upgrade.paused
      ? `bake ${formatDuration(bakeLeft)} left`
      : undefined,
    upgrade.promoted ? 'promoted' : undefined,
  ].filter(Boolean);
  const lines = [
    `  ${c.bold(`Upgrade r${upgrade.from} → r${upgrade.revision}`)}: ${facts.join(' · ')}`,
    c.dim(`    strategy ${upgrade.strategy}`),
  ];
  if (upgrade.paused) lines.push(c.yellow(`    Paused: ${upgrade.paused.reason}`));
  if (upgrade.lastGate) {
    const paint =
      upgrade.lastGate.verdict === 'fail' ? c.red : upgrade.lastGate.verdict === 'idle' ? c.yellow : c.green;
    lines.push(
      paint(
        `    Gates at ${upgrade.lastGate.percent} % (${upgrade.evaluations} evaluations): ${upgrade.lastGate.summary}`,
      ),
    );
  }
  if (upgrade.blocked) lines.push(c.red(`    Blocked (retrying): ${upgrade.blocked}`));
  return lines;
}

/** The live traffic split, a bar per revision. */
function renderTraffic(traffic: TrafficShare[], c: Colors): string[] {
  return [
    '  Traffic:',
    ...traffic.map(
      (share) =>
        `    r${String(share.revision).padEnd(3)} ${c.cyan(trafficBar(share.percent, 20))} ${String(share.percent).padStart(3)} %  ${c.dim(`deployed model ${share.deployedModelId}`)}`,
    ),
  ];
}

/** The latest revisions, newest first. */
function renderRevisions(revisions: RevisionSummary[], c: Colors): string[] {
  return [
    '  Revisions:',
    ...[...revisions]
      .reverse()
      .slice(0, 5)
      .map((r) => {
        const paint =
          r.state === 'serving' ? c.green : r.state === 'rolled-back' || r.state === 'failed' ? c.red : c.dim;
        return `    ${paint(`r${r.number} ${r.state}`.padEnd(18))} ${r.modelUri}${r.machine ? ` · ${r.machine}` : ''}${r.reason ? c.dim(` — ${r.reason}`) : ''}`;
      }),
  ];
}

/** How an upgrade (or a promote, pause or resume of one) was answered. */
export function renderUpgradeResult(result: UpgradeResult, options: { color: boolean }): string[] {
  const c = pc.createColors(options.color);
  const headline: Record<UpgradeResult['outcome'], string> = {
    completed: c.green(
      c.bold(`✔ ${result.deployment}: r${result.revision} serves (upgrade from r${result.from} completed)`),
    ),
    'rolled-back': c.red(
      c.bold(
        `✖ ${result.deployment}: the upgrade to r${result.revision} was rolled back; r${result.serving} serves`,
      ),
    ),
    unchanged: c.green(c.bold(`✔ ${result.deployment}: nothing to upgrade; r${result.serving} serves`)),
    'in-progress': c.cyan(
      c.bold(
        `▶ ${result.deployment}: upgrade to r${result.revision} ${result.paused ? 'paused' : 'running'} (${result.phase})`,
      ),
    ),
  };
  const lines = [headline[result.outcome]];
  if (result.reason) lines.push(`  ${result.reason}`);
  if (result.failedGate) {
    lines.push(c.red(`  Failed gate at ${result.failedGate.percent} %:`));
    for (const check of result.failedGate.checks.filter((k) => k.verdict === 'fail'))
      lines.push(c.red(`    ${check.gate}: ${check.message}`));
  }
  if (result.traffic.length > 0) lines.push(...renderTraffic(result.traffic, c));
  return lines;
}

/** The stage as a person reads it: a served deployment removed later by a teardown is torn down. */
export function displayStage(
  stage: string | undefined,
  teardown: { status: string } | undefined,
): string | undefined {
  if (teardown?.status === 'COMPLETED') return 'TORN_DOWN';
  if (teardown?.status === 'RUNNING') return 'TEARING_DOWN';
  return stage;
}

/** The last error, unless a failed step already shows the same message. */
function unshownLastError(status: DeploymentStatus): DeployProgress['lastError'] {
  const lastError = status.progress?.lastError;
  const shown = status.steps.some((step) => step.status === 'failed' && step.detail === lastError?.message);
  return shown ? undefined : lastError;
}

function stageText(c: Colors, status: DeploymentStatus): string | undefined {
  const stage = displayStage(status.stage, status.teardown);
  if (!stage) return undefined;
  if (stage === 'SERVING') return c.green(stage);
  if (['FAILED', 'CANCELLED', 'ROLLED_BACK', 'TORN_DOWN', 'CLEANUP_BLOCKED'].includes(stage))
    return c.red(stage);
  return c.cyan(stage);
}

/** The endpoint, how to call it and what the smoke tests answered; or what was undone. */
export function renderDeploymentResult(result: DeploymentResult, options: { color: boolean }): string[] {
  const c = pc.createColors(options.color);
  const lines: string[] = [];
  if (result.outcome === 'serving') {
    lines.push(c.green(c.bold(`✔ ${result.deployment} is serving`)));
    if (result.resources.endpoint) lines.push(`  Endpoint:       ${result.resources.endpoint}`);
    if (result.inferenceUrl) lines.push(`  Inference URL:  ${result.inferenceUrl}`);
    if (result.rollbackWindowEndsAt)
      lines.push(
        `  Open to rollback until ${result.rollbackWindowEndsAt}: garden-deploy rollback ${result.workflowId}`,
      );
  } else if (result.outcome === 'cleanup-blocked') {
    lines.push(c.red(c.bold(`✖ ${result.deployment}: cleanup is blocked`)));
    lines.push(...renderBlocked(result.blocked ?? [], result.workflowId, c));
  } else {
    const what: Record<Exclude<DeploymentResult['outcome'], 'serving' | 'cleanup-blocked'>, string> = {
      cancelled: 'was cancelled',
      'rolled-back': 'was rolled back',
      'torn-down': 'is torn down',
      failed: 'failed',
    };
    const paint = result.outcome === 'torn-down' ? c.green : c.yellow;
    lines.push(
      paint(
        c.bold(
          `${result.outcome === 'torn-down' ? '✔' : '✖'} ${result.deployment} ${what[result.outcome]}${result.reason ? `: ${result.reason}` : ''}`,
        ),
      ),
    );
  }
  if (result.upgrade) lines.push(...renderUpgradeResult(result.upgrade, options).map((line) => `  ${line}`));
  if (result.smoke.length > 0) {
    lines.push('  Smoke tests:');
    for (const test of result.smoke) {
      const mark = test.passed ? c.green('✔') : c.red('✖');
      const latency = test.latencyMs === undefined ? '' : `, ${test.latencyMs} ms`;
      const answer = test.answerPreview === undefined ? '' : ` ${JSON.stringify(test.answerPreview)}`;
      lines.push(
        `    ${mark} ${test.name} (${test.mode}${latency}):${answer}${test.failure ? ` — ${test.failure}` : ''}`,
      );
    }
  }
  lines.push(...renderRemoved(result.removed, c));
  return lines;
}

export function renderScaleOutcome(result: ScaleOutcome, options: { color: boolean }): string[] {
  const c = pc.createColors(options.color);
  const { min, max } = result.replicas;
  return [
    c.green(
      c.bold(
        `✔ ${result.deployment} ${result.changed ? 'scaled to' : 'already had'} ${min}${max === min ? '' : `–${max}`} replicas (${result.available} available)`,
      ),
    ),
  ];
}

/** What blocks a cleanup and the two ways out. */
function renderBlocked(tasks: CleanupTaskProgress[], workflowId: string, c: Colors): string[] {
  return [
    ...tasks
      .filter((t) => t.state === 'blocked')
      .map((t) => c.red(`  Blocked: ${t.task} after ${t.attempts} attempt(s): ${t.error ?? 'failed'}`)),
    `  Once fixed: garden-deploy retry-cleanup ${workflowId}`,
    `  Or, after removing them yourself: garden-deploy abandon-cleanup ${workflowId} --reason "…"`,
  ];
}

export function renderTeardownResult(result: TeardownResult, options: { color: boolean }): string[] {
  const c = pc.createColors(options.color);
  return [c.green(c.bold(`✔ ${result.deployment} is torn down`)), ...renderRemoved(result.removed, c)];
}

function renderRemoved(removed: DeploymentResult['removed'], c: Colors): string[] {
  if (removed.length === 0) return [];
  return [
    '  Removed:',
    ...removed.map(
      (r) =>
        `    ${r.outcome === 'removed' ? c.green('✔') : r.outcome === 'already-gone' ? c.dim('·') : c.yellow('!')} ` +
        `${r.resource} (${r.outcome}${r.reason ? `: ${r.reason}` : ''})`,
    ),
  ];
}

/** Follows a deployment on a terminal: redraws in place on a TTY, else appends a line per change. */
export class ProgressDisplay {
  private drawnRows = 0;
  private last: DeploymentStatus | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private readonly seen = new Map<string, string>();
  private readonly startedAt = new Map<string, number>();

  constructor(
    private readonly write: (text: string) => void,
    private readonly options: { tty: boolean; color: boolean; columns?: number },
  ) {}

  update(status: DeploymentStatus): void {
    this.last = status;
    if (this.options.tty) {
      this.redraw();
      // Elapsed times tick between polls.
      this.ticker ??= setInterval(() => this.redraw(), 1_000).unref();
    } else {
      this.appendChanges(status);
    }
  }

  /** Leaves the last frame on screen and stops ticking. */
  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private redraw(): void {
    if (!this.last) return;
    const lines = renderStatus(this.last, { color: this.options.color });
    const erase = this.drawnRows > 0 ? `\x1b[${this.drawnRows}F\x1b[0J` : '';
    this.write(`${erase}${lines.join('\n')}\n`);
    const columns = this.options.columns || 80; // 0 or unknown when the terminal does not say
    this.drawnRows = lines.reduce(
      (rows, line) => rows + Math.max(1, Math.ceil(visibleLength(line) / columns)),
      0,
    );
  }

  /** One line per new stage, step state, note or ending; no durations, so unchanged steps stay quiet. */
  private appendChanges(status: DeploymentStatus): void {
    const key = status.workflowId;
    if (!this.startedAt.has(key)) this.startedAt.set(key, Date.parse(status.startedAt));
    const c = pc.createColors(this.options.color);
    const at = `[+${formatDuration(Math.max(0, Date.now() - (this.startedAt.get(key) ?? Date.now())))}]`;
    // An empty text records that a line no longer applies (e.g. no longer paused) without printing.
    const emit = (id: string, text: string) => {
      if ((this.seen.get(id) ?? '') === text) return;
      this.seen.set(id, text);
      if (text) this.write(`${c.dim(at)} ${text}\n`);
    };
    // The percentage measures the first deploy; an upgrade shows its own progress below.
    const percent = deployPercent(status) === undefined ? '' : ` (${status.percent}%)`;
    if (status.stage) emit('stage', `${status.deployment ?? key}: ${status.stage}${percent}`);
    const upgrade = status.progress?.upgrade;
    // Once a deployment has been upgraded, its first deploy's steps are history.
    for (const step of upgrade ? [] : status.steps) {
      if (step.status === 'pending') continue;
      const detail = stepDetail(step);
      emit(`step:${step.name}`, `${STEP_TITLE[step.name]}: ${step.status}${detail ? ` · ${detail}` : ''}`);
    }
    if (upgrade) this.appendUpgrade(upgrade, status.progress?.traffic ?? [], emit, c);
    if (status.steps.length === 0) {
      for (const activity of status.activities) {
        emit(
          `activity:${activity.activityType}`,
          `${activity.activityType}: ${activityFacts(activity, undefined).join(' · ') || 'running'}`,
        );
      }
    }
    const lastError = unshownLastError(status);
    if (lastError)
      emit('error', c.red(`last error${lastError.step ? ` (${lastError.step})` : ''}: ${lastError.message}`));
    for (const note of status.notes) emit(`note:${note}`, c.yellow(`note: ${note}`));
    if (status.status !== 'RUNNING') emit('closed', `workflow ${status.status}`);
  }

  /** An upgrade's phases, traffic shares, gate verdicts, pause and blocked compensations, as they change. */
  private appendUpgrade(
    upgrade: UpgradeProgress,
    traffic: TrafficShare[],
    emit: (id: string, text: string) => void,
    c: Colors,
  ): void {
    const label = `upgrade r${upgrade.from} → r${upgrade.revision}`;
    if (upgrade.phase !== 'done') emit('upgrade:phase', `${label}: ${UPGRADE_PHASE_TEXT[upgrade.phase]}`);
    if (traffic.length > 1)
      emit('upgrade:traffic', `traffic: ${traffic.map((t) => `r${t.revision} ${t.percent} %`).join(' · ')}`);
    const gate = upgrade.lastGate;
    if (gate) {
      const text = `gates at ${gate.percent} %: ${gate.verdict}${gate.verdict === 'pass' ? '' : ` (${gate.summary})`}`;
      emit(
        'upgrade:gate',
        gate.verdict === 'fail' ? c.red(text) : gate.verdict === 'idle' ? c.yellow(text) : text,
      );
    }
    emit('upgrade:paused', upgrade.paused ? c.yellow(`paused: ${upgrade.paused.reason}`) : '');
    if (upgrade.blocked) emit('upgrade:blocked', c.red(`blocked (retrying): ${upgrade.blocked}`));
    if (upgrade.outcome)
      emit('upgrade:outcome', `${label}: ${upgrade.outcome}${upgrade.reason ? ` (${upgrade.reason})` : ''}`);
  }
}

function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return [...text.replace(/\x1b\[[0-9;]*m/g, '')].length;
}
