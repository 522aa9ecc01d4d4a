import type { Command } from 'commander';
import { type DeploymentStatus, getProgress, isDeploymentResult } from '../../client';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  DEPLOYMENT_ARGUMENT_HELP,
  EXIT_DEPLOYMENT_FAILED,
  EXIT_OK,
  exitOnUsageErrorWith2,
  processIo,
  withTemporal,
} from '../client-command';
import { printStatus } from '../follow';

/** `garden-deploy status <deployment>`: where a deployment is, once. */

export function register(program: Command): void {
  const command = program
    .command('status')
    .summary("show a deployment's stage, steps, resources and result")
    .description(
      "Show a deployment's stage, steps (attempts, replicas N/M, operation, last error), resources and, once " +
        'finished, its result. Exit codes: 0 running or serving (or torn down); 1 CLEANUP_BLOCKED, failed, cancelled or rolled ' +
        'back; 2 not found, bad input or Temporal unreachable.',
    )
    .argument('<deployment>', DEPLOYMENT_ARGUMENT_HELP)
    .option('--json', 'print the status as JSON');
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (ref: string, raw: unknown) => {
    process.exitCode = await runStatus(ref, raw, processIo);
  });
}

export async function runStatus(ref: string, raw: unknown, io: CommandIo): Promise<number> {
  const flags = CommandFlagsSchema.parse(raw);
  return withTemporal('status', flags, io, async (temporal) => {
    const status = await getProgress(temporal.client, ref);
    const uiUrl = temporal.workflowUrl(status.workflowId);
    if (flags.json) io.stdout(`${JSON.stringify({ ...status, uiUrl }, null, 2)}\n`);
    else printStatus(status, io, uiUrl);
    return statusExitCode(status);
  });
}

function statusExitCode(status: DeploymentStatus): number {
  if (status.status === 'RUNNING')
    return status.stage === 'CLEANUP_BLOCKED' ? EXIT_DEPLOYMENT_FAILED : EXIT_OK;
  if (status.status !== 'COMPLETED') return EXIT_DEPLOYMENT_FAILED;
  const result = status.result;
  const fine = !isDeploymentResult(result) || result.outcome === 'serving' || result.outcome === 'torn-down';
  return fine ? EXIT_OK : EXIT_DEPLOYMENT_FAILED;
}
