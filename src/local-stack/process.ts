import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/** A supervised child process whose output goes to a log file. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnServiceOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function spawnService(options: SpawnServiceOptions): ManagedProcess {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  log.write(`\n--- ${new Date().toISOString()} ${options.command} ${options.args.join(' ')}\n`);
  const child: ChildProcess = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      log.end();
      resolve({ code, signal });
    });
  });
  exited.catch(() => undefined); // observed through `exited` by callers
  if (child.pid === undefined) throw new Error(`could not start ${options.name}: ${options.command}`);
  const pid = child.pid;
  return {
    name: options.name,
    pid,
    logFile: options.logFile,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Polls `check` until it resolves truthy; fails early if `process` exits, with its log's tail. */
export async function waitUntilHealthy(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; process?: ManagedProcess; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let exitedEarly: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void options.process?.exited.then((result) => (exitedEarly = result)).catch(() => undefined);
  while (Date.now() < deadline) {
    if (exitedEarly) {
      throw new Error(
        `${what} exited (code ${exitedEarly.code ?? exitedEarly.signal}) before becoming healthy; ` +
          `see ${options.process?.logFile}`,
      );
    }
    if (await check().catch(() => false)) return;
    await delay(options.intervalMs ?? 200);
  }
  throw new Error(
    `${what} did not become healthy within ${options.timeoutMs} ms` +
      (options.process ? `; see ${options.process.logFile}` : ''),
  );
}

/** A port the OS says is free right now on `host`. */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Throws a clear error when `port` is already taken, naming the option that changes it. */
export async function assertPortFree(port: number, what: string, host = '127.0.0.1'): Promise<void> {
  const free = await new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
  if (!free)
    throw new Error(`port ${port} (${what}) on ${host} is already in use; choose another with its option`);
}
