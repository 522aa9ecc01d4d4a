import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import manifest from './tools.json';

const ToolSchema = z.object({
  module: z.string().regex(/^[\w.-]+(\/[\w.-]+)+$/),
  version: z.string().regex(/^v\d+\.\d+\.\d+$/),
  binary: z.string().regex(/^[\w.-]+$/),
  /**
   * A library, not a command: a small Go main in this repo (its go.mod pins `module` at `version`)
   * built with `go build` instead of `go install module@version`.
   */
  source: z
    .string()
    .regex(/^tools\/[\w.-]+$/)
    .optional(),
});

/**
 * Pinned tools built with `go install` once per user and shared by every clone and CI run.
 * `tools.json` is the single source: `scripts/install-tools.sh` reads it too. `temporal` (the CLI,
 * whose dev server the local stack runs) and fake-gcs-server serve the local stack; the Temporal
 * server, its SQL tool and the Web UI server are the production cluster's (cluster.ts), at the
 * versions the CLI embeds (server 1.29.1, UI 2.42.1), so both stacks run the same Temporal.
 * `pstest` is Google's Pub/Sub fake (`tools/pstest`), which fake-gcs-server publishes its object
 * events to in the storage-event tests.
 */
export const TOOLS = z
  .object({
    temporal: ToolSchema,
    fakeGcs: ToolSchema,
    temporalServer: ToolSchema,
    temporalSqlTool: ToolSchema,
    temporalUi: ToolSchema,
    pstest: ToolSchema,
  })
  .parse(manifest);

export type ToolName = keyof typeof TOOLS;

/** `GARDEN_DEPLOY_TOOLS_DIR`, else `$XDG_CACHE_HOME/garden-deploy/tools`, else `~/.cache/garden-deploy/tools`. */
export function toolsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GARDEN_DEPLOY_TOOLS_DIR) return path.resolve(env.GARDEN_DEPLOY_TOOLS_DIR);
  const cache = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'garden-deploy', 'tools');
}

/** Versioned location, so a version bump never reuses a stale binary. */
export function toolPath(tool: ToolName, env: NodeJS.ProcessEnv = process.env): string {
  const { binary, version } = TOOLS[tool];
  return path.join(toolsDir(env), `${binary}-${version}`, binary);
}

export function requireTool(tool: ToolName, env: NodeJS.ProcessEnv = process.env): string {
  const file = toolPath(tool, env);
  if (!existsSync(file)) {
    const { module, version } = TOOLS[tool];
    throw new Error(
      `${module}@${version} is not installed at ${file}. Run ./scripts/install-tools.sh (needs Go) ` +
        `or use the docker compose stack (see README).`,
    );
  }
  return file;
}

/**
 * What `scripts/install-tools.sh` stamps a built tool with: `module@version`, and for a tool built
 * from its source in the repo also a digest of those files (an edit rebuilds it).
 */
export function toolStamp(tool: ToolName, repoRoot: string): string {
  const { module, version, source } = TOOLS[tool];
  if (!source) return `${module}@${version}`;
  const dir = path.join(repoRoot, source);
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (statSync(file).isFile()) hash.update(`${name}\0`).update(readFileSync(file)).update('\0');
  }
  return `${module}@${version} src:${hash.digest('hex').slice(0, 16)}`;
}
