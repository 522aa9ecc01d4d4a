import { spawn } from 'node:child_process';
import { cliCommand } from '../harness/built-cli';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a user's shell gives the CLI, with nothing of this test process's own. */
export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NO_COLOR: '1' };
}

/** Runs `garden-deploy …` as a child process, as a user would (not a TTY), with `input` on stdin. */
export function runCli(args: string[], env: Record<string, string>, input?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const cli = cliCommand(...args);
    const child = spawn(cli.command, cli.args, {
      env: { ...baseEnv(), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // Closed at once without input: the CLI reads end of input, as from /dev/null.
    child.stdin.end(input);
  });
}
