import type { Command } from 'commander';
import { z } from 'zod';
import { teardownDeployment } from '../../client';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  EXIT_OK,
  NO_UI_LINK,
  exitOnUsageErrorWith2,
  processIo,
  taskQueueOption,
  withTemporal,
} from '../client-command';
import { follow, outcomeExitCode, outcomeJson, reportOutcome } from '../follow';

/** `garden-deploy teardown <deployment>`: remove a finished deployment's resources. */

/** The recorded resources a teardown removes, in its order (the rest are facts about them). */
const REMOVABLE = ['pscForwardingRule', 'pscAddress', 'deployedModelId', 'endpoint', 'model'] as const;

const TeardownFlagsSchema = CommandFlagsSchema.extend({
  reason: z.string().max(500, '--reason is at most 500 characters').optional(),
  taskQueue: z.string().min(1),
  detach: z.boolean().default(false),
});

export function register(program: Command): void {
  const command = program
    .command('teardown')
    .summary('remove a finished deployment')
    .description(
      'Remove a finished deployment (forwarding rule, address, deployed models, endpoint, model) from the ' +
        'resources its run recorded, with a teardown workflow (teardown/{project}/{region}/{name}); waits for it ' +
        'and prints what was removed. Refused while the deployment runs (use cancel or rollback), or when it ' +
        'already removed everything. Exit codes: 0 torn down (or started, with --detach); 1 the teardown failed; ' +
        '2 refused, not found, bad input or Temporal unreachable; 130 interrupted.',
    )
    .argument(
      '<deployment>',
      'workflow id (deploy/{project}/{region}/{name}) or the deployment name when unambiguous',
    )
    .option('--reason <text>', 'why; recorded in the teardown input')
    .addOption(taskQueueOption())
    .option('--detach', 'return once the teardown has started')
    .option('--json', 'print the outcome as JSON on stdout; progress lines go to stderr');
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (ref: string, raw: unknown) => {
    process.exitCode = await runTeardown(ref, raw, processIo);
  });
}

export async function runTeardown(ref: string, raw: unknown, io: CommandIo): Promise<number> {
  const flags = TeardownFlagsSchema.parse(raw);
  return withTemporal('teardown', flags, io, async (temporal) => {
    const teardown = await teardownDeployment(temporal.client, ref, {
      taskQueue: flags.taskQueue,
      ...(flags.reason ? { reason: flags.reason } : {}),
    });
    const uiUrl = temporal.workflowUrl(teardown.workflowId);
    const facts = {
      workflowId: teardown.workflowId,
      runId: teardown.runId,
      started: teardown.started,
      deploymentWorkflowId: teardown.deploymentWorkflowId,
      resources: teardown.resources,
      uiUrl,
    };
    if (!flags.json) {
      io.stdout(
        [
          `${teardown.started ? 'Started' : 'Attached to the running'} ${teardown.workflowId} to remove ${teardown.deploymentWorkflowId}:`,
          ...REMOVABLE.filter((kind) => teardown.resources[kind]).map(
            (kind) => `  ${kind}: ${teardown.resources[kind]}`,
          ),
          `  Temporal UI: ${uiUrl ?? NO_UI_LINK}`,
          '',
        ].join('\n'),
      );
    }
    if (flags.detach) {
      if (flags.json) io.stdout(`${JSON.stringify(facts, null, 2)}\n`);
      else io.stdout(`Follow it with: garden-deploy watch ${teardown.workflowId}\n`);
      return EXIT_OK;
    }
    const outcome = await follow(temporal, teardown.workflowId, io, { json: flags.json });
    if (!flags.json) return reportOutcome(outcome, io);
    io.stdout(`${JSON.stringify({ ...facts, ...outcomeJson(outcome) }, null, 2)}\n`);
    return outcomeExitCode(outcome);
  });
}
