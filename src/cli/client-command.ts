import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import {
  AmbiguousDeploymentError,
  type ConnectOptions,
  connectTemporal,
  DeploymentFailedError,
  DeploymentNotFoundError,
  DeploymentStateError,
  RequestAlreadyDoneError,
  type FallbackTarget,
  InvalidFilterError,
  TemporalConnectionError,
  type TemporalConnection,
} from '../client';
import { REQUEST_ID_PATTERN } from '../client/updates';
import {
  CODEC_KEY_FILE_ENV,
  CODEC_KEYS_ENV,
  CodecConfigError,
  ENCRYPTED_ENCODING,
  PayloadDecryptionError,
} from '../codec';
import { DEFAULT_TASK_QUEUE } from '../constants';
import { DEFAULT_DATA_DIR, readStackFile, StackFileError } from '../local-stack/stack-file';
import { InvalidSpecError } from '../spec';

/**
 * What the commands that talk to Temporal share: connection flags, the task queue flag, exit
 * codes, and turning the library's errors into one clear line and the right exit code.
 */

/** Exit codes of deploy, status, watch, cancel, rollback, teardown and list. */
export const EXIT_OK = 0;
/** The deployment (or teardown) failed, was cancelled or rolled back. */
export const EXIT_DEPLOYMENT_FAILED = 1;
/** Bad input (spec, flags, id), a refused operation, or Temporal unreachable. */
export const EXIT_BAD_INPUT = 2;
/** Stopped following with Ctrl-C; the deployment goes on. */
export const EXIT_INTERRUPTED = 130;

export const DEPLOYMENT_ARGUMENT_HELP =
  'workflow id (deploy/{project}/{region}/{name}, or teardown/… for a teardown) or the deployment name when unambiguous';

export const NO_UI_LINK = 'no link (set GARDEN_DEPLOY_TEMPORAL_UI_URL to the Web UI address)';

export const EXIT_CODES_HELP =
  'Exit codes: 0 ok; 1 the deployment failed, was cancelled or rolled back; 2 bad input, refused ' +
  '(e.g. not found, wrong state) or Temporal unreachable; 130 interrupted (the deployment goes on).';

/** Flags of every command here: connection and output. */
export const CommandFlagsSchema = z.object({
  address: z.string().optional(),
  namespace: z.string().optional(),
  profile: z.string().optional(),
  json: z.boolean().default(false),
});
/** Flags of every command that sends the deployment a request: idempotency key, return once accepted. */
export const RequestFlagsShape = {
  requestId: z
    .string()
    .regex(REQUEST_ID_PATTERN, '--request-id: 1-128 of letters, digits, ".", "_", ":" or "-"')
    .optional(),
  detach: z.boolean().default(false),
};
export type ConnectionFlags = Pick<z.output<typeof CommandFlagsSchema>, 'address' | 'namespace' | 'profile'>;

/** `--address`, `--namespace`, `--profile`; API keys and TLS only through the environment/profile. */
export function addConnectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--address <host:port>',
        'Temporal frontend (default: TEMPORAL_ADDRESS, the Temporal config profile, a running ' +
          '`garden-deploy dev` of GARDEN_DEPLOY_DATA_DIR (default .data), then localhost:7233)',
      ),
    )
    .addOption(
      new Option('--namespace <namespace>', 'Temporal namespace (default: TEMPORAL_NAMESPACE or "default")'),
    )
    .addOption(
      new Option(
        '--profile <name>',
        'profile of the Temporal config file (TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml); ' +
          'API keys and TLS come from it or TEMPORAL_API_KEY / TEMPORAL_TLS_*',
      ),
    );
}

/** Commander exits 1 on an unknown option or missing argument; here bad input is exit code 2. */
export function exitOnUsageErrorWith2(command: Command): Command {
  return command.exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT));
}

export function taskQueueOption(): Option {
  return new Option('--task-queue <name>', 'task queue the garden-deploy worker polls')
    .env('GARDEN_DEPLOY_TASK_QUEUE')
    .default(DEFAULT_TASK_QUEUE);
}

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIo: CommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/**
 * Connects, runs `body`, closes the connection, and returns the exit code: the known errors become
 * `garden-deploy <command>: <message>` on stderr and exit code 1 or 2.
 */
export async function withTemporal(
  commandName: string,
  flags: ConnectionFlags,
  io: CommandIo,
  body: (temporal: TemporalConnection) => Promise<number>,
): Promise<number> {
  let temporal: TemporalConnection | undefined;
  try {
    temporal = await connectTemporal(connectOptions(flags));
    return await body(temporal);
  } catch (err) {
    return reportError(commandName, err, io, temporal);
  } finally {
    await temporal?.close();
  }
}

function connectOptions(flags: ConnectionFlags): ConnectOptions {
  const fallback = localStackFallback(process.env);
  return {
    ...(flags.address ? { address: flags.address } : {}),
    ...(flags.namespace ? { namespace: flags.namespace } : {}),
    ...(flags.profile ? { profile: flags.profile } : {}),
    ...(fallback ? { fallback } : {}),
  };
}

/**
 * A running `garden-deploy dev` of this directory (`GARDEN_DEPLOY_DATA_DIR`, default `.data`), for
 * a CLI in a shell without TEMPORAL_ADDRESS. Only the CLI looks: the library and the worker read no
 * local state, so a service never connects somewhere because of the directory it runs in.
 */
function localStackFallback(env: Record<string, string | undefined>): FallbackTarget | undefined {
  let stack: ReturnType<typeof readStackFile>;
  try {
    stack = readStackFile(env.GARDEN_DEPLOY_DATA_DIR || DEFAULT_DATA_DIR);
  } catch (err) {
    if (err instanceof StackFileError) throw new TemporalConnectionError(err.message);
    throw err;
  }
  if (!stack) return undefined;
  return {
    address: stack.temporal.address,
    namespace: stack.temporal.namespace,
    ...(stack.temporal.uiUrl ? { uiBaseUrl: stack.temporal.uiUrl } : {}),
    ...(stack.codec ? { codecKeyFile: stack.codec.keyFile } : {}),
    source: `the local stack (${stack.dataDir}/stack.json)`,
  };
}

/** A flag's value is not one the command accepts (the messages name the flag). */
export class InvalidFlagsError extends Error {
  override readonly name = 'InvalidFlagsError';
}

/** The command's flags, checked: a bad value is an `InvalidFlagsError` listing each problem. */
export function parseFlags<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success)
    throw new InvalidFlagsError(parsed.error.issues.map((issue) => issue.message).join('; '));
  return parsed.data;
}

const BAD_INPUT = [
  InvalidFlagsError,
  CodecConfigError,
  PayloadDecryptionError,
  InvalidSpecError,
  TemporalConnectionError,
  DeploymentNotFoundError,
  AmbiguousDeploymentError,
  DeploymentStateError,
  RequestAlreadyDoneError,
  InvalidFilterError,
];

/** Prints a known error and returns its exit code; rethrows anything unexpected. */
export function reportError(
  commandName: string,
  err: unknown,
  io: CommandIo,
  temporal?: Pick<TemporalConnection, 'address' | 'namespace'>,
): number {
  if (BAD_INPUT.some((type) => err instanceof type)) {
    io.stderr(`garden-deploy ${commandName}: ${(err as Error).message}\n`);
    return EXIT_BAD_INPUT;
  }
  // The SDK's own words for a payload no codec decoded: this CLI has no keys.
  if (err instanceof Error && err.message === `Unknown encoding: ${ENCRYPTED_ENCODING}`) {
    io.stderr(
      `garden-deploy ${commandName}: the deployment's payloads are encrypted and this CLI has no keys: ` +
        `set ${CODEC_KEY_FILE_ENV} (or ${CODEC_KEYS_ENV}) to the workers' keyring\n`,
    );
    return EXIT_BAD_INPUT;
  }
  if (err instanceof DeploymentFailedError) {
    io.stderr(`garden-deploy ${commandName}: ${err.message}\n`);
    return EXIT_DEPLOYMENT_FAILED;
  }
  if (err instanceof ServiceError || isGrpcServiceError(err)) {
    const where = temporal ? ` (Temporal at ${temporal.address}, namespace ${temporal.namespace})` : '';
    const cause = err instanceof ServiceError && err.cause ? `: ${err.cause.message}` : '';
    io.stderr(`garden-deploy ${commandName}: ${(err as Error).message}${cause}${where}\n`);
    return EXIT_BAD_INPUT;
  }
  throw err;
}

/**
 * Ctrl-C while following: stop following (the deployment goes on) instead of dying mid-redraw.
 * Returns the signal to pass to `watchDeployment` and a function that removes the handler.
 */
export function interruptibleFollow(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onInterrupt = () => controller.abort(new FollowInterrupted());
  process.once('SIGINT', onInterrupt);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onInterrupt) };
}

export class FollowInterrupted extends Error {
  override readonly name = 'FollowInterrupted';
  constructor() {
    super('stopped following');
  }
}
