import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import YAML from 'yaml';
import { z } from 'zod';
import { FaultConfigSchema } from './faults';

export const DEFAULT_EMULATOR_PORT = 8780;

const duration = (max: number, fallback: number) => z.number().int().min(0).max(max).default(fallback);
const DAY_MS = 86_400_000;

/**
 * How long simulated work takes. Defaults keep a local deploy to a couple of seconds (fine for
 * workflow tests and a demo); the emulator's own tests shrink them further.
 */
export const TimingSchema = z
  .object({
    /** `:deploy` accepted → LRO done (success, or failure while the model server starts). */
    deployMs: duration(DAY_MS, 1500),
    /** `:deploy` accepted → Model and Endpoint exist (or the import-stage failure is reported). */
    importMs: duration(DAY_MS, 300),
    /** LRO done → all `minReplicaCount` replicas available (they come up one by one). */
    replicaRampMs: duration(DAY_MS, 1000),
    undeployMs: duration(DAY_MS, 300),
    /** `:mutateDeployedModel` accepted → the change applies (then new replicas ramp over replicaRampMs). */
    mutateMs: duration(DAY_MS, 300),
    /** `:deployModel` accepted → LRO done and the model deployed (its replicas then ramp over replicaRampMs). */
    deployModelMs: duration(DAY_MS, 1000),
    deleteMs: duration(DAY_MS, 200),
    /** Compute insert/delete operations: RUNNING → DONE. */
    computeOperationMs: duration(DAY_MS, 200),
    /** Forwarding rule created → `pscConnectionStatus` leaves PENDING. */
    pscAcceptMs: duration(DAY_MS, 300),
    /** A deployed model that never gets ready restarts its container (logging its start again) this often; 0: never. */
    restartMs: duration(DAY_MS, 10_000),
    tokenLifetimeSeconds: z.number().int().min(1).max(86_400).default(3600),
  })
  .strict();

type TimingShape = typeof TimingSchema.shape;

/**
 * A subset of the timing fields without their defaults: per-project overrides keep only what they
 * name (the rest comes from the emulator's config, e.g. a test's fast timings).
 */
export const TimingOverridesSchema = z
  .object(
    Object.fromEntries(
      Object.entries(TimingSchema.shape).map(([key, field]) => [key, field.unwrap().optional()]),
    ) as { [K in keyof TimingShape]: z.ZodOptional<ReturnType<TimingShape[K]['unwrap']>> },
  )
  .strict();

export type Timing = z.output<typeof TimingSchema>;
export type TimingInput = z.input<typeof TimingSchema>;

/** Everything except a live `Storage` client, i.e. what a config file or env can hold. */
export const EmulatorConfigSchema = z
  .object({
    host: z.string().min(1).max(255).default('127.0.0.1'),
    /** 0 picks a free port. */
    port: z.number().int().min(0).max(65_535).default(DEFAULT_EMULATOR_PORT),
    /** fake-gcs-server (or any GCS-compatible) base URL; default: `STORAGE_EMULATOR_HOST`, else Google. */
    gcsEndpoint: z.url({ protocol: /^https?$/ }).optional(),
    /** JSON file the state is saved to after every change and loaded from at start. */
    stateFile: z.string().min(1).optional(),
    faults: FaultConfigSchema.optional(),
    /**
     * Seed of the traffic-split routing: the n-th request to an endpoint goes where a draw from
     * (seed, endpoint, n) lands, so two emulators with the same seed route the same calls alike.
     */
    routingSeed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(1),
    timing: TimingSchema.default(() => TimingSchema.parse({})),
    /** Project ids or numbers whose every call is refused with 403 PERMISSION_DENIED. */
    forbiddenProjects: z.array(z.string().min(1).max(100)).max(1000).default([]),
  })
  .strict();

export type EmulatorConfig = z.output<typeof EmulatorConfigSchema>;
export type EmulatorConfigInput = z.input<typeof EmulatorConfigSchema>;

export interface EmulatorOptions extends EmulatorConfigInput {
  /** A ready `@google-cloud/storage` client for the serving container's reads (wins over `gcsEndpoint`). */
  storage?: Storage;
  /** Where internal errors are reported; default: stderr. */
  log?: (line: string) => void;
}

export class EmulatorConfigError extends Error {
  override readonly name = 'EmulatorConfigError';
}

/** Validates options, naming each bad field and what it accepts. */
export function parseEmulatorConfig(input: unknown, source = 'emulator options'): EmulatorConfig {
  const result = EmulatorConfigSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new EmulatorConfigError(`invalid ${source}:\n  ${problems.join('\n  ')}`);
  }
  return result.data;
}

const MAX_CONFIG_BYTES = 1_000_000;

/** Reads a JSON or YAML config file (same fields as `EmulatorConfigSchema`), unvalidated. */
export async function readEmulatorConfigFile(file: string): Promise<unknown> {
  const full = path.resolve(file);
  const info = await stat(full).catch((err: NodeJS.ErrnoException) => {
    throw new EmulatorConfigError(`cannot read emulator config ${full}: ${err.code ?? err.message}`);
  });
  if (info.size > MAX_CONFIG_BYTES) {
    throw new EmulatorConfigError(
      `emulator config ${full} is ${info.size} bytes; at most ${MAX_CONFIG_BYTES} are read`,
    );
  }
  const text = await readFile(full, 'utf8');
  try {
    return /\.ya?ml$/i.test(full) ? YAML.parse(text) : JSON.parse(text);
  } catch (err) {
    throw new EmulatorConfigError(
      `emulator config ${full} is not valid ${/\.ya?ml$/i.test(full) ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
    );
  }
}
