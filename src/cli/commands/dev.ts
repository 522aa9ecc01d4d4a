import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { DEFAULT_CODEC_PORT } from '../../codec';
import { DEFAULT_TASK_QUEUE } from '../../constants';
import { DEFAULT_EMULATOR_PORT } from '../../emulator';
import {
  DEMO_DEPLOYMENT,
  DEMO_MODEL_URI,
  type DemoModel,
  demoDeployArgs,
  prepareDemoModel,
} from '../../local-stack/demo';
import { assertPortFree } from '../../local-stack/process';
import { type LocalStack, type ServiceExit, envForStack, startLocalStack } from '../../local-stack/stack';
import {
  DEFAULT_DATA_DIR,
  type StackInfo,
  readStackFile,
  removeStackFile,
  writeStackFile,
} from '../../local-stack/stack-file';
import { formatReport } from './validate';

/** Each port: its flag, the env var that sets it too, its default and what listens there. */
const PORTS = {
  temporalPort: {
    flag: '--temporal-port',
    env: 'GARDEN_DEPLOY_TEMPORAL_PORT',
    default: '7233',
    what: 'the Temporal gRPC frontend',
  },
  uiPort: { flag: '--ui-port', env: 'GARDEN_DEPLOY_UI_PORT', default: '8233', what: 'the Temporal Web UI' },
  gcsPort: { flag: '--gcs-port', env: 'GARDEN_DEPLOY_GCS_PORT', default: '4443', what: 'fake-gcs-server' },
  emulatorPort: {
    flag: '--emulator-port',
    env: 'GARDEN_DEPLOY_EMULATOR_PORT',
    default: String(DEFAULT_EMULATOR_PORT),
    what: 'the Vertex/Compute emulator',
  },
  codecPort: {
    flag: '--codec-port',
    env: 'GARDEN_DEPLOY_CODEC_PORT',
    default: String(DEFAULT_CODEC_PORT),
    what: 'the codec server (with --encrypt)',
  },
} as const;

type PortKey = keyof typeof PORTS;

const PRESS_CTRL_C = 'Press Ctrl-C to stop.\n';

const Port = z
  .string()
  .regex(/^\d+$/, 'must be a port number')
  .transform(Number)
  .pipe(z.number().int().min(1, 'must be at least 1').max(65535, 'must be at most 65535'));

const DevOptionsSchema = z.object({
  temporalPort: Port,
  uiPort: Port,
  gcsPort: Port,
  emulatorPort: Port,
  codecPort: Port,
  encrypt: z.boolean().default(false),
  ui: z.boolean(),
  worker: z.boolean(),
  dataDir: z.string().min(1, 'must not be empty'),
  demo: z.boolean().default(false),
  json: z.boolean().default(false),
});

type DevOptions = z.infer<typeof DevOptionsSchema>;

export class DevOptionsError extends Error {
  override readonly name = 'DevOptionsError';
}

export function register(program: Command): void {
  const command = program
    .command('dev')
    .summary('run the local stack: Temporal, fake-gcs-server, the emulator and a worker')
    .description(
      'Run the local stack until Ctrl-C: Temporal dev server (SQLite in the data dir, search attributes, Web UI), ' +
        'fake-gcs-server and the Vertex/Compute emulator, logs in <data-dir>/logs. ' +
        'Writes <data-dir>/stack.json while up. ' +
        'Exit code 0 when stopped by Ctrl-C/SIGTERM, 1 when it cannot start or a service dies.',
    );
  // Commander stores `--temporal-port` as `temporalPort`: the PORTS keys.
  for (const port of Object.values(PORTS)) {
    command.addOption(
      new Option(`${port.flag} <port>`, `port of ${port.what}`).env(port.env).default(port.default),
    );
  }
  command
    .addOption(new Option('--no-ui', 'run Temporal without the Web UI'))
    .addOption(new Option('--no-worker', 'run without the garden-deploy worker (e.g. to run your own)'))
    .addOption(
      new Option('--data-dir <dir>', 'state and logs (git-ignored .data by default)')
        .env('GARDEN_DEPLOY_DATA_DIR')
        .default(DEFAULT_DATA_DIR),
    )
    .option(
      '--encrypt',
      'encrypt payloads (AES-256-GCM) with the keyring <data-dir>/codec-keys.json (made if missing): the worker and ' +
        'the printed environment use it, and a codec server lets the Web UI show them decoded',
    )
    .option(
      '--demo',
      `once up, write a sample model to ${DEMO_MODEL_URI}, validate it and deploy it on the emulator ` +
        '(what npm run demo runs)',
    )
    .option(
      '--json',
      'print the running stack as one JSON line (stack.json content), then the demo result, instead of text',
    )
    .action(async (raw: unknown) => {
      process.exitCode = await runDev(parseDevOptions(raw));
    });
}

export function parseDevOptions(raw: unknown): DevOptions {
  const parsed = DevOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0]);
      const value = (raw as Record<string, unknown>)[key];
      const port = PORTS[key as PortKey] as (typeof PORTS)[PortKey] | undefined;
      const name = port
        ? `${port.flag} (or ${port.env})`
        : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      return `${name} ${issue.message}, got ${JSON.stringify(value)}`;
    });
    throw new DevOptionsError(`invalid options for garden-deploy dev: ${problems.join('; ')}`);
  }
  const options = parsed.data;
  if (options.demo && !options.worker) {
    throw new DevOptionsError('--demo deploys through the worker: drop --no-worker');
  }
  const used = new Map<number, PortKey>();
  for (const key of activePorts(options)) {
    const other = used.get(options[key]);
    if (other) {
      throw new DevOptionsError(
        `${PORTS[key].flag} ${options[key]} is the same port as ${PORTS[other].flag}; give each service its own port`,
      );
    }
    used.set(options[key], key);
  }
  return options;
}

function activePorts(options: DevOptions): PortKey[] {
  return (Object.keys(PORTS) as PortKey[]).filter(
    (key) => (key !== 'uiPort' || options.ui) && (key !== 'codecPort' || options.encrypt),
  );
}

async function runDev(options: DevOptions): Promise<number> {
  const dataDir = path.resolve(options.dataDir);
  const progress = (message: string) => process.stderr.write(`garden-deploy dev: ${message}\n`);

  // Checked before anything is created or started: a refused start changes nothing.
  const running = readStackFile(dataDir);
  if (running) {
    throw new DevOptionsError(
      `garden-deploy dev is already running for ${dataDir} (pid ${running.pid}, Temporal at ` +
        `${running.temporal.address}); stop it first (Ctrl-C in its terminal, or kill ${running.pid}) ` +
        `or pass another --data-dir`,
    );
  }
  for (const key of activePorts(options)) {
    const port = PORTS[key];
    await assertPortFree(options[key], { what: port.what, howToChange: `${port.flag} or ${port.env}` });
  }

  const startAborted = new AbortController();
  let stack: LocalStack | undefined;
  let stopSignal: NodeJS.Signals | undefined;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopSignal) {
        progress(`${signal} again: killing the services`);
        stack?.killNow();
        process.exit(130);
      }
      stopSignal = signal;
      startAborted.abort(new Error(`${signal} received`));
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  // Children run in their own process groups, so nothing else stops them if this process dies.
  process.on('exit', () => stack?.killNow());

  try {
    stack = await startLocalStack({
      dataDir,
      temporalPort: options.temporalPort,
      uiPort: options.ui ? options.uiPort : undefined,
      gcsPort: options.gcsPort,
      emulatorPort: options.emulatorPort,
      ...(options.encrypt ? { encryption: { codecPort: options.codecPort } } : {}),
      ...(options.worker
        ? {
            worker: {
              ...thisCli('worker'),
              taskQueue: process.env.GARDEN_DEPLOY_TASK_QUEUE || DEFAULT_TASK_QUEUE,
            },
          }
        : {}),
      signal: startAborted.signal,
      onProgress: progress,
    });
  } catch (err) {
    if (stopSignal) {
      progress(`${stopSignal} while starting: stopped`);
      return 0;
    }
    throw err;
  }

  const stackFile = writeStackFile(stack.info);
  process.stdout.write(
    options.json ? `${JSON.stringify(stack.info)}\n` : describeStack(stack.info, stackFile),
  );

  const demoAborted = new AbortController();
  const demo = options.demo
    ? demoOutcome(stack.info, options.json, demoAborted.signal)
    : new Promise<never>(() => undefined);
  if (!options.json && !options.demo) process.stdout.write(PRESS_CTRL_C);
  const outcome = await Promise.race([
    stopRequested.then((signal) => ({ signal }) as const),
    stack.serviceExited.then((exit) => ({ exit }) as const),
    demo.then((failure) => ({ demoFailed: failure }) as const),
  ]);
  demoAborted.abort();
  // A Ctrl-C also reaches the demo's deploy command, which may end first: still a requested stop.
  if (stopSignal) {
    progress(`${stopSignal}: stopping`);
  } else if ('exit' in outcome) {
    process.stderr.write(describeExit(outcome.exit));
    progress('stopping the other services');
  } else if ('demoFailed' in outcome) {
    progress(`demo failed: ${outcome.demoFailed}; stopping`);
  }
  await stack.stop();
  removeStackFile(dataDir);
  progress('stopped');
  return stopSignal ? 0 : 1;
}

/**
 * The demo: the sample model written and validated, then deployed on the emulator by
 * `garden-deploy deploy`, as a user would. Settles only if it fails, with the reason.
 */
async function demoOutcome(info: StackInfo, json: boolean, signal: AbortSignal): Promise<string> {
  let prepared: DemoModel;
  try {
    prepared = await prepareDemoModel(info);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  const { model, validation } = prepared;
  const args = demoDeployArgs(model.uri);
  if (!json) {
    const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
    process.stdout.write(
      `\nDemo: wrote a sample ${model.architecture} model (${model.files} files, ${model.totalBytes} bytes) ` +
        `to ${model.uri} and validated it:\n\n${formatReport(validation, { color })}\n` +
        `Demo: deploying it on the emulator with\n  garden-deploy ${args.join(' ')}\n\n`,
    );
  }
  const cli = thisCli(...args, ...(json ? ['--json'] : []));
  const deploy = spawn(cli.command, cli.args, {
    env: envForStack(info.env),
    stdio: ['ignore', json ? 'pipe' : 'inherit', 'inherit'],
    signal,
  });
  let output = '';
  deploy.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    deploy.once('error', () => resolve(null));
    deploy.once('exit', (exitCode) => resolve(exitCode));
  });
  if (code !== 0) return `garden-deploy ${args.join(' ')} exited with code ${code}`;
  const { name } = DEMO_DEPLOYMENT;
  process.stdout.write(
    json
      ? `${JSON.stringify({ demo: { ...prepared, deployment: JSON.parse(output) as unknown } })}\n`
      : `\nDemo: ${name} is serving on the emulator. In another shell, with the exports above, try\n` +
          `  garden-deploy status ${name}    garden-deploy list    garden-deploy teardown ${name}\n` +
          PRESS_CTRL_C,
  );
  return new Promise<never>(() => undefined);
}

/** This CLI, run the way this process was (compiled `bin/`, or the sources under tsx). */
function thisCli(...args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [...process.execArgv, process.argv[1]!, ...args] };
}

function describeStack(info: StackInfo, stackFile: string): string {
  const rows: Array<[string, string]> = [
    ['Temporal gRPC', `${info.temporal.address}  (namespace ${info.temporal.namespace})`],
    ...(info.temporal.uiUrl ? [['Temporal Web UI', info.temporal.uiUrl] as [string, string]] : []),
    ['GCS (fake-gcs-server)', info.gcs.endpoint],
    ['Vertex/Compute emulator', info.emulator.url],
    ...(info.codec
      ? [['Codec server', `${info.codec.url}  (keys ${info.codec.keyFile})`] as [string, string]]
      : []),
    ...(info.env.GARDEN_DEPLOY_TASK_QUEUE
      ? [['garden-deploy worker', `task queue ${info.env.GARDEN_DEPLOY_TASK_QUEUE}`] as [string, string]]
      : []),
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return [
    'garden-deploy local stack is up:',
    ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`),
    '',
    `Logs: ${path.join(info.dataDir, 'logs')}   Addresses: ${stackFile}`,
    'In another shell:',
    ...Object.entries(info.env).map(([name, value]) => `  export ${name}=${shellQuote(value)}`),
    '',
  ].join('\n');
}

function describeExit(exit: ServiceExit): string {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return `garden-deploy dev: ${exit.name} ${how}; its log is ${exit.logFile}\n${logTail(exit.logFile)}`;
}

/** The last `lines` lines of a log, read from its last 16 KiB only: logs grow without bound. */
function logTail(file: string, lines = 15): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.min(size, 16 * 1024));
    readSync(fd, buffer, 0, buffer.length, size - buffer.length);
    const tail = buffer.toString('utf8').trimEnd().split('\n').slice(-lines);
    return tail.map((line) => `  | ${line}\n`).join('');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** As typed into a POSIX shell: data dirs may contain spaces. */
function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}
