import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';

/**
 * Tests run the CLI and the worker as users do, from the compiled `dist/` (a fraction of the
 * start-up time of compiling the sources on every spawn). The global setup rebuilds it first
 * when any source is newer than the last build, so a test never runs stale code.
 */

const root = path.resolve(__dirname, '../..');
const buildInfo = path.join(root, 'dist', '.tsbuildinfo');

/** `node dist/cli/main.js ARGS…` as an executable and its arguments. */
export function cliCommand(...args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [path.join(root, 'dist', 'cli', 'main.js'), ...args] };
}

export function ensureBuilt(): void {
  if (builtAfter(path.join(root, 'src'), mtimeOf(buildInfo))) return;
  process.stdout.write('sources changed since the last build: npm run build\n');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  // tsc leaves its build info untouched when no output changed (e.g. a file only touched).
  const now = new Date();
  utimesSync(buildInfo, now, now);
}

function mtimeOf(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** True when every file under `dir` is older than `builtAt`. */
function builtAfter(dir: string, builtAt: number): boolean {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() ? !builtAfter(full, builtAt) : mtimeOf(full) > builtAt) return false;
  }
  return builtAt > 0;
}
