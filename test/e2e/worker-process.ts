import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { emulatorBaseUrlEnv } from '../../src/worker/config';
import { getActivityTestEnv } from '../activities/env';
import { cliCommand } from '../harness/built-cli';
import { getTestEnv, workflowBundle } from '../harness/env';

/** `garden-deploy worker` as users run it (configured by env), in child processes of a test file. */

const REPO = path.resolve(__dirname, '../..');

export interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
}

export interface WorkerProcesses {
  /** Starts a worker on `taskQueue` (with `env` added) and waits until it polls. */
  start(taskQueue: string, env?: Record<string, string>): Promise<WorkerProcess>;
  /** Everything the workers printed, for failure messages and log checks. */
  logs: string[];
  /** SIGKILLs whatever still runs (a test that killed some itself may call it any time). */
  killAll(): void;
  /** The workers' data directory (a temporary one of the file's, made when first needed). */
  dataDir(): Promise<string>;
  /** Kills whatever still runs and removes the data directory: the file's afterAll. */
  stop(): Promise<void>;
}

/**
 * The environment of a test's `garden-deploy worker` (it reads its configuration from there only):
 * the servers to reach, and tuning that turns minutes into a test's seconds.
 */
export function workerEnv(to: {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  /** Keeps a developer's running local stack (its stack.json) out of the picture. */
  dataDir: string;
  emulatorUrl: string;
  credentialsFile: string;
  gcsEndpoint: string;
  workflowBundle: string;
}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: to.temporalAddress,
    TEMPORAL_NAMESPACE: to.namespace,
    GARDEN_DEPLOY_DATA_DIR: to.dataDir,
    GARDEN_DEPLOY_TASK_QUEUE: to.taskQueue,
    ...emulatorBaseUrlEnv(to.emulatorUrl),
    GOOGLE_APPLICATION_CREDENTIALS: to.credentialsFile,
    STORAGE_EMULATOR_HOST: to.gcsEndpoint,
    // Prebuilt, so each restarted worker starts in about a second.
    GARDEN_DEPLOY_WORKFLOW_BUNDLE: to.workflowBundle,
    GARDEN_DEPLOY_POLL_INITIAL_MS: '100',
    GARDEN_DEPLOY_POLL_MAX_MS: '300',
    GARDEN_DEPLOY_SHUTDOWN_GRACE: '2s',
    // A killed worker's cached workflows move to the next worker after 1 s instead of 10 s.
    GARDEN_DEPLOY_STICKY_QUEUE_TIMEOUT: '1s',
  };
}

/**
 * Workers reaching the harness servers and emulator; their own data directory (named after
 * `label`) keeps a developer's running local stack (its stack.json) out of the picture.
 */
export function workerProcesses(label: string): WorkerProcesses {
  const logs: string[] = [];
  const children = new Set<ChildProcess>();
  let dir: Promise<string> | undefined;
  const dataDir = () => (dir ??= mkdtemp(path.join(os.tmpdir(), `garden-deploy-${label}-`)));
  const killAll = () => {
    for (const child of children) child.kill('SIGKILL');
  };
  async function start(taskQueue: string, extra: Record<string, string> = {}): Promise<WorkerProcess> {
    const [{ temporalAddress, namespace, gcsEndpoint }, t] = await Promise.all([
      getTestEnv(),
      getActivityTestEnv(),
    ]);
    const env = {
      ...workerEnv({
        temporalAddress,
        namespace,
        taskQueue,
        dataDir: await dataDir(),
        emulatorUrl: t.emulatorUrl,
        credentialsFile: t.credentialsFile,
        gcsEndpoint,
        workflowBundle: workflowBundle().codePath,
      }),
      ...extra,
    };
    const cli = cliCommand('worker');
    const child = spawn(cli.command, cli.args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        children.delete(child);
        resolve(code);
      }),
    );
    const polling = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        logs.push(text);
        if (text.includes('garden-deploy worker polling')) resolve();
      });
      child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString('utf8')));
      void exited.then((code) =>
        reject(new Error(`worker exited (${code}) before polling:\n${logs.join('')}`)),
      );
    });
    await polling;
    return { child, exited };
  }
  return {
    start,
    logs,
    killAll,
    dataDir,
    async stop() {
      killAll();
      if (dir) await rm(await dir, { recursive: true, force: true });
    },
  };
}
