import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { z } from 'zod';
import { CodecConfigError } from '../../codec';
import { TokenFileError, tokenLine } from '../../http/auth';
import { type ServeConfig, ServeConfigError, serveConfig, serveOptions } from '../../http/config';
import { Runtime } from '@temporalio/worker';
import { type StorageEventMetrics, SubscriptionNotFoundError, storageEventMetrics } from '../../events';
import type { EventsServerDeps } from '../../http/routes/events';
import { healthOf } from '../../http/health';
import { type ServerDeps, createServer } from '../../http/server';
import { installRuntime } from '../../worker/main';
import {
  addConnectionOptions,
  CommandFlagsSchema,
  EXIT_BAD_INPUT,
  exitOnUsageErrorWith2,
  processIo,
  taskQueueOption,
  withTemporal,
} from '../client-command';

/**
 * `garden-deploy serve`: the HTTP API (src/http/) in front of the same library the CLI uses, on
 * the same Temporal connection and data converter (payload codec included). `serve hash-token NAME`
 * turns a token on stdin into the tokens file's line.
 */

const ServeCommandFlagsSchema = CommandFlagsSchema.extend({ taskQueue: z.string().min(1) });

export function register(program: Command): void {
  const command = program
    .command('serve')
    .summary('serve the HTTP API: create, upgrade, read, list and control deployments')
    .description(
      'Serve the HTTP API (OpenAPI document at /openapi.json; README, HTTP API): deployments are created and ' +
        'upgraded from a spec, read, listed by search attribute and controlled (cancel, rollback, promote, pause, ' +
        'resume, scale, teardown) through the same library as the CLI. Every call but /openapi.json and /healthz ' +
        'needs a bearer token: a static one from --token-file, or a Google OIDC ID token for --oidc-audience of an ' +
        '--allow-service-account. One JSON access log line per request on stdout, never a token or a body. ' +
        'Storage events (README, Storage events): a marker object written last into a model folder deploys it, pushed ' +
        'to /v1/events/pubsub or /v1/events/cloudevents, or pulled from --pubsub-subscription. ' +
        'Exit codes: 0 stopped by Ctrl-C/SIGTERM; 1 cannot listen (or serve metrics), or stopped because it can no ' +
        'longer do its work (the subscription it pulls was deleted); 2 bad options (also a ' +
        'subscription that does not exist), tokens or Temporal unreachable.',
    );
  for (const option of serveOptions()) command.addOption(option);
  command.addOption(taskQueueOption());
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (raw: Record<string, unknown>) => {
    process.exitCode = await runServe(raw);
  });
  command
    .command('hash-token')
    .argument('<name>', 'the token’s name, shown in the access log as token:<name>')
    .description(
      'Read a token on stdin (e.g. `openssl rand -hex 32 | tee token | garden-deploy serve hash-token ci`) and ' +
        'print its line for the tokens file, "<name> sha256:<hex>": the server stores only that digest.',
    )
    .action(async (name: string) => {
      process.exitCode = await hashToken(name);
    });
}

async function runServe(raw: Record<string, unknown>): Promise<number> {
  const say = (line: string) => process.stderr.write(`garden-deploy serve: ${line}\n`);
  let config;
  let flags;
  try {
    flags = ServeCommandFlagsSchema.parse(raw);
    config = serveConfig(raw, say);
  } catch (err) {
    if (!(
      err instanceof ServeConfigError ||
      err instanceof TokenFileError ||
      err instanceof CodecConfigError
    ))
      throw err;
    say(err.message);
    return EXIT_BAD_INPUT;
  }
  let runtime: Runtime | undefined;
  let metrics: StorageEventMetrics | undefined;
  if (config.metricsAddress) {
    try {
      // The worker's one exporter (Temporal's runtime), here for the storage-event counter.
      installRuntime('WARN', { metricsAddress: config.metricsAddress });
    } catch (err) {
      say(`cannot serve metrics at ${config.metricsAddress}: ${(err as Error).message}`);
      return 1;
    }
    runtime = Runtime.instance();
    metrics = storageEventMetrics(runtime.metricMeter);
  }
  try {
    return await serveUntilStopped(flags, config, say, metrics);
  } finally {
    // Its exporter would keep the process alive.
    await runtime?.shutdown();
  }
}

async function serveUntilStopped(
  flags: z.output<typeof ServeCommandFlagsSchema>,
  config: ServeConfig,
  say: (line: string) => void,
  metrics: StorageEventMetrics | undefined,
): Promise<number> {
  return withTemporal('serve', flags, processIo, async (temporal) => {
    const deps: ServerDeps & EventsServerDeps = {
      client: temporal.client,
      taskQueue: flags.taskQueue,
      auth: config.auth,
      bodyLimit: config.bodyLimit,
      rateLimit: config.rateLimit,
      events: {
        config: config.events,
        ...(config.pubsubSubscription ? { subscription: config.pubsubSubscription } : {}),
        ...(metrics ? { metrics } : {}),
      },
    };
    const app = await createServer(deps);
    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (err) {
      // The subscription is pulled from once the server is ready, so it is checked here.
      if (err instanceof SubscriptionNotFoundError) {
        say(err.message);
        return EXIT_BAD_INPUT;
      }
      say(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
      return 1;
    }
    const { address, port } = app.server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    const auth = [
      config.auth.tokens.length ? `${config.auth.tokens.length} static token(s)` : '',
      config.auth.oidc
        ? `OIDC ID tokens for ${config.auth.oidc.audiences.join(', ')} from ${config.auth.oidc.allowedServiceAccounts.join(', ')}`
        : '',
    ].filter(Boolean);
    say(
      `listening on http://${host}:${port} (Temporal at ${temporal.address}, namespace ${temporal.namespace}` +
        `${temporal.encrypted ? ', payloads encrypted' : ''}; auth: ${auth.join('; ')}); Ctrl-C to stop`,
    );
    const stopped = await Promise.race([
      new Promise<undefined>((resolve) => {
        process.once('SIGINT', () => resolve(undefined));
        process.once('SIGTERM', () => resolve(undefined));
      }),
      // A server that can no longer do its work (its subscription was deleted) stops rather than idles healthy.
      healthOf(app).failed,
    ]);
    if (stopped !== undefined) say(`stopping: ${stopped}`);
    await app.close();
    return stopped === undefined ? 0 : 1;
  });
}

const MAX_TOKEN_STDIN = 4096;

async function hashToken(name: string): Promise<number> {
  let input = '';
  for await (const chunk of process.stdin) {
    input += String(chunk);
    if (input.length > MAX_TOKEN_STDIN) break;
  }
  try {
    process.stdout.write(`${tokenLine(name, input.trim())}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof TokenFileError)) throw err;
    process.stderr.write(`garden-deploy serve hash-token: ${err.message}\n`);
    return EXIT_BAD_INPUT;
  }
}
