import { z } from 'zod';
import { DEFAULT_TASK_QUEUE } from '../constants';

/**
 * Which storage events start deployments, and where the serve process takes them from. From the
 * environment (`GARDEN_DEPLOY_EVENTS_*`, `GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION`) or given directly.
 */

const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const OBJECT_NAME = /^[^/\r\n\0]{1,255}$/;
const SUBSCRIPTION = /^projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/subscriptions\/[A-Za-z][\w.~+%-]{2,254}$/;

export const EventsConfigSchema = z
  .object({
    /** Buckets whose markers count; empty: any bucket that notifies us. */
    buckets: z.array(z.string().regex(BUCKET, 'must be a bucket name')).default([]),
    /** Object-name prefix of the watched folders ('' for the whole bucket); a trailing '/' is added. */
    prefix: z
      .string()
      .max(512)
      .refine((p) => !p.startsWith('/') && !/[\r\n\0]/.test(p), 'must be an object-name prefix like models/')
      .transform((p) => (p === '' || p.endsWith('/') ? p : `${p}/`))
      .default(''),
    /** The marker's object name inside a model folder, written last. */
    markerName: z
      .string()
      .regex(OBJECT_NAME, 'must be an object name without "/"')
      .default('garden-deploy.yaml'),
    /** The status object written next to the marker. */
    statusName: z
      .string()
      .regex(OBJECT_NAME, 'must be an object name without "/"')
      .default('garden-deploy.status.json'),
    /** Largest marker read, in bytes. */
    maxMarkerBytes: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024)
      .default(64 * 1024),
    /** Task queue deployments are started on. */
    taskQueue: z.string().min(1).max(1000).default(DEFAULT_TASK_QUEUE),
    /** `projects/P/subscriptions/S` to pull from (the emulated push; with PUBSUB_EMULATOR_HOST locally). */
    subscription: z
      .string()
      .regex(SUBSCRIPTION, 'must be projects/PROJECT/subscriptions/SUBSCRIPTION')
      .optional(),
  })
  // The status object must never be taken for a marker.
  .refine((config) => config.markerName !== config.statusName, {
    path: ['statusName'],
    message: 'must differ from the marker name',
  });
export type EventsConfig = z.output<typeof EventsConfigSchema>;
export type EventsConfigInput = z.input<typeof EventsConfigSchema>;

/** A configuration that cannot be used: the variable and what it must be. */
export class EventsConfigError extends Error {
  override readonly name = 'EventsConfigError';
}

export const EVENTS_ENV = {
  buckets: 'GARDEN_DEPLOY_EVENTS_BUCKETS',
  prefix: 'GARDEN_DEPLOY_EVENTS_PREFIX',
  markerName: 'GARDEN_DEPLOY_EVENTS_MARKER',
  statusName: 'GARDEN_DEPLOY_EVENTS_STATUS',
  taskQueue: 'GARDEN_DEPLOY_TASK_QUEUE',
  subscription: 'GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION',
} as const;

export function eventsConfig(input: EventsConfigInput = {}): EventsConfig {
  const parsed = EventsConfigSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = String(issue.path[0] ?? '') as keyof typeof EVENTS_ENV;
  throw new EventsConfigError(`storage events: ${EVENTS_ENV[key] ?? key} ${issue.message}`);
}

/** The configuration from the environment; unset variables take the defaults. */
export function eventsConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EventsConfig {
  const value = (key: keyof typeof EVENTS_ENV) => env[EVENTS_ENV[key]] || undefined;
  const buckets = value('buckets');
  return eventsConfig({
    ...(buckets
      ? {
          buckets: buckets
            .split(',')
            .map((b) => b.trim())
            .filter(Boolean),
        }
      : {}),
    ...(value('prefix') ? { prefix: value('prefix') } : {}),
    ...(value('markerName') ? { markerName: value('markerName') } : {}),
    ...(value('statusName') ? { statusName: value('statusName') } : {}),
    ...(value('taskQueue') ? { taskQueue: value('taskQueue') } : {}),
    ...(value('subscription') ? { subscription: value('subscription') } : {}),
  });
}
