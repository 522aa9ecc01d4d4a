import type { Command } from 'commander';
import { type z } from 'zod';
import { upgradeDeployment } from '../../client';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  DEPLOYMENT_ARGUMENT_HELP,
  exitOnUsageErrorWith2,
  parseFlags,
  processIo,
  RequestFlagsShape,
  reportError,
  withTemporal,
} from '../client-command';
import { followAccepted, requestFacts } from '../follow';
import { SpecFlagsSchema, addSpecOptions, specFromFlags } from '../spec-input';

/**
 * `garden-deploy upgrade NAME -f spec.yaml`: rolls out the spec as the deployment's next revision
 * (validated, staged alone on its own endpoint, then given traffic step by step on the same
 * endpoint under the spec's gates, rolled back when one fails), and follows it until it ends.
 */

const UpgradeFlagsSchema = CommandFlagsSchema.extend(SpecFlagsSchema.shape).extend({
  ...RequestFlagsShape,
});
type UpgradeFlags = z.infer<typeof UpgradeFlagsSchema> & Record<string, unknown>;

export function register(program: Command): void {
  const command = program
    .command('upgrade')
    .summary('roll out a new revision of a serving deployment: staged, canary, gated, rolled back on failure')
    .description(
      'Roll out the spec as the next revision of a serving deployment, on the same endpoint (clients keep their ' +
        'URL): its weights are validated, deployed alone on a staging endpoint where replicas come up and the ' +
        'smoke tests run, then deployed next to the serving revision and given traffic step by step ' +
        '(spec `strategy`: canary, linear, allAtOnce; bakes evaluate spec `gates` on Cloud Monitoring metrics and ' +
        'smoke answers). A failed gate puts all traffic back on the serving revision and removes the new one. ' +
        'Steer it with promote, pause, resume and rollback. The same weights (by GCS generation) on the same ' +
        'machine change nothing; only replicas → use scale. Exit codes: 0 the new revision serves (or nothing ' +
        'to change); 1 it was rolled back; 2 refused (with the reason), bad input or Temporal unreachable; 130 ' +
        'interrupted (the upgrade goes on).',
    )
    .argument('<deployment>', DEPLOYMENT_ARGUMENT_HELP);
  addSpecOptions(command)
    .option('--request-id <id>', 'idempotency key: the same upgrade again attaches to it')
    .option('--detach', 'return once the upgrade is accepted (follow with `garden-deploy watch`)')
    .option('--json', 'print the outcome as JSON on stdout; progress lines go to stderr');
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (ref: string, raw: unknown) => {
    process.exitCode = await runUpgrade(ref, raw, processIo);
  });
}

export async function runUpgrade(ref: string, raw: unknown, io: CommandIo): Promise<number> {
  let flags: UpgradeFlags;
  let document: unknown;
  try {
    flags = parseFlags(UpgradeFlagsSchema, raw) as UpgradeFlags;
    document = await specFromFlags(flags);
  } catch (err) {
    return reportError('upgrade', err, io);
  }
  return withTemporal('upgrade', flags, io, async (temporal) => {
    const request = await upgradeDeployment(temporal.client, document, {
      deployment: ref,
      ...(flags.requestId ? { requestId: flags.requestId } : {}),
    });
    const { workflowId, stage } = request;
    const facts = requestFacts(temporal, request);
    if (!flags.json) {
      io.stdout(
        `Upgrade accepted for ${workflowId} (it was at stage ${stage ?? 'unknown'}): ` +
          `${request.spec.model.uri} on ${request.spec.machine === 'auto' ? 'the recommended machine' : request.spec.machine.type}\n`,
      );
    }
    return followAccepted(temporal, io, request, { json: flags.json, detach: flags.detach, facts });
  });
}
