import type { DataConverter } from '@temporalio/common';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { z } from 'zod';
import type { ActivityOptionsInput } from '../activities';
import { TemporalConnectionError, resolveTemporalTarget } from '../client';
import { CodecConfigError, dataConverterFromEnv, describePayloadEncryption } from '../codec';
import { DEFAULT_TASK_QUEUE } from '../constants';
import { hostPortSchema } from '../host-port';
import type { BaseUrlKey, GcpClientConfigInput } from '../gcp';
import { parseDuration } from '../spec';
import type { ApiBudget, BudgetedService } from './rate-limit';

/**
 * The worker's configuration, from environment variables only (12-factor): Temporal through
 * Temporal's own variables and profile file (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
 * `TEMPORAL_API_KEY`, `TEMPORAL_TLS_*`, `TEMPORAL_PROFILE`), everything else `GARDEN_DEPLOY_*`.
 * Google credentials are Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, …),
 * read by the Google client when it needs a token; nothing here holds a secret except the Temporal
 * connection options (API key, client key), which are never printed.
 */

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const httpUrl = (what: string) =>
  z.string().refine(
    (value) => {
      try {
        const url = new URL(value.replaceAll('{region}', 'us-central1'));
        return (url.protocol === 'http:' || url.protocol === 'https:') && !url.search && !url.hash;
      } catch {
        return false;
      }
    },
    { message: `must be an http(s) URL of ${what}` },
  );

const positiveInt = (max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1, 'must be at least 1').max(max, `must be at most ${max}`));

const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** `host:port` to listen on: a name or IPv4 address, or a bracketed IPv6 address. */
const listenAddress = hostPortSchema('127.0.0.1:9464');

const duration = (max: number) =>
  z
    .string()
    .transform((value, ctx) => {
      try {
        return parseDuration(/^\d+$/.test(value) ? Number(value) : value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .pipe(z.number().max(max, `must be at most ${max / 1000} s`));

/**
 * Where each Google API is reached instead of Google (the local emulator in development), one
 * variable per API: the schema, the client configuration and the start-up log derive from this.
 */
export const GCP_BASE_URL_VARIABLES = {
  /** Vertex AI host; `{region}` is replaced per call. */
  GARDEN_DEPLOY_VERTEX_BASE_URL: { key: 'vertexBaseUrl', api: 'the Vertex AI API (may contain {region})' },
  GARDEN_DEPLOY_COMPUTE_BASE_URL: { key: 'computeBaseUrl', api: 'the Compute Engine API' },
  /** Read by upgrade gates and the quota check (usage). */
  GARDEN_DEPLOY_MONITORING_BASE_URL: { key: 'monitoringBaseUrl', api: 'the Cloud Monitoring API' },
  /** The serving GPU quota's limit, checked before `:deploy`. */
  GARDEN_DEPLOY_CLOUD_QUOTAS_BASE_URL: { key: 'cloudQuotasBaseUrl', api: 'the Cloud Quotas API' },
  /** The serving container's lines, read when a start fails. */
  GARDEN_DEPLOY_LOGGING_BASE_URL: { key: 'loggingBaseUrl', api: 'the Cloud Logging API' },
  /** Inference goes to this URL instead of the endpoint's own host (the emulator routes by Host). */
  GARDEN_DEPLOY_PREDICTION_BASE_URL: { key: 'predictionBaseUrl', api: 'the prediction front end' },
} as const satisfies Record<string, { key: BaseUrlKey; api: string }>;
type GcpBaseUrlVariable = keyof typeof GCP_BASE_URL_VARIABLES;

const baseUrlSchemas = Object.fromEntries(
  Object.entries(GCP_BASE_URL_VARIABLES).map(([name, { api }]) => [name, httpUrl(api).optional()]),
) as Record<GcpBaseUrlVariable, z.ZodOptional<ReturnType<typeof httpUrl>>>;

/**
 * Calls per second per project and region, per service (Google's quotas are per project and
 * region): one variable each, from this table (schema, configuration and start-up log).
 */
export const API_BUDGET_VARIABLES = {
  /** Vertex AI management (deploy, operations, endpoints, models): 600 a minute per region by default at Google. */
  GARDEN_DEPLOY_API_BUDGET_VERTEX: { service: 'vertex', default: 10 },
  GARDEN_DEPLOY_API_BUDGET_COMPUTE: { service: 'compute', default: 20 },
  /** Smoke tests and upgrade probes on the deployment's own host. */
  GARDEN_DEPLOY_API_BUDGET_PREDICTION: { service: 'prediction', default: 10 },
} as const satisfies Record<string, { service: BudgetedService; default: number }>;
type ApiBudgetVariable = keyof typeof API_BUDGET_VARIABLES;

const callsPerSecond = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'must be a number of calls per second')
  .transform(Number)
  .pipe(z.number().gt(0, 'must be more than 0').max(10_000, 'must be at most 10000'));

const apiBudgetSchemas = Object.fromEntries(
  Object.entries(API_BUDGET_VARIABLES).map(([name, { default: value }]) => [
    name,
    callsPerSecond.default(value),
  ]),
) as Record<ApiBudgetVariable, z.ZodDefault<typeof callsPerSecond>>;

/** Every variable the worker reads besides Temporal's own; the key is the variable's name. */
export const WorkerEnvSchema = z.object({
  GARDEN_DEPLOY_TASK_QUEUE: z.string().trim().min(1).max(200).default(DEFAULT_TASK_QUEUE),
  ...baseUrlSchemas,
  /**
   * Explicit opt-out (default false): call a PSC internal IP without verifying its certificate, as
   * Google's Python SDK does. Without it a private smoke test needs `access.tlsServerName` (the DNS
   * name whose certificate the endpoint presents; the connection still goes to the IP) and is
   * refused otherwise, so the access token never crosses an unverified TLS connection.
   */
  GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY: flag.default(false),
  /** `x-goog-user-project`: the project Google bills API quota to. */
  GARDEN_DEPLOY_GCP_QUOTA_PROJECT: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'must be a project ID')
    .optional(),
  /** fake-gcs-server for the model reads (the Google Cloud Storage client's own variable). */
  STORAGE_EMULATOR_HOST: httpUrl('a GCS-compatible server').optional(),
  ...apiBudgetSchemas,
  /**
   * How many workers share the API budgets: each takes its share (budget ÷ this), so the total
   * never exceeds the budget while at most this many run.
   */
  GARDEN_DEPLOY_API_BUDGET_WORKERS: positiveInt(1_000).default(1),
  /** Replaced by the per-service budgets: refused with the new names rather than silently ignored. */
  GARDEN_DEPLOY_GCP_RATE_LIMIT: z
    .string()
    .refine(() => false, {
      message:
        'replaced by GARDEN_DEPLOY_API_BUDGET_VERTEX, GARDEN_DEPLOY_API_BUDGET_COMPUTE and GARDEN_DEPLOY_API_BUDGET_PREDICTION (calls per second per project and region)',
    })
    .optional(),
  /**
   * Activities wait on the network, not the CPU: a slot held by a 10 s `:wait` long-poll costs a
   * socket. Fewer slots than deployments waiting at once make completions noticed late and new
   * deployments queue (50 slots, 200 deployments: completion lag p95 10.7 s, start → `:deploy` 19.5 s;
   * 1,000 slots: 0.6 s and 8.8 s). Google's load is bounded by the API budgets, not by this.
   */
  GARDEN_DEPLOY_MAX_CONCURRENT_ACTIVITIES: positiveInt(10_000).default(1_000),
  GARDEN_DEPLOY_MAX_CONCURRENT_WORKFLOW_TASKS: positiveInt(1_000).default(20),
  /** Workflows kept in memory between tasks (each is a V8 context: bound it explicitly). */
  GARDEN_DEPLOY_MAX_CACHED_WORKFLOWS: positiveInt(100_000).default(500),
  /** How long in-flight activities may finish after SIGINT/SIGTERM before they are cancelled. */
  GARDEN_DEPLOY_SHUTDOWN_GRACE: duration(3_600_000).default(30_000),
  /**
   * How long a workflow task waits for the worker that ran the workflow last before any worker may
   * take it: after a worker dies, its deployments stall this long.
   */
  GARDEN_DEPLOY_STICKY_QUEUE_TIMEOUT: duration(600_000).default(10_000),
  /**
   * Longest gap between an activity's heartbeat RPCs (Temporal's maxHeartbeatThrottleInterval,
   * default 60 s; the throttle is min(heartbeatTimeout × 0.8, this)). A cancel reaches a running
   * activity only in the answer to its next heartbeat RPC, so this bounds how long a cancelled
   * deployment keeps working. At least 100 ms: each RPC is a round trip to the server.
   */
  GARDEN_DEPLOY_HEARTBEAT_THROTTLE: duration(60_000)
    .pipe(z.number().min(100, 'must be at least 100ms'))
    .default(1_000),
  GARDEN_DEPLOY_LOG_LEVEL: z
    .string()
    .transform((v) => v.toUpperCase())
    .pipe(z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` }))
    .default('INFO'),
  /** A prebuilt workflow bundle (production); without it the workflows are bundled at start. */
  GARDEN_DEPLOY_WORKFLOW_BUNDLE: z.string().min(1).optional(),
  /**
   * `host:port` of the Prometheus endpoint (`/metrics`: the SDK's metrics and the product's); off
   * when unset. `127.0.0.1:9464` keeps it on this machine; `0.0.0.0:9464` lets Prometheus scrape it.
   */
  GARDEN_DEPLOY_METRICS_ADDRESS: listenAddress.optional(),
  /** Polling of changes Google makes: first interval and longest interval (defaults 1 s and 10 s). */
  GARDEN_DEPLOY_POLL_INITIAL_MS: positiveInt(60_000).optional(),
  GARDEN_DEPLOY_POLL_MAX_MS: positiveInt(300_000).optional(),
});

export interface WorkerConfig {
  temporal: {
    address: string;
    namespace: string;
    /** Where the address came from, for the start-up log line. */
    source: string;
    /** May hold an API key or a client key: never log it. */
    connectionOptions: NativeConnectionOptions;
  };
  taskQueue: string;
  /**
   * The payload codec (`GARDEN_DEPLOY_CODEC_KEYS` or `GARDEN_DEPLOY_CODEC_KEY_FILE`): holds keys,
   * never log it. Codecs run outside the workflow sandbox, so the workflow bundle is the same.
   */
  dataConverter?: DataConverter;
  /** Said once the logger is up (e.g. a keyring file others may read). */
  warnings: string[];
  gcp: GcpClientConfigInput;
  storageEndpoint?: string;
  /** Calls per second per project and region, per service, for all workers together. */
  apiBudget: ApiBudget;
  /** Workers sharing `apiBudget`: each takes its share. */
  apiBudgetWorkers: number;
  maxConcurrentActivities: number;
  maxConcurrentWorkflowTasks: number;
  maxCachedWorkflows: number;
  shutdownGraceMs: number;
  stickyQueueTimeoutMs: number;
  /** Worker's maxHeartbeatThrottleInterval: how soon a cancel reaches a running activity. */
  heartbeatThrottleMs: number;
  logLevel: LogLevel;
  workflowBundle?: string;
  /** Where the Prometheus endpoint listens; no endpoint without it. */
  metricsAddress?: string;
  activityOptions: ActivityOptionsInput;
}

export class WorkerConfigError extends Error {
  override readonly name = 'WorkerConfigError';
}

/** Reads and checks the configuration; a bad variable is named with what it accepts. */
export function loadWorkerConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const present = Object.fromEntries(
    Object.keys(WorkerEnvSchema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const parsed = WorkerEnvSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '(environment)');
      return `  ${name}=${JSON.stringify(env[name] ?? '')}: ${issue.message}`;
    });
    throw new WorkerConfigError(`invalid worker configuration:\n${problems.join('\n')}`);
  }
  const e = parsed.data;
  if ((e.GARDEN_DEPLOY_POLL_MAX_MS ?? 10_000) < (e.GARDEN_DEPLOY_POLL_INITIAL_MS ?? 1_000)) {
    throw new WorkerConfigError(
      'invalid worker configuration: GARDEN_DEPLOY_POLL_MAX_MS must be at least GARDEN_DEPLOY_POLL_INITIAL_MS',
    );
  }
  let temporal: ReturnType<typeof resolveTemporalTarget>;
  try {
    temporal = resolveTemporalTarget({ env });
  } catch (err) {
    if (err instanceof TemporalConnectionError) throw new WorkerConfigError(err.message);
    throw err;
  }
  // Not in WorkerEnvSchema: its messages quote values, and GARDEN_DEPLOY_CODEC_KEYS holds keys.
  const warnings: string[] = [];
  let dataConverter: DataConverter | undefined;
  try {
    dataConverter = dataConverterFromEnv(env, { warn: (message) => warnings.push(message) });
  } catch (err) {
    if (err instanceof CodecConfigError)
      throw new WorkerConfigError(`invalid worker configuration: ${err.message}`);
    throw err;
  }
  return {
    temporal: {
      address: temporal.address,
      namespace: temporal.namespace,
      source: temporal.source,
      connectionOptions: temporal.connectionOptions as NativeConnectionOptions,
    },
    taskQueue: e.GARDEN_DEPLOY_TASK_QUEUE,
    ...(dataConverter ? { dataConverter } : {}),
    warnings,
    gcp: {
      ...baseUrlsOf(e),
      ...(e.GARDEN_DEPLOY_GCP_QUOTA_PROJECT ? { quotaProjectId: e.GARDEN_DEPLOY_GCP_QUOTA_PROJECT } : {}),
      pscSkipTlsVerify: e.GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY,
    },
    ...(e.STORAGE_EMULATOR_HOST ? { storageEndpoint: e.STORAGE_EMULATOR_HOST } : {}),
    apiBudget: Object.fromEntries(
      Object.entries(API_BUDGET_VARIABLES).map(([name, { service }]) => [
        service,
        e[name as ApiBudgetVariable],
      ]),
    ) as ApiBudget,
    apiBudgetWorkers: e.GARDEN_DEPLOY_API_BUDGET_WORKERS,
    maxConcurrentActivities: e.GARDEN_DEPLOY_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTasks: e.GARDEN_DEPLOY_MAX_CONCURRENT_WORKFLOW_TASKS,
    maxCachedWorkflows: e.GARDEN_DEPLOY_MAX_CACHED_WORKFLOWS,
    shutdownGraceMs: e.GARDEN_DEPLOY_SHUTDOWN_GRACE,
    stickyQueueTimeoutMs: e.GARDEN_DEPLOY_STICKY_QUEUE_TIMEOUT,
    heartbeatThrottleMs: e.GARDEN_DEPLOY_HEARTBEAT_THROTTLE,
    logLevel: e.GARDEN_DEPLOY_LOG_LEVEL,
    ...(e.GARDEN_DEPLOY_WORKFLOW_BUNDLE ? { workflowBundle: e.GARDEN_DEPLOY_WORKFLOW_BUNDLE } : {}),
    ...(e.GARDEN_DEPLOY_METRICS_ADDRESS ? { metricsAddress: e.GARDEN_DEPLOY_METRICS_ADDRESS } : {}),
    activityOptions: {
      poll: {
        ...(e.GARDEN_DEPLOY_POLL_INITIAL_MS ? { initialMs: e.GARDEN_DEPLOY_POLL_INITIAL_MS } : {}),
        ...(e.GARDEN_DEPLOY_POLL_MAX_MS ? { maxMs: e.GARDEN_DEPLOY_POLL_MAX_MS } : {}),
      },
    },
  };
}

/** Every base URL variable set to one URL: a worker talking to an emulator that serves every API. */
export function emulatorBaseUrlEnv(url: string): Record<GcpBaseUrlVariable, string> {
  return Object.fromEntries(Object.keys(GCP_BASE_URL_VARIABLES).map((name) => [name, url])) as Record<
    GcpBaseUrlVariable,
    string
  >;
}

/** The client's base URLs from the variables that are set. */
function baseUrlsOf(e: Partial<Record<GcpBaseUrlVariable, string>>): Partial<GcpClientConfigInput> {
  return Object.fromEntries(
    Object.entries(GCP_BASE_URL_VARIABLES)
      .filter(([name]) => e[name as GcpBaseUrlVariable])
      .map(([name, { key }]) => [key, e[name as GcpBaseUrlVariable]]),
  );
}

/** The configuration as it may be logged: where things are, never how to authenticate. */
export function describeWorkerConfig(config: WorkerConfig): Record<string, unknown> {
  const { connectionOptions } = config.temporal;
  return {
    temporalAddress: config.temporal.address,
    temporalAddressFrom: config.temporal.source,
    namespace: config.temporal.namespace,
    temporalAuth: connectionOptions.apiKey ? 'api-key' : connectionOptions.tls ? 'tls' : 'none',
    taskQueue: config.taskQueue,
    payloadEncryption: describePayloadEncryption(config.dataConverter),
    ...Object.fromEntries(
      Object.values(GCP_BASE_URL_VARIABLES).map(({ key }) => [
        key,
        config.gcp[key] ?? (key === 'predictionBaseUrl' ? 'endpoint hosts' : 'Google'),
      ]),
    ),
    storage: config.storageEndpoint ?? 'Google Cloud Storage',
    apiBudget: config.apiBudget,
    apiBudgetWorkers: config.apiBudgetWorkers,
    maxConcurrentActivities: config.maxConcurrentActivities,
    maxConcurrentWorkflowTasks: config.maxConcurrentWorkflowTasks,
    heartbeatThrottleMs: config.heartbeatThrottleMs,
    workflowCode: config.workflowBundle ?? 'bundled at start',
    metrics: config.metricsAddress ? `http://${config.metricsAddress}/metrics` : 'off',
  };
}
