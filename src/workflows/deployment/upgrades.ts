import {
  ApplicationFailure,
  CancellationScope,
  condition,
  currentUpdateInfo,
  isCancellation,
  log,
  workflowInfo,
} from '@temporalio/workflow';
import { describeStrategy } from '../../rollout/plan';
import type { DeploymentSpec } from '../../spec';
import { formatDuration } from '../../spec/duration';
import { summarizeFailure } from '../failures';
import { countUpgradeEnded } from '../metrics';
import type { ControlRequest, UpgradeRequest, UpgradeResult } from '../types';
import type { RequestLog } from './request-log';
import { classify, listDifferences, specDifferences } from './spec-diff';
import { GateFailure, type UpgradeContext, upgradeSteps } from './upgrade-steps';
import { type UpgradeAbortKind, UpgradeRun } from './upgrade-run';

/** What the upgrades need from the deployment besides the step context. */
export interface UpgradeHost extends UpgradeContext {
  /** The serving spec. */
  readonly spec: DeploymentSpec;
  /** The deployment's answers by request id (idempotent Updates, also across continue-as-new). */
  readonly requests: RequestLog;
  /** Why nothing may start now (first deploy running, being removed, blocked), or undefined. */
  notServing(): string | undefined;
  /** Serving operations take turns. */
  exclusive<T>(run: () => Promise<T>): Promise<T>;
}

/**
 * The deployment's upgrades: the logic of the `upgrade`, `promote`, `pause` and `resume` Updates
 * (validator + handler), and what the other Updates (deploy, rollback, cancel, teardown, scale)
 * need to know about an upgrade in flight. One upgrade runs at a time.
 */
export class Upgrades {
  /** The upgrade in flight. */
  run?: UpgradeRun;
  /** The last one that ended: a request that raced its end is answered from it. */
  private last?: UpgradeRun;

  constructor(private readonly host: UpgradeHost) {}

  // --- the Updates: upgrade, promote, pause, resume --------------------------------------------

  validateUpgrade(request: UpgradeRequest): void {
    if (this.host.requests.known()) return;
    this.validateSpec(request?.spec);
  }

  /** Rolls out `request.spec` as a new revision of the serving deployment (or attaches to that upgrade). */
  upgrade(request: UpgradeRequest): Promise<UpgradeResult> {
    return this.host.requests.once('upgrade', () => this.upgradeTo(request.spec));
  }

  validatePromote(_request?: ControlRequest): void {
    if (this.host.requests.known()) return;
    const run = this.requireRun('promote');
    if (!run.undoable)
      reject(`the upgrade to r${run.revision} is ${run.phase}; there is nothing left to promote`);
  }

  /** Skips the remaining traffic steps and bakes (and the retention of the previous revision). */
  promote(_request: ControlRequest): Promise<UpgradeResult> {
    return this.host.requests.once('promote', async () => {
      const run = this.current();
      if (!run.ended) run.promote();
      this.host.publish('UPGRADING');
      await condition(() => run.ended);
      return this.result(run);
    });
  }

  validatePause(_request?: ControlRequest): void {
    if (this.host.requests.known()) return;
    const run = this.requireRun('pause');
    if (!run.undoable) reject(`the upgrade to r${run.revision} is ${run.phase}; it cannot be paused now`);
    if (run.paused) reject(`the upgrade to r${run.revision} is already paused (${run.paused.reason})`);
  }

  /** Holds the upgrade where it is: no further traffic step (gates keep being evaluated). */
  pause(request: ControlRequest): Promise<UpgradeResult> {
    return this.host.requests.once('pause', async () => {
      const run = this.current();
      if (run.ended) return this.result(run);
      run.pause(request?.reason?.trim() || 'paused by an operator');
      this.host.publish('UPGRADE_PAUSED');
      return this.result(run);
    });
  }

  validateResume(_request?: ControlRequest): void {
    if (this.host.requests.known()) return;
    const run = this.requireRun('resume');
    if (!run.paused) reject(`the upgrade to r${run.revision} is not paused (phase ${run.phase})`);
  }

  resume(_request: ControlRequest): Promise<UpgradeResult> {
    return this.host.requests.once('resume', async () => {
      const run = this.current();
      if (run.ended) return this.result(run);
      run.resume();
      this.host.publish('UPGRADING');
      return this.result(run);
    });
  }

  // --- upgrade --------------------------------------------------------------------------------

  /** Refuses an upgrade that cannot start now, or a spec no upgrade can serve. */
  validateSpec(spec: DeploymentSpec | undefined): void {
    if (!spec || typeof spec !== 'object') reject('the upgrade request carries no spec');
    const notServing = this.host.notServing();
    if (notServing) reject(notServing);
    if (this.run) {
      if (sameSpec(this.run.spec, spec)) return; // the same request again attaches
      reject(this.inFlightMessage());
    }
    const kinds = classify(specDifferences(this.host.spec, spec));
    if (kinds.fixed.length > 0) {
      reject(
        `${workflowInfo().workflowId} cannot be upgraded to this spec: ${listDifferences(kinds.fixed)} cannot change on a ` +
          `deployment (its endpoint stays). Nothing was changed; to serve it, tear the deployment down and deploy again`,
      );
    }
    if (kinds.revision.length === 0 && kinds.settings.length === 0 && kinds.inPlace.length > 0) {
      reject(
        `only what changes in place differs (${listDifferences(kinds.inPlace)}): change it with ` +
          `\`garden-deploy scale ${spec.name}\` (--min, --max, --autoscaling, --container-logging); nothing was changed`,
      );
    }
  }

  /** Whether `spec` is what an upgrade (running, or to start) deploys: differs in model, machine or validation. */
  isUpgrade(spec: DeploymentSpec): boolean {
    if (this.run && sameSpec(this.run.spec, spec)) return true;
    return classify(specDifferences(this.host.spec, spec)).revision.length > 0;
  }

  /** Runs the upgrade to `spec` (or attaches to the one running it); answers how it ended. */
  async upgradeTo(spec: DeploymentSpec): Promise<UpgradeResult> {
    const running = this.run;
    if (running && sameSpec(running.spec, spec)) {
      await condition(() => running.ended);
      return this.result(running);
    }
    return this.host.exclusive(() => this.start(spec));
  }

  // --- what the other Updates ask ------------------------------------------------------------

  /** A rollback or cancel now would undo the running upgrade. */
  get abortable(): boolean {
    return this.run !== undefined && this.run.undoable;
  }

  /** Why a rollback or cancel cannot undo the running upgrade any more. */
  tooLate(): string | undefined {
    const run = this.run;
    if (!run || run.undoable) return undefined;
    return `the upgrade to r${run.revision} is ${run.phase}: r${run.from} is being retired, so it is too late to roll back; follow it with \`garden-deploy watch ${workflowInfo().workflowId}\``;
  }

  /** Undoes the running upgrade; resolves once all traffic is back on the serving revision and the new one is gone. */
  async abort(kind: UpgradeAbortKind, reason: string): Promise<UpgradeResult> {
    const run = this.current();
    if (!run.ended) run.requestAbort(kind, reason);
    await condition(() => run.ended);
    return this.result(run);
  }

  /** While an upgrade runs, nothing else changes the replicas. */
  blocksScale(): string | undefined {
    const run = this.run;
    if (!run) return undefined;
    return (
      `an upgrade to r${run.revision} is in progress (phase ${run.phase}); scale once it ends, or give the ` +
      'replicas in the upgrade’s spec'
    );
  }

  inFlightMessage(): string {
    const run = this.run!;
    const id = workflowInfo().workflowId;
    return (
      `an upgrade to r${run.revision} is in progress (phase ${run.phase}${run.paused ? ', paused' : ''}); follow it with ` +
      `\`garden-deploy watch ${id}\`, or end it with \`garden-deploy promote\` or \`garden-deploy rollback\``
    );
  }

  /** The answer about `run` (or the last upgrade), as it stands. */
  result(run: UpgradeRun): UpgradeResult {
    const { tracker } = this.host;
    return {
      deployment: this.host.spec.name,
      workflowId: workflowInfo().workflowId,
      revision: run.revision,
      from: run.from,
      outcome: run.outcome ?? 'in-progress',
      phase: run.phase,
      serving: tracker.revision?.number ?? run.from,
      traffic: tracker.traffic,
      ...(run.reason ? { reason: run.reason } : {}),
      ...(run.paused ? { paused: true } : {}),
      ...(run.failedGate ? { failedGate: run.failedGate } : {}),
    };
  }

  // --- the run --------------------------------------------------------------------------------

  private async start(spec: DeploymentSpec): Promise<UpgradeResult> {
    const notServing = this.host.notServing();
    if (notServing) reject(`${notServing}; the upgrade was not started`);
    const { tracker } = this.host;
    const from = tracker.revision?.number ?? 1;
    const revision = Math.max(from, ...tracker.revisions.map((r) => r.number)) + 1;
    const startedAt = new Date().toISOString();
    const requestId = currentUpdateInfo()?.id;
    const run = new UpgradeRun(revision, from, spec, tracker);
    this.run = run;
    tracker.putRevision({ number: revision, modelUri: spec.model.uri, state: 'validating', startedAt, spec });
    tracker.setUpgrade({
      revision,
      from,
      ...(requestId ? { requestId } : {}),
      phase: 'validating',
      strategy: describeStrategy(spec.strategy, formatDuration),
      evaluations: 0,
      startedAt,
    });
    this.host.publish('UPGRADING');
    log.info('upgrade started', { revision, from, modelUri: spec.model.uri });
    try {
      run.outcome = await run.scope.run(() => upgradeSteps(this.host, run));
      if (run.outcome === 'unchanged') this.unchanged(run, spec);
    } catch (err) {
      await this.rollBack(run, err);
    } finally {
      this.run = undefined;
      this.last = run;
      run.enter('done');
      tracker.patchUpgrade({
        outcome: run.outcome,
        ...(run.reason ? { reason: run.reason } : {}),
        ...(run.failedGate ? { failedGate: run.failedGate } : {}),
        endedAt: new Date().toISOString(),
      });
      this.host.publish('SERVING');
      if (run.outcome) countUpgradeEnded(run.outcome);
    }
    log.info('upgrade ended', { revision, outcome: run.outcome, reason: run.reason });
    return this.result(run);
  }

  /** Same weights and machine: nothing is deployed; the spec's settings are recorded (not its replicas: `scale`). */
  private unchanged(run: UpgradeRun, spec: DeploymentSpec): void {
    const { state, tracker } = this.host;
    const replicas = this.host.spec.replicas;
    const replicasAsked = JSON.stringify(spec.replicas) !== JSON.stringify(replicas);
    state.spec = { ...spec, replicas };
    if (state.validated && run.validated)
      state.validated = { ...state.validated, spec: { ...run.validated.spec, replicas } };
    run.reason =
      `r${run.from} already serves these weights (same objects and GCS generations) on this machine: nothing was ` +
      `deployed; the spec's settings were recorded` +
      (replicasAsked ? ` (not its replicas: change them with \`garden-deploy scale ${spec.name}\`)` : '');
    tracker.dropRevision(run.revision);
  }

  /** Puts all traffic back on the serving revision and removes everything of the new one. */
  private async rollBack(run: UpgradeRun, err: unknown): Promise<void> {
    const { tracker } = this.host;
    if (err instanceof GateFailure) {
      run.failedGate = err.evaluation;
      run.reason = `rolled back automatically at ${err.evaluation.percent} %: ${err.evaluation.summary}`;
    } else if (run.abort) {
      run.reason = `${run.abort.kind === 'teardown' ? 'undone for a teardown' : `${run.abort.kind} requested`}: ${run.abort.reason}`;
    } else if (isCancellation(err)) {
      run.reason = 'the workflow was cancelled through Temporal';
    } else {
      const failure = summarizeFailure(err);
      run.reason = `${run.phase} failed: ${failure.message}`;
    }
    if (!run.abort)
      tracker.recordError({
        message: `upgrade to r${run.revision} ${run.reason}`,
        type: 'UpgradeRolledBack',
      });
    run.enter('rolling-back');
    this.host.publish('UPGRADE_ROLLING_BACK');
    await CancellationScope.nonCancellable(() => run.undo());
    run.outcome = 'rolled-back';
    tracker.moveRevision(run.revision, 'rolled-back', { reason: run.reason });
    tracker.moveRevision(run.from, 'serving');
    const serving = tracker.resources.deployedModelId;
    if (serving) tracker.setTraffic([{ revision: run.from, deployedModelId: serving, percent: 100 }]);
  }

  /** The upgrade a request accepted while it ran is about (it may have ended since). */
  private current(): UpgradeRun {
    const run = this.run ?? this.last;
    if (!run) reject('no upgrade has run on this deployment');
    return run;
  }

  private requireRun(what: string): UpgradeRun {
    if (this.run) return this.run;
    const notServing = this.host.notServing();
    reject(
      notServing ??
        `${workflowInfo().workflowId} has no upgrade in progress to ${what} (revision r${this.host.tracker.revision?.number ?? 1} serves)`,
    );
  }
}

function sameSpec(a: DeploymentSpec, b: DeploymentSpec): boolean {
  return specDifferences(a, b).length === 0;
}

function reject(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'DeploymentStateError');
}
