import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  DefaultLogger,
  type LogEntry,
  type Logger,
  NativeConnection,
  Runtime,
  Worker,
  type WorkerOptions,
  makeTelemetryFilterString,
} from '@temporalio/worker';
import { createActivities } from '../activities';
import { createGcpClient, redactSecrets } from '../gcp';
import { createStorage } from '../storage';
import { WORKFLOW_INTERCEPTOR_MODULES, installTracing, traceGcpCall, workerTracingOptions } from '../tracing';
import {
  type LogLevel,
  type WorkerConfig,
  WorkerConfigError,
  describeWorkerConfig,
  loadWorkerConfig,
} from './config';
import { prometheusExporter, processMetrics } from './metrics';
import { ApiBudgets, budgetedGcpClient } from './rate-limit';

/**
 * The garden-deploy worker process: runs the deployment workflows and their activities for one
 * task queue until SIGINT/SIGTERM, then drains (in-flight activities get the shutdown grace time)
 * and closes its connection. Logs are JSON lines on stdout. Exit codes: 0 after a clean stop,
 * 1 when the worker fails, 2 when the configuration is invalid.
 */

let runtimeLogger: Logger | undefined;

export interface RuntimeSetup {
  /** `host:port` of the Prometheus endpoint (SDK and product metrics); none without it. */
  metricsAddress?: string;
  write?: (line: string) => void;
}

/**
 * Installs the Temporal runtime once per process with a JSON-lines logger (core logs forwarded)
 * and, given an address, the Prometheus exporter every metric of the process goes through.
 */
export function installRuntime(
  level: LogLevel,
  { metricsAddress, write = writeStdout }: RuntimeSetup = {},
): Logger {
  if (runtimeLogger) return runtimeLogger;
  const logger = new DefaultLogger(level, (entry) => write(formatLogEntry(entry)));
  Runtime.install({
    logger,
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: level }) },
      ...(metricsAddress ? { metrics: prometheusExporter(metricsAddress) } : {}),
    },
    shutdownSignals: ['SIGINT', 'SIGTERM'],
  });
  runtimeLogger = logger;
  return logger;
}

function writeStdout(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** One log line: time, level, message and metadata; errors reduced to what they say, secrets scrubbed. */
export function formatLogEntry(entry: LogEntry): string {
  const head = {
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    level: entry.level,
    message: entry.message,
  };
  let line: string;
  try {
    line = JSON.stringify({ ...head, ...entry.meta }, (_key, value: unknown) => {
      if (typeof value === 'bigint') return value.toString();
      if (value instanceof Error) {
        const type = (value as { type?: unknown }).type;
        return { name: value.name, message: value.message, ...(typeof type === 'string' ? { type } : {}) };
      }
      if (value instanceof Uint8Array) return `<${value.length} bytes>`;
      return value;
    });
  } catch {
    // Metadata that cannot be serialised (a cycle) must not take the log line, or the worker, down.
    line = JSON.stringify({ ...head, meta: 'unserialisable' });
  }
  return redactSecrets(line);
}

/** The bundle named by the configuration, or the workflow sources bundled at start (development). */
function workflowCode(
  config: WorkerConfig,
): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'interceptors'> {
  // Bundled at start like the prebuilt bundle is (src/worker/bundle.ts): tracing's interceptors in.
  if (!config.workflowBundle)
    return {
      workflowsPath: require.resolve('../workflows'),
      interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES },
    };
  const codePath = path.resolve(config.workflowBundle);
  if (!existsSync(codePath)) {
    throw new WorkerConfigError(
      `GARDEN_DEPLOY_WORKFLOW_BUNDLE names ${codePath}, which does not exist: build it with ` +
        '`node --import tsx scripts/build-workflow-bundle.ts FILE`, or unset the variable to bundle at start',
    );
  }
  return { workflowBundle: { codePath } };
}

/** The runtime for this configuration; a metrics address that cannot be listened on is named. */
function installRuntimeFor(config: WorkerConfig): Logger {
  const { metricsAddress } = config;
  try {
    return installRuntime(config.logLevel, metricsAddress ? { metricsAddress } : {});
  } catch (err) {
    if (!metricsAddress) throw err;
    throw new Error(
      `cannot serve metrics at GARDEN_DEPLOY_METRICS_ADDRESS=${metricsAddress}: ` +
        `${err instanceof Error ? err.message : String(err)}. Give a free port, or unset it to serve none.`,
    );
  }
}

/** Runs a worker until the process is told to stop; resolves once it has drained. */
export async function runWorker(config: WorkerConfig): Promise<void> {
  const logger = installRuntimeFor(config);
  logger.info('garden-deploy worker starting', describeWorkerConfig(config));
  for (const warning of config.warnings) logger.warn(warning);
  const code = workflowCode(config);
  // Off (undefined) unless OTEL_EXPORTER_OTLP_ENDPOINT or GARDEN_DEPLOY_TRACING=otlp is set.
  const tracing = installTracing('garden-deploy-worker');
  const traced = workerTracingOptions(tracing);
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(config.temporal.connectionOptions);
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${config.temporal.address} (from ${config.temporal.source}): ` +
        `${err instanceof Error ? err.message : String(err)}. Start the local stack with \`garden-deploy dev\` ` +
        'or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TEMPORAL_API_KEY or TEMPORAL_TLS_*).',
    );
  }
  try {
    // Tagged like the SDK tags the worker's own metrics, so one query selects a namespace's or queue's.
    const metrics = processMetrics(
      Runtime.instance().metricMeter.withTags({
        namespace: config.temporal.namespace,
        taskQueue: config.taskQueue,
      }),
    );
    const gcp = budgetedGcpClient(
      createGcpClient(config.gcp, {
        observe: tracing
          ? (api, exchange) => {
              metrics.gcpCall(api, exchange);
              traceGcpCall(api, exchange);
            }
          : metrics.gcpCall,
      }),
      new ApiBudgets(config.apiBudget, config.apiBudgetWorkers),
      metrics.budgetWait,
    );
    const storage = createStorage(config.storageEndpoint ? { endpoint: config.storageEndpoint } : {});
    const worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.taskQueue,
      ...code,
      interceptors: { ...code.interceptors, ...traced.interceptors },
      sinks: traced.sinks,
      ...(config.dataConverter ? { dataConverter: config.dataConverter } : {}),
      activities: createActivities({ gcp, storage, options: config.activityOptions }),
      maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
      maxConcurrentWorkflowTaskExecutions: config.maxConcurrentWorkflowTasks,
      maxCachedWorkflows: config.maxCachedWorkflows,
      shutdownGraceTime: config.shutdownGraceMs,
      stickyQueueScheduleToStartTimeout: config.stickyQueueTimeoutMs,
      // A cancel is delivered with the next heartbeat RPC: keep them frequent (see the config).
      maxHeartbeatThrottleInterval: config.heartbeatThrottleMs,
    });
    logger.info('garden-deploy worker polling', {
      taskQueue: config.taskQueue,
      namespace: config.temporal.namespace,
    });
    await worker.run();
    logger.info('garden-deploy worker stopped');
  } finally {
    await connection.close();
    await tracing?.flush();
  }
}

/** Loads the configuration from `env` and runs the worker; returns the process exit code. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<number> {
  let config: WorkerConfig;
  try {
    config = loadWorkerConfig(env);
  } catch (err) {
    if (!(err instanceof WorkerConfigError)) throw err;
    process.stderr.write(`garden-deploy worker: ${err.message}\n`);
    return 2;
  }
  try {
    await runWorker(config);
    return 0;
  } catch (err) {
    const message = redactSecrets(err instanceof Error ? err.message : String(err));
    if (runtimeLogger) runtimeLogger.error('garden-deploy worker failed', { error: message });
    else process.stderr.write(`garden-deploy worker: ${message}\n`);
    return err instanceof WorkerConfigError ? 2 : 1;
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
