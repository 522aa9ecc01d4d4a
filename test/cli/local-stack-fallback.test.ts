import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/local-stack/process';
import { type StackInfo, writeStackFile } from '../../src/local-stack/stack-file';
import { closeTestEnv, getTestEnv } from '../harness/env';
import { runCli } from './run-cli';

/**
 * Only the CLI falls back to a running `garden-deploy dev` (its `stack.json`) when no
 * TEMPORAL_ADDRESS or profile is set; the library and the worker never read it.
 */

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cli-stack-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await closeTestEnv();
});

/** A data directory whose `stack.json` records a running stack (this test process: alive pid) at `address`. */
async function stackAt(address: string, namespace: string): Promise<string> {
  const dataDir = await mkdtemp(path.join(tmp, 'data-'));
  const stack: StackInfo = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    dataDir,
    temporal: { address, namespace, uiUrl: 'http://127.0.0.1:18233' },
    gcs: { endpoint: 'http://127.0.0.1:14443' },
    emulator: { url: 'http://127.0.0.1:18780', logFile: path.join(dataDir, 'emulator.log') },
    services: [],
    env: {},
  };
  writeStackFile(stack);
  return dataDir;
}

/** No TEMPORAL_* variables and no Temporal config file: only the stack file can name a server. */
const cliEnv = (dataDir: string) => ({
  TEMPORAL_CONFIG_FILE: path.join(tmp, 'no-temporal.toml'),
  GARDEN_DEPLOY_DATA_DIR: dataDir,
});

describe('the CLI without TEMPORAL_ADDRESS', { timeout: 60_000 }, () => {
  it('connects to the running local stack of GARDEN_DEPLOY_DATA_DIR', async () => {
    const { temporalAddress, namespace } = await getTestEnv();
    const run = await runCli(['list', '--json'], cliEnv(await stackAt(temporalAddress, namespace)));
    expect(run.code, run.stderr).toBe(0);
    expect(Array.isArray(JSON.parse(run.stdout))).toBe(true);
  });

  it('says the address came from the local stack when that stack is unreachable', async () => {
    const address = `127.0.0.1:${await findFreePort()}`;
    const dataDir = await stackAt(address, 'default');
    const run = await runCli(['status', 'llama-ft'], cliEnv(dataDir));
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(
      `cannot reach Temporal at ${address} (address from the local stack (${dataDir}/stack.json))`,
    );
  });
});
