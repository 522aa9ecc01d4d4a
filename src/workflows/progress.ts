import type {
  CleanupOutcome,
  DeploymentIdentity,
  DeploymentResources,
  OwnershipProof,
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
} from './types';

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

  /** A cancel or rollback stopped the running step: it is not running any more. */
  cancelRunningStep(reason: string): void {
    const name = this.runningStep();
    if (name) this.updateStep(name, { status: 'cancelled', finishedAt: timestamp(), detail: reason });
  }

  get revision(): RevisionSummary | undefined {
    return this.state.revision;
  }

  setRevision(revision: RevisionSummary): void {
    this.state.revision = revision;
    this.touch();
  }

  /** The revision moves on; serving and ending are dated. */
  setRevisionState(state: RevisionSummary['state']): void {
    const revision = this.state.revision;
    if (!revision) return;
    const now = timestamp();
    this.setRevision({
      ...revision,
      state,
      ...(state === 'serving' ? { servingAt: now } : {}),
      ...(['serving', 'validating', 'deploying'].includes(state) ? {} : { endedAt: now }),
    });
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
    if (s.resources.endpoint) lines.push('', `Endpoint: \`${s.resources.endpoint}\``);
    if (s.resources.dedicatedEndpointDns)
      lines.push(`Dedicated DNS: \`${s.resources.dedicatedEndpointDns}\``);
    if (s.resources.pscIpAddress) lines.push(`PSC address: \`${s.resources.pscIpAddress}\``);
    if (s.cleanup && s.cleanup.state !== 'done') {
      lines.push('', `Cleanup (${s.cleanup.kind}): ${s.cleanup.state}`);
      for (const task of s.cleanup.tasks.filter((t) => t.state === 'blocked' || t.state === 'abandoned'))
        lines.push(`- ${task.state} ${task.task}: ${escapeCell(task.error ?? '')}`);
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
