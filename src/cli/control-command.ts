import { type Command, Option } from 'commander';
import { z } from 'zod';
import {
  type DeploymentRequest,
  type ScaleChange,
  abandonCleanup,
  cancelDeployment,
  pauseUpgrade,
  promoteUpgrade,
  resumeUpgrade,
  retryCleanup,
  rollbackDeployment,
  scaleDeployment,
  teardownDeployment,
} from '../client';
import type { TemporalConnection } from '../client';
import { AUTOSCALING_METRICS, AutoscalingSchema } from '../spec/serving';
import type { DeploymentResult } from '../workflows/types';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  DEPLOYMENT_ARGUMENT_HELP,
  exitOnUsageErrorWith2,
  InvalidFlagsError,
  parseFlags,
  processIo,
  RequestFlagsShape,
  reportError,
  withTemporal,
} from './client-command';
import { type RequestResult, type WantedOutcome, followAccepted, requestFacts } from './follow';

/**
 * The commands that send a deployment one of its control Updates, from one table: each is
 * accepted or refused at once (with the deployment's reason, exit code 2), then followed with
 * live progress until done (or returns once accepted, with --detach).
 */

export type ControlCommandName =
  | 'cancel'
  | 'rollback'
  | 'teardown'
  | 'scale'
  | 'retry-cleanup'
  | 'abandon-cleanup'
  | 'promote'
  | 'pause'
  | 'resume';

const wholeNumber = (flag: string, lowest: number) =>
  z
    .string()
    .regex(/^\d+$/, `${flag} must be a whole number`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(lowest, `${flag} must be at least ${lowest}`)
        .max(1000, `${flag} must be at most 1000`),
    );

/** `--autoscaling accelerator/duty_cycle=70,request_count=600`: every target, replacing the current ones. */
const AutoscalingFlagSchema = z
  .string()
  .transform((text, ctx) => {
    const targets = text.split(',').map((pair) => {
      const match = /^\s*([a-z_/]+)\s*=\s*(\d+)\s*$/.exec(pair);
      return match ? { metric: match[1], target: Number(match[2]) } : undefined;
    });
    if (targets.some((t) => t === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: `--autoscaling takes metric=target pairs separated by commas (metrics: ${AUTOSCALING_METRICS.join(', ')})`,
      });
      return z.NEVER;
    }
    return targets;
  })
  .pipe(AutoscalingSchema);

const ControlFlagsSchema = CommandFlagsSchema.extend({
  reason: z.string().max(500, '--reason is at most 500 characters').optional(),
  ...RequestFlagsShape,
  taskQueue: z.string().min(1).optional(),
  min: wholeNumber('--min', 0).optional(),
  max: wholeNumber('--max', 1).optional(),
  autoscaling: AutoscalingFlagSchema.optional(),
  containerLogging: z
    .enum(['on', 'off'], { message: '--container-logging is on or off' })
    .transform((v) => v === 'on')
    .optional(),
});
type ControlFlags = z.infer<typeof ControlFlagsSchema>;

interface ControlCommand {
  summary: string;
  description: string;
  /** Which deployment result means success for this command (exit code 0). */
  wanted: WantedOutcome;
  accepted: string;
  /** Extra options of this command. */
  options?: Option[];
  /** Refuses flags that parse but make no request, before connecting. */
  check?(flags: ControlFlags): void;
  send(
    temporal: TemporalConnection,
    ref: string,
    flags: ControlFlags,
  ): Promise<DeploymentRequest<RequestResult>>;
}

const notBlocked: WantedOutcome = (result) => result.outcome !== 'cleanup-blocked';
/** An upgrade undone counts as done, like a deployment removed. */
const undone =
  (outcome: DeploymentResult['outcome']): WantedOutcome =>
  (result) =>
    result.outcome === outcome || result.upgrade?.outcome === 'rolled-back';
const always: WantedOutcome = () => true;

const COMMANDS: Record<ControlCommandName, ControlCommand> = {
  cancel: {
    summary: 'stop a deployment still deploying (or its running upgrade) and remove what it created',
    description:
      'Stop a deployment that is still deploying (the running step and Vertex’s deploy operation) and remove ' +
      'everything it created, then follow until done. On a serving deployment that is upgrading, the upgrade ' +
      'stops instead: all traffic back on the serving revision, everything of the new one removed. Refused when ' +
      'it serves with no upgrade running (use teardown, or rollback within its window) or is already being removed.',
    wanted: undone('cancelled'),
    accepted: 'Cancel accepted for',
    send: (t, ref, flags) => cancelDeployment(t.client, ref, controlOptions(flags)),
  },
  rollback: {
    summary: 'undo a running upgrade; or a deployment while it deploys or within its rollback window',
    description:
      'While an upgrade runs (up to retiring the previous revision): put all traffic back on the serving ' +
      'revision and remove the new one. While a deployment deploys, or serves its first revision within its ' +
      'rollback window: remove everything it created. Then follow until done. Otherwise it is refused, saying ' +
      'what to do instead (teardown, or upgrade to the earlier spec).',
    wanted: undone('rolled-back'),
    accepted: 'Rollback accepted for',
    send: (t, ref, flags) => rollbackDeployment(t.client, ref, controlOptions(flags)),
  },
  teardown: {
    summary: 'remove a serving deployment and everything it owns',
    description:
      'Remove a serving deployment (forwarding rule and address, deployed models, endpoint, model), checking each ' +
      'is provably its own, and end it. A deployment that ended without cleaning up (terminated, or a garden-deploy ' +
      '0.1 deployment that finished serving) is recovered: everything it could have created is found from its ' +
      'record, derived ids and identity labels, and removed. Refused while it still deploys (use cancel).',
    wanted: (result) => result.outcome === 'torn-down',
    accepted: 'Teardown accepted for',
    options: [
      new Option(
        '--task-queue <name>',
        'task queue for the teardown of a run that ended without cleaning up (default: that run’s)',
      ).env('GARDEN_DEPLOY_TASK_QUEUE'),
    ],
    send: (t, ref, flags) =>
      teardownDeployment(t.client, ref, {
        ...controlOptions(flags),
        ...(flags.taskQueue ? { taskQueue: flags.taskQueue } : {}),
      }),
  },
  scale: {
    summary: 'change replicas, autoscaling or container logging of a serving deployment in place',
    description:
      'Change min/max replicas, autoscaling targets or container logging of a serving deployment in place ' +
      '(mutateDeployedModel: same endpoint, no new deployment, no traffic change), then follow until the new ' +
      'minimum is available. What you leave out stays as it is; the deployment’s spec records the change. ' +
      'Refused while it deploys, upgrades or is being removed.',
    wanted: always,
    accepted: 'Scale accepted for',
    options: [
      new Option('--min <n>', 'replicas kept available (0 only when the spec scales to zero)'),
      new Option('--max <n>', 'autoscaling ceiling (default: the current one, at least --min)'),
      new Option(
        '--autoscaling <metric=target,...>',
        `autoscaling targets, replacing the current ones (${AUTOSCALING_METRICS.join(', ')}; percent for the first two)`,
      ),
      new Option('--container-logging <on|off>', 'serving container stdout/stderr to Cloud Logging'),
    ],
    check: scaleChange,
    send: (t, ref, flags) => scaleDeployment(t.client, ref, scaleChange(flags), controlOptions(flags)),
  },
  'retry-cleanup': {
    summary: 'run the blocked cleanup of a deployment again',
    description:
      'For a deployment in CLEANUP_BLOCKED: run the compensations that spent their retry budget (and those after ' +
      'them) again with a fresh budget, once you fixed what the error named (e.g. a missing permission).',
    wanted: notBlocked,
    accepted: 'Retry accepted for',
    send: (t, ref, flags) => retryCleanup(t.client, ref, controlOptions(flags)),
  },
  'abandon-cleanup': {
    summary: 'give up a blocked cleanup, leaving its resources to you',
    description:
      'For a deployment in CLEANUP_BLOCKED: stop trying and end it; the resources it could not remove are listed ' +
      'as abandoned and are yours to remove. --reason is required.',
    wanted: always,
    accepted: 'Abandon accepted for',
    send: (t, ref, flags) =>
      abandonCleanup(t.client, ref, { ...controlOptions(flags), reason: flags.reason ?? '' }),
  },
  promote: {
    summary: 'skip the remaining traffic steps of a running upgrade',
    description:
      'Give the new revision all the traffic now, skipping the remaining traffic steps, bakes and the retention ' +
      'of the previous revision, then follow until the upgrade is done. Before the new revision is on the ' +
      'endpoint, it goes to 100 % as soon as it is. Refused when no upgrade runs or it is already retiring or ' +
      'rolling back.',
    wanted: always,
    accepted: 'Promote accepted for',
    send: (t, ref, flags) => promoteUpgrade(t.client, ref, controlOptions(flags)),
  },
  pause: {
    summary: 'hold a running upgrade at its current traffic share',
    description:
      'Hold a running upgrade where it is: no further traffic step until `resume` (gates keep being evaluated, ' +
      'and a failed one still rolls back). Answers at once. Refused when no upgrade runs or it is already paused.',
    wanted: always,
    accepted: 'Pause accepted for',
    send: (t, ref, flags) => pauseUpgrade(t.client, ref, controlOptions(flags)),
  },
  resume: {
    summary: 'continue a paused upgrade',
    description:
      'Continue a paused upgrade (paused by `pause`, or by an idle canary with gates.onIdle: pause, which then ' +
      'bakes its step again). Answers at once. Refused when no upgrade is paused.',
    wanted: always,
    accepted: 'Resume accepted for',
    send: (t, ref, flags) => resumeUpgrade(t.client, ref, controlOptions(flags)),
  },
};

function scaleChange(flags: ControlFlags): ScaleChange {
  const change: ScaleChange = {
    ...(flags.min !== undefined ? { min: flags.min } : {}),
    ...(flags.max !== undefined ? { max: flags.max } : {}),
    ...(flags.autoscaling ? { autoscaling: flags.autoscaling } : {}),
    ...(flags.containerLogging !== undefined ? { containerLogging: flags.containerLogging } : {}),
  };
  if (Object.keys(change).length === 0)
    throw new InvalidFlagsError(
      'scale needs at least one of --min, --max, --autoscaling, --container-logging',
    );
  return change;
}

export function registerControlCommand(program: Command, name: ControlCommandName): void {
  const spec = COMMANDS[name];
  const command = program
    .command(name)
    .summary(spec.summary)
    .description(
      `${spec.description} Exit codes: 0 done (or accepted, with --detach); 1 it ended otherwise (failed, cleanup ` +
        'blocked); 2 refused (with the reason), not found, bad input or Temporal unreachable; 130 interrupted.',
    )
    .argument('<deployment>', DEPLOYMENT_ARGUMENT_HELP);
  for (const option of spec.options ?? []) command.addOption(option);
  command
    .addOption(
      name === 'abandon-cleanup'
        ? new Option(
            '--reason <text>',
            'why (required); recorded in the progress and the result',
          ).makeOptionMandatory()
        : new Option('--reason <text>', 'why; recorded in the progress and the result'),
    )
    .option(
      '--request-id <id>',
      'idempotency key: the same request again gets the same answer (default: new)',
    )
    .option('--detach', 'return once the request is accepted')
    .option('--json', 'print the outcome as JSON on stdout; progress lines go to stderr');
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (ref: string, raw: unknown) => {
    process.exitCode = await runControl(name, ref, raw, processIo);
  });
}

export async function runControl(
  name: ControlCommandName,
  ref: string,
  raw: unknown,
  io: CommandIo,
): Promise<number> {
  const spec = COMMANDS[name];
  let flags: ControlFlags;
  try {
    flags = parseFlags(ControlFlagsSchema, raw);
    spec.check?.(flags);
  } catch (err) {
    return reportError(name, err, io);
  }
  return withTemporal(name, flags, io, async (temporal) => {
    const request = await spec.send(temporal, ref, flags);
    const { workflowId, stage } = request;
    const facts = requestFacts(temporal, request);
    if (!flags.json) io.stdout(`${spec.accepted} ${workflowId} (it was at stage ${stage ?? 'unknown'})\n`);
    return followAccepted(temporal, io, request, {
      json: flags.json,
      detach: flags.detach,
      facts,
      wanted: spec.wanted,
    });
  });
}

function controlOptions(flags: ControlFlags): { reason?: string; requestId?: string } {
  return {
    ...(flags.reason ? { reason: flags.reason } : {}),
    ...(flags.requestId ? { requestId: flags.requestId } : {}),
  };
}
