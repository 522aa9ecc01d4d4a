import { spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TOOLS, type ToolName, toolPath, toolStamp } from '../../src/local-stack/tools';

const repoRoot = path.resolve(__dirname, '../..');
const STAMP = '.garden-deploy-installed';
const tempDirs: string[] = [];

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Absolute path of a command on this machine's PATH. */
function which(command: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

// What the script may run besides go and npm; linked into a private PATH so that the real go/npm
// of this machine can never be reached.
const SYSTEM_COMMANDS = [
  'bash',
  'node',
  'cat',
  'awk',
  'mktemp',
  'mv',
  'rm',
  'mkdir',
  'dirname',
  'flock',
  'env',
];
const POSTGRESQL_PROGRAMS = ['initdb', 'postgres', 'pg_isready'];
// Used by the fakes below.
const FAKE_COMMANDS = ['basename', 'chmod', 'touch'];

interface Sandbox {
  /** A copy of the files the script reads: itself, tools.json, package-lock.json. */
  project: string;
  toolsDir: string;
  /** Each line: the arguments of one `go`/`npm`/`apt-get`/`sudo` call, prefixed by the command name. */
  calls(): string[];
  /** Where the sandbox's PostgreSQL programs are (GARDEN_DEPLOY_POSTGRESQL_BIN). */
  postgresqlBin: string;
  /** The sandbox's Chromium (GARDEN_DEPLOY_CHROMIUM). */
  chromium: string;
  run(env?: Record<string, string>): { status: number | null; stdout: string; stderr: string };
}

/**
 * A throwaway project and tools dir with fake `go` and `npm` that record their calls. Fake
 * `go install M@V` writes `$GOBIN/<last element of M>` (or fails when FAKE_GO_FAIL is set).
 * PostgreSQL's programs and Chromium are fakes in the sandbox (none with `postgresql: false`,
 * `chromium: false`); with `apt: true`, fake `apt-get` (and `sudo`, for a run that is not root)
 * install them there.
 */
async function sandbox(
  options: { withGo?: boolean; postgresql?: boolean; chromium?: boolean; apt?: boolean } = {},
): Promise<Sandbox> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'garden-install-test-'));
  tempDirs.push(dir);
  const project = path.join(dir, 'project');
  for (const file of ['scripts/install-tools.sh', 'src/local-stack/tools.json', 'package-lock.json']) {
    cpSync(path.join(repoRoot, file), path.join(project, file));
  }
  for (const tool of Object.values(TOOLS))
    if (tool.source)
      cpSync(path.join(repoRoot, tool.source), path.join(project, tool.source), { recursive: true });
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  for (const command of [...SYSTEM_COMMANDS, ...FAKE_COMMANDS]) {
    const target = which(command);
    if (target) symlinkSync(target, path.join(bin, command));
  }
  const callLog = path.join(dir, 'calls.log');
  writeFileSync(callLog, '');
  const fake = (name: string, body: string) =>
    writeFileSync(path.join(bin, name), `#!${which('bash')}\necho "${name} $*" >> ${callLog}\n${body}\n`, {
      mode: 0o755,
    });
  if (options.withGo !== false) {
    fake(
      'go',
      [
        'if [ "$1" = install ]; then',
        '  mkdir -p "$GOBIN"; out="$GOBIN/$(basename "${2%@*}")"',
        '  printf "built %s CGO_ENABLED=%s\\n" "$2" "$CGO_ENABLED" > "$out"; chmod +x "$out"',
        '  if [ -n "${FAKE_GO_FAIL:-}" ]; then echo "compile error" >&2; exit 1; fi',
        'fi',
        // go build … -o OUT . (a tool built from its source): the output path follows -o.
        'if [ "$1" = build ]; then',
        '  while [ "$1" != -o ]; do shift; done; out="$2"; mkdir -p "$(dirname "$out")"',
        '  printf "built %s from %s CGO_ENABLED=%s\\n" "$(basename "$out")" "$(basename "$PWD")" "$CGO_ENABLED" > "$out"; chmod +x "$out"',
        'fi',
        '[ "$1" = env ] && echo https://proxy.golang.org',
        'exit 0',
      ].join('\n'),
    );
  }
  fake('npm', 'mkdir -p node_modules && touch node_modules/.package-lock.json');
  const postgresqlBin = path.join(dir, 'postgresql', 'bin');
  if (options.postgresql !== false) {
    mkdirSync(postgresqlBin, { recursive: true });
    for (const program of POSTGRESQL_PROGRAMS)
      writeFileSync(path.join(postgresqlBin, program), '', { mode: 0o755 });
  }
  const chromium = path.join(dir, 'chromium', 'chromium');
  if (options.chromium !== false) {
    mkdirSync(path.dirname(chromium));
    writeFileSync(chromium, '', { mode: 0o755 });
  }
  if (options.apt) {
    const postgresql = `mkdir -p "$GARDEN_DEPLOY_POSTGRESQL_BIN"; for p in ${POSTGRESQL_PROGRAMS.join(' ')}; do touch "$GARDEN_DEPLOY_POSTGRESQL_BIN/$p"; chmod +x "$GARDEN_DEPLOY_POSTGRESQL_BIN/$p"; done`;
    const browser =
      'mkdir -p "${GARDEN_DEPLOY_CHROMIUM%/*}"; touch "$GARDEN_DEPLOY_CHROMIUM"; chmod +x "$GARDEN_DEPLOY_CHROMIUM"';
    fake(
      'apt-get',
      `case " $* " in *" install "*postgresql*) ${postgresql} ;; *" install "*chromium*) ${browser} ;; esac`,
    );
    fake('sudo', '[ "$1" = -n ] && shift; "$@"');
  }
  const toolsDir = path.join(dir, 'tools');
  return {
    project,
    toolsDir,
    postgresqlBin,
    chromium,
    calls: () => readFileSync(callLog, 'utf8').split('\n').filter(Boolean),
    run: (env = {}) => {
      const result = spawnSync(which('bash')!, [path.join(project, 'scripts/install-tools.sh')], {
        cwd: dir,
        encoding: 'utf8',
        env: {
          PATH: bin,
          HOME: path.join(dir, 'home'),
          GARDEN_DEPLOY_TOOLS_DIR: toolsDir,
          GARDEN_DEPLOY_POSTGRESQL_BIN: postgresqlBin,
          GARDEN_DEPLOY_CHROMIUM: chromium,
          ...env,
        },
      });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    },
  };
}

function installFake(env: NodeJS.ProcessEnv, tool: ToolName): string {
  const file = toolPath(tool, env);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, 'fake binary\n', { mode: 0o755 });
  writeFileSync(path.join(path.dirname(file), STAMP), `${toolStamp(tool, repoRoot)}\n`);
  return file;
}

/** node_modules as `npm install` leaves it: its hidden lockfile newer than package-lock.json. */
function installNodeModules(project: string): void {
  mkdirSync(path.join(project, 'node_modules'));
  const installed = path.join(project, 'node_modules/.package-lock.json');
  writeFileSync(installed, '{}');
  utimesSync(path.join(project, 'package-lock.json'), new Date(1_000_000), new Date(1_000_000));
}

describe('scripts/install-tools.sh', () => {
  it('does nothing when the pinned tools are installed and node_modules is current', async () => {
    const box = await sandbox();
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    const binaries = (Object.keys(TOOLS) as ToolName[]).map((tool) => installFake(env, tool));
    installNodeModules(box.project);

    const result = box.run();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(box.calls()).toEqual([]);
    for (const tool of Object.values(TOOLS)) {
      expect(result.stdout).toContain(`${tool.binary} ${tool.version}: already installed`);
    }
    expect(result.stdout).toContain(`postgresql: already installed (${box.postgresqlBin})`);
    expect(result.stdout).toContain(`chromium: already installed (${box.chromium})`);
    expect(result.stdout).toContain('npm dependencies: up to date');
    for (const file of binaries) expect(readFileSync(file, 'utf8')).toBe('fake binary\n');
  });

  it('builds a missing tool with go install, without cgo, into the path tools.ts resolves', async () => {
    const box = await sandbox();
    // No GARDEN_DEPLOY_TOOLS_DIR: the XDG cache rule must agree between the script and tools.ts.
    const env = { GARDEN_DEPLOY_TOOLS_DIR: '', XDG_CACHE_HOME: path.join(box.toolsDir, 'xdg') };
    for (const tool of Object.keys(TOOLS) as ToolName[]) if (tool !== 'fakeGcs') installFake(env, tool);
    installNodeModules(box.project);

    const result = box.run(env);
    expect(result.status, result.stderr).toBe(0);
    const { module, version } = TOOLS.fakeGcs;
    expect(box.calls()).toEqual([`go install ${module}@${version}`]);
    const built = toolPath('fakeGcs', env);
    expect(readFileSync(built, 'utf8')).toBe(`built ${module}@${version} CGO_ENABLED=0\n`);
    accessSync(built, constants.X_OK);
    expect(readFileSync(path.join(path.dirname(built), STAMP), 'utf8')).toBe(`${module}@${version}\n`);
    expect(result.stdout).toContain(
      `fake-gcs-server ${version}: building ${module}@${version} with go install`,
    );
    expect(
      readdirSync(path.dirname(path.dirname(built))).filter((name) => name.startsWith('.staging')),
    ).toEqual([]);

    // Second run: the fresh build is recognised, nothing is rebuilt.
    box.run(env);
    expect(box.calls()).toHaveLength(1);
  });

  it('names a built binary as tools.json does (the server, not `server`)', async () => {
    const box = await sandbox();
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    for (const tool of Object.keys(TOOLS) as ToolName[])
      if (tool !== 'temporalServer') installFake(env, tool);
    installNodeModules(box.project);

    const result = box.run();
    expect(result.status, result.stderr).toBe(0);
    const { module, version } = TOOLS.temporalServer;
    expect(box.calls()).toEqual([`go install ${module}@${version}`]);
    const built = toolPath('temporalServer', env);
    expect(path.basename(built)).toBe('temporal-server');
    expect(readFileSync(built, 'utf8')).toBe(`built ${module}@${version} CGO_ENABLED=0\n`);
    expect(readdirSync(path.dirname(built)).sort()).toEqual([STAMP, 'temporal-server']);
  });

  it('builds a tool with a source (pstest) with go build in its folder, once, stamped with its files', async () => {
    const box = await sandbox();
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    for (const tool of Object.keys(TOOLS) as ToolName[]) if (tool !== 'pstest') installFake(env, tool);
    installNodeModules(box.project);

    const result = box.run();
    expect(result.status, result.stderr).toBe(0);
    expect(box.calls()).toHaveLength(1);
    expect(box.calls()[0]).toMatch(/^go build -buildvcs=false -trimpath -o \S+\/pstest \.$/);
    const built = toolPath('pstest', env);
    expect(readFileSync(built, 'utf8')).toBe('built pstest from pstest CGO_ENABLED=0\n');
    expect(readFileSync(path.join(path.dirname(built), STAMP), 'utf8')).toBe(
      `${toolStamp('pstest', repoRoot)}\n`,
    );
    expect(result.stdout).toContain(`pstest ${TOOLS.pstest.version}: building ${TOOLS.pstest.source}`);

    // Second run: nothing is rebuilt; an edit of its source is.
    expect(box.run().stdout).toContain(`pstest ${TOOLS.pstest.version}: already installed`);
    expect(box.calls()).toHaveLength(1);
    writeFileSync(path.join(box.project, TOOLS.pstest.source!, 'main.go'), 'package main // edited\n');
    expect(box.run().status).toBe(0);
    expect(box.calls()).toHaveLength(2);
  });

  it('leaves no binary behind when the build fails', async () => {
    const box = await sandbox();
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    installFake(env, 'fakeGcs');
    installNodeModules(box.project);

    const result = box.run({ FAKE_GO_FAIL: '1' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`go install ${TOOLS.temporal.module}@${TOOLS.temporal.version} failed`);
    expect(existsSync(path.dirname(toolPath('temporal', env)))).toBe(false);
    expect(readdirSync(box.toolsDir).filter((name) => name.startsWith('.staging'))).toEqual([]);
  });

  it('without Go, says so and names the docker compose alternative', async () => {
    const box = await sandbox({ withGo: false });
    const result = box.run();
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Go is required to build temporal');
    expect(result.stderr).toContain('docker compose --profile local up --build');
    expect(existsSync(path.join(box.project, 'node_modules'))).toBe(false);
  });

  it('installs npm dependencies when node_modules is missing or older than package-lock.json', async () => {
    const box = await sandbox();
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    for (const tool of Object.keys(TOOLS) as ToolName[]) installFake(env, tool);

    expect(box.run().status).toBe(0);
    expect(box.calls()).toEqual(['npm install --no-audit --no-fund']);

    const past = new Date(2_000_000);
    utimesSync(path.join(box.project, 'node_modules/.package-lock.json'), past, past);
    expect(box.run().status).toBe(0);
    expect(box.calls()).toHaveLength(2);

    expect(box.run().status).toBe(0);
    expect(box.calls()).toHaveLength(2);
  });

  it('installs Debian’s postgresql package with apt-get when PostgreSQL is missing', async () => {
    const box = await sandbox({ postgresql: false, apt: true });
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    for (const tool of Object.keys(TOOLS) as ToolName[]) installFake(env, tool);
    installNodeModules(box.project);

    const result = box.run();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    // As root directly, otherwise through sudo -n.
    expect(box.calls().filter((call) => call.startsWith('apt-get'))).toEqual([
      'apt-get update -qq',
      'apt-get install -y -qq --no-install-recommends postgresql',
    ]);
    expect(result.stdout).toContain(`postgresql: installed (${box.postgresqlBin})`);

    // Second run: nothing to do.
    const again = box.run();
    expect(again.stdout).toContain('postgresql: already installed');
    expect(box.calls().filter((call) => call.startsWith('apt-get'))).toHaveLength(2);
  });

  it('installs Debian’s chromium package with apt-get when Chromium is missing, updating the lists once', async () => {
    const box = await sandbox({ postgresql: false, chromium: false, apt: true });
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    for (const tool of Object.keys(TOOLS) as ToolName[]) installFake(env, tool);
    installNodeModules(box.project);

    const result = box.run();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(box.calls().filter((call) => call.startsWith('apt-get'))).toEqual([
      'apt-get update -qq',
      'apt-get install -y -qq --no-install-recommends postgresql',
      'apt-get install -y -qq --no-install-recommends chromium',
    ]);
    expect(result.stdout).toContain(`chromium: installed (${box.chromium})`);
    expect(box.run().stdout).toContain(`chromium: already installed (${box.chromium})`);
    expect(box.calls().filter((call) => call.startsWith('apt-get'))).toHaveLength(3);
  });

  it('without Chromium and apt-get, warns that the Web UI test needs it and carries on', async () => {
    const box = await sandbox({ chromium: false });
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    for (const tool of Object.keys(TOOLS) as ToolName[]) installFake(env, tool);
    installNodeModules(box.project);

    const result = box.run();
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`Chromium not found at ${box.chromium}; the Web UI test needs it`);
    expect(result.stderr).toContain('GARDEN_DEPLOY_CHROMIUM');
  });

  it('without PostgreSQL and apt-get, warns that the cluster tests need it and carries on', async () => {
    const box = await sandbox({ postgresql: false });
    const env = { GARDEN_DEPLOY_TOOLS_DIR: box.toolsDir };
    for (const tool of Object.keys(TOOLS) as ToolName[]) installFake(env, tool);

    const result = box.run();
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('PostgreSQL not found; npm run test:cluster needs it');
    expect(result.stderr).toContain('GARDEN_DEPLOY_POSTGRESQL_BIN');
    expect(box.calls()).toEqual(['npm install --no-audit --no-fund']);
  });
});
