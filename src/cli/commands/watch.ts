import type { Command } from 'commander';
import { resolveWorkflow } from '../../client';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  DEPLOYMENT_ARGUMENT_HELP,
  NO_UI_LINK,
  EXIT_CODES_HELP,
  exitOnUsageErrorWith2,
  processIo,
  withTemporal,
} from '../client-command';
import { follow, outcomeExitCode, outcomeJson, reportOutcome } from '../follow';

/** `garden-deploy watch <deployment>`: live progress until it finishes. */

export function register(program: Command): void {
  const command = program
    .command('watch')
    .summary('follow a deployment with live progress')
    .description(
      'Follow a deployment with live progress until it settles: it serves (then print the endpoint, inference ' +
        'URL and smoke answers), its cleanup is blocked (what blocks it), or it ended (what was removed). ' +
        `Ctrl-C stops following, not the deployment. ${EXIT_CODES_HELP}`,
    )
    .argument('<deployment>', DEPLOYMENT_ARGUMENT_HELP)
    .option('--json', 'print the outcome as JSON on stdout; progress lines go to stderr');
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (ref: string, raw: unknown) => {
    process.exitCode = await runWatch(ref, raw, processIo);
  });
}

export async function runWatch(ref: string, raw: unknown, io: CommandIo): Promise<number> {
  const flags = CommandFlagsSchema.parse(raw);
  return withTemporal('watch', flags, io, async (temporal) => {
    const { workflowId } = await resolveWorkflow(temporal.client, ref);
    const uiUrl = temporal.workflowUrl(workflowId);
    if (!flags.json) io.stdout(`Following ${workflowId}\n  Temporal UI: ${uiUrl ?? NO_UI_LINK}\n`);
    const outcome = await follow(temporal, workflowId, io, { json: flags.json });
    if (!flags.json) return reportOutcome(outcome, io);
    io.stdout(`${JSON.stringify({ workflowId, uiUrl, ...outcomeJson(outcome) }, null, 2)}\n`);
    return outcomeExitCode(outcome);
  });
}
