import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveEmulatorConfig } from '../../src/cli/commands/emulator';
import { EmulatorAdminClient } from '../../src/emulator';
import { closeTestEnv, getTestEnv } from '../harness/env';
import { Api, deployBody, uniqueProject, uploadSampleModel, waitForOperation } from './helpers';
import { cliCommand } from '../harness/built-cli';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'emulator-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await closeTestEnv();
});

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
): {
  child: ChildProcess;
  firstLine: Promise<string>;
  exit: Promise<{ code: number | null; stderr: string }>;
} {
  const cli = cliCommand('emulator', ...args);
  const child = spawn(cli.command, cli.args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')));
    });
    child.once('exit', () => reject(new Error(`emulator exited before printing: ${stderr}`)));
  });
  firstLine.catch(() => undefined); // awaited only by the tests that expect a start
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr })),
  );
  return { child, firstLine, exit };
}

describe('garden-deploy emulator', () => {
  it('runs from a config file, env (STORAGE_EMULATOR_HOST, faults, timing) and flags, writes ADC credentials, stops cleanly on SIGTERM', async () => {
    const { gcsEndpoint } = await getTestEnv();
    const model = await uploadSampleModel();
    const project = uniqueProject();
    const faults = { seed: 3, rules: [{ route: 'vertex.endpoints.list', project, sequence: ['503'] }] };
    const config = path.join(dir, 'emulator.yaml');
    await writeFile(config, 'host: 127.0.0.1\nport: 8780\nforbiddenProjects: [blocked-project]\n');
    const proc = run(
      ['--config', config, '--port', '0', '--json', '--write-credentials', path.join(dir, 'adc')],
      {
        STORAGE_EMULATOR_HOST: gcsEndpoint.replace(/^http:\/\//, ''),
        GARDEN_EMULATOR_FAULTS: JSON.stringify(faults),
        GARDEN_EMULATOR_TIMING: JSON.stringify({ deployMs: 100, importMs: 20, replicaRampMs: 50 }),
      },
    );
    try {
      const printed = JSON.parse(await proc.firstLine);
      expect(printed).toMatchObject({
        url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        credentialsFile: path.join(dir, 'adc', 'emulator-credentials.json'),
      });
      const admin = new EmulatorAdminClient(printed.url);
      expect((await admin.faults()).seed).toBe(3);
      const api = new Api(printed.url, await admin.issueToken());
      expect((await api.get(`/v1beta1/projects/${project}/locations/us-central1/endpoints`)).status).toBe(
        503,
      );
      // The serving container reads the model through STORAGE_EMULATOR_HOST.
      const start = await api.post(
        `/v1beta1/projects/${project}/locations/us-central1:deploy`,
        deployBody(model),
      );
      const op = await waitForOperation(api, start.json.name);
      expect(op.error).toBeUndefined();
      expect((await api.get('/v1beta1/projects/blocked-project/locations/us-central1/models')).status).toBe(
        403,
      );
    } finally {
      proc.child.kill('SIGTERM');
    }
    expect((await proc.exit).code).toBe(0);
  });

  it('exits 2 with a message naming the bad option', async () => {
    const result = await run(['--port', '0', '--timing', '{"deployMs": -1}'], {}).exit;
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('timing.deployMs');
  });

  it('merges config file < env < flags and names each bad value', async () => {
    const config = path.join(dir, 'merge.json');
    await writeFile(
      config,
      JSON.stringify({ port: 1111, stateFile: '/tmp/from-file.json', timing: { deployMs: 5, importMs: 1 } }),
    );
    const merged = await resolveEmulatorConfig(
      { config, port: '0', timing: '{"deployMs": 7}', routingSeed: '42' },
      {
        GARDEN_EMULATOR_PORT: '2222',
        GARDEN_EMULATOR_STATE_FILE: '/tmp/from-env.json',
        STORAGE_EMULATOR_HOST: 'localhost:4443',
      },
    );
    expect(merged).toMatchObject({
      port: 0,
      stateFile: '/tmp/from-env.json',
      gcsEndpoint: 'http://localhost:4443',
      timing: { deployMs: 7, importMs: 1 },
      routingSeed: 42,
    });
    await expect(resolveEmulatorConfig({ routingSeed: 'x' }, {})).rejects.toThrow(
      '--routing-seed: "x" is not a whole number',
    );
    await expect(resolveEmulatorConfig({ port: 'http' }, {})).rejects.toThrow(
      '--port: "http" is not a port number',
    );
    await expect(
      resolveEmulatorConfig(
        {},
        { GARDEN_EMULATOR_FAULTS: '{"rules":[{"route":"vertex.deploy","sequence":["teapot"]}]}' },
      ),
    ).rejects.toThrow(/faults\.rules\.0\.sequence\.0: unknown fault action "teapot"/);
    await expect(resolveEmulatorConfig({ faults: '{not json' }, {})).rejects.toThrow(
      '--faults is not valid JSON',
    );
    await expect(
      resolveEmulatorConfig({}, { GARDEN_EMULATOR_CONFIG: path.join(dir, 'missing.yaml') }),
    ).rejects.toThrow(/cannot read emulator config .*missing\.yaml: ENOENT/);
  });
});
