import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { z } from 'zod';
import { dataConverterFromEnv } from '../codec';
import { clientTracingInterceptors, installTracing } from '../tracing';
import { TemporalConnectionError } from './errors';
import { firstLine } from './text';

const DEFAULT_ADDRESS = 'localhost:7233';
const DEFAULT_NAMESPACE = 'default';
const TEMPORAL_CLOUD_UI = 'https://cloud.temporal.io';
/** Web UI base for links; otherwise the fallback's (the CLI: the local stack's) or derived for Temporal Cloud. */
export const UI_URL_ENV = 'GARDEN_DEPLOY_TEMPORAL_UI_URL';

export interface ConnectOptions {
  /** Overrides the address from the environment or profile, e.g. `localhost:7233`. */
  address?: string;
  /** Overrides the namespace from the environment or profile. */
  namespace?: string;
  /** Temporal config profile (default: `TEMPORAL_PROFILE`, then "default"). */
  profile?: string;
  /**
   * Where to connect when neither `address`, the environment nor a profile names a server, instead
   * of localhost:7233. The library reads no local state of its own: the CLI fills this from a
   * running `garden-deploy dev` (`stack.json`); the worker never does.
   */
  fallback?: FallbackTarget;
  /** Variables to read instead of `process.env`. */
  env?: Record<string, string | undefined>;
  /** How long to try reaching the server before giving up (default 5 s: a reachable server answers in well under a second). */
  connectTimeoutMs?: number;
}

export interface FallbackTarget {
  address: string;
  namespace: string;
  /** Web UI for links, also used when the configured address is this one. */
  uiBaseUrl?: string;
  /** Where it came from, for messages, e.g. `the local stack (.data/stack.json)`. */
  source: string;
  /** Its payload keyring (the local stack's `--encrypt`), used when the environment names none. */
  codecKeyFile?: string;
}

/** Where to connect and why there; `connectionOptions` may hold an API key: never print it. */
export interface TemporalTarget {
  address: string;
  namespace: string;
  /** Where the address came from, for messages: `TEMPORAL_ADDRESS`, a profile, the local stack… */
  source: string;
  /** Base URL of the Temporal Web UI, when known. */
  uiBaseUrl?: string;
  connectionOptions: ConnectionOptions;
  /** The fallback's keyring file, when the fallback is the target (see `FallbackTarget.codecKeyFile`). */
  codecKeyFile?: string;
}

export interface TemporalConnection {
  client: Client;
  connection: Connection;
  address: string;
  namespace: string;
  source: string;
  uiBaseUrl?: string;
  /** Payloads are encrypted by the codec (`GARDEN_DEPLOY_CODEC_KEYS` / `_KEY_FILE`). */
  encrypted: boolean;
  /** Link to the workflow in the Temporal Web UI, when the UI's address is known. */
  workflowUrl(workflowId: string): string | undefined;
  close(): Promise<void>;
}

/**
 * Connects the way Temporal's own tools do (envconfig: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
 * `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`, `TEMPORAL_PROFILE` and the TOML profile file), then
 * `options.fallback` when given, then `localhost:7233`. With a payload keyring configured
 * (`GARDEN_DEPLOY_CODEC_KEYS` or `GARDEN_DEPLOY_CODEC_KEY_FILE`), payloads are encrypted.
 */
export async function connectTemporal(options: ConnectOptions = {}): Promise<TemporalConnection> {
  const target = resolveTemporalTarget(options);
  const dataConverter = clientDataConverter(options.env ?? process.env, target);
  let connection: Connection;
  try {
    connection = await Connection.connect({
      ...target.connectionOptions,
      connectTimeout: options.connectTimeoutMs ?? 5_000,
    });
  } catch (err) {
    throw new TemporalConnectionError(
      `cannot reach Temporal at ${target.address} (address from ${target.source}): ${firstLine(err)}. ` +
        'Start the local stack with `garden-deploy dev`, or point TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, ' +
        'TEMPORAL_API_KEY or TEMPORAL_TLS_*) or a Temporal config profile at your cluster.',
    );
  }
  // With tracing configured, a span per workflow start/signal/query whose context the workflow continues.
  const tracing = installTracing('garden-deploy-client', { env: options.env ?? process.env });
  const client = new Client({
    connection,
    namespace: target.namespace,
    ...(dataConverter ? { dataConverter } : {}),
    ...(tracing ? { interceptors: { workflow: clientTracingInterceptors() } } : {}),
  });
  return {
    client,
    connection,
    address: target.address,
    namespace: target.namespace,
    source: target.source,
    uiBaseUrl: target.uiBaseUrl,
    encrypted: dataConverter !== undefined,
    workflowUrl: (workflowId) => workflowUiUrl(target.uiBaseUrl, target.namespace, workflowId),
    close: async () => {
      await connection.close();
      // A CLI process exits right after: export its spans first.
      await tracing?.flush();
    },
  };
}

/** Works out where to connect without connecting (see {@link connectTemporal}). */
export function resolveTemporalTarget(options: ConnectOptions = {}): TemporalTarget {
  const env = options.env ?? process.env;
  let config: ReturnType<typeof loadClientConnectConfig>;
  try {
    config = loadClientConnectConfig({
      ...(options.profile === undefined ? {} : { profile: options.profile }),
      overrideEnvVars: definedOnly(env),
    });
  } catch (err) {
    throw new TemporalConnectionError(
      `cannot load the Temporal client configuration (TEMPORAL_* variables, TEMPORAL_CONFIG_FILE or ` +
        `~/.config/temporalio/temporal.toml): ${firstLine(err)}`,
    );
  }
  const uiFromEnv = uiUrlFromEnv(env);
  const configured = options.address ?? config.connectionOptions.address;
  if (configured) {
    const source =
      options.address !== undefined
        ? 'the --address option'
        : env.TEMPORAL_ADDRESS
          ? 'TEMPORAL_ADDRESS'
          : `Temporal config profile "${options.profile ?? env.TEMPORAL_PROFILE ?? 'default'}"`;
    const namespace = options.namespace ?? config.namespace ?? DEFAULT_NAMESPACE;
    const { fallback } = options;
    const fallbackUi = fallback?.address === configured ? fallback.uiBaseUrl : undefined;
    return {
      address: configured,
      namespace,
      source,
      uiBaseUrl: uiFromEnv ?? fallbackUi ?? cloudUiUrl(configured),
      connectionOptions: { ...config.connectionOptions, address: configured },
    };
  }
  if (options.fallback) {
    const { fallback } = options;
    return {
      address: fallback.address,
      namespace: options.namespace ?? config.namespace ?? fallback.namespace,
      source: fallback.source,
      uiBaseUrl: uiFromEnv ?? fallback.uiBaseUrl,
      connectionOptions: { ...config.connectionOptions, address: fallback.address },
      ...(fallback.codecKeyFile ? { codecKeyFile: fallback.codecKeyFile } : {}),
    };
  }
  return {
    address: DEFAULT_ADDRESS,
    namespace: options.namespace ?? config.namespace ?? DEFAULT_NAMESPACE,
    source: 'the default (no TEMPORAL_ADDRESS or Temporal config profile)',
    uiBaseUrl: uiFromEnv,
    connectionOptions: { ...config.connectionOptions, address: DEFAULT_ADDRESS },
  };
}

/** The payload codec's data converter, before connecting; a bad keyring throws `CodecConfigError`. */
function clientDataConverter(
  env: Record<string, string | undefined>,
  target: TemporalTarget,
): DataConverter | undefined {
  return dataConverterFromEnv(env, target.codecKeyFile ? { fallbackKeyFile: target.codecKeyFile } : {});
}

/** `{ui}/namespaces/{ns}/workflows/{id}`, or undefined without a UI address. */
export function workflowUiUrl(
  uiBaseUrl: string | undefined,
  namespace: string,
  workflowId: string,
): string | undefined {
  if (!uiBaseUrl) return undefined;
  return `${uiBaseUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

const HttpUrl = z.url({ protocol: /^https?$/ });

function uiUrlFromEnv(env: Record<string, string | undefined>): string | undefined {
  const value = env[UI_URL_ENV];
  if (!value) return undefined;
  if (!HttpUrl.safeParse(value).success) {
    throw new TemporalConnectionError(
      `${UI_URL_ENV} must be the http(s) address of the Temporal Web UI, e.g. http://localhost:8233; got "${value}"`,
    );
  }
  return value;
}

/** Temporal Cloud's UI serves every account's namespaces. */
function cloudUiUrl(address: string): string | undefined {
  const host = address.replace(/:\d+$/, '');
  return host.endsWith('.tmprl.cloud') || host.endsWith('.api.temporal.io') ? TEMPORAL_CLOUD_UI : undefined;
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}
