import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** Where `garden-deploy dev` keeps its state unless `--data-dir` / `GARDEN_DEPLOY_DATA_DIR` says otherwise. */
export const DEFAULT_DATA_DIR = '.data';

const ServiceSchema = z.object({ name: z.string(), pid: z.number().int().positive(), logFile: z.string() });

/** What `garden-deploy dev` writes to `<data dir>/stack.json` once every service is healthy. */
export const StackInfoSchema = z.object({
  /** The `garden-deploy dev` process that supervises the services. */
  pid: z.number().int().positive(),
  startedAt: z.iso.datetime(),
  dataDir: z.string(),
  temporal: z.object({
    address: z.string(),
    namespace: z.string(),
    uiUrl: z.url().optional(),
  }),
  gcs: z.object({ endpoint: z.url() }),
  /** Runs inside the `garden-deploy dev` process. */
  emulator: z.object({ url: z.url(), logFile: z.string() }),
  /** With `--encrypt`: the codec server (inside the `dev` process) and the keyring it, the worker and the CLI use. */
  codec: z.object({ url: z.url(), keyFile: z.string() }).optional(),
  services: z.array(ServiceSchema),
  /** Variables that point a second shell (CLI, worker, scripts) at this stack. */
  env: z.record(z.string(), z.string()),
});

export type StackInfo = z.infer<typeof StackInfoSchema>;

export function stackFilePath(dataDir: string = DEFAULT_DATA_DIR): string {
  return path.resolve(dataDir, 'stack.json');
}

/** Written through a temporary file and a rename, so readers never see half a file. */
export function writeStackFile(info: StackInfo): string {
  const file = stackFilePath(info.dataDir);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(info, null, 2)}\n`);
  renameSync(temporary, file);
  return file;
}

export function removeStackFile(dataDir: string): void {
  rmSync(stackFilePath(dataDir), { force: true });
}

export class StackFileError extends Error {
  override readonly name = 'StackFileError';
}

/**
 * The local stack recorded in `<dataDir>/stack.json`, or `undefined` when none is running there
 * (no file, or the file of a `garden-deploy dev` that no longer runs).
 */
export function readStackFile(dataDir: string = DEFAULT_DATA_DIR): StackInfo | undefined {
  const file = stackFilePath(dataDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new StackFileError(`${file} is not valid JSON; delete it and restart garden-deploy dev`);
  }
  const parsed = StackInfoSchema.safeParse(json);
  if (!parsed.success) {
    throw new StackFileError(
      `${file} is not a stack file of this garden-deploy version (${z.prettifyError(parsed.error)}); ` +
        `delete it and restart garden-deploy dev`,
    );
  }
  return isAlive(parsed.data.pid) ? parsed.data : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
