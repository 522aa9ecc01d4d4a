import { Option } from 'commander';
import { z } from 'zod';
import { readSecretFile } from '../codec';
import { DEFAULT_MARKER_NAME, DEFAULT_STATUS_NAME, type EventsConfig, eventsConfig } from '../events/config';
import { hostPortSchema, splitHostPort } from '../host-port';
import { type AuthConfig, GOOGLE_JWKS_URL, type TokenDigest, parseTokenDigests } from './auth';
import type { RateLimit } from './rate-limit';

/**
 * `garden-deploy serve`'s configuration, from one table: each option is a flag and an environment
 * variable (the flag wins), checked by one zod schema; the README's table lists the same rows.
 */

export const DEFAULT_BODY_LIMIT = 256 * 1024;

interface ServeOption {
  flags: string;
  env: string;
  help: string;
  default?: string;
}

export const SERVE_OPTIONS = {
  listen: {
    flags: '--listen <host:port>',
    env: 'GARDEN_DEPLOY_SERVE_LISTEN',
    help: 'address to listen on (0 as the port for a free one)',
    default: '127.0.0.1:8080',
  },
  tokenFile: {
    flags: '--token-file <file>',
    env: 'GARDEN_DEPLOY_SERVE_TOKEN_FILE',
    help: 'file of static bearer tokens, one "<name> sha256:<hex>" line each (make one with `serve hash-token NAME`)',
  },
  tokens: {
    flags: '--tokens <lines>',
    env: 'GARDEN_DEPLOY_SERVE_TOKENS',
    help: 'the same lines in a variable (e.g. from a secret), newline-separated',
  },
  oidcAudience: {
    flags: '--oidc-audience <audiences>',
    env: 'GARDEN_DEPLOY_SERVE_OIDC_AUDIENCE',
    help:
      'accept Google-signed OIDC ID tokens for these audiences, comma-separated (e.g. the service URL, and ' +
      'https://HOST/v1/events/pubsub: a push subscription’s default audience is its endpoint)',
  },
  allowServiceAccount: {
    flags: '--allow-service-account <emails>',
    env: 'GARDEN_DEPLOY_SERVE_ALLOWED_SERVICE_ACCOUNTS',
    help: 'service account emails whose ID tokens may call, comma-separated',
  },
  oidcCertsUrl: {
    flags: '--oidc-certs-url <url>',
    env: 'GARDEN_DEPLOY_SERVE_OIDC_CERTS_URL',
    help: 'JWKS of the ID tokens’ signing keys',
    default: GOOGLE_JWKS_URL,
  },
  bodyLimit: {
    flags: '--body-limit <bytes>',
    env: 'GARDEN_DEPLOY_SERVE_BODY_LIMIT',
    help: 'largest request body; larger ones are answered 413',
    default: String(DEFAULT_BODY_LIMIT),
  },
  rateLimit: {
    flags: '--rate-limit <per-minute>',
    env: 'GARDEN_DEPLOY_SERVE_RATE_LIMIT',
    help: 'requests per minute per caller (429 with Retry-After beyond)',
    default: '120',
  },
  rateBurst: {
    flags: '--rate-burst <n>',
    env: 'GARDEN_DEPLOY_SERVE_RATE_BURST',
    help: 'requests a caller may send at once',
    default: '30',
  },
  metricsAddress: {
    flags: '--metrics-address <host:port>',
    env: 'GARDEN_DEPLOY_METRICS_ADDRESS',
    help: 'serve Prometheus metrics at http://host:port/metrics (storage events; README, Metrics); off when unset',
  },
  eventsBuckets: {
    flags: '--events-buckets <names>',
    env: 'GARDEN_DEPLOY_EVENTS_BUCKETS',
    help: 'storage events: buckets whose markers deploy, comma-separated (default: any bucket that notifies)',
  },
  eventsPrefix: {
    flags: '--events-prefix <prefix>',
    env: 'GARDEN_DEPLOY_EVENTS_PREFIX',
    help: 'storage events: object-name prefix of the model folders, e.g. models/ (default: the whole bucket)',
  },
  eventsMarker: {
    flags: '--events-marker <name>',
    env: 'GARDEN_DEPLOY_EVENTS_MARKER',
    help: 'storage events: the marker object, written last into a model folder',
    default: DEFAULT_MARKER_NAME,
  },
  eventsStatus: {
    flags: '--events-status <name>',
    env: 'GARDEN_DEPLOY_EVENTS_STATUS',
    help: 'storage events: the status object written next to the marker',
    default: DEFAULT_STATUS_NAME,
  },
  pubsubSubscription: {
    flags: '--pubsub-subscription <name>',
    env: 'GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION',
    help: 'storage events: pull projects/PROJECT/subscriptions/NAME while serving (PUBSUB_EMULATOR_HOST for an emulator); off when unset',
  },
} as const satisfies Record<string, ServeOption>;

/** The commander options of the table, each reading its variable. */
export function serveOptions(): Option[] {
  return Object.values(SERVE_OPTIONS).map((option: ServeOption) => {
    const made = new Option(option.flags, option.help).env(option.env);
    return option.default === undefined ? made : made.default(option.default);
  });
}

/** `--flag (VARIABLE)`, for messages about an option set either way. */
function named(key: keyof typeof SERVE_OPTIONS): string {
  const option: ServeOption = SERVE_OPTIONS[key];
  return `${option.flags.split(' ')[0]} (${option.env})`;
}

const whole = (what: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${what} must be a whole number`)
    .transform(Number)
    .pipe(z.number().min(min, `${what} must be at least ${min}`).max(max, `${what} must be at most ${max}`));

const ListenSchema = hostPortSchema('127.0.0.1:8080', '--listen').transform(splitHostPort);

const AudiencesSchema = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((audience) => audience.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().max(1024, `${named('oidcAudience')}: an audience is at most 1024 characters`))
      .min(1, `${named('oidcAudience')} takes audiences, comma-separated`)
      .max(20, `${named('oidcAudience')}: at most 20 audiences`),
  );

const EmailsSchema = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((email) => email.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.email('--allow-service-account takes email addresses')).max(100));

const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const OBJECT_NAME = /^[^/\r\n\0]{1,255}$/;
const SUBSCRIPTION = /^projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/subscriptions\/[A-Za-z][\w.~+%-]{2,254}$/;

const BucketsSchema = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((bucket) => bucket.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().regex(BUCKET, `${named('eventsBuckets')} takes bucket names, comma-separated`))
      .max(100, `${named('eventsBuckets')}: at most 100 buckets`),
  );

const PrefixSchema = z
  .string()
  .max(512, `${named('eventsPrefix')}: at most 512 characters`)
  .refine(
    (prefix) => !prefix.startsWith('/') && !/[\r\n\0]/.test(prefix),
    `${named('eventsPrefix')} must be an object-name prefix like models/`,
  )
  // A folder prefix: models matches models/…, not models-old/….
  .transform((prefix) => (prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`));

const objectName = (key: 'eventsMarker' | 'eventsStatus') =>
  z.string().regex(OBJECT_NAME, `${named(key)} must be an object name without "/"`);

export const ServeFlagsSchema = z
  .object({
    listen: ListenSchema,
    tokenFile: z.string().min(1).optional(),
    tokens: z
      .string()
      .max(64 * 1024)
      .optional(),
    oidcAudience: AudiencesSchema.optional(),
    allowServiceAccount: EmailsSchema.optional(),
    oidcCertsUrl: z.url({ protocol: /^https?$/, message: '--oidc-certs-url must be an http(s) URL' }),
    bodyLimit: whole('--body-limit', 1024, 64 * 1024 * 1024),
    rateLimit: whole('--rate-limit', 1, 1_000_000),
    rateBurst: whole('--rate-burst', 1, 100_000),
    metricsAddress: hostPortSchema('127.0.0.1:9464', '--metrics-address').optional(),
    eventsBuckets: BucketsSchema.optional(),
    eventsPrefix: PrefixSchema.optional(),
    eventsMarker: objectName('eventsMarker'),
    eventsStatus: objectName('eventsStatus'),
    pubsubSubscription: z
      .string()
      .regex(
        SUBSCRIPTION,
        `${named('pubsubSubscription')} must be projects/PROJECT/subscriptions/SUBSCRIPTION`,
      )
      .optional(),
  })
  .refine((flags) => flags.tokenFile || flags.tokens || flags.oidcAudience, {
    message:
      'no credentials: give --token-file (or GARDEN_DEPLOY_SERVE_TOKENS), or --oidc-audience with ' +
      '--allow-service-account; the API never runs unauthenticated',
  })
  .refine((flags) => !flags.oidcAudience || (flags.allowServiceAccount?.length ?? 0) > 0, {
    message: '--oidc-audience needs --allow-service-account: the service accounts that may call',
  })
  // The status object must never be taken for a marker.
  .refine((flags) => flags.eventsMarker !== flags.eventsStatus, {
    message: `${named('eventsStatus')} must differ from the marker name, ${named('eventsMarker')}`,
  });
export type ServeFlags = z.output<typeof ServeFlagsSchema>;

export interface ServeConfig {
  host: string;
  port: number;
  auth: AuthConfig;
  bodyLimit: number;
  rateLimit: RateLimit;
  /** `host:port` of the Prometheus endpoint; none without it. */
  metricsAddress?: string;
  /** Which storage events deploy. */
  events: EventsConfig;
  /** The Pub/Sub subscription to pull storage events from; none without it. */
  pubsubSubscription?: string;
}

/** A serve option that cannot be used (the message names the flag and variable). */
export class ServeConfigError extends Error {
  override readonly name = 'ServeConfigError';
}

const MAX_TOKEN_FILE_BYTES = 256 * 1024;

/** The configuration from the flags (commander's, with the variables already applied). */
export function serveConfig(raw: unknown, warn: (message: string) => void): ServeConfig {
  const parsed = ServeFlagsSchema.safeParse(raw);
  if (!parsed.success) throw new ServeConfigError(parsed.error.issues.map((i) => i.message).join('; '));
  const flags = parsed.data;
  const tokens: TokenDigest[] = [];
  if (flags.tokenFile) {
    const text = readSecretFile(flags.tokenFile, MAX_TOKEN_FILE_BYTES, 'tokens', warn);
    tokens.push(...parseTokenDigests(text, `the tokens file ${flags.tokenFile}`));
  }
  if (flags.tokens) tokens.push(...parseTokenDigests(flags.tokens, SERVE_OPTIONS.tokens.env));
  return {
    host: flags.listen.host,
    port: flags.listen.port,
    auth: {
      tokens,
      ...(flags.oidcAudience
        ? {
            oidc: {
              audiences: flags.oidcAudience,
              allowedServiceAccounts: flags.allowServiceAccount ?? [],
              certsUrl: flags.oidcCertsUrl,
            },
          }
        : {}),
    },
    bodyLimit: flags.bodyLimit,
    rateLimit: { perMinute: flags.rateLimit, burst: flags.rateBurst },
    ...(flags.metricsAddress ? { metricsAddress: flags.metricsAddress } : {}),
    events: eventsConfig({
      ...(flags.eventsBuckets ? { buckets: flags.eventsBuckets } : {}),
      ...(flags.eventsPrefix ? { prefix: flags.eventsPrefix } : {}),
      markerName: flags.eventsMarker,
      statusName: flags.eventsStatus,
    }),
    ...(flags.pubsubSubscription ? { pubsubSubscription: flags.pubsubSubscription } : {}),
  };
}
