import { z } from 'zod';

export const DEFAULT_VERTEX_BASE_URL = 'https://{region}-aiplatform.googleapis.com';
export const DEFAULT_COMPUTE_BASE_URL = 'https://compute.googleapis.com';
export const DEFAULT_MONITORING_BASE_URL = 'https://monitoring.googleapis.com';
export const DEFAULT_CLOUD_QUOTAS_BASE_URL = 'https://cloudquotas.googleapis.com';
export const DEFAULT_LOGGING_BASE_URL = 'https://logging.googleapis.com';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** Where Vertex AI puts dedicated endpoint hosts (`{id}.{region}-{projectNumber}.prediction.vertexai.goog`). */
export const DEFAULT_DEDICATED_DNS_SUFFIX = '.prediction.vertexai.goog';

const httpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .refine((u) => !/[?#]/.test(u), 'must not contain a query or fragment');

/**
 * Configuration of the Google API client. Only base URLs differ between Google and the local
 * emulator; every path, body and header is the same.
 */
export const GcpClientConfigSchema = z.strictObject({
  /**
   * Vertex AI management host. `{region}` is replaced by the resource's location; with the
   * default, location `global` uses `https://aiplatform.googleapis.com`.
   */
  vertexBaseUrl: z
    .string()
    .default(DEFAULT_VERTEX_BASE_URL)
    .refine((t) => httpUrl.safeParse(t.replaceAll('{region}', 'us-central1')).success, {
      error: 'vertexBaseUrl must be an http(s) URL, optionally containing {region}',
    }),
  computeBaseUrl: httpUrl.default(DEFAULT_COMPUTE_BASE_URL),
  /** Cloud Monitoring (upgrade gates read the endpoint's serving metrics there; quota usage too). */
  monitoringBaseUrl: httpUrl.default(DEFAULT_MONITORING_BASE_URL),
  /** Cloud Quotas (the serving GPU quota limit, checked before `:deploy`). */
  cloudQuotasBaseUrl: httpUrl.default(DEFAULT_CLOUD_QUOTAS_BASE_URL),
  /** Cloud Logging (the serving container's lines, read when a start fails). */
  loggingBaseUrl: httpUrl.default(DEFAULT_LOGGING_BASE_URL),
  /**
   * Unset: inference goes to `https://{dedicatedEndpointDns}` or `https://{PSC address}`. Set: the
   * connection goes to this URL instead, with `Host:` still naming the real host (how the local
   * emulator routes inference).
   */
  predictionBaseUrl: httpUrl.optional(),
  /** Whole-request timeout for management calls (connect → last byte). */
  requestTimeoutMs: z.number().int().positive().max(3_600_000).default(60_000),
  /** Timeout for unary inference, and for the first byte / each gap of a stream. */
  predictionTimeoutMs: z.number().int().positive().max(3_600_000).default(600_000),
  /** Largest response body read into memory; bigger responses fail with a clear error. */
  maxResponseBytes: z
    .number()
    .int()
    .positive()
    .max(1024 * 1024 * 1024)
    .default(32 * 1024 * 1024),
  /** Largest total size of one streamed response (SSE, streamRawPredict). */
  maxStreamBytes: z
    .number()
    .int()
    .positive()
    .max(16 * 1024 * 1024 * 1024)
    .default(256 * 1024 * 1024),
  userAgent: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII')
    .default('garden-deploy/0.1'),
  /** Sent as `x-goog-user-project` to pick the quota/billing project. */
  quotaProjectId: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'must be a project ID')
    .optional(),
  /**
   * Explicit opt-out: call a PSC address that has no `tlsServerName` without verifying its
   * certificate, as Google's Python SDK does (the internal IP is not in the certificate). Without
   * it such calls are refused before a token is sent. Never applies to dedicated endpoint hosts,
   * nor to a PSC target that names its certificate's DNS name (`tlsServerName`).
   */
  pscSkipTlsVerify: z.boolean().default(false),
  /**
   * DNS suffixes a dedicated endpoint host (`dedicatedEndpointDns` from an API answer) must end in
   * before a token is sent to it: a tampered or buggy answer must not redirect our credentials.
   */
  dedicatedDnsSuffixes: z
    .array(
      z
        .string()
        .regex(
          /^(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i,
          'must be a DNS suffix starting with "." like ".prediction.vertexai.goog"',
        ),
    )
    .min(1, 'give at least one suffix (default [".prediction.vertexai.goog"])')
    .max(20)
    .default([DEFAULT_DEDICATED_DNS_SUFFIX]),
  /** ADC file to use instead of the ADC search (GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata server). */
  credentialsFile: z.string().min(1).optional(),
});

export type GcpClientConfigInput = z.input<typeof GcpClientConfigSchema>;
export type GcpClientConfig = z.output<typeof GcpClientConfigSchema>;

/** The client's base URLs: one per Google API it calls (plus inference's front end). */
const BASE_URL_KEYS = [
  'vertexBaseUrl',
  'computeBaseUrl',
  'monitoringBaseUrl',
  'cloudQuotasBaseUrl',
  'loggingBaseUrl',
  'predictionBaseUrl',
] as const satisfies ReadonlyArray<keyof GcpClientConfigInput>;
export type BaseUrlKey = (typeof BASE_URL_KEYS)[number];

/** Every API at one URL: how the client talks to an emulator that serves them all. */
export function everyApiAt(url: string): Record<BaseUrlKey, string> {
  return Object.fromEntries(BASE_URL_KEYS.map((key) => [key, url])) as Record<BaseUrlKey, string>;
}

export class GcpConfigError extends Error {
  override readonly name = 'GcpConfigError';
}

export function parseGcpClientConfig(input: GcpClientConfigInput = {}): GcpClientConfig {
  const parsed = GcpClientConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new GcpConfigError(`invalid GCP client config: ${issues.join('; ')}`);
  }
  return parsed.data;
}

const LOCATION_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** Vertex host for one location (the same regional host must serve a resource and its operations). */
export function vertexBaseUrlFor(template: string, location: string): string {
  if (!LOCATION_RE.test(location)) {
    throw new GcpConfigError(
      `"${location}" is not a Vertex AI location (expected e.g. us-central1 or global)`,
    );
  }
  if (template === DEFAULT_VERTEX_BASE_URL) {
    if (location === 'global') return 'https://aiplatform.googleapis.com';
    // Multi-region locations use the regional-endpoint host style.
    if (location === 'us' || location === 'eu') return `https://aiplatform.${location}.rep.googleapis.com`;
  }
  return template.replaceAll('{region}', location).replace(/\/+$/, '');
}
