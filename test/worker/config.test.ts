import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGcpClient } from '../../src/gcp';
import { DEFAULT_DATA_DIR, writeStackFile } from '../../src/local-stack/stack-file';
import { WorkerConfigError, describeWorkerConfig, loadWorkerConfig } from '../../src/worker/config';
import { formatLogEntry } from '../../src/worker/main';
import { ApiBudgets, RateLimiter, budgetedGcpClient } from '../../src/worker/rate-limit';

/** The worker's environment contract: defaults, overrides, and errors that name the variable. */

// No profile file: only what each test sets.
const empty = mkdtempSync(path.join(os.tmpdir(), 'worker-config-'));
const base = { TEMPORAL_CONFIG_FILE: path.join(empty, 'none.toml') };

describe('loadWorkerConfig', () => {
  it('defaults to Google, the default task queue and localhost Temporal', () => {
    const config = loadWorkerConfig(base);
    expect(config).toMatchObject({
      temporal: { address: 'localhost:7233', namespace: 'default' },
      taskQueue: 'garden-deploy',
      gcp: { pscSkipTlsVerify: false },
      apiBudget: { vertex: 10, compute: 20, prediction: 10 },
      apiBudgetWorkers: 1,
      shutdownGraceMs: 30_000,
      stickyQueueTimeoutMs: 10_000,
      heartbeatThrottleMs: 1_000,
      logLevel: 'INFO',
      activityOptions: { poll: {} },
    });
    expect(config.gcp.vertexBaseUrl).toBeUndefined();
    expect(config.workflowBundle).toBeUndefined();
  });

  it('points everything at emulators and tunes the worker from GARDEN_DEPLOY_* and TEMPORAL_*', () => {
    const config = loadWorkerConfig({
      ...base,
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: 'deployments',
      GARDEN_DEPLOY_TASK_QUEUE: 'gpu-deploys',
      GARDEN_DEPLOY_VERTEX_BASE_URL: 'http://127.0.0.1:8780',
      GARDEN_DEPLOY_COMPUTE_BASE_URL: 'http://127.0.0.1:8780',
      GARDEN_DEPLOY_MONITORING_BASE_URL: 'http://127.0.0.1:8780',
      GARDEN_DEPLOY_CLOUD_QUOTAS_BASE_URL: 'http://127.0.0.1:8781',
      GARDEN_DEPLOY_LOGGING_BASE_URL: 'http://127.0.0.1:8782',
      GARDEN_DEPLOY_PREDICTION_BASE_URL: 'http://127.0.0.1:8780',
      GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY: 'false',
      STORAGE_EMULATOR_HOST: 'http://127.0.0.1:4443',
      GARDEN_DEPLOY_API_BUDGET_VERTEX: '2.5',
      GARDEN_DEPLOY_API_BUDGET_COMPUTE: '4',
      GARDEN_DEPLOY_API_BUDGET_PREDICTION: '1',
      GARDEN_DEPLOY_API_BUDGET_WORKERS: '3',
      GARDEN_DEPLOY_MAX_CONCURRENT_ACTIVITIES: '8',
      GARDEN_DEPLOY_MAX_CONCURRENT_WORKFLOW_TASKS: '4',
      GARDEN_DEPLOY_SHUTDOWN_GRACE: '2m',
      GARDEN_DEPLOY_STICKY_QUEUE_TIMEOUT: '1500',
      GARDEN_DEPLOY_HEARTBEAT_THROTTLE: '250ms',
      GARDEN_DEPLOY_LOG_LEVEL: 'debug',
      GARDEN_DEPLOY_POLL_INITIAL_MS: '200',
      GARDEN_DEPLOY_POLL_MAX_MS: '5000',
    });
    expect(config).toMatchObject({
      temporal: { address: 'temporal.internal:7233', namespace: 'deployments', source: 'TEMPORAL_ADDRESS' },
      taskQueue: 'gpu-deploys',
      gcp: {
        vertexBaseUrl: 'http://127.0.0.1:8780',
        computeBaseUrl: 'http://127.0.0.1:8780',
        monitoringBaseUrl: 'http://127.0.0.1:8780',
        cloudQuotasBaseUrl: 'http://127.0.0.1:8781',
        loggingBaseUrl: 'http://127.0.0.1:8782',
        predictionBaseUrl: 'http://127.0.0.1:8780',
        pscSkipTlsVerify: false,
      },
      storageEndpoint: 'http://127.0.0.1:4443',
      apiBudget: { vertex: 2.5, compute: 4, prediction: 1 },
      apiBudgetWorkers: 3,
      maxConcurrentActivities: 8,
      maxConcurrentWorkflowTasks: 4,
      shutdownGraceMs: 120_000,
      stickyQueueTimeoutMs: 1_500,
      heartbeatThrottleMs: 250,
      logLevel: 'DEBUG',
      activityOptions: { poll: { initialMs: 200, maxMs: 5000 } },
    });
    // The GCP part is a valid client configuration as it stands.
    expect(() => createGcpClient(config.gcp)).not.toThrow();
  });

  it('names every bad variable with what it accepts', () => {
    let error: unknown;
    try {
      loadWorkerConfig({
        ...base,
        GARDEN_DEPLOY_API_BUDGET_VERTEX: 'fast',
        GARDEN_DEPLOY_GCP_RATE_LIMIT: '10',
        GARDEN_DEPLOY_VERTEX_BASE_URL: 'ftp://vertex',
        GARDEN_DEPLOY_MAX_CONCURRENT_ACTIVITIES: '0',
        GARDEN_DEPLOY_SHUTDOWN_GRACE: 'soon',
        GARDEN_DEPLOY_LOG_LEVEL: 'LOUD',
        GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY: 'maybe',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(WorkerConfigError);
    const message = (error as Error).message;
    expect(message).toContain('GARDEN_DEPLOY_API_BUDGET_VERTEX="fast": must be a number of calls per second');
    expect(message).toContain(
      'GARDEN_DEPLOY_GCP_RATE_LIMIT="10": replaced by GARDEN_DEPLOY_API_BUDGET_VERTEX',
    );
    expect(message).toContain('GARDEN_DEPLOY_VERTEX_BASE_URL="ftp://vertex": must be an http(s) URL');
    expect(message).toContain('GARDEN_DEPLOY_MAX_CONCURRENT_ACTIVITIES="0": must be at least 1');
    expect(message).toMatch(/GARDEN_DEPLOY_SHUTDOWN_GRACE="soon": .*is not a duration/);
    expect(message).toContain(
      'GARDEN_DEPLOY_LOG_LEVEL="LOUD": must be one of TRACE, DEBUG, INFO, WARN, ERROR',
    );
    expect(message).toContain('GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY="maybe": must be true or false');
  });

  it('bounds the heartbeat throttle to what lets a cancel arrive soon without flooding the server', () => {
    expect(loadWorkerConfig({ ...base, GARDEN_DEPLOY_HEARTBEAT_THROTTLE: '60s' }).heartbeatThrottleMs).toBe(
      60_000,
    );
    expect(loadWorkerConfig({ ...base, GARDEN_DEPLOY_HEARTBEAT_THROTTLE: '2000' }).heartbeatThrottleMs).toBe(
      2_000,
    );
    expect(() => loadWorkerConfig({ ...base, GARDEN_DEPLOY_HEARTBEAT_THROTTLE: '2m' })).toThrow(
      'GARDEN_DEPLOY_HEARTBEAT_THROTTLE="2m": must be at most 60 s',
    );
    expect(() => loadWorkerConfig({ ...base, GARDEN_DEPLOY_HEARTBEAT_THROTTLE: '10ms' })).toThrow(
      'GARDEN_DEPLOY_HEARTBEAT_THROTTLE="10ms": must be at least 100ms',
    );
    expect(() => loadWorkerConfig({ ...base, GARDEN_DEPLOY_HEARTBEAT_THROTTLE: 'often' })).toThrow(
      /GARDEN_DEPLOY_HEARTBEAT_THROTTLE="often": .*is not a duration/,
    );
    const described = describeWorkerConfig(loadWorkerConfig(base));
    expect(described.heartbeatThrottleMs).toBe(1_000);
    expect(described).toMatchObject({ cloudQuotasBaseUrl: 'Google', loggingBaseUrl: 'Google' });
    expect(() => loadWorkerConfig({ ...base, GARDEN_DEPLOY_LOGGING_BASE_URL: 'logging' })).toThrow(
      'GARDEN_DEPLOY_LOGGING_BASE_URL="logging": must be an http(s) URL of the Cloud Logging API',
    );
  });

  it("ignores a running local stack's stack.json: Temporal comes from the environment only", () => {
    const dataDir = mkdtempSync(path.join(empty, 'stack-'));
    const stackDir = path.join(dataDir, DEFAULT_DATA_DIR);
    mkdirSync(stackDir);
    writeStackFile({
      pid: process.pid, // alive: this test process stands in for `garden-deploy dev`
      startedAt: new Date().toISOString(),
      dataDir: stackDir,
      temporal: { address: '127.0.0.1:17233', namespace: 'stack-ns' },
      gcs: { endpoint: 'http://127.0.0.1:14443' },
      emulator: { url: 'http://127.0.0.1:18780', logFile: path.join(stackDir, 'emulator.log') },
      services: [],
      env: {},
    });
    const home = process.cwd();
    process.chdir(dataDir);
    try {
      for (const env of [base, { ...base, GARDEN_DEPLOY_DATA_DIR: stackDir }]) {
        expect(loadWorkerConfig(env).temporal).toMatchObject({
          address: 'localhost:7233',
          namespace: 'default',
        });
      }
    } finally {
      process.chdir(home);
    }
  });

  it('reads Temporal Cloud settings through envconfig and never describes the API key', () => {
    const config = loadWorkerConfig({
      ...base,
      TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233',
      TEMPORAL_NAMESPACE: 'prod.acct',
      TEMPORAL_API_KEY: 'tk-secret-value-123456',
    });
    expect(config.temporal.connectionOptions).toMatchObject({ apiKey: 'tk-secret-value-123456', tls: true });
    const described = JSON.stringify(describeWorkerConfig(config));
    expect(described).toContain('"temporalAuth":"api-key"');
    expect(described).not.toContain('tk-secret-value-123456');
  });

  it('serves metrics only when GARDEN_DEPLOY_METRICS_ADDRESS names host:port', () => {
    expect(loadWorkerConfig(base).metricsAddress).toBeUndefined();
    expect(describeWorkerConfig(loadWorkerConfig(base)).metrics).toBe('off');
    for (const address of ['127.0.0.1:9464', '0.0.0.0:9464', 'metrics.internal:9090', '[::1]:9464']) {
      const config = loadWorkerConfig({ ...base, GARDEN_DEPLOY_METRICS_ADDRESS: address });
      expect(config.metricsAddress).toBe(address);
      expect(describeWorkerConfig(config).metrics).toBe(`http://${address}/metrics`);
    }
    expect(() => loadWorkerConfig({ ...base, GARDEN_DEPLOY_METRICS_ADDRESS: '9464' })).toThrow(
      'GARDEN_DEPLOY_METRICS_ADDRESS="9464": must be host:port',
    );
    expect(() =>
      loadWorkerConfig({ ...base, GARDEN_DEPLOY_METRICS_ADDRESS: 'http://127.0.0.1:9464/metrics' }),
    ).toThrow('must be host:port');
    expect(() => loadWorkerConfig({ ...base, GARDEN_DEPLOY_METRICS_ADDRESS: '127.0.0.1:99999' })).toThrow(
      'GARDEN_DEPLOY_METRICS_ADDRESS="127.0.0.1:99999": the port must be at most 65535',
    );
  });

  it('refuses a bad Temporal profile file with the loader’s reason', () => {
    const file = path.join(empty, 'broken.toml');
    writeFileSync(file, '[profile.default\naddress = ');
    expect(() => loadWorkerConfig({ ...base, TEMPORAL_CONFIG_FILE: file })).toThrow(WorkerConfigError);
  });
});

describe('logging and rate limiting', () => {
  it('writes JSON lines and scrubs credentials that reach a log entry', () => {
    const line = formatLogEntry({
      level: 'WARN',
      message: 'Activity failed',
      timestampNanos: 1_700_000_000_000_000_000n,
      meta: { error: new Error('upstream said Authorization: Bearer ya29.a0AfH6SMBsecret'), attempt: 2n },
    });
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(parsed).toMatchObject({ level: 'WARN', message: 'Activity failed', attempt: '2' });
    expect(parsed.time).toBe('2023-11-14T22:13:20.000Z');
    expect(line).not.toContain('ya29.a0AfH6SMBsecret');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const safe = formatLogEntry({ level: 'INFO', message: 'x', timestampNanos: 0n, meta: { cyclic } });
    expect(JSON.parse(safe)).toMatchObject({ message: 'x', meta: 'unserialisable' });
  });

  it('spaces calls evenly per service, project and region: one project cannot slow another', async () => {
    const waits: Array<[string, number]> = [];
    let now = 1_000;
    const clock = { now: () => now, sleep: async (ms: number) => void waits.push([String(now), ms]) };
    const calls: string[] = [];
    const fake = {
      vertex: { getEndpoint: async (name: string) => (calls.push(name), name) },
      compute: { getAddress: async (ref: { project: string }) => void calls.push(`address ${ref.project}`) },
      prediction: { predict: async () => void calls.push('predict') },
      config: {},
    } as unknown as Parameters<typeof budgetedGcpClient>[0];
    const budgets = new ApiBudgets({ vertex: 20, compute: 20, prediction: 20 }, 1, clock);
    const observed: Array<[string, number]> = [];
    const limited = budgetedGcpClient(fake, budgets, (service, ms) => observed.push([service, ms]));
    const a = 'projects/a/locations/us-central1/endpoints/1';
    const b = 'projects/b/locations/us-central1/endpoints/1';
    const results = await Promise.all([
      limited.vertex.getEndpoint(a),
      limited.vertex.getEndpoint(a),
      limited.vertex.getEndpoint(b),
      limited.compute.getAddress({ project: 'a', region: 'us-central1', name: 'n' }),
      limited.vertex.getEndpoint(a),
    ]);
    expect(results[0]).toBe(a);
    expect(calls).toHaveLength(5);
    // 20 a second for (vertex, a): its second call waits 50 ms, its third 100 ms; project b and
    // Compute of project a have budgets of their own and do not wait.
    expect(waits.map(([, ms]) => ms)).toEqual([50, 100]);
    // Every call's wait is told (metrics), those that did not wait too.
    expect(observed.map(([, ms]) => ms).sort((x, y) => x - y)).toEqual([0, 0, 0, 50, 100]);
    expect(observed.filter(([service]) => service === 'compute')).toEqual([['compute', 0]]);
    expect(() => new RateLimiter(0)).toThrow(/more than 0/);
    now = 0;
  });

  it('gives each of N workers its share of the budget', async () => {
    const waits: number[] = [];
    const clock = { now: () => 0, sleep: async (ms: number) => void waits.push(ms) };
    const budgets = new ApiBudgets({ vertex: 5, compute: 5, prediction: 5 }, 3, clock);
    const limiter = budgets.limiter('vertex', 'p/us-central1');
    await limiter.acquire();
    await limiter.acquire();
    // 5 a second shared by 3 workers: a whole share each (1 a second), so no second sees more than 3.
    expect(waits).toEqual([1_000]);
    const thin = new ApiBudgets({ vertex: 1, compute: 1, prediction: 1 }, 2, clock).limiter('compute', 'p/r');
    await thin.acquire();
    await thin.acquire();
    // Below one call a second the fraction stays: one call every 2 s.
    expect(waits).toEqual([1_000, 2_000]);
    expect(() => new ApiBudgets({ vertex: 5, compute: 5, prediction: 5 }, 0)).toThrow(/whole number/);
  });

  it('lets a cancelled call stop waiting at once, and never hands its slot to a later caller', async () => {
    const waits: number[] = [];
    const clock = {
      now: () => 0,
      // Waits until aborted (a long wait), or returns at once: what matters is what each caller asked.
      sleep: (ms: number, signal?: AbortSignal) => {
        waits.push(ms);
        if (!signal) return Promise.resolve();
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
    };
    const limiter = new RateLimiter(1, clock);
    await limiter.acquire();
    const cancel = new AbortController();
    const waiting = limiter.acquire(cancel.signal);
    cancel.abort();
    await expect(waiting).rejects.toThrow(/abort/i);
    await limiter.acquire();
    // The cancelled caller's slot (1 s) stays spent: the next one goes a second after it.
    expect(waits).toEqual([1_000, 2_000]);
    await expect(limiter.acquire(AbortSignal.abort())).rejects.toThrow(/abort/i);
  });
});
