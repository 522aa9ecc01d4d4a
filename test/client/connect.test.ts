import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TemporalConnectionError,
  connectTemporal,
  resolveTemporalTarget,
  workflowUiUrl,
} from '../../src/client';
import { DEFAULT_DATA_DIR, type StackInfo, writeStackFile } from '../../src/local-stack/stack-file';
import { findFreePort } from '../../src/local-stack/process';
import { closeTestEnv, getTestEnv } from '../harness/env';

let dataDir: string;
let cwdDir: string;

/** A `stack.json` of a running `garden-deploy dev` (this test process stands in for it: alive pid). */
function writeRunningStack(dir: string): void {
  const stack: StackInfo = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    dataDir: dir,
    temporal: { address: '127.0.0.1:17233', namespace: 'stack-ns', uiUrl: 'http://127.0.0.1:18233' },
    gcs: { endpoint: 'http://127.0.0.1:14443' },
    emulator: { url: 'http://127.0.0.1:18780', logFile: path.join(dir, 'emulator.log') },
    services: [],
    env: {},
  };
  writeStackFile(stack);
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'client-connect-'));
  cwdDir = await mkdtemp(path.join(os.tmpdir(), 'client-connect-cwd-'));
  writeRunningStack(dataDir);
  await mkdir(path.join(cwdDir, DEFAULT_DATA_DIR));
  writeRunningStack(path.join(cwdDir, DEFAULT_DATA_DIR));
});

afterAll(async () => {
  await Promise.all([rm(dataDir, { recursive: true }), rm(cwdDir, { recursive: true })]);
  await closeTestEnv();
});

/** An environment with no Temporal config file, so only the variables given count. */
const env = (vars: Record<string, string> = {}) => ({
  TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml',
  ...vars,
});

/** What the CLI passes for a running local stack. */
const fallback = {
  address: '127.0.0.1:17233',
  namespace: 'stack-ns',
  uiBaseUrl: 'http://127.0.0.1:18233',
  source: 'the local stack (/somewhere/.data/stack.json)',
};

describe('where the client connects', () => {
  it("uses TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE first, with the fallback's UI only when it is that server", () => {
    const elsewhere = resolveTemporalTarget({
      fallback,
      env: env({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'prod' }),
    });
    expect(elsewhere).toMatchObject({
      address: 'temporal.internal:7233',
      namespace: 'prod',
      source: 'TEMPORAL_ADDRESS',
      uiBaseUrl: undefined,
    });
    const sameAsStack = resolveTemporalTarget({
      fallback,
      env: env({ TEMPORAL_ADDRESS: '127.0.0.1:17233' }),
    });
    expect(sameAsStack.uiBaseUrl).toBe('http://127.0.0.1:18233');
  });

  it('falls back to the fallback given, then to localhost:7233', () => {
    expect(resolveTemporalTarget({ fallback, env: env() })).toEqual(
      expect.objectContaining({
        address: '127.0.0.1:17233',
        namespace: 'stack-ns',
        source: 'the local stack (/somewhere/.data/stack.json)',
        uiBaseUrl: 'http://127.0.0.1:18233',
      }),
    );
    expect(resolveTemporalTarget({ fallback, env: env({ TEMPORAL_NAMESPACE: 'mine' }) }).namespace).toBe(
      'mine',
    );
    expect(resolveTemporalTarget({ env: env() })).toMatchObject({
      address: 'localhost:7233',
      namespace: 'default',
      uiBaseUrl: undefined,
    });
  });

  it("never reads a running local stack's stack.json, neither from GARDEN_DEPLOY_DATA_DIR nor ./.data", () => {
    const cases: Array<Record<string, string>> = [{}, { GARDEN_DEPLOY_DATA_DIR: dataDir }];
    const home = process.cwd();
    process.chdir(cwdDir);
    try {
      for (const vars of cases) {
        expect(resolveTemporalTarget({ env: env(vars) })).toMatchObject({
          address: 'localhost:7233',
          namespace: 'default',
          source: 'the default (no TEMPORAL_ADDRESS or Temporal config profile)',
          uiBaseUrl: undefined,
        });
      }
    } finally {
      process.chdir(home);
    }
  });

  it('derives the UI for Temporal Cloud and honours GARDEN_DEPLOY_TEMPORAL_UI_URL', () => {
    const cloud = resolveTemporalTarget({
      env: env({ TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'ml.acct1' }),
    });
    expect(cloud.uiBaseUrl).toBe('https://cloud.temporal.io');
    expect(workflowUiUrl(cloud.uiBaseUrl, cloud.namespace, 'deploy/p/us-central1/llama-ft')).toBe(
      'https://cloud.temporal.io/namespaces/ml.acct1/workflows/deploy%2Fp%2Fus-central1%2Fllama-ft',
    );
    const custom = resolveTemporalTarget({
      fallback,
      env: env({ GARDEN_DEPLOY_TEMPORAL_UI_URL: 'https://temporal.example.com/' }),
    });
    expect(workflowUiUrl(custom.uiBaseUrl, 'default', 'a/b')).toBe(
      'https://temporal.example.com/namespaces/default/workflows/a%2Fb',
    );
    expect(() =>
      resolveTemporalTarget({ env: env({ GARDEN_DEPLOY_TEMPORAL_UI_URL: 'localhost:8233' }) }),
    ).toThrow(/GARDEN_DEPLOY_TEMPORAL_UI_URL must be the http\(s\) address/);
  });

  it('connects to the server TEMPORAL_ADDRESS names', async () => {
    const { temporalAddress, namespace } = await getTestEnv();
    const temporal = await connectTemporal({
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
