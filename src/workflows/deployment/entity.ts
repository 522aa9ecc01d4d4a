import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CleanupInput } from '../../activities/contract';
import { DeployStage as DeployStageKey } from '../../search-attributes';
import { type FailureSummary, summarizeFailure } from '../failures';
import { countDeploymentEnded, countDeploymentStarted, countStage, recordStep } from '../metrics';
import { ProgressTracker } from '../progress';
import { deploymentResult } from '../results';
import type {
  AbortKind,
  CarriedState,
  CleanupProgress,
  ControlRequest,
  DeployProgress,
  DeployRequest,
  DeployStage,
  DeploymentInput,
  DeploymentOutcome,
  DeploymentResult,
  DeploymentSettings,
  RecoveryInput,
  ScaleOutcome,
  ScaleRequest,
  StepName,
  UndoKind,
} from '../types';
import { DEFAULT_SETTINGS, type DeploymentActivityStubs, deploymentActivities } from './activities';
import { abandonRemaining, blockedSummary, planCleanup, retryBlocked, runCleanup } from './cleanup';
import { type DeploymentState, type StepContext, deploySteps, recordFirstRevision } from './deploy-steps';
import { explainFailedStart } from './diagnosis';
import { cleanupInputOf, remainingResources, revisionCleanupInput, showCleanup } from './removal';
import { scaleRequestProblem, scaleServing } from './scale-in-place';
import { RequestLog } from './request-log';
import { differentSpecMessage, specDifferences } from './spec-diff';
import { type UpgradeHost, Upgrades } from './upgrades';

/**
 * Where a deployment is in its life: deploying its first revision, serving (scale, rollback within
 * the window, teardown), removing what it created, blocked on a compensation, or ended.
 */
type Phase = 'deploying' | 'serving' | 'undoing' | 'blocked' | 'ended';

/** Stage while removing, and once removed, per reason. */
const UNDO_STAGES: Record<UndoKind, { running: DeployStage; done: DeployStage; outcome: DeploymentOutcome }> =
  {
    cancel: { running: 'CANCELLING', done: 'CANCELLED', outcome: 'cancelled' },
    rollback: { running: 'ROLLING_BACK', done: 'ROLLED_BACK', outcome: 'rolled-back' },
    failure: { running: 'ROLLING_BACK', done: 'FAILED', outcome: 'failed' },
    teardown: { running: 'TEARING_DOWN', done: 'TORN_DOWN', outcome: 'torn-down' },
  };

/**
 * One durable deployment: its state, the logic of each Update (validator + handler), and the jobs
 * it runs (the first deploy, the removal). Every operation on the deployment goes through here,
 * so they are serialized: a cancel or rollback preempts the first deploy; scale, rollback and
 * teardown of a serving deployment take turns.
 */
export class Deployment implements StepContext, UpgradeHost {
  readonly tracker: ProgressTracker;
  readonly activities: DeploymentActivityStubs;
  readonly state: DeploymentState;
  readonly settings: Required<DeploymentSettings>;
  /** Upgrades of the serving deployment (one at a time). */
  readonly upgrades = new Upgrades(this);
  private readonly recovery?: RecoveryInput;
  private phase: Phase = 'deploying';
  private deployScope?: CancellationScope;
  private abort?: { kind: AbortKind; reason: string };
  private cleanup?: CleanupProgress;
  private failure?: FailureSummary;
  private rollbackWindowEndsAt?: number;
  /** A serving operation (scale, rollback, teardown) holds the deployment. */
  private busy = false;
  /** A rollback or teardown was accepted: nothing else may start. */
  private removalAccepted = false;
  /** Answers by request id: Updates are idempotent, also across continue-as-new. */
  requests = new RequestLog();
  private temporalCancellation?: unknown;
  private publishedStage?: DeployStage;

  constructor(input: DeploymentInput) {
    this.settings = { ...DEFAULT_SETTINGS, ...input.settings };
    this.activities = deploymentActivities(this.settings);
    if ('recover' in input) {
      this.recovery = input.recover;
      this.tracker = new ProgressTracker(input.recover.deployment);
      this.tracker.describe({
        deployment: input.recover.deployment,
        project: input.recover.project,
        region: input.recover.region,
      });
      this.tracker.addResources(input.recover.resources);
      this.tracker.setOwnership(input.recover.ownership);
      for (const step of ['validate', 'waitForReplicas', 'smoke'] as const)
        this.tracker.skipStep(step, 'teardown of an earlier run');
      // The earlier run may have been cut short anywhere: look for everything it could have made.
      this.state = { deploySubmitted: true, deployFinished: false, pscStarted: true };
      if (input.carried) this.restore(input.carried);
      else {
        this.phase = 'undoing';
        this.tracker.setStage('TEARING_DOWN');
      }
      return;
    }
    const carried = input.carried;
    this.tracker = new ProgressTracker(input.spec.name, carried?.progress);
    this.state = {
      spec: carried?.spec ?? input.spec,
      ...(carried?.validated ? { validated: carried.validated } : {}),
      ...(carried?.progress.ownership ? { ownership: carried.progress.ownership } : {}),
      deploySubmitted: Boolean(carried),
      deployFinished: Boolean(carried),
      pscStarted: Boolean(
        carried?.progress.resources.pscAddress || carried?.progress.resources.pscForwardingRule,
      ),
    };
    if (carried) this.restore(carried);
  }

  // --- jobs ------------------------------------------------------------------------------------

  /** Starts what the input asks for: the first deploy, or the teardown of an earlier run. */
  start(): void {
    if (this.recovery && this.phase === 'undoing') {
      countDeploymentStarted('recovery');
      void this.undo('teardown', this.recovery.reason ?? `teardown of ${this.recovery.previous.runId}`);
    } else if (!this.recovery && this.phase === 'deploying') {
      countDeploymentStarted('deploy');
      void this.firstDeploy();
    }
  }

  private async firstDeploy(): Promise<void> {
    const spec = this.spec;
    this.tracker.setRevision({
      number: 1,
      modelUri: spec.model.uri,
      state: 'validating',
      startedAt: new Date().toISOString(),
      spec,
    });
    this.publish('VALIDATING');
    // A cancel can be the first thing a worker sees, before anything ran (then nothing is removed).
    if (this.abort) return this.undo(this.abort.kind, this.abort.reason);
    this.deployScope = new CancellationScope();
    try {
      await this.deployScope.run(() => deploySteps(this, spec));
    } catch (err) {
      if (isCancellation(err) && !this.abort) {
        this.temporalCancellation = err;
        this.abort = { kind: 'cancel', reason: 'the workflow was cancelled through Temporal' };
      }
      if (this.abort) {
        this.tracker.cancelRunningStep(`stopped: ${this.abort.kind} requested`);
      } else {
        this.failure = summarizeFailure(err);
        if (!this.tracker.runningStep()) this.tracker.recordError(this.failure);
        if (this.failure.validation) this.tracker.setValidation(this.failure.validation);
        this.failure = await explainFailedStart(this, this.failure);
      }
      await this.undo(this.abort?.kind ?? 'failure', this.abort?.reason ?? this.failure?.message ?? 'failed');
      return;
    }
    this.phase = 'serving';
    this.tracker.setRevisionState('serving');
    recordFirstRevision(this.tracker, this.state);
    const window = spec.rollbackWindow;
    if (window > 0) {
      this.rollbackWindowEndsAt = Date.now() + window;
      this.tracker.setRollbackWindowEnd(new Date(this.rollbackWindowEndsAt));
    }
    this.publish('SERVING');
    log.info('deployment serving', { deployment: spec.name, endpoint: this.tracker.resources.endpoint });
  }

  /** Removes what the deployment created; ends it, or leaves it CLEANUP_BLOCKED saying why. */
  private async undo(kind: UndoKind, reason: string): Promise<void> {
    this.phase = 'undoing';
    const { deployOperation } = this.tracker.resources;
    this.cleanup = planCleanup({
      kind,
      reason,
      vertex: this.state.deploySubmitted,
      deployOperation: Boolean(deployOperation) && !this.state.deployFinished,
      lateLook: this.state.deploySubmitted && !this.state.deployFinished,
      psc: this.state.pscStarted,
      ...(this.recovery?.upgrade ? { revision: this.recovery.upgrade.revision } : {}),
      at: new Date().toISOString(),
    });
    this.publish(UNDO_STAGES[kind].running);
    await CancellationScope.nonCancellable(() => this.runCleanupPlan());
  }

  private async runCleanupPlan(): Promise<void> {
    const plan = this.cleanup!;
    this.phase = 'undoing';
    this.publish(UNDO_STAGES[plan.kind].running);
    const outcome = await runCleanup(
      plan,
      {
        run: (task) =>
          this.activities.cleanup[task.task](
            task.revision
              ? revisionCleanupInput(
                  this.cleanupInput(),
                  this.recovery?.deployment ?? this.spec.name,
                  task.revision,
                )
              : this.cleanupInput(),
          ),
        changed: (current, outcomes) => {
          showCleanup(this.tracker, current, outcomes);
          this.publish();
        },
        graceMs: this.settings.lateResourceGraceMs,
      },
      () => new Date().toISOString(),
    );
    if (outcome === 'blocked') {
      this.phase = 'blocked';
      this.tracker.recordError({
        type: 'CleanupBlocked',
        message:
          `cleanup is blocked: ${blockedSummary(plan)}. Fix what the error names, then run ` +
          `\`garden-deploy retry-cleanup ${workflowInfo().workflowId}\`; or remove the resources yourself and run ` +
          `\`garden-deploy abandon-cleanup ${workflowInfo().workflowId} --reason …\`.`,
      });
      this.publish('CLEANUP_BLOCKED');
      return;
    }
    this.end();
  }

  private end(): void {
    const kind = this.cleanup?.kind ?? 'teardown';
    this.phase = 'ended';
    const revision = {
      cancel: 'cancelled',
      rollback: 'rolled-back',
      failure: 'failed',
      teardown: 'retired',
    } as const;
    if (!this.recovery) this.tracker.setRevisionState(revision[kind]);
    this.publish(UNDO_STAGES[kind].done);
    countDeploymentEnded(UNDO_STAGES[kind].outcome);
  }

  // --- Updates ---------------------------------------------------------------------------------

  validateDeploy(request: DeployRequest): void {
    if (this.requests.known()) return;
    if (this.recovery)
      this.reject(
        `deployment ${this.id} is being torn down (stage ${this.stage}); deploy it again once that ends`,
      );
    if (!request?.spec || typeof request.spec !== 'object') this.reject('the deploy request carries no spec');
    if (this.phase === 'undoing' || this.phase === 'ended')
      this.reject(
        `deployment ${this.id} is being removed (stage ${this.stage}); deploy it again once that ends`,
      );
    if (this.phase === 'blocked') this.reject(this.blockedReason());
    const differences = specDifferences(this.spec, request.spec);
    if (differences.length === 0) return;
    // Another model, machine or validation on a serving deployment is a new revision: an upgrade.
    if (this.phase === 'serving' && this.upgrades.isUpgrade(request.spec)) {
      this.upgrades.validateSpec(request.spec);
      return;
    }
    const running = this.upgrades.run;
    if (running) this.reject(`deployment ${this.id} is upgrading: ${this.upgrades.inFlightMessage()}`);
    if (this.phase === 'deploying')
      this.reject(
        `${differentSpecMessage(this.id, this.stage, differences)} It is still deploying its first revision; upgrade it once it serves.`,
      );
    this.reject(differentSpecMessage(this.id, this.stage, differences));
  }

  /**
   * Same spec: attaches, answering once the first deploy serves or has ended. Another model, machine
   * or validation: upgrades the serving deployment, answering how the upgrade ended.
   */
  deploy(request: DeployRequest): Promise<DeploymentResult> {
    return this.requests.once('deploy', async () => {
      if (this.phase === 'serving' && this.upgrades.isUpgrade(request.spec)) {
        const upgrade = await this.upgrades.upgradeTo(request.spec);
        return { ...this.result('serving'), upgrade };
      }
      await condition(() => this.phase !== 'deploying' && this.phase !== 'undoing');
      return this.phase === 'serving' ? this.result('serving') : this.undoResult();
    });
  }

  validateCancel(_request?: ControlRequest): void {
    if (this.requests.known()) return;
    if (this.phase === 'serving' && !this.removalAccepted && this.upgrades.run) {
      const late = this.upgrades.tooLate();
      if (late) this.reject(late);
      return;
    }
    if (this.phase === 'serving')
      this.reject(
        `deployment ${this.id} is serving: there is no deploy to cancel. Remove it with \`garden-deploy teardown ${this.id}\`` +
          (this.inRollbackWindow() ? ' or, within its rollback window, `garden-deploy rollback`' : ''),
      );
    this.rejectUnlessDeploying('cancel');
  }

  /** While deploying: stops and removes everything. While upgrading: undoes the upgrade; the serving revision stays. */
  cancel(request: ControlRequest): Promise<DeploymentResult> {
    return this.requests.once('cancel', () => {
      if (this.phase === 'serving') return this.abortUpgrade('cancel', request.reason);
      return this.preempt('cancel', request.reason);
    });
  }

  validateRollback(_request?: ControlRequest): void {
    if (this.requests.known()) return;
    if (this.phase === 'serving') {
      if (this.removalAccepted) this.reject(`deployment ${this.id} is already being removed`);
      if (this.upgrades.run) {
        const late = this.upgrades.tooLate();
        if (late) this.reject(late);
        return;
      }
      const serving = this.tracker.revision?.number ?? 1;
      if (serving > 1) {
        this.reject(
          `deployment ${this.id} serves r${serving}, and r${serving - 1} was retired when the upgrade completed: there ` +
            `is no upgrade to roll back. To go back, upgrade to the earlier spec (\`garden-deploy upgrade ${this.spec.name} -f <spec>\`; ` +
            'keep the previous revision deployed with strategy.retainPrevious for an instant rollback next time), or remove ' +
            `the deployment with \`garden-deploy teardown ${this.id}\``,
        );
      }
      if (!this.inRollbackWindow()) {
        const ended = this.rollbackWindowEndsAt
          ? ` (it closed at ${new Date(this.rollbackWindowEndsAt).toISOString()})`
          : '';
        this.reject(
          `deployment ${this.id} is serving outside its rollback window${ended}; remove it with \`garden-deploy teardown ${this.id}\``,
        );
      }
      return;
    }
    this.rejectUnlessDeploying('rollback');
  }

  /**
   * While deploying: stops and removes everything. While upgrading: all traffic back on the serving
   * revision and the new one removed. Serving r1 within its window: removes the deployment.
   */
  rollback(request: ControlRequest): Promise<DeploymentResult> {
    return this.requests.once('rollback', () => {
      if (this.phase === 'deploying') return this.preempt('rollback', request.reason);
      if (this.upgrades.run) return this.abortUpgrade('rollback', request.reason);
      return this.removeServing('rollback', request.reason ?? 'rollback requested');
    });
  }

  validateTeardown(_request?: ControlRequest): void {
    if (this.requests.known()) return;
    // The teardown of an earlier run is what this run does: the request that started it attaches.
    if (this.recovery && this.phase !== 'ended') return;
    if (this.phase === 'deploying')
      this.reject(
        `deployment ${this.id} is still deploying (stage ${this.stage}); stop it and remove what it created with \`garden-deploy cancel ${this.id}\``,
      );
    if (this.phase === 'serving' && !this.removalAccepted) return;
    this.rejectRemoving();
  }

  teardown(request: ControlRequest): Promise<DeploymentResult> {
    return this.requests.once('teardown', async () => {
      const reason = request.reason ?? 'teardown requested';
      // The upgrade in flight is undone first (its new revision removed); the removal then takes its turn.
      if (this.upgrades.abortable) void this.upgrades.abort('teardown', reason);
      if (!this.recovery) return this.removeServing('teardown', reason);
      await condition(() => this.phase === 'blocked' || this.phase === 'ended');
      return this.undoResult();
    });
  }

  validateScale(request: ScaleRequest): void {
    if (this.requests.known()) return;
    if (this.phase === 'deploying')
      this.reject(`deployment ${this.id} is still deploying (stage ${this.stage}); scale it once it serves`);
    if (this.phase !== 'serving' || this.removalAccepted) this.rejectRemoving();
    const problem = scaleRequestProblem(request, this.state.spec!, this.tracker.scale);
    if (problem) this.reject(problem);
    const upgrading = this.upgrades.blocksScale();
    if (upgrading) this.reject(`deployment ${this.id}: ${upgrading}`);
  }

  scale(request: ScaleRequest): Promise<ScaleOutcome> {
    return this.requests.once('scale', () => this.exclusive(() => this.scaleServing(request)));
  }

  validateRetryCleanup(_request?: ControlRequest): void {
    if (this.requests.known()) return;
    if (this.phase !== 'blocked')
      this.reject(`deployment ${this.id} has no blocked cleanup to retry (stage ${this.stage})`);
  }

  retryCleanup(_request: ControlRequest): Promise<DeploymentResult> {
    return this.requests.once('retryCleanup', async () => {
      retryBlocked(this.cleanup!);
      await CancellationScope.nonCancellable(() => this.runCleanupPlan());
      return this.undoResult();
    });
  }

  validateAbandonCleanup(request: ControlRequest): void {
    if (this.requests.known()) return;
    if (this.phase !== 'blocked')
      this.reject(`deployment ${this.id} has no blocked cleanup to abandon (stage ${this.stage})`);
    if (!request.reason?.trim())
      this.reject(
        'say why the cleanup is abandoned (--reason): the resources it leaves are then yours to remove',
      );
  }

  abandonCleanup(request: ControlRequest): Promise<DeploymentResult> {
    return this.requests.once('abandonCleanup', async () => {
      const reason = `abandoned by an operator: ${request.reason!.trim()}`;
      const left = remainingResources(
        this.cleanup,
        this.tracker.resources,
        this.recovery?.ids ?? this.state.validated?.ids,
      );
      const outcomes = abandonRemaining(this.cleanup!, reason, left);
      this.tracker.addRemoved(outcomes);
      this.tracker.setCleanup(this.cleanup);
      this.end();
      return this.undoResult();
    });
  }

  // --- queries, continue-as-new, the end ------------------------------------------------------

  progress(): DeployProgress {
    return this.tracker.snapshot();
  }

  get ended(): boolean {
    return this.phase === 'ended';
  }

  /** Nothing in flight: the deployment can continue as new once its history is long. */
  readyToContinueAsNew(): boolean {
    const idle =
      (this.phase === 'serving' && !this.busy && !this.removalAccepted) || this.phase === 'blocked';
    const info = workflowInfo();
    return idle && (info.continueAsNewSuggested || info.historyLength >= this.settings.maxHistoryEvents);
  }

  carryOver(): DeploymentInput {
    const carried: CarriedState = {
      progress: this.tracker.snapshot(),
      ...(this.state.spec ? { spec: this.state.spec } : {}),
      ...(this.state.validated ? { validated: this.state.validated } : {}),
      phase: this.phase === 'blocked' ? 'blocked' : 'serving',
      ...(this.rollbackWindowEndsAt ? { rollbackWindowEndsAt: this.rollbackWindowEndsAt } : {}),
      requests: this.requests.carry(),
      ...(this.failure ? { failure: this.failure } : {}),
    };
    if (this.recovery) return { recover: this.recovery, settings: this.settings, carried };
    return { spec: this.spec, settings: this.settings, carried };
  }

  /** Cancelled through Temporal: remove everything (a serving deployment too), then end Canceled. */
  async cancelledThroughTemporal(err: unknown): Promise<void> {
    this.temporalCancellation ??= err;
    if (this.phase === 'serving' && !this.removalAccepted) {
      this.removalAccepted = true;
      if (this.upgrades.abortable)
        void this.upgrades.abort('teardown', 'the workflow was cancelled through Temporal');
      await this.exclusive(() => this.undo('teardown', 'the workflow was cancelled through Temporal'));
    }
    await condition(() => this.phase === 'ended');
  }

  /** The workflow's result: how it ended; a failed first deploy fails the workflow, naming why. */
  finish(): DeploymentResult {
    if (this.temporalCancellation) throw this.temporalCancellation;
    const result = this.undoResult();
    if (result.outcome !== 'failed') return result;
    const removed = this.tracker.removed.filter((r) => r.outcome === 'removed').map((r) => r.resource);
    throw ApplicationFailure.create({
      message: `${this.failure?.message ?? 'the deployment failed'}${removed.length ? ` — rolled back: removed ${removed.join(', ')}` : ' — nothing was left behind'}`,
      type: this.failure?.type ?? 'DeploymentFailed',
      nonRetryable: true,
      details: [this.tracker.snapshot()],
    });
  }

  // --- StepContext -----------------------------------------------------------------------------

  publish(stage?: DeployStage): void {
    if (stage) this.tracker.setStage(stage);
    if (this.tracker.stage !== this.publishedStage) {
      upsertSearchAttributes([{ key: DeployStageKey, value: this.tracker.stage }]);
      this.publishedStage = this.tracker.stage;
      countStage(this.tracker.stage);
    }
    setCurrentDetails(this.tracker.toMarkdown());
  }

  async step<T extends { attempt: number }>(
    name: StepName,
    stage: DeployStage,
    run: () => Promise<T>,
    detail: (result: T) => string,
  ): Promise<T> {
    this.tracker.startStep(name);
    if (name === 'deploy') this.tracker.setRevisionState('deploying');
    this.publish(stage);
    const startedAt = Date.now();
    try {
      const result = await run();
      this.tracker.finishStep(name, result.attempt, detail(result));
      this.publish();
      recordStep(name, 'succeeded', Date.now() - startedAt);
      return result;
    } catch (err) {
      recordStep(name, isCancellation(err) ? 'cancelled' : 'failed', Date.now() - startedAt);
      if (!isCancellation(err)) {
        const failure = summarizeFailure(err);
        this.tracker.failStep(name, failure);
        if (failure.validation) this.tracker.setValidation(failure.validation);
      }
      throw err;
    }
  }

  // --- helpers ---------------------------------------------------------------------------------

  private get id(): string {
    return workflowInfo().workflowId;
  }

  private get stage(): DeployStage {
    return this.tracker.stage;
  }

  /** The spec asked for; a teardown of an earlier run has none (nothing reads it there). */
  get spec() {
    if (!this.state.spec)
      throw ApplicationFailure.nonRetryable(`${this.id} has no spec`, 'DeploymentStateError');
    return this.state.spec;
  }

  private restore(carried: CarriedState): void {
    this.phase = carried.phase;
    this.requests = new RequestLog(carried.requests);
    this.rollbackWindowEndsAt = carried.rollbackWindowEndsAt;
    this.failure = carried.failure;
    this.cleanup = carried.progress.cleanup;
    this.publishedStage = carried.progress.stage;
  }

  /** Cancel or rollback while deploying: stops the running step, removes, answers how it ended. */
  private async preempt(kind: AbortKind, reason?: string): Promise<DeploymentResult> {
    this.abort = { kind, reason: reason?.trim() || `${kind} requested` };
    this.tracker.setAbort(kind, this.abort.reason);
    this.publish(UNDO_STAGES[kind].running);
    this.deployScope?.cancel();
    await condition(() => this.phase === 'blocked' || this.phase === 'ended');
    return this.undoResult();
  }

  /** Undoes the running upgrade; the deployment keeps serving its revision. */
  private async abortUpgrade(kind: 'rollback' | 'cancel', reason?: string): Promise<DeploymentResult> {
    const upgrade = await this.upgrades.abort(kind, reason?.trim() || `${kind} requested`);
    return { ...this.result('serving'), upgrade };
  }

  private removeServing(kind: 'rollback' | 'teardown', reason: string): Promise<DeploymentResult> {
    this.removalAccepted = true;
    return this.exclusive(async () => {
      await this.undo(kind, reason);
      return this.undoResult();
    });
  }

  private async scaleServing(request: ScaleRequest): Promise<ScaleOutcome> {
    const notServing = this.notServing();
    if (notServing)
      throw ApplicationFailure.nonRetryable(
        `${notServing}; the scale was not applied`,
        'DeploymentStateError',
      );
    return scaleServing(this, request);
  }

  /** Why the deployment cannot start a serving operation now, or undefined when it can. */
  notServing(): string | undefined {
    if (this.recovery) return `deployment ${this.id} is being torn down (stage ${this.stage})`;
    if (this.phase === 'deploying')
      return `deployment ${this.id} is still deploying its first revision (stage ${this.stage}); upgrade it once it serves`;
    if (this.phase === 'blocked') return this.blockedReason();
    if (this.phase !== 'serving' || this.removalAccepted)
      return `deployment ${this.id} is being removed (stage ${this.stage})`;
    return undefined;
  }

  /** Serving operations take turns. */
  async exclusive<T>(run: () => Promise<T>): Promise<T> {
    await condition(() => !this.busy);
    this.busy = true;
    try {
      return await run();
    } finally {
      this.busy = false;
    }
  }

  private reject(message: string): never {
    throw ApplicationFailure.nonRetryable(message, 'DeploymentStateError');
  }

  private rejectUnlessDeploying(kind: AbortKind): void {
    if (this.phase === 'deploying' && !this.abort) return;
    if (this.phase === 'deploying')
      this.reject(
        `deployment ${this.id} is already undoing itself (${this.abort!.kind} requested); nothing more to ${kind}`,
      );
    this.rejectRemoving();
  }

  private rejectRemoving(): never {
    if (this.phase === 'blocked') this.reject(this.blockedReason());
    this.reject(
      `deployment ${this.id} is already being removed (stage ${this.stage}); follow it with \`garden-deploy watch ${this.id}\``,
    );
  }

  private blockedReason(): string {
    return (
      `deployment ${this.id} is CLEANUP_BLOCKED: ${blockedSummary(this.cleanup!)}. ` +
      `Run \`garden-deploy retry-cleanup ${this.id}\` once fixed, or \`garden-deploy abandon-cleanup ${this.id} --reason …\``
    );
  }

  private inRollbackWindow(): boolean {
    return this.rollbackWindowEndsAt !== undefined && Date.now() < this.rollbackWindowEndsAt;
  }

  private cleanupInput(): CleanupInput {
    const source = this.recovery;
    const spec = this.state.validated?.spec;
    const consumer =
      source?.consumerProject ?? (spec?.access.type === 'private' ? spec.access.consumerProject : undefined);
    const ids = source?.ids ?? this.state.validated?.ids;
    const ownership = source?.ownership ?? this.state.ownership;
    return cleanupInputOf({
      project: source?.project ?? this.spec.project,
      region: source?.region ?? this.spec.region,
      ...(ownership ? { ownership } : {}),
      resources: this.tracker.resources,
      ...(ids ? { ids } : {}),
      ...(consumer ? { consumerProject: consumer } : {}),
      stopWaitMs: this.settings.stopWaitMs,
    });
  }

  private undoResult(): DeploymentResult {
    if (this.phase === 'blocked') {
      return {
        ...this.result('cleanup-blocked'),
        blocked: this.cleanup!.tasks.filter((t) => t.state === 'blocked'),
      };
    }
    const kind = this.cleanup?.kind ?? 'teardown';
    return this.result(UNDO_STAGES[kind].outcome, this.cleanup?.reason);
  }

  private result(outcome: DeploymentOutcome, reason?: string): DeploymentResult {
    const snapshot = this.tracker.snapshot();
    return deploymentResult(snapshot, this.id, outcome, {
      ...(outcome === 'serving' && this.inRollbackWindow()
        ? { rollbackWindowEndsAt: snapshot.rollbackWindowEndsAt }
        : {}),
      ...(reason ? { reason } : {}),
    });
  }
}
