import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TemporalConnectionError,
  connectTemporal,
  resolveTemporalTarget,
  workflowUiUrl,
} from '../../src/client';
import { type StackInfo, writeStackFile } from '../../src/local-stack/stack-file';
import { findFreePort } from '../../src/local-stack/process';
import { closeTestEnv, getTestEnv } from '../harness/env';

let dataDir: string;
let emptyDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'client-connect-'));
  emptyDir = await mkdtemp(path.join(os.tmpdir(), 'client-connect-empty-'));
  const stack: StackInfo = {
    pid: process.pid, // alive: this test process stands in for `garden-deploy dev`
    startedAt: new Date().toISOString(),
    dataDir,
    temporal: { address: '127.0.0.1:17233', namespace: 'stack-ns', uiUrl: 'http://127.0.0.1:18233' },
    gcs: { endpoint: 'http://127.0.0.1:14443' },
    emulator: { url: 'http://127.0.0.1:18780', logFile: path.join(dataDir, 'emulator.log') },
    services: [],
    env: {},
  };
  writeStackFile(stack);
});

afterAll(async () => {
  await Promise.all([rm(dataDir, { recursive: true }), rm(emptyDir, { recursive: true })]);
  await closeTestEnv();
});

/** An environment with no Temporal config file, so only the variables given count. */
const env = (vars: Record<string, string> = {}) => ({
  TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml',
  ...vars,
});

describe('where the client connects', () => {
  it('uses TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE first, with the local stack UI only when it is that stack', () => {
    const elsewhere = resolveTemporalTarget({
      dataDir,
      env: env({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'prod' }),
    });
    expect(elsewhere).toMatchObject({
      address: 'temporal.internal:7233',
      namespace: 'prod',
      source: 'TEMPORAL_ADDRESS',
      uiBaseUrl: undefined,
    });
    const sameAsStack = resolveTemporalTarget({ dataDir, env: env({ TEMPORAL_ADDRESS: '127.0.0.1:17233' }) });
    expect(sameAsStack.uiBaseUrl).toBe('http://127.0.0.1:18233');
  });

  it('falls back to the running local stack, then to localhost:7233', () => {
    expect(resolveTemporalTarget({ dataDir, env: env() })).toMatchObject({
      address: '127.0.0.1:17233',
      namespace: 'stack-ns',
      uiBaseUrl: 'http://127.0.0.1:18233',
    });
    expect(resolveTemporalTarget({ dataDir: emptyDir, env: env() })).toMatchObject({
      address: 'localhost:7233',
      namespace: 'default',
      uiBaseUrl: undefined,
    });
  });

  it('derives the UI for Temporal Cloud and honours GARDEN_DEPLOY_TEMPORAL_UI_URL', () => {
    const cloud = resolveTemporalTarget({
      dataDir: emptyDir,
      env: env({ TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'ml.acct1' }),
    });
    expect(cloud.uiBaseUrl).toBe('https://cloud.temporal.io');
    expect(workflowUiUrl(cloud.uiBaseUrl, cloud.namespace, 'deploy/p/us-central1/llama-ft')).toBe(
      'https://cloud.temporal.io/namespaces/ml.acct1/workflows/deploy%2Fp%2Fus-central1%2Fllama-ft',
    );
    const custom = resolveTemporalTarget({
      dataDir,
      env: env({ GARDEN_DEPLOY_TEMPORAL_UI_URL: 'https://temporal.example.com/' }),
    });
    expect(workflowUiUrl(custom.uiBaseUrl, 'default', 'a/b')).toBe(
      'https://temporal.example.com/namespaces/default/workflows/a%2Fb',
    );
    expect(() =>
      resolveTemporalTarget({ dataDir, env: env({ GARDEN_DEPLOY_TEMPORAL_UI_URL: 'localhost:8233' }) }),
    ).toThrow(/GARDEN_DEPLOY_TEMPORAL_UI_URL must be the http\(s\) address/);
  });

  it('connects to the server TEMPORAL_ADDRESS names', async () => {
    const { temporalAddress, namespace } = await getTestEnv();
    const temporal = await connectTemporal({
      dataDir: emptyDir,
      env: env({ TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_NAMESPACE: namespace }),
    });
    try {
      const { count } = await temporal.client.workflow.count('WorkflowType = "nothing-runs-this"');
      expect(count).toBe(0);
    } finally {
      await temporal.close();
    }
  });

  it('says where it tried and how to fix it when Temporal is unreachable, without the API key', async () => {
    const port = await findFreePort();
    const error = await connectTemporal({
      dataDir: emptyDir,
      env: env({ TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_API_KEY: 'secret-api-key-123' }),
      connectTimeoutMs: 1_000,
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TemporalConnectionError);
    const message = (error as Error).message;
    expect(message).toContain(`cannot reach Temporal at 127.0.0.1:${port} (address from TEMPORAL_ADDRESS)`);
    expect(message).toContain('garden-deploy dev');
    expect(message).not.toContain('secret-api-key-123');
  });
});
