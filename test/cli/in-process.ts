import { afterEach, beforeEach, vi } from 'vitest';
import { buildProgram } from '../../src/cli/main';

/** What the CLI wrote during the current test; tests may clear either between runs. */
export interface CapturedOutput {
  out: string;
  err: string;
}

/**
 * Captures stdout and stderr for each test of the file (and resets exit codes and stubbed env
 * after it), for running CLI commands in this process.
 */
export function captureOutput(): CapturedOutput {
  const captured: CapturedOutput = { out: '', err: '' };
  beforeEach(() => {
    captured.out = '';
    captured.err = '';
    process.exitCode = undefined;
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      captured.out += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      captured.err += String(chunk);
      return true;
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
    process.exitCode = undefined;
  });
  return captured;
}

/** Runs `garden-deploy <command> ARGS…` in this process; resolves with its exit code. */
export function inProcessCli(command: string): (...args: string[]) => Promise<number> {
  return async (...args) => {
    await (await buildProgram()).exitOverride().parseAsync(['node', 'garden-deploy', command, ...args]);
    return Number(process.exitCode ?? 0);
  };
}
