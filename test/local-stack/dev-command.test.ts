import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { GoogleAuth } from 'google-auth-library';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main';
import { DEFAULT_TASK_QUEUE } from '../../src/constants';
import { DEMO_DEPLOYMENT, DEMO_MODEL_URI } from '../../src/local-stack/demo';
import { assertPortFree, findFreePort } from '../../src/local-stack/process';
import { type StackInfo, StackInfoSchema, readStackFile } from '../../src/local-stack/stack-file';
import { TOOLS } from '../../src/local-stack/tools';
import { SEARCH_ATTRIBUTES } from '../../src/search-attributes';
import { createStorage, openModelStore } from '../../src/storage';
import { cliCommand } from '../harness/built-cli';

const repoRoot = path.resolve(__dirname, '../..');

interface DevRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const runs: DevRun[] = [];
const tempDirs: string[] = [];

afterEach(() => {
  // A failed assertion must not leave a stack running; SIGTERM makes dev stop its services.
  for (const run of runs.splice(0)) if (run.child.exitCode === null) run.child.kill('SIGTERM');
});
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function startDev(args: string[], env: NodeJS.ProcessEnv = {}): DevRun {
  const cli = cliCommand('dev', ...args);
  const child = spawn(cli.command, cli.args, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const run = { child, stdout: () => stdout, stderr: () => stderr, exited };
  runs.push(run);
  return run;
}

/** Line `index` of dev's `--json` output, or a failure carrying dev's stderr if it exits first. */
async function jsonLine(run: DevRun, index: number): Promise<unknown> {
  const line = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const lines = run.stdout().split('\n');
      if (lines.length > index + 1) resolve(lines[index]!);
    };
    onData();
    run.child.stdout?.on('data', onData);
    void run.exited.then((code) => reject(new Error(`dev exited (${code}) early:\n${run.stderr()}`)));
  });
  return JSON.parse(line);
}

async function readyInfo(run: DevRun): Promise<StackInfo> {
  return StackInfoSchema.parse(await jsonLine(run, 0));
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await findFreePort());
  return [...ports];
}

async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'garden-dev-test-'));
  tempDirs.push(dir);
  return path.join(dir, 'data');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portArgs([temporal, ui, gcs, emulator]: number[]): string[] {
  return [
    ...['--temporal-port', String(temporal), '--ui-port', String(ui)],
    ...['--gcs-port', String(gcs), '--emulator-port', String(emulator)],
  ];
}

describe('garden-deploy dev', () => {
  it('starts healthy services, records them in stack.json, runs the demo, and stops them all on SIGTERM', async () => {
    const ports = await distinctFreePorts(4);
    const dataDir = await tempDataDir();
    const dev = startDev([...portArgs(ports), '--data-dir', dataDir, '--json', '--demo']);
    const info = await readyInfo(dev);

    expect(info.temporal).toEqual({
      address: `127.0.0.1:${ports[0]}`,
      namespace: 'default',
      uiUrl: `http://127.0.0.1:${ports[1]}`,
    });
    expect(info.gcs.endpoint).toBe(`http://127.0.0.1:${ports[2]}`);
    expect(info.emulator.url).toBe(`http://127.0.0.1:${ports[3]}`);
    expect(info.env).toEqual({
      TEMPORAL_ADDRESS: info.temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      STORAGE_EMULATOR_HOST: info.gcs.endpoint,
      GOOGLE_APPLICATION_CREDENTIALS: path.join(dataDir, 'emulator', 'emulator-credentials.json'),
      GARDEN_DEPLOY_VERTEX_BASE_URL: info.emulator.url,
      GARDEN_DEPLOY_COMPUTE_BASE_URL: info.emulator.url,
      GARDEN_DEPLOY_MONITORING_BASE_URL: info.emulator.url,
      GARDEN_DEPLOY_CLOUD_QUOTAS_BASE_URL: info.emulator.url,
      GARDEN_DEPLOY_LOGGING_BASE_URL: info.emulator.url,
      GARDEN_DEPLOY_PREDICTION_BASE_URL: info.emulator.url,
      GARDEN_DEPLOY_TEMPORAL_UI_URL: info.temporal.uiUrl,
      GARDEN_DEPLOY_TASK_QUEUE: DEFAULT_TASK_QUEUE,
    });
    expect(info.services.map((service) => [service.name, service.logFile])).toEqual(
      ['temporal', 'fake-gcs-server', 'worker'].map((name) => [
        name,
        path.join(dataDir, 'logs', `${name === 'fake-gcs-server' ? 'fake-gcs' : name}.log`),
      ]),
    );
    expect(readStackFile(dataDir)).toEqual(info);
    expect(existsSync(path.join(dataDir, 'temporal.db'))).toBe(true);

    // Temporal answers, with the project's search attributes registered.
    const connection = await Connection.connect({ address: info.temporal.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({
        namespace: 'default',
      });
      expect(Object.keys(customAttributes ?? {})).toEqual(
        expect.arrayContaining(SEARCH_ATTRIBUTES.map((key) => key.name)),
      );
    } finally {
      await connection.close();
    }
    expect((await fetch(info.temporal.uiUrl!)).status).toBe(200);

    // fake-gcs-server serves the storage client, on its filesystem backend under the data dir.
    const storage = createStorage({ endpoint: info.gcs.endpoint });
    await storage.createBucket('dev-test');
    await storage.bucket('dev-test').file('hello.txt').save('hi');
    expect(existsSync(path.join(dataDir, 'gcs', 'dev-test'))).toBe(true);

    // The printed credentials get Google client libraries their tokens from the emulator.
    const auth = new GoogleAuth({
      keyFilename: info.env.GOOGLE_APPLICATION_CREDENTIALS,
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    });
    expect(await auth.getAccessToken()).toMatch(/^ya29\.emulator-/);

    // The demo: a sample model, a complete Hugging Face folder in fake-gcs-server that validates,
    // deployed end to end by the worker on the emulator.
    const { demo } = (await jsonLine(dev, 1)) as {
      demo: {
        model: { uri: string };
        validation: { status: string; summary: { errors: number } };
        deployment: Record<string, unknown>;
      };
    };
    expect(demo.model.uri.replace(/\/$/, '')).toBe(DEMO_MODEL_URI);
    expect(demo.validation).toMatchObject({ status: 'ok', summary: { errors: 0 } });
    const { name, project, region } = DEMO_DEPLOYMENT;
    expect(demo.deployment).toMatchObject({
      workflowId: `deploy/${project}/${region}/${name}`,
      started: true,
    });
    expect(demo.deployment.failure).toBeUndefined();
    expect(demo.deployment.serving ?? demo.deployment.result).toBeDefined();
    const names = (await openModelStore(DEMO_MODEL_URI, { storage }).list()).map((object) => object.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'config.json',
        'tokenizer.json',
        'tokenizer_config.json',
        'model.safetensors.index.json',
      ]),
    );
    expect(names.filter((name) => name.endsWith('.safetensors')).length).toBeGreaterThan(0);

    // A second dev on the same data dir is refused and leaves the first one alone.
    const second = startDev([...portArgs(await distinctFreePorts(4)), '--data-dir', dataDir]);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toContain(`garden-deploy dev is already running for ${dataDir} (pid ${info.pid}`);

    dev.child.kill('SIGTERM');
    expect(await dev.exited).toBe(0);
    for (const service of info.services) expect(isAlive(service.pid), service.name).toBe(false);
    expect(readStackFile(dataDir)).toBeUndefined();
    for (const port of ports) {
      await assertPortFree(port, { what: 'a port dev used', howToChange: 'nothing (test)' });
    }
  });

  it('with --encrypt, makes a keyring once, runs the Web UI with the codec server and hands the keys on', async () => {
    const ports = await distinctFreePorts(5);
    const dataDir = await tempDataDir();
    const args = [...portArgs(ports), '--codec-port', String(ports[4]), '--data-dir', dataDir];
    const dev = startDev([...args, '--json', '--no-worker', '--encrypt']);
    const info = await readyInfo(dev);
    const keyFile = path.join(dataDir, 'codec-keys.json');
    const codecUrl = `http://127.0.0.1:${ports[4]}`;
    expect(info.codec).toEqual({ url: codecUrl, keyFile });
    expect(info.env).toMatchObject({
      GARDEN_DEPLOY_CODEC_KEY_FILE: keyFile,
      TEMPORAL_CODEC_ENDPOINT: codecUrl,
    });
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const keys = readFileSync(keyFile, 'utf8');
    expect(dev.stdout()).not.toContain(JSON.parse(keys).keys['dev-1']);
    // The UI was started with the codec endpoint, and the codec server answers its origin's preflight.
    expect(readFileSync(path.join(dataDir, 'logs', 'temporal.log'), 'utf8')).toContain(
      `--ui-codec-endpoint ${codecUrl}`,
    );
    const preflight = await fetch(`${codecUrl}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: info.temporal.uiUrl!, 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(info.temporal.uiUrl);
    dev.child.kill('SIGTERM');
    expect(await dev.exited).toBe(0);

    // A restart keeps the keyring: the history written with it stays readable.
    const again = startDev([...args, '--json', '--no-ui', '--no-worker', '--encrypt']);
    expect((await readyInfo(again)).codec?.keyFile).toBe(keyFile);
    expect(readFileSync(keyFile, 'utf8')).toBe(keys);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });

  it('refuses a taken port with an error naming its flag, and creates nothing', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const [temporal, ui, emulator] = await distinctFreePorts(3);
      const dataDir = await tempDataDir();
      const dev = startDev([...portArgs([temporal!, ui!, taken, emulator!]), '--data-dir', dataDir]);
      expect(await dev.exited).toBe(1);
      expect(dev.stderr()).toContain(
        `port ${taken} for fake-gcs-server is already in use on 127.0.0.1; ` +
          `stop whatever listens there or choose another port with --gcs-port or GARDEN_DEPLOY_GCS_PORT`,
      );
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('rejects malformed, out-of-range and duplicate ports before doing anything', async () => {
    const dataDir = await tempDataDir();
    const malformed = startDev(['--temporal-port', 'seven', '--data-dir', dataDir]);
    expect(await malformed.exited).toBe(1);
    expect(malformed.stderr()).toContain(
      '--temporal-port (or GARDEN_DEPLOY_TEMPORAL_PORT) must be a port number, got "seven"',
    );

    // The same parsing, in this process (the CLI prints the message as above).
    const dev = async (...args: string[]) => {
      const argv = ['node', 'garden-deploy', 'dev', '--data-dir', dataDir, ...args];
      return (await buildProgram(argv)).parseAsync(argv);
    };
    await expect(dev('--temporal-port', '7300', '--gcs-port', '7300')).rejects.toThrow(
      '--gcs-port 7300 is the same port as --temporal-port; give each service its own port',
    );
    await expect(dev('--emulator-port', '70000')).rejects.toThrow(
      '--emulator-port (or GARDEN_DEPLOY_EMULATOR_PORT) must be at most 65535, got "70000"',
    );
    await expect(dev('--demo', '--no-worker')).rejects.toThrow(
      '--demo deploys through the worker: drop --no-worker',
    );
    expect(existsSync(dataDir)).toBe(false);
  });

  it('without the pinned tools, says how to install them and creates nothing', async () => {
    const dataDir = await tempDataDir();
    const emptyTools = path.join(path.dirname(dataDir), 'no-tools');
    const dev = startDev([...portArgs(await distinctFreePorts(4)), '--data-dir', dataDir], {
      GARDEN_DEPLOY_TOOLS_DIR: emptyTools,
    });
    expect(await dev.exited).toBe(1);
    expect(dev.stderr()).toContain(
      `${TOOLS.temporal.module}@${TOOLS.temporal.version} is not installed at ${path.join(emptyTools, 'temporal-')}`,
    );
    expect(dev.stderr()).toContain('Run ./scripts/install-tools.sh');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('when a service dies, names it and its log, stops the others and exits 1', async () => {
    const ports = await distinctFreePorts(4);
    const dataDir = await tempDataDir();
    const dev = startDev([...portArgs(ports), '--data-dir', dataDir, '--json', '--no-ui', '--no-worker']);
    const info = await readyInfo(dev);
    expect(info.temporal.uiUrl).toBeUndefined();
    expect(info.services.map((service) => service.name)).toEqual(['temporal', 'fake-gcs-server']);
    const [temporal, gcs] = info.services as [StackInfo['services'][number], StackInfo['services'][number]];

    process.kill(gcs.pid, 'SIGKILL');
    expect(await dev.exited).toBe(1);
    expect(dev.stderr()).toContain(`fake-gcs-server was killed by SIGKILL; its log is ${gcs.logFile}`);
    // followed by the log's tail, which starts with the command line the service was run with
    expect(dev.stderr()).toMatch(/\n {2}\| --- \S+ \S+fake-gcs-server -scheme http/);
    expect(isAlive(temporal.pid)).toBe(false);
    expect(readStackFile(dataDir)).toBeUndefined();
  });
});
