import type { Command } from 'commander';
import { z } from 'zod';
import { type StartedDeployment, startDeployment } from '../../client';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  EXIT_CODES_HELP,
  NO_UI_LINK,
  exitOnUsageErrorWith2,
  parseFlags,
  processIo,
  RequestFlagsShape,
  reportError,
  taskQueueOption,
  withTemporal,
} from '../client-command';
import { followAccepted } from '../follow';
import { SpecFlagsSchema, addSpecOptions, specFromFlags } from '../spec-input';

/**
 * `garden-deploy deploy -f spec.yaml [flags]`: deploys a spec (update-with-start of the durable
 * deployment: the first call creates it, a second with the same spec attaches, another model,
 * machine or validation upgrades it, anything else is refused with what differs), prints its
 * workflow id and Temporal UI link, then follows it.
 */

const DeployFlagsSchema = CommandFlagsSchema.extend(SpecFlagsSchema.shape).extend({
  taskQueue: z.string().min(1),
  ...RequestFlagsShape,
});
type DeployFlags = z.infer<typeof DeployFlagsSchema> & Record<string, unknown>;

export function register(program: Command): void {
  const command = program
    .command('deploy')
    .summary('deploy a spec (or attach to its deployment, or upgrade it) and follow it until it serves')
    .description(
      'Deploy a model: validate the spec here, then create the durable deployment and send it the spec in one ' +
        'call. The same spec again attaches to the deployment; another model, machine or validation on a serving ' +
        'deployment is an upgrade (a new revision rolled out as `upgrade` does, which this says); anything else is ' +
        'refused with what differs and which command changes it, and nothing changes. Prints the workflow id and ' +
        'Temporal UI link, shows live progress until it serves, then the endpoint, inference URL and smoke answers. ' +
        `Flags override the file's fields; both go through the same schema. ${EXIT_CODES_HELP}`,
    );
  addSpecOptions(command)
    .addOption(taskQueueOption())
    .option('--request-id <id>', 'idempotency key: the same deploy again attaches to the same request')
    .option('--detach', 'return right after starting (follow later with `garden-deploy watch <id>`)')
    .option(
      '--json',
      'print one JSON document (start facts and outcome) on stdout; progress lines go to stderr',
    );
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (raw: unknown) => {
    process.exitCode = await runDeploy(raw, processIo);
  });
}

export async function runDeploy(raw: unknown, io: CommandIo): Promise<number> {
  let flags: DeployFlags;
  let document: unknown;
  try {
    flags = parseFlags(DeployFlagsSchema, raw) as DeployFlags;
    // Checked before connecting: a bad spec is reported even with Temporal down, and starts nothing.
    document = await specFromFlags(flags);
  } catch (err) {
    return reportError('deploy', err, io);
  }
  return withTemporal('deploy', flags, io, async (temporal) => {
    const started = await startDeployment(temporal.client, document, {
      taskQueue: flags.taskQueue,
      ...(flags.requestId ? { requestId: flags.requestId } : {}),
    });
    const uiUrl = temporal.workflowUrl(started.workflowId);
    const facts = {
      workflowId: started.workflowId,
      runId: started.runId,
      started: started.started,
      ...(started.upgrade ? { upgrade: started.upgrade } : {}),
      requestId: started.requestId,
      namespace: temporal.namespace,
      uiUrl,
    };
    if (!flags.json) io.stdout(startedText(started, uiUrl));
    return followAccepted(temporal, io, started, {
      json: flags.json,
      detach: flags.detach,
      facts,
      ...(started.upgrade ? { wanted: upgradeCompleted } : {}),
    });
  });
}

/** A deploy that upgrades succeeds when the new revision serves (or there was nothing to change). */
function upgradeCompleted(result: { outcome: string; upgrade?: { outcome: string } }): boolean {
  return result.outcome === 'serving' && result.upgrade?.outcome !== 'rolled-back';
}

function startedText(started: StartedDeployment, uiUrl: string | undefined): string {
  const lines = [
    started.upgrade
      ? `Upgrading ${started.workflowId} to revision r${started.upgrade.revision} (r${started.upgrade.from} serves ` +
        'another model, machine or validation): this deploy is an upgrade'
      : started.started
        ? `Started ${started.workflowId}`
        : `Attached to ${started.workflowId}: it exists with this spec, nothing new was started` +
          (started.legacy ? ' (a garden-deploy 0.1 run, followed until it ends)' : ''),
    `  Temporal UI: ${uiUrl ?? NO_UI_LINK}`,
  ];
  if (started.waitingForWorker) {
    lines.push(
      '  No worker polls its task queue yet: the deployment waits for one (start `garden-deploy worker`); ' +
        'the spec is checked against the deployment once it runs.',
    );
  }
  return `${lines.join('\n')}\n`;
}
