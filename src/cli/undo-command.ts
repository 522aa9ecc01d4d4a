import type { Command } from 'commander';
import { z } from 'zod';
import { cancelDeployment, rollbackDeployment } from '../client';
import type { AbortKind } from '../workflows/types';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  DEPLOYMENT_ARGUMENT_HELP,
  EXIT_OK,
  exitOnUsageErrorWith2,
  processIo,
  withTemporal,
} from './client-command';
import { follow, outcomeExitCode, outcomeJson, reportOutcome } from './follow';

/** `cancel` and `rollback`: the same request with a different signal and wording. */

const UndoFlagsSchema = CommandFlagsSchema.extend({
  reason: z.string().max(500, '--reason is at most 500 characters').optional(),
  detach: z.boolean().default(false),
});

const WORDING: Record<
  AbortKind,
  { summary: string; description: string; requested: string; outcome: 'cancelled' | 'rolled-back' }
> = {
  cancel: {
    summary: 'stop a running deployment and remove what it created',
    description:
      'Stop a running deployment and remove everything it created (compensations run in reverse order), then ' +
      'follow until done. Refused when it already finished (use teardown) or is already undoing itself.',
    requested: 'Cancel requested for',
    outcome: 'cancelled',
  },
  rollback: {
    summary: 'undo a deployment while it runs or within its rollback window',
    description:
      'Remove everything a deployment created, while it runs or within its rollback window after success, then ' +
      'follow until done. After the window, use teardown.',
    requested: 'Rollback requested for',
    outcome: 'rolled-back',
  },
};

export function registerUndoCommand(program: Command, kind: AbortKind): void {
  const command = program
    .command(kind)
    .summary(WORDING[kind].summary)
    .description(
      `${WORDING[kind].description} Exit codes: 0 ${WORDING[kind].outcome.replace('-', ' ')} (or requested, with ` +
        '--detach); 1 it ended otherwise; 2 refused, not found, bad input or Temporal unreachable; 130 interrupted.',
    )
    .argument('<deployment>', DEPLOYMENT_ARGUMENT_HELP)
    .option('--reason <text>', 'why; recorded in the progress and the result')
    .option('--detach', 'return once the request is sent')
    .option('--json', 'print the outcome as JSON on stdout; progress lines go to stderr');
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (ref: string, raw: unknown) => {
    process.exitCode = await runUndo(kind, ref, raw, processIo);
  });
}

export async function runUndo(kind: AbortKind, ref: string, raw: unknown, io: CommandIo): Promise<number> {
  const flags = UndoFlagsSchema.parse(raw);
  return withTemporal(kind, flags, io, async (temporal) => {
    const request = kind === 'cancel' ? cancelDeployment : rollbackDeployment;
    const { workflowId, runId, stage } = await request(temporal.client, ref, flags.reason);
    const facts = { workflowId, runId, stageBefore: stage, uiUrl: temporal.workflowUrl(workflowId) };
    const wanted = (result: { outcome: string }) => result.outcome === WORDING[kind].outcome;
    if (!flags.json)
      io.stdout(`${WORDING[kind].requested} ${workflowId} (it was at stage ${stage ?? 'unknown'})\n`);
    if (flags.detach) {
      if (flags.json) io.stdout(`${JSON.stringify(facts, null, 2)}\n`);
      else io.stdout(`Follow it with: garden-deploy watch ${workflowId}\n`);
      return EXIT_OK;
    }
    const outcome = await follow(temporal, workflowId, io, { json: flags.json });
    if (!flags.json) return reportOutcome(outcome, io, wanted);
    io.stdout(`${JSON.stringify({ ...facts, ...outcomeJson(outcome) }, null, 2)}\n`);
    return outcomeExitCode(outcome, wanted);
  });
}
