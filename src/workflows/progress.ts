import type { RootCause } from '../diagnosis/container-logs';
import type {
  CleanupOutcome,
  DeploymentIdentity,
  DeploymentResources,
  OwnershipProof,
  QuotaCheckResult,
  SmokeResult,
  ValidationSummary,
} from '../activities/contract';
import {
  type AbortKind,
  type CleanupProgress,
  type DeployProgress,
  type RevisionSummary,
  type DeployStage,
  STEP_NAMES,
  type StepName,
  type StepProgress,
  type StepStatus,
  type TrafficShare,
  type UpgradeProgress,
} from './types';

/** Revisions kept in the progress (the latest ones). */
const MAX_REVISIONS = 20;

const STEP_WEIGHT: Record<StepName, number> = {
  validate: 10,
  deploy: 45,
  waitForReplicas: 25,
  psc: 10,
  smoke: 10,
};

export const STEP_TITLE: Record<StepName, string> = {
  validate: 'Validate weights',
  deploy: 'Deploy to Vertex AI',
  waitForReplicas: 'Wait for replicas',
  psc: 'Private Service Connect',
  smoke: 'Smoke tests',
};

const STATUS_ICON: Record<StepStatus, string> = {
  pending: '⏳',
  running: '▶️',
  succeeded: '✅',
  failed: '❌',
  skipped: '⏭️',
  cancelled: '⏹️',
  compensating: '↩️',
  compensated: '🧹',
};

/**
 * The deployment's progress as the workflow knows it. Deterministic (workflow time only); the
 * `progress` query returns `snapshot()`, the Temporal UI shows `toMarkdown()`.
 */
export class ProgressTracker {
  private readonly state: DeployProgress;

  constructor(deployment: string, carried?: DeployProgress) {
    const now = timestamp();
    this.state = carried
      ? structuredCloneJson(carried)
      : {
          deployment,
          stage: 'VALIDATING',
          percent: 0,
          steps: STEP_NAMES.map((name) => ({ name, status: 'pending', attempts: 0 })),
          resources: {},
          removed: [],
          startedAt: now,
          updatedAt: now,
        };
  }

  get stage(): DeployStage {
    return this.state.stage;
  }

  get resources(): DeploymentResources {
    return this.state.resources;
  }

  get removed(): CleanupOutcome[] {
    return this.state.removed;
  }

  get smoke(): SmokeResult[] {
    return this.state.smoke ?? [];
  }

  get validation(): ValidationSummary | undefined {
    return this.state.validation;
  }

  describe(fields: Pick<DeployProgress, 'deployment' | 'project' | 'region' | 'modelUri'>): void {
    Object.assign(this.state, fields);
    this.touch();
  }

  setStage(stage: DeployStage): void {
    this.state.stage = stage;
    this.touch();
  }

  startStep(name: StepName, detail?: string): void {
    this.updateStep(name, { status: 'running', startedAt: timestamp(), detail });
  }

  finishStep(name: StepName, attempt: number, detail?: string): void {
    this.updateStep(name, { status: 'succeeded', finishedAt: timestamp(), attempts: attempt, detail });
  }

  skipStep(name: StepName, reason: string): void {
    this.updateStep(name, { status: 'skipped', detail: reason });
  }

  failStep(name: StepName, error: { message: string; type?: string; attempt?: number }): void {
    const step = this.step(name);
    this.updateStep(name, {
      status: 'failed',
      finishedAt: timestamp(),
      attempts: Math.max(step.attempts, error.attempt ?? 1),
      detail: error.message,
    });
    this.recordError(error, name);
  }

  recordError(error: { message: string; type?: string }, step?: StepName): void {
    this.state.lastError = { step, type: error.type, message: error.message, at: timestamp() };
    this.touch();
  }

  /** The step currently running, if any. */
  runningStep(): StepName | undefined {
    return this.state.steps.find((step) => step.status === 'running')?.name;
  }

  failedStep(): StepName | undefined {
    return this.state.steps.find((step) => step.status === 'failed')?.name;
  }

  /** The replicas `scale` set last (read-only; `snapshot()` copies the whole progress). */
  get scale(): Readonly<{ min: number; max: number }> | undefined {
    return this.state.scale;
  }

  /** A cancel or rollback stopped the running step: it is not running any more. */
  cancelRunningStep(reason: string): void {
    const name = this.runningStep();
    if (name) this.updateStep(name, { status: 'cancelled', finishedAt: timestamp(), detail: reason });
  }

  get revision(): RevisionSummary | undefined {
    return this.state.revision;
  }

  /** The serving revision (the first deploy's, until an upgrade replaces it); also listed in `revisions`. */
  setRevision(revision: RevisionSummary): void {
    this.state.revision = revision;
    this.putRevision(revision);
  }

  /** The serving revision moves on; serving and ending are dated. */
  setRevisionState(state: RevisionSummary['state'], reason?: string): void {
    const revision = this.state.revision;
    if (revision) this.setRevision(movedOn(revision, state, reason));
  }

  /** Every revision so far (the latest {@link MAX_REVISIONS}), oldest first. */
  get revisions(): RevisionSummary[] {
    return this.state.revisions ?? (this.state.revision ? [this.state.revision] : []);
  }

  /** Adds or replaces revision `revision.number` (and the serving one, when it is that). */
  putRevision(revision: RevisionSummary): void {
    const others = this.revisions.filter((r) => r.number !== revision.number);
    this.state.revisions = [...others, revision].sort((a, b) => a.number - b.number).slice(-MAX_REVISIONS);
    if (this.state.revision?.number === revision.number) this.state.revision = revision;
    this.touch();
  }

  /** Forgets revision `number` (an upgrade that found nothing to deploy). */
  dropRevision(number: number): void {
    this.state.revisions = this.revisions.filter((r) => r.number !== number);
    this.touch();
  }

  /** Revision `number` moves on (dated as `setRevisionState` does); its other fields from `patch`. */
  moveRevision(number: number, state: RevisionSummary['state'], patch: Partial<RevisionSummary> = {}): void {
    const revision = this.revisions.find((r) => r.number === number);
    if (revision) this.putRevision({ ...movedOn(revision, state, patch.reason), ...stripUndefined(patch) });
  }

  get traffic(): TrafficShare[] {
    return this.state.traffic ?? [];
  }

  setTraffic(traffic: TrafficShare[]): void {
    this.state.traffic = traffic.filter((share) => share.percent > 0 || traffic.length > 1);
    this.touch();
  }

  setQuota(quota: QuotaCheckResult): void {
    this.state.quota = quota;
    this.touch();
  }

  setRootCause(rootCause: RootCause): void {
    this.state.rootCause = rootCause;
    this.touch();
  }

  get upgrade(): UpgradeProgress | undefined {
    return this.state.upgrade;
  }

  setUpgrade(upgrade: UpgradeProgress): void {
    this.state.upgrade = upgrade;
    this.touch();
  }

  patchUpgrade(patch: Partial<UpgradeProgress>): void {
    if (!this.state.upgrade) return;
    Object.assign(this.state.upgrade, patch);
    for (const [key, value] of Object.entries(patch))
      if (value === undefined) delete (this.state.upgrade as unknown as Record<string, unknown>)[key];
    this.touch();
  }

  setScale(scale: { min: number; max: number }): void {
    this.state.scale = scale;
    this.touch();
  }

  setIdentity(identity: DeploymentIdentity, ownership: OwnershipProof): void {
    this.state.identity = identity;
    this.state.ownership = ownership;
    this.touch();
  }

  setOwnership(ownership: OwnershipProof): void {
    this.state.ownership = ownership;
    this.touch();
  }

  setCleanup(cleanup: CleanupProgress | undefined): void {
    this.state.cleanup = cleanup && structuredCloneJson(cleanup);
    this.touch();
  }

  /** Outcomes of compensations, in the order they ran. */
  addRemoved(outcomes: CleanupOutcome[]): void {
    if (outcomes.length === 0) return;
    this.state.removed.push(...outcomes);
    this.touch();
  }

  compensating(name: StepName): void {
    this.updateStep(name, { status: 'compensating' });
  }

  compensated(name: StepName, outcomes: CleanupOutcome[]): void {
    this.state.removed.push(...outcomes);
    this.updateStep(name, { status: 'compensated' });
  }

  addResources(resources: DeploymentResources): void {
    Object.assign(this.state.resources, stripUndefined(resources));
    this.touch();
  }

  setReplicas(available: number, target: number): void {
    this.state.replicas = { available, target };
    this.touch();
  }

  setValidation(summary: ValidationSummary): void {
    this.state.validation = summary;
    this.touch();
  }

  setSmoke(results: SmokeResult[]): void {
    this.state.smoke = results;
    this.touch();
  }

  setAbort(kind: AbortKind, reason: string): void {
    this.state.abort = { kind, reason, at: timestamp() };
    this.touch();
  }

  setRollbackWindowEnd(at: Date | undefined): void {
    this.state.rollbackWindowEndsAt = at?.toISOString();
    this.touch();
  }

  snapshot(): DeployProgress {
    return structuredCloneJson(this.state);
  }

  /** Markdown for the Temporal UI's "Current Details". */
  toMarkdown(): string {
    const s = this.state;
    const lines = [
      `**${s.deployment}** — ${s.stage} (${s.percent}%)` +
        (s.revision
          ? ` · revision ${s.revision.number} (${s.revision.state}) \`${s.revision.modelUri}\``
          : '') +
        (s.scale ? ` · replicas ${s.scale.min}–${s.scale.max}` : ''),
      '',
      '| | step | attempts | detail |',
      '|---|---|---|---|',
      ...s.steps.map(
        (step) =>
          `| ${STATUS_ICON[step.status]} | ${STEP_TITLE[step.name]} | ${step.attempts || ''} | ${escapeCell(step.detail ?? step.status)} |`,
      ),
    ];
    if (s.upgrade && !s.upgrade.endedAt) lines.push('', ...upgradeMarkdown(s.upgrade));
    if (s.traffic && s.traffic.length > 0) {
      lines.push('', '| revision | traffic | deployed model |', '|---|---|---|');
      for (const share of s.traffic)
        lines.push(
          `| r${share.revision} | \`${trafficBar(share.percent)}\` ${share.percent} % | ${share.deployedModelId} |`,
        );
    }
    if (this.revisions.length > 1) {
      lines.push('', '| revision | state | weights | machine |', '|---|---|---|---|');
      for (const r of [...this.revisions].reverse().slice(0, 5))
        lines.push(
          `| r${r.number} | ${r.state}${r.reason ? `: ${escapeCell(r.reason).slice(0, 120)}` : ''} | \`${r.modelUri}\` | ${r.machine ?? ''} |`,
        );
    }
    if (s.resources.endpoint) lines.push('', `Endpoint: \`${s.resources.endpoint}\``);
    if (s.resources.dedicatedEndpointDns)
      lines.push(`Dedicated DNS: \`${s.resources.dedicatedEndpointDns}\``);
    if (s.resources.pscIpAddress) lines.push(`PSC address: \`${s.resources.pscIpAddress}\``);
    if (s.cleanup && s.cleanup.state !== 'done') {
      lines.push('', `Cleanup (${s.cleanup.kind}): ${s.cleanup.state}`);
      for (const task of s.cleanup.tasks.filter((t) => t.state === 'blocked' || t.state === 'abandoned'))
        lines.push(`- ${task.state} ${task.task}: ${escapeCell(task.error ?? '')}`);
    }
    if (s.quota?.warning) lines.push('', `Quota: ${escapeCell(s.quota.warning)}`);
    if (s.rootCause) {
      lines.push('', `Root cause (${s.rootCause.class}): ${escapeCell(s.rootCause.explanation)}`, '```');
      lines.push(...s.rootCause.lines.slice(-10).map((line) => line.replace(/```/g, "'''")), '```');
    }
    if (s.lastError) lines.push('', `Last error: ${escapeCell(s.lastError.message)}`);
    return lines.join('\n');
  }

  private step(name: StepName): StepProgress {
    const step = this.state.steps.find((candidate) => candidate.name === name);
    if (!step) throw new TypeError(`unknown step ${name}`);
    return step;
  }

  private updateStep(name: StepName, patch: Partial<StepProgress>): void {
    Object.assign(this.step(name), stripUndefined(patch));
    this.touch();
  }

  private touch(): void {
    this.state.updatedAt = timestamp();
    this.state.percent = this.computePercent();
  }

  private computePercent(): number {
    let done = 0;
    for (const step of this.state.steps) {
      if (step.status === 'succeeded' || step.status === 'skipped') done += STEP_WEIGHT[step.name];
      else if (step.name === 'waitForReplicas' && step.status === 'running' && this.state.replicas?.target) {
        done +=
          (STEP_WEIGHT.waitForReplicas *
            Math.min(this.state.replicas.available, this.state.replicas.target)) /
          this.state.replicas.target;
      }
    }
    return Math.round(done);
  }
}

function timestamp(): string {
  return new Date().toISOString();
}

/** A revision in its next state; serving and ending are dated. */
function movedOn(
  revision: RevisionSummary,
  state: RevisionSummary['state'],
  reason: string | undefined,
): RevisionSummary {
  const now = timestamp();
  const live: RevisionSummary['state'][] = [
    'serving',
    'validating',
    'deploying',
    'staging',
    'canary',
    'retained',
  ];
  return {
    ...revision,
    state,
    ...(state === 'serving' && !revision.servingAt ? { servingAt: now } : {}),
    ...(live.includes(state) ? {} : { endedAt: now }),
    ...(reason ? { reason } : {}),
  };
}

/** `██████░░░░`: ten cells for a traffic share. */
export function trafficBar(percent: number, cells = 10): string {
  const full = Math.round((Math.max(0, Math.min(100, percent)) / 100) * cells);
  return `${'█'.repeat(full)}${'░'.repeat(cells - full)}`;
}

function upgradeMarkdown(u: UpgradeProgress): string[] {
  const step = u.step ? ` · step ${u.step.index}/${u.step.of} at ${u.step.percent} %` : '';
  const lines = [`Upgrade r${u.from} → r${u.revision}: **${u.phase}**${step}${u.paused ? ' · PAUSED' : ''}`];
  lines.push(`Strategy: ${escapeCell(u.strategy)}`);
  if (u.paused) lines.push(`Paused: ${escapeCell(u.paused.reason)}`);
  if (u.lastGate)
    lines.push(`Gates (${u.lastGate.percent} %, ${u.lastGate.at}): ${escapeCell(u.lastGate.summary)}`);
  if (u.blocked) lines.push(`Blocked: ${escapeCell(u.blocked)}`);
  return lines;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Query results must not alias workflow state. */
function structuredCloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ').slice(0, 300);
}
