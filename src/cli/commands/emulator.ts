import { type Command } from 'commander';
import {
  DEFAULT_EMULATOR_PORT,
  EmulatorConfigError,
  type EmulatorConfigInput,
  type RunningEmulator,
  StateFileError,
  parseEmulatorConfig,
  readEmulatorConfigFile,
  startEmulator,
  writeEmulatorCredentials,
} from '../../emulator';

/** Exit codes: 0 stopped by SIGINT/SIGTERM, 1 could not start (e.g. port taken), 2 bad options or config. */
const EXIT_START_FAILED = 1;
const EXIT_BAD_CONFIG = 2;

interface RawFlags {
  host?: string;
  port?: string;
  gcsEndpoint?: string;
  stateFile?: string;
  config?: string;
  faults?: string;
  timing?: string;
  seed?: string;
  routingSeed?: string;
  forbiddenProject?: string[];
  writeCredentials?: string;
  json?: boolean;
}

function parseJsonFlag(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new EmulatorConfigError(`${name} is not valid JSON (${(err as Error).message})`);
  }
}

function parsePort(name: string, text: string): number {
  if (!/^\d{1,5}$/.test(text.trim()))
    throw new EmulatorConfigError(`${name}: "${text}" is not a port number (0-65535)`);
  return Number(text);
}

/**
 * The emulator's config from (lowest to highest precedence) the defaults, `--config` /
 * `GARDEN_EMULATOR_CONFIG` file, environment variables, and flags.
 */
export async function resolveEmulatorConfig(
  flags: RawFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<EmulatorConfigInput> {
  const file = flags.config ?? env.GARDEN_EMULATOR_CONFIG;
  const fromFile = file ? await readEmulatorConfigFile(file) : {};
  if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
    throw new EmulatorConfigError(`emulator config ${file} must be an object of options`);
  }
  const merged: Record<string, unknown> = { ...(fromFile as Record<string, unknown>) };
  const host = flags.host ?? env.GARDEN_EMULATOR_HOST;
  if (host) merged.host = host;
  const port = flags.port ?? env.GARDEN_EMULATOR_PORT;
  if (port !== undefined) merged.port = parsePort(flags.port ? '--port' : 'GARDEN_EMULATOR_PORT', port);
  // STORAGE_EMULATOR_HOST is @google-cloud/storage's own convention for fake-gcs-server.
  const gcs = flags.gcsEndpoint ?? env.STORAGE_EMULATOR_HOST;
  // The storage client accepts `host:port` there; our schema wants a URL.
  if (gcs) merged.gcsEndpoint = /^https?:\/\//.test(gcs) ? gcs : `http://${gcs}`;
  const stateFile = flags.stateFile ?? env.GARDEN_EMULATOR_STATE_FILE;
  if (stateFile) merged.stateFile = stateFile;
  const faults = flags.faults ?? env.GARDEN_EMULATOR_FAULTS;
  if (faults) merged.faults = parseJsonFlag(flags.faults ? '--faults' : 'GARDEN_EMULATOR_FAULTS', faults);
  const timing = flags.timing ?? env.GARDEN_EMULATOR_TIMING;
  if (timing) {
    const overrides = parseJsonFlag(flags.timing ? '--timing' : 'GARDEN_EMULATOR_TIMING', timing);
    merged.timing = { ...(merged.timing as object | undefined), ...(overrides as object) };
  }
  if (flags.seed !== undefined) {
    if (!/^\d+$/.test(flags.seed))
      throw new EmulatorConfigError(`--seed: "${flags.seed}" is not a whole number`);
    merged.faults = { ...(merged.faults as object | undefined), seed: Number(flags.seed) };
  }
  if (flags.routingSeed !== undefined) {
    if (!/^\d+$/.test(flags.routingSeed))
      throw new EmulatorConfigError(`--routing-seed: "${flags.routingSeed}" is not a whole number`);
    merged.routingSeed = Number(flags.routingSeed);
  }
  if (flags.forbiddenProject?.length) merged.forbiddenProjects = flags.forbiddenProject;
  // Validate now so every problem is reported before anything starts.
  parseEmulatorConfig(merged, 'emulator configuration');
  return merged as EmulatorConfigInput;
}

export function register(program: Command): void {
  program
    .command('emulator')
    .summary('run the local Vertex AI + Compute Engine emulator')
    .description(
      'Run the local Vertex AI + Compute Engine emulator (Model Garden deploy, endpoints, models, ' +
        'deployModel and traffic splits, prediction routed by them, Cloud Monitoring timeSeries.list, PSC ' +
        'forwarding rules, token exchange for ADC, fault injection, admin API under ' +
        '/_emulator). Model folders are read from GCS: STORAGE_EMULATOR_HOST or --gcs-endpoint points ' +
        'at fake-gcs-server. Exit code 0 stopped by a signal, 1 could not start, 2 bad options.',
    )
    .option('--host <host>', 'address to listen on [env GARDEN_EMULATOR_HOST]', undefined)
    .option(
      '--port <port>',
      `port, 0 for a free one [env GARDEN_EMULATOR_PORT] (default ${DEFAULT_EMULATOR_PORT})`,
    )
    .option('--gcs-endpoint <url>', 'GCS-compatible endpoint for model reads [env STORAGE_EMULATOR_HOST]')
    .option(
      '--state-file <file>',
      'save state here after every change and resume from it [env GARDEN_EMULATOR_STATE_FILE]',
    )
    .option(
      '--config <file>',
      'JSON or YAML file with any of: host, port, gcsEndpoint, stateFile, faults, timing, forbiddenProjects [env GARDEN_EMULATOR_CONFIG]',
    )
    .option(
      '--faults <json>',
      'fault config, e.g. \'{"rules":[{"route":"vertex.deploy","sequence":["503","pass"]}]}\' [env GARDEN_EMULATOR_FAULTS]',
    )
    .option(
      '--timing <json>',
      'timing overrides in ms, e.g. \'{"deployMs":60000}\' [env GARDEN_EMULATOR_TIMING]',
    )
    .option('--seed <n>', 'seed of the fault probabilities')
    .option('--routing-seed <n>', 'seed of the draw that routes inference by traffic split (default 1)')
    .option('--forbidden-project <project...>', 'projects whose calls get 403 PERMISSION_DENIED')
    .option(
      '--write-credentials <dir>',
      'write ADC credentials (external_account via the emulator) into this directory',
    )
    .option('--json', 'print one JSON line {url, port, credentialsFile?} instead of text')
    .action(async (flags: RawFlags) => {
      let config: EmulatorConfigInput;
      try {
        config = await resolveEmulatorConfig(flags);
      } catch (err) {
        if (!(err instanceof EmulatorConfigError)) throw err;
        process.stderr.write(`garden-deploy emulator: ${err.message}\n`);
        process.exitCode = EXIT_BAD_CONFIG;
        return;
      }
      let emulator: RunningEmulator;
      try {
        emulator = await startEmulator(config);
      } catch (err) {
        process.stderr.write(`garden-deploy emulator: ${(err as Error).message}\n`);
        const badConfig = err instanceof EmulatorConfigError || err instanceof StateFileError;
        process.exitCode = badConfig ? EXIT_BAD_CONFIG : EXIT_START_FAILED;
        return;
      }
      const credentialsFile = flags.writeCredentials
        ? await writeEmulatorCredentials(flags.writeCredentials, emulator.url)
        : undefined;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ url: emulator.url, port: emulator.port, ...(credentialsFile ? { credentialsFile } : {}) })}\n`,
        );
      } else {
        process.stdout.write(
          `Vertex AI + Compute emulator listening on ${emulator.url}\n` +
            `  admin API:  ${emulator.url}/_emulator/resources, /stats, /faults, /tokens, /reset\n` +
            (credentialsFile
              ? `  credentials: export GOOGLE_APPLICATION_CREDENTIALS=${credentialsFile}\n`
              : ''),
        );
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await emulator.close();
    });
}
