import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGcpClient } from '../../src/gcp';
import { DEFAULT_DATA_DIR, writeStackFile } from '../../src/local-stack/stack-file';
import { WorkerConfigError, describeWorkerConfig, loadWorkerConfig } from '../../src/worker/config';
import { formatLogEntry } from '../../src/worker/main';
import { RateLimiter, rateLimitedGcpClient } from '../../src/worker/rate-limit';

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
      gcpRateLimitPerSecond: 10,
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
      GARDEN_DEPLOY_GCP_RATE_LIMIT: '2.5',
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
      gcpRateLimitPerSecond: 2.5,
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
        GARDEN_DEPLOY_GCP_RATE_LIMIT: 'fast',
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
    expect(message).toContain('GARDEN_DEPLOY_GCP_RATE_LIMIT="fast": must be a number of requests per second');
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

  it('spaces management calls evenly at the configured rate, and leaves inference alone', async () => {
    const waits: number[] = [];
    const clock = { now: () => 1_000, sleep: async (ms: number) => void waits.push(ms) };
    const calls: string[] = [];
    const fake = {
      vertex: { getEndpoint: async (name: string) => (calls.push(name), name) },
      compute: { getAddress: async () => void calls.push('address') },
      prediction: { marker: 'unlimited' },
      config: {},
    } as unknown as Parameters<typeof rateLimitedGcpClient>[0];
    const limited = rateLimitedGcpClient(fake, new RateLimiter(20, clock));
    const results = await Promise.all([
      limited.vertex.getEndpoint('a'),
      limited.vertex.getEndpoint('b'),
      limited.compute.getAddress({ project: 'p', region: 'r', name: 'n' }),
      limited.vertex.getEndpoint('c'),
    ]);
    expect(results[0]).toBe('a');
    expect(calls).toEqual(['a', 'b', 'address', 'c']);
    // 20 requests a second: the second call waits 50 ms, the third 100 ms, the fourth 150 ms.
    expect(waits).toEqual([50, 100, 150]);
    expect(limited.prediction).toBe(fake.prediction);
    expect(() => new RateLimiter(0)).toThrow(/more than 0/);
  });
});
