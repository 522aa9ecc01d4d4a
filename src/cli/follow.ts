import {
  DeploymentFailedError,
  type DeploymentStatus,
  isDeploymentResult,
  type TemporalConnection,
  watchDeployment,
  watchTeardown,
} from '../client';
import type { DeploymentResult, TeardownResult } from '../workflows/types';
import {
  type CommandIo,
  EXIT_DEPLOYMENT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_OK,
  FollowInterrupted,
  interruptibleFollow,
} from './client-command';
import { ProgressDisplay, renderDeploymentResult, renderStatus, renderTeardownResult } from './progress-view';

/** How following a deployment or teardown ended. */
export type FollowOutcome =
  | { kind: 'deployed'; result: DeploymentResult }
  | { kind: 'torn-down'; result: TeardownResult }
  /** Serving and open to rollback: following stops here, the workflow stays open until the window ends. */
  | { kind: 'serving'; status: DeploymentStatus }
  | { kind: 'failed'; error: DeploymentFailedError }
  | { kind: 'interrupted'; workflowId: string };

export interface FollowOptions {
  /** Machine output: progress goes to stderr as plain lines, the caller prints JSON. */
  json: boolean;
  /** Stop once the deployment serves within its rollback window instead of waiting it out. */
  stopWhenServing?: boolean;
}

/** Human output is coloured on a TTY unless NO_COLOR is set. */
export function useColor(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

/** Shows live progress until the workflow closes (or serves within its window, or Ctrl-C). */
export async function follow(
  temporal: TemporalConnection,
  workflowId: string,
  io: CommandIo,
  options: FollowOptions,
): Promise<FollowOutcome> {
  const teardown = workflowId.startsWith('teardown/');
  const tty = !options.json && Boolean(process.stdout.isTTY);
  const display = new ProgressDisplay(options.json ? io.stderr : io.stdout, {
    tty,
    color: !options.json && useColor(),
    columns: process.stdout.columns,
  });
  const interrupt = interruptibleFollow();
  const servingInWindow = new AbortController();
  const signal = AbortSignal.any([interrupt.signal, servingInWindow.signal]);
  let serving: DeploymentStatus | undefined;
  const onProgress = (status: DeploymentStatus) => {
    display.update(status);
    if (options.stopWhenServing && isServingInWindow(status)) {
      serving = status;
      servingInWindow.abort();
    }
  };
  try {
    if (teardown) {
      return {
        kind: 'torn-down',
        result: await watchTeardown(temporal.client, workflowId, onProgress, { signal }),
      };
    }
    return {
      kind: 'deployed',
      result: await watchDeployment(temporal.client, workflowId, onProgress, { signal }),
    };
  } catch (err) {
    if (serving) return { kind: 'serving', status: serving };
    if (interrupt.signal.aborted && (err === interrupt.signal.reason || err instanceof FollowInterrupted)) {
      return { kind: 'interrupted', workflowId };
    }
    if (err instanceof DeploymentFailedError) return { kind: 'failed', error: err };
    throw err;
  } finally {
    display.stop();
    interrupt.dispose();
  }
}

function isServingInWindow(status: DeploymentStatus): boolean {
  return (
    status.status === 'RUNNING' &&
    status.stage === 'SERVING' &&
    Boolean(status.progress?.rollbackWindowEndsAt)
  );
}

/** The outcome a command asks for: serving for deploy/watch, undone for cancel/rollback. */
export type WantedOutcome = (result: DeploymentResult) => boolean;
export const servingWanted: WantedOutcome = (result) => result.outcome === 'serving';

export function outcomeExitCode(outcome: FollowOutcome, wanted: WantedOutcome = servingWanted): number {
  switch (outcome.kind) {
    case 'deployed':
      return wanted(outcome.result) ? EXIT_OK : EXIT_DEPLOYMENT_FAILED;
    case 'torn-down':
    case 'serving':
      return EXIT_OK;
    case 'failed':
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
    case 'deployed':
      print(renderDeploymentResult(outcome.result, { color }));
      break;
    case 'torn-down':
      print(renderTeardownResult(outcome.result, { color }));
      break;
    case 'serving': {
      const { status } = outcome;
      const { resources, smoke } = status.progress ?? { resources: {}, smoke: [] };
      print([
        `✔ ${status.deployment} is serving; it can be rolled back until ${status.progress?.rollbackWindowEndsAt}`,
        ...(resources.endpoint ? [`  Endpoint:       ${resources.endpoint}`] : []),
        ...(resources.dedicatedEndpointDns ? [`  Dedicated DNS:  ${resources.dedicatedEndpointDns}`] : []),
        ...(resources.pscIpAddress ? [`  PSC address:    ${resources.pscIpAddress}`] : []),
        ...(smoke ?? []).map(
          (test) =>
            `  Smoke ${test.name}: ${test.passed ? 'passed' : 'FAILED'} ${JSON.stringify(test.answerPreview ?? '')}`,
        ),
        `  Roll back: garden-deploy rollback ${status.workflowId}`,
      ]);
      break;
    }
    case 'failed':
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
    case 'deployed':
    case 'torn-down':
      return { result: outcome.result };
    case 'serving':
      return {
        serving: { rollbackWindowEndsAt: outcome.status.progress?.rollbackWindowEndsAt },
        progress: outcome.status.progress,
      };
    case 'failed':
      return { failure: { status: outcome.error.status, message: outcome.error.failure } };
    case 'interrupted':
      return { interrupted: true };
  }
}
