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
  /**
   * Own process group, so a terminal's Ctrl-C reaches only the supervisor, which then stops its
   * children in order instead of racing them.
   */
  ownProcessGroup?: boolean;
  /** The signal that asks it to stop (default SIGTERM; PostgreSQL's fast shutdown is SIGINT). */
  stopSignal?: NodeJS.Signals;
  /** Run as this user (uid and gid) instead of ours: PostgreSQL refuses to run as root. */
  user?: { uid: number; gid: number };
}

export function spawnService(options: SpawnServiceOptions): ManagedProcess {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  log.write(`\n--- ${new Date().toISOString()} ${options.command} ${options.args.join(' ')}\n`);
  const child: ChildProcess = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup ?? false,
    ...(options.user ?? {}),
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
      child.kill(options.stopSignal ?? 'SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Polls `check` until it resolves truthy; fails early if `process` exits or `signal` aborts. */
export async function waitUntilHealthy(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; process?: ManagedProcess; intervalMs?: number; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let exitedEarly: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void options.process?.exited.then((result) => (exitedEarly = result)).catch(() => undefined);
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted();
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

/** Spawns a service and waits until `healthy` says it is; stops it again if it never is. */
export async function startService(
  options: SpawnServiceOptions & {
    healthy: () => Promise<boolean>;
    what: string;
    timeoutMs: number;
    signal?: AbortSignal;
  },
): Promise<ManagedProcess> {
  const child = spawnService(options);
  try {
    await waitUntilHealthy(options.what, options.healthy, {
      timeoutMs: options.timeoutMs,
      process: child,
      signal: options.signal,
    });
  } catch (err) {
    await child.stop(1_000);
    throw err;
  }
  return child;
}

// Below the ephemeral ranges (Linux 32768-60999, macOS/Windows 49152-65535): a port inside them can
// go to any outbound connection or port-0 listener between our check and the server's bind.
const FREE_PORT_RANGE = { min: 20_000, max: 32_767 };

/** A port that is free right now on `host`, outside the ephemeral range. */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port =
      FREE_PORT_RANGE.min + Math.floor(Math.random() * (FREE_PORT_RANGE.max - FREE_PORT_RANGE.min + 1));
    if (await isPortFree(port, host)) return port;
  }
  throw new Error(`no free port between ${FREE_PORT_RANGE.min} and ${FREE_PORT_RANGE.max} on ${host}`);
}

/** `count` distinct ports that are free right now (a server that needs several listeners). */
export async function findFreePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await findFreePort(host));
  return [...ports];
}

function isPortFree(port: number, host: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
}

/**
 * Throws `PortInUseError` when `port` is taken on `host`; `howToChange` names the flag or
 * variable that picks another port.
 */
export async function assertPortFree(
  port: number,
  options: { what: string; howToChange: string; host?: string },
): Promise<void> {
  const host = options.host ?? '127.0.0.1';
  if (!(await isPortFree(port, host))) {
    throw new PortInUseError(
      `port ${port} for ${options.what} is already in use on ${host}; ` +
        `stop whatever listens there or choose another port with ${options.howToChange}`,
    );
  }
}
