import { spawn } from 'node:child_process';
import { cliCommand } from '../harness/built-cli';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `garden-deploy …` as a child process, as a user would (not a TTY). */
export function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const cli = cliCommand(...args);
    const child = spawn(cli.command, cli.args, {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
