import { CancellationScope, condition, log, sleep } from '@temporalio/workflow';
import type { ValidatedDeployment } from '../../activities/contract';
import type { DeploymentSpec } from '../../spec';
import { summarizeFailure } from '../failures';
import { countCompensation } from '../metrics';
import type { ProgressTracker } from '../progress';
import type { GateEvaluation, UpgradeOutcome, UpgradePhase } from '../types';

/** Why an upgrade is undone by request: a rollback, a cancel, or a teardown of the whole deployment. */
export type UpgradeAbortKind = 'rollback' | 'cancel' | 'teardown';

/** What an undo does, as few-valued names for metrics (`what` is for people). */
export type UpgradeUndoTask = 'removeStaging' | 'deleteModel' | 'restoreTraffic' | 'retirePrevious';

/** A step's undo, registered before the step runs. */
interface Compensation {
  task: UpgradeUndoTask;
  what: string;
  run: () => Promise<unknown>;
}

/** Longest wait between rounds of a compensation that keeps failing. */
const MAX_UNDO_BACKOFF_MS = 5 * 60_000;

/**
 * One upgrade in flight: what it deploys, the operator's requests (pause, resume, promote, abort),
 * its compensations, and the cancellation scope its steps run in. The steps (`upgrade-steps.ts`)
 * read it; the deployment's Update handlers change it.
 */
export class UpgradeRun {
  readonly scope = new CancellationScope();
  phase: UpgradePhase = 'validating';
  validated?: ValidatedDeployment;
  abort?: { kind: UpgradeAbortKind; reason: string };
  promoteRequested = false;
  paused?: { at: string; reason: string };
  failedGate?: GateEvaluation;
  outcome?: UpgradeOutcome;
  reason?: string;
  /** Bumped on every operator request, so waits wake up. */
  private signals = 0;
  private readonly compensations: Compensation[] = [];

  constructor(
    readonly revision: number,
    readonly from: number,
    readonly spec: DeploymentSpec,
    private readonly tracker: ProgressTracker,
  ) {}

  get ended(): boolean {
    return this.outcome !== undefined;
  }

  /** Phases in which the new revision can still be undone and the serving one kept. */
  get undoable(): boolean {
    return !['retiring', 'rolling-back', 'done'].includes(this.phase);
  }

  enter(phase: UpgradePhase): void {
    this.phase = phase;
    this.tracker.patchUpgrade({ phase });
  }

  // --- operator requests ----------------------------------------------------------------------

  pause(reason: string): void {
    this.paused = { at: new Date().toISOString(), reason };
    this.tracker.patchUpgrade({ paused: this.paused });
    this.signals++;
  }

  resume(): void {
    this.paused = undefined;
    this.tracker.patchUpgrade({ paused: undefined });
    this.signals++;
  }

  promote(): void {
    this.promoteRequested = true;
    this.tracker.patchUpgrade({ promoted: true });
    this.signals++;
  }

  /** Stops the steps; the compensations then undo what they created. */
  requestAbort(kind: UpgradeAbortKind, reason: string): void {
    this.abort ??= { kind, reason };
    this.scope.cancel();
    this.signals++;
  }

  /** Waits up to `ms`, returning early when an operator request arrives. */
  async waitFor(ms: number): Promise<void> {
    if (ms <= 0) return;
    const seen = this.signals;
    await condition(() => this.signals !== seen, ms);
  }

  /** Holds while paused (a promote or an abort ends the hold too). */
  async untilResumed(): Promise<void> {
    await condition(() => !this.paused || this.promoteRequested);
  }

  // --- compensations --------------------------------------------------------------------------

  /** Registers the undo of the step about to run. */
  compensate(task: UpgradeUndoTask, what: string, run: () => Promise<unknown>): void {
    this.compensations.push({ task, what, run });
  }

  /** The step's undo is no longer needed (its resources are gone or now belong to another undo). */
  forget(what: string): void {
    const index = this.compensations.findIndex((c) => c.what === what);
    if (index >= 0) this.compensations.splice(index, 1);
  }

  /** Past the point of no return (the previous revision is being retired): nothing is undone any more. */
  forgetAll(): void {
    this.compensations.length = 0;
  }

  /**
   * Runs the compensations, last registered first. Each retries (its activity has a retry budget)
   * until it succeeds: a failing one is shown in the progress with Google's answer and tried again
   * after a backoff, so the removal either finishes or says visibly what blocks it.
   */
  async undo(): Promise<void> {
    while (this.compensations.length > 0) {
      const compensation = this.compensations[this.compensations.length - 1]!;
      for (let round = 0; ; round++) {
        try {
          await compensation.run();
          countCompensation('upgrade', compensation.task, 'done');
          break;
        } catch (err) {
          countCompensation('upgrade', compensation.task, 'blocked');
          const failure = summarizeFailure(err);
          const blocked = `${compensation.what}: ${failure.message}`;
          this.tracker.patchUpgrade({ blocked });
          log.warn('an upgrade compensation keeps failing; retrying', { blocked });
          await sleep(Math.min(MAX_UNDO_BACKOFF_MS, 30_000 * 2 ** round));
        }
      }
      this.tracker.patchUpgrade({ blocked: undefined });
      this.compensations.pop();
    }
  }
}
