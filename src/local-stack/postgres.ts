import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type ManagedProcess, spawnService, waitUntilHealthy } from './process';

const run = promisify(execFile);

const DEBIAN_ROOT = '/usr/lib/postgresql';
const PROGRAMS = ['initdb', 'postgres', 'pg_isready'] as const;

export class PostgresNotInstalledError extends Error {
  override readonly name = 'PostgresNotInstalledError';
}

/**
 * The directory of PostgreSQL's programs: `GARDEN_DEPLOY_POSTGRESQL_BIN`, else the newest
 * `/usr/lib/postgresql/<major>/bin` (Debian's layout). scripts/install-tools.sh, which installs
 * Debian's package when it is missing, uses the same rule.
 */
export async function postgresBinDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  let dir = env.GARDEN_DEPLOY_POSTGRESQL_BIN;
  if (!dir) {
    const majors = (await readdir(DEBIAN_ROOT).catch(() => []))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => b - a);
    if (majors[0] !== undefined) dir = path.join(DEBIAN_ROOT, String(majors[0]), 'bin');
  }
  const missing = dir ? PROGRAMS.filter((p) => !existsSync(path.join(dir, p))) : [...PROGRAMS];
  if (!dir || missing.length > 0) {
    throw new PostgresNotInstalledError(
      `PostgreSQL is not installed${dir ? ` (no ${missing.join(', ')} in ${dir})` : ''}: run ` +
        `./scripts/install-tools.sh as root (it installs Debian's postgresql package), or ` +
        `sudo apt-get install postgresql, or set GARDEN_DEPLOY_POSTGRESQL_BIN to the directory of ` +
        `initdb, postgres and pg_isready`,
    );
  }
  return dir;
}

export interface PostgresOptions {
  port: number;
  /** Server log (written by us, so any directory we can write). */
  logFile: string;
  host?: string;
  /** The superuser that initdb creates, and its password (random by default). */
  user?: string;
  password?: string;
  binDir?: string;
  startTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface RunningPostgres {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly process: ManagedProcess;
  /** Fast shutdown (clients disconnected), then the data directory is removed. */
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL server: a fresh cluster (initdb) in its own temporary directory, TCP on
 * `host:port` only, password login. As root it runs as the `postgres` user that Debian's package
 * creates, because PostgreSQL refuses to run as root.
 */
export async function startPostgres(options: PostgresOptions): Promise<RunningPostgres> {
  const binDir = options.binDir ?? (await postgresBinDir());
  const host = options.host ?? '127.0.0.1';
  const user = options.user ?? 'temporal';
  const password = options.password ?? randomBytes(18).toString('base64url');
  const runAs = await unprivilegedUser();
  // Its own directory under the system's temp dir (world-traversable), so that the `postgres` user
  // can reach it whatever the caller's directory allows.
  const home = await mkdtemp(path.join(os.tmpdir(), 'garden-deploy-postgres-'));
  const dataDir = path.join(home, 'data');
  const passwordFile = path.join(home, 'password');
  try {
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (runAs) await Promise.all([home, passwordFile].map((file) => chown(file, runAs.uid, runAs.gid)));
    await run(
      path.join(binDir, 'initdb'),
      [
        '--pgdata',
        dataDir,
        '--username',
        user,
        `--pwfile=${passwordFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        // Throwaway data: no fsync of the new files.
        '--no-sync',
      ],
      { cwd: home, ...runAs, env: { PATH: process.env.PATH ?? '' } },
    ).catch((err: unknown) => {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`initdb failed: ${stderr.trim() || (err as Error).message}`);
    });
  } catch (err) {
    await rm(home, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(passwordFile, { force: true });
  }

  const child = spawnService({
    name: 'postgresql',
    command: path.join(binDir, 'postgres'),
    args: [
      '-D',
      dataDir,
      '-c',
      `listen_addresses=${host}`,
      '-c',
      `port=${options.port}`,
      // TCP only: the default socket directory (/var/run/postgresql) may not be ours to write.
      '-c',
      'unix_socket_directories=',
      // The data lives as long as this process and nothing crashes it: durability buys nothing
      // here and costs every commit a disk flush.
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    cwd: home,
    env: { PATH: process.env.PATH ?? '' },
    logFile: options.logFile,
    // Fast shutdown: SIGTERM would wait for every client (a Temporal server) to disconnect first.
    stopSignal: 'SIGINT',
    ...(runAs ? { user: runAs } : {}),
  });
  const stop = async () => {
    await child.stop(15_000);
    await rm(home, { recursive: true, force: true });
  };
  try {
    await waitUntilHealthy('PostgreSQL', () => accepting(binDir, host, options.port, user), {
      timeoutMs: options.startTimeoutMs ?? 60_000,
      process: child,
      signal: options.signal,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { host, port: options.port, user, password, process: child, stop };
}

/** pg_isready: the server accepts connections (not merely listens while it starts up). */
async function accepting(binDir: string, host: string, port: number, user: string): Promise<boolean> {
  await run(path.join(binDir, 'pg_isready'), ['-q', '-h', host, '-p', String(port), '-U', user], {
    timeout: 5_000,
  });
  return true;
}

/** As root: the `postgres` user's ids; otherwise undefined (the server runs as us). */
async function unprivilegedUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = await Promise.all(
    ['-u', '-g'].map((flag) =>
      run('id', [flag, 'postgres']).then(
        ({ stdout }) => Number(stdout.trim()),
        () => undefined,
      ),
    ),
  );
  const [uid, gid] = ids;
  if (uid === undefined || gid === undefined || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new PostgresNotInstalledError(
      'running as root, and PostgreSQL refuses to run as root: create a `postgres` user (Debian’s ' +
        'postgresql package does) or run as another user',
    );
  }
  return { uid, gid };
}
