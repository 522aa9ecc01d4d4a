import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeploymentFailedError,
  DeploymentStateError,
  type DeploymentStatus,
  getProgress,
  isDeploymentResult,
  type TemporalConnection,
  watchDeployment,
  watchTeardown,
} from '../client';
import type { DeploymentResult, ScaleOutcome, TeardownResult, UpgradeResult } from '../workflows/types';
import {
  type CommandIo,
  EXIT_DEPLOYMENT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_OK,
  FollowInterrupted,
  interruptibleFollow,
} from './client-command';
import {
  ProgressDisplay,
  renderDeploymentResult,
  renderScaleOutcome,
  renderStatus,
  renderTeardownResult,
  renderUpgradeResult,
} from './progress-view';

/** How following a deployment (or a request to it) ended. */
export type FollowOutcome =
  | { kind: 'deployment'; result: DeploymentResult }
  | { kind: 'torn-down'; result: TeardownResult }
  | { kind: 'scaled'; result: ScaleOutcome }
  /** An upgrade (or promote, pause, resume of one) answered. */
  | { kind: 'upgrade'; result: UpgradeResult }
  /** The deployment (workflow) failed, was terminated or timed out. */
  | { kind: 'failed'; error: DeploymentFailedError }
  /** An accepted request could not be carried out (e.g. the scale failed). */
  | { kind: 'request-failed'; error: DeploymentStateError }
  | { kind: 'interrupted'; workflowId: string };

export interface FollowOptions {
  /** Machine output: progress goes to stderr as plain lines, the caller prints JSON. */
  json: boolean;
  /**
   * The outcome of the request being followed (an Update's result): following ends when it
   * settles. Without it, following ends once the deployment settles (serves, is blocked, ends).
   */
  until?: Promise<RequestResult>;
  /** Time between progress polls (default 1 s). */
  intervalMs?: number;
}

/** What the Updates answer. */
export type RequestResult = DeploymentResult | ScaleOutcome | UpgradeResult;

/** Human output is coloured on a TTY unless NO_COLOR is set. */
export function useColor(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

/** Shows live progress until the request or the deployment settles (or Ctrl-C). */
export async function follow(
  temporal: TemporalConnection,
  workflowId: string,
  io: CommandIo,
  options: FollowOptions,
): Promise<FollowOutcome> {
  const tty = !options.json && Boolean(process.stdout.isTTY);
  const display = new ProgressDisplay(options.json ? io.stderr : io.stdout, {
    tty,
    color: !options.json && useColor(),
    columns: process.stdout.columns,
  });
  const interrupt = interruptibleFollow();
  const onProgress = (status: DeploymentStatus) => display.update(status);
  try {
    if (options.until)
      return await followRequest(temporal, workflowId, options.until, onProgress, interrupt.signal, options);
    if (workflowId.startsWith('teardown/')) {
      const result = await watchTeardown(temporal.client, workflowId, onProgress, {
        signal: interrupt.signal,
      });
      return { kind: 'torn-down', result };
    }
    const result = await watchDeployment(temporal.client, workflowId, onProgress, {
      signal: interrupt.signal,
    });
    return isDeploymentResult(result) ? { kind: 'deployment', result } : { kind: 'torn-down', result };
  } catch (err) {
    if (interrupt.signal.aborted && (err === interrupt.signal.reason || err instanceof FollowInterrupted)) {
      return { kind: 'interrupted', workflowId };
    }
    if (err instanceof DeploymentFailedError) return { kind: 'failed', error: err };
    if (err instanceof DeploymentStateError) return { kind: 'request-failed', error: err };
    throw err;
  } finally {
    display.stop();
    interrupt.dispose();
  }
}

/** Polls progress while the request runs; one last frame once it is done. */
async function followRequest(
  temporal: TemporalConnection,
  workflowId: string,
  until: Promise<RequestResult>,
  onProgress: (status: DeploymentStatus) => void,
  signal: AbortSignal,
  options: FollowOptions,
): Promise<FollowOutcome> {
  let settled = false;
  const outcome = until.finally(() => (settled = true));
  const stopped = new Promise<never>((_, reject) =>
    signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
  );
  outcome.catch(() => undefined);
  stopped.catch(() => undefined);
  while (!settled) {
    signal.throwIfAborted();
    onProgress(await getProgress(temporal.client, workflowId));
    await Promise.race([
      sleep(options.intervalMs ?? 1_000, undefined, { signal }).catch(() => undefined),
      outcome.catch(() => undefined),
    ]);
  }
  const result = await Promise.race([outcome, stopped]);
  onProgress(await getProgress(temporal.client, workflowId));
  if ('replicas' in result) return { kind: 'scaled', result };
  if ('from' in result && 'traffic' in result) return { kind: 'upgrade', result };
  return { kind: 'deployment', result };
}

/** Which outcome a command asks for (deploy: serving; cancel: cancelled; …). */
export type WantedOutcome = (result: DeploymentResult) => boolean;
export const servingWanted: WantedOutcome = (result) => result.outcome === 'serving';

export function outcomeExitCode(outcome: FollowOutcome, wanted: WantedOutcome = servingWanted): number {
  switch (outcome.kind) {
    case 'deployment':
      return wanted(outcome.result) ? EXIT_OK : EXIT_DEPLOYMENT_FAILED;
    case 'torn-down':
    case 'scaled':
      return EXIT_OK;
    case 'upgrade':
      return outcome.result.outcome === 'rolled-back' ? EXIT_DEPLOYMENT_FAILED : EXIT_OK;
    case 'failed':
    case 'request-failed':
      return EXIT_DEPLOYMENT_FAILED;
    case 'interrupted':
      return EXIT_INTERRUPTED;
  }
}

/** Prints how it ended (human form) and returns the exit code. */
export function reportOutcome(
  outcome: FollowOutcome,
  io: CommandIo,
  wanted: WantedOutcome = servingWanted,
): number {
  const color = useColor();
  const print = (lines: string[]) => io.stdout(`${lines.join('\n')}\n`);
  switch (outcome.kind) {
    case 'deployment':
      print(renderDeploymentResult(outcome.result, { color }));
      break;
    case 'torn-down':
      print(renderTeardownResult(outcome.result, { color }));
      break;
    case 'scaled':
      print(renderScaleOutcome(outcome.result, { color }));
      break;
    case 'upgrade':
      print(renderUpgradeResult(outcome.result, { color }));
      break;
    case 'failed':
    case 'request-failed':
      io.stderr(`${outcome.error.message}\n`);
      break;
    case 'interrupted':
      io.stderr(
        `Stopped following; the deployment goes on. Follow it again with: garden-deploy watch ${outcome.workflowId}\n`,
      );
      break;
  }
  return outcomeExitCode(outcome, wanted);
}

/** What `--json` prints of an accepted request (and `--detach` alone). */
export function requestFacts(
  temporal: TemporalConnection,
  request: { workflowId: string; runId: string; requestId: string; stage?: string },
): Record<string, unknown> {
  return {
    workflowId: request.workflowId,
    runId: request.runId,
    requestId: request.requestId,
    stageBefore: request.stage,
    uiUrl: temporal.workflowUrl(request.workflowId),
  };
}

/**
 * An accepted request, to the end: with --detach, the facts (or how to follow it); otherwise live
 * progress until it is answered, then its outcome (human, or the facts and outcome as JSON).
 */
export async function followAccepted(
  temporal: TemporalConnection,
  io: CommandIo,
  request: { workflowId: string; result(): Promise<RequestResult> },
  options: { json: boolean; detach: boolean; facts: Record<string, unknown>; wanted?: WantedOutcome },
): Promise<number> {
  const { workflowId } = request;
  if (options.detach) {
    if (options.json) io.stdout(`${JSON.stringify(options.facts, null, 2)}\n`);
    else io.stdout(`Follow it with: garden-deploy watch ${workflowId}\n`);
    return EXIT_OK;
  }
  const outcome = await follow(temporal, workflowId, io, { json: options.json, until: request.result() });
  if (!options.json) return reportOutcome(outcome, io, options.wanted);
  io.stdout(`${JSON.stringify({ ...options.facts, ...outcomeJson(outcome) }, null, 2)}\n`);
  return outcomeExitCode(outcome, options.wanted);
}

/** Human form of a status (the `status` command). */
export function printStatus(status: DeploymentStatus, io: CommandIo, uiUrl: string | undefined): void {
  const color = useColor();
  const lines = renderStatus(status, { color, uiUrl });
  // A torn-down deployment's result names resources that no longer exist; its note says so.
  const result = status.teardown ? undefined : status.result;
  if (isDeploymentResult(result)) lines.push(...renderDeploymentResult(result, { color }));
  else if (result) lines.push(...renderTeardownResult(result, { color }));
  io.stdout(`${lines.join('\n')}\n`);
}

/** JSON form of an outcome, for `--json`. */
export function outcomeJson(outcome: FollowOutcome): Record<string, unknown> {
  switch (outcome.kind) {
    case 'deployment':
    case 'torn-down':
    case 'scaled':
    case 'upgrade':
      return { result: outcome.result };
    case 'failed':
      return { failure: { status: outcome.error.status, message: outcome.error.failure } };
    case 'request-failed':
      return { failure: { message: outcome.error.message } };
    case 'interrupted':
      return { interrupted: true };
  }
}
