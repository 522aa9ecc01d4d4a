import { z } from 'zod';
import { redactSecrets, redactTokenLike } from './redact';

/** google.rpc.Code names, indexed by their numeric value (google/rpc/code.proto). */
export const CANONICAL_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export type CanonicalCode = (typeof CANONICAL_CODES)[number];

/** `retryable`: the same call may succeed later. `permanent`: retrying cannot help until something changes. */
export type ErrorClassification = 'retryable' | 'permanent';

/** Where the failure was observed. */
export type ErrorSource =
  | 'http' // a non-2xx response
  | 'operation' // a finished google.longrunning.Operation with `error`
  | 'compute-operation' // a Compute Operation with status DONE and `error.errors[]`
  | 'stream' // an in-band error object inside an SSE stream, or a stream cut short
  | 'network' // no HTTP response (connection refused/reset, DNS, TLS)
  | 'timeout' // no complete response within the request timeout
  | 'auth' // credentials could not be obtained
  | 'response'; // a 2xx response whose body is not what the API documents

export interface QuotaViolation {
  subject?: string;
  description?: string;
  apiService?: string;
  quotaMetric?: string;
  quotaId?: string;
  quotaDimensions?: Record<string, string>;
  /** The limit that was hit (QuotaFailure `quotaValue`, Compute `quotaInfo.limit`). */
  quotaValue?: number;
}

export interface FieldViolation {
  field: string;
  description: string;
  reason?: string;
}

/** The parts of google.rpc.Status `details[]` (error_details.proto) we act on. */
export interface ErrorDetails {
  errorInfo?: { reason: string; domain: string; metadata: Record<string, string> };
  quotaViolations: QuotaViolation[];
  fieldViolations: FieldViolation[];
  preconditionViolations: Array<{ type?: string; subject?: string; description?: string }>;
  retryDelayMs?: number;
  helpLinks: Array<{ description?: string; url: string }>;
  resourceInfo?: { resourceType?: string; resourceName?: string; description?: string };
}

export interface GcpApiErrorInit {
  source: ErrorSource;
  /** What was being done, e.g. `POST https://…/v1beta1/projects/p/locations/l:deploy`. */
  call: string;
  status: CanonicalCode;
  httpStatus?: number;
  googleMessage: string;
  details?: ErrorDetails;
  retryAfterMs?: number;
  classification: ErrorClassification;
  hint: string;
}

/**
 * Every failure of a Google API call made by this package. Carries no credentials: messages are
 * scrubbed and nothing from the request headers or the credential exchange is kept.
 */
export class GcpApiError extends Error {
  override readonly name = 'GcpApiError';
  readonly source: ErrorSource;
  readonly call: string;
  /** Canonical status name (`RESOURCE_EXHAUSTED`, …); `UNAVAILABLE`/`DEADLINE_EXCEEDED` for network/timeouts. */
  readonly status: CanonicalCode;
  /** HTTP status of the response; absent for network errors, timeouts and operation errors. */
  readonly httpStatus?: number;
  /** Google's own message (scrubbed, at most 2,000 characters). */
  readonly googleMessage: string;
  readonly details: ErrorDetails;
  /** How long to wait before retrying, from `Retry-After` or `RetryInfo`. */
  readonly retryAfterMs?: number;
  readonly classification: ErrorClassification;
  /** What the user should do about it. */
  readonly hint: string;

  constructor(init: GcpApiErrorInit) {
    const code = init.httpStatus === undefined ? init.status : `${init.httpStatus} ${init.status}`;
    super(redactSecrets(`${init.call} failed (${code}): ${init.googleMessage} — ${init.hint}`));
    this.source = init.source;
    this.call = redactSecrets(init.call);
    this.status = init.status;
    if (init.httpStatus !== undefined) this.httpStatus = init.httpStatus;
    this.googleMessage = truncate(redactSecrets(init.googleMessage), MAX_MESSAGE_CHARS);
    this.details = init.details ?? emptyDetails();
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    this.classification = init.classification;
    this.hint = init.hint;
  }

  get retryable(): boolean {
    return this.classification === 'retryable';
  }
}

const MAX_MESSAGE_CHARS = 2_000;
const MAX_DETAILS = 20;

export function emptyDetails(): ErrorDetails {
  return { quotaViolations: [], fieldViolations: [], preconditionViolations: [], helpLinks: [] };
}

export function isGcpApiError(err: unknown): err is GcpApiError {
  return err instanceof GcpApiError;
}

/** Canonical name for a google.rpc.Code number (LRO `error.code`); unknown numbers become UNKNOWN. */
export function canonicalCodeName(code: number): CanonicalCode {
  return CANONICAL_CODES[code] ?? 'UNKNOWN';
}

const CODE_FOR_HTTP_STATUS: Record<number, CanonicalCode> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  408: 'DEADLINE_EXCEEDED',
  409: 'ABORTED',
  412: 'FAILED_PRECONDITION',
  416: 'OUT_OF_RANGE',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** Canonical code implied by an HTTP status when the body does not name one. */
export function canonicalCodeForHttpStatus(httpStatus: number): CanonicalCode {
  return CODE_FOR_HTTP_STATUS[httpStatus] ?? (httpStatus >= 500 ? 'UNKNOWN' : 'FAILED_PRECONDITION');
}

// --- parsing google.rpc.Status and its details -------------------------------------------------

const str = z.string().max(10_000);
const AnyDetail = z.looseObject({ '@type': str.optional() });
const ErrorInfoDetail = z.looseObject({
  reason: str.default(''),
  domain: str.default(''),
  metadata: z.record(str, str).default({}),
});
const QuotaFailureDetail = z.looseObject({
  violations: z
    .array(
      z.looseObject({
        subject: str.optional(),
        description: str.optional(),
        apiService: str.optional(),
        quotaMetric: str.optional(),
        quotaId: str.optional(),
        quotaDimensions: z.record(str, str).optional(),
        // int64: a string in proto JSON.
        quotaValue: z.union([z.number(), str]).optional(),
      }),
    )
    .default([]),
});
const BadRequestDetail = z.looseObject({
  fieldViolations: z
    .array(z.looseObject({ field: str.default(''), description: str.default(''), reason: str.optional() }))
    .default([]),
});
const PreconditionFailureDetail = z.looseObject({
  violations: z
    .array(z.looseObject({ type: str.optional(), subject: str.optional(), description: str.optional() }))
    .default([]),
});
const RetryInfoDetail = z.looseObject({ retryDelay: z.union([str, z.number()]).optional() });
const HelpDetail = z.looseObject({
  links: z.array(z.looseObject({ description: str.optional(), url: str })).default([]),
});
const ResourceInfoDetail = z.looseObject({
  resourceType: str.optional(),
  resourceName: str.optional(),
  description: str.optional(),
});

/** google.rpc.Status as JSON: `code` is HTTP in synchronous errors and canonical in LRO errors. */
export const RpcStatusSchema = z.looseObject({
  code: z.number().int().optional(),
  message: str.optional(),
  status: str.optional(),
  details: z.array(z.unknown()).optional(),
});
export type RpcStatus = z.infer<typeof RpcStatusSchema>;

export function parseErrorDetails(details: readonly unknown[] | undefined): ErrorDetails {
  const out = emptyDetails();
  for (const raw of (details ?? []).slice(0, MAX_DETAILS)) {
    const detail = AnyDetail.safeParse(raw);
    if (!detail.success) continue;
    const type = (detail.data['@type'] ?? '').replace(/^.*\//, '');
    switch (type) {
      case 'google.rpc.ErrorInfo': {
        const parsed = ErrorInfoDetail.safeParse(raw);
        if (parsed.success) out.errorInfo = parsed.data;
        break;
      }
      case 'google.rpc.QuotaFailure': {
        const parsed = QuotaFailureDetail.safeParse(raw);
        if (parsed.success) {
          for (const { quotaValue, ...violation } of parsed.data.violations.slice(0, MAX_DETAILS)) {
            const limit = Number(quotaValue);
            out.quotaViolations.push(
              quotaValue !== undefined && Number.isFinite(limit)
                ? { ...violation, quotaValue: limit }
                : violation,
            );
          }
        }
        break;
      }
      case 'google.rpc.BadRequest': {
        const parsed = BadRequestDetail.safeParse(raw);
        if (parsed.success) out.fieldViolations.push(...parsed.data.fieldViolations.slice(0, MAX_DETAILS));
        break;
      }
      case 'google.rpc.PreconditionFailure': {
        const parsed = PreconditionFailureDetail.safeParse(raw);
        if (parsed.success) out.preconditionViolations.push(...parsed.data.violations.slice(0, MAX_DETAILS));
        break;
      }
      case 'google.rpc.RetryInfo': {
        const parsed = RetryInfoDetail.safeParse(raw);
        const ms = parsed.success ? parseDurationMs(parsed.data.retryDelay) : undefined;
        if (ms !== undefined) out.retryDelayMs = ms;
        break;
      }
      case 'google.rpc.Help': {
        const parsed = HelpDetail.safeParse(raw);
        if (parsed.success) out.helpLinks.push(...parsed.data.links.slice(0, MAX_DETAILS));
        break;
      }
      case 'google.rpc.ResourceInfo': {
        const parsed = ResourceInfoDetail.safeParse(raw);
        if (parsed.success) out.resourceInfo = parsed.data;
        break;
      }
    }
  }
  return out;
}

/** protobuf Duration JSON (`"1.5s"`) or a number of seconds → milliseconds. */
export function parseDurationMs(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = typeof value === 'number' ? value : Number(/^(\d+(?:\.\d+)?)s$/.exec(value.trim())?.[1]);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : undefined;
}

/** `Retry-After` header: delay-seconds or an HTTP date. */
export function parseRetryAfterMs(header: string | undefined, now: number = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

// --- classification and hints ------------------------------------------------------------------

const QUOTA_METRIC_RE = /\b[a-z0-9-]+\.googleapis\.com\/[a-z0-9_/]+/i;
// "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute' of service …".
const QUOTED_METRIC_RE = /quota (?:metric|group) '([^']{1,200})'/i;
const QUOTED_LIMIT_RE = /\blimit '([^']{1,200})'/i;
// Compute's allocation quotas: "Quota 'FORWARDING_RULES' exceeded. Limit: 15.0 in region us-central1."
const COMPUTE_QUOTA_RE = /\bQuota '([A-Za-z0-9_-]{1,100})' exceeded/;
// ErrorInfo reasons of quotas on how much exists rather than how fast (google/api/error_reason.proto, Compute).
const ALLOCATION_QUOTA_REASONS = new Set(['RESOURCE_QUOTA_EXCEEDED', 'QUOTA_EXCEEDED']);
const COMPUTE_LIMIT_RE = /\bLimit: (\d+(?:\.\d+)?)/;
// Vertex serving capacity (GPUs, CPUs for custom model serving) and GPU quotas: only an increase helps.
const SERVING_QUOTA_RE = /custom_model_serving|CustomModelServing/i;
const GPU_QUOTA_NAME_RE = /gpu/i;
const GPU_QUOTA_MESSAGE_RE = /\bgpus?\b[^.]*\bquota\b|\bquota\b[^.]*\bgpus?\b/i;
const STOCKOUT_RE =
  /stockout|resource pool exhausted|ZONE_RESOURCE_POOL_EXHAUSTED|does not have enough resources|not enough resources|insufficient (?:capacity|resources)|currently unavailable in/i;
const RATE_LIMIT_RE = /rate limit|per minute|requests per|too many requests|RATE_LIMIT_EXCEEDED/i;

interface ClassifyInput {
  source: ErrorSource;
  status: CanonicalCode;
  httpStatus?: number;
  message: string;
  details: ErrorDetails;
  /** Which Google API was called, for "enable the API" hints. */
  service: string;
}

export function classify(input: ClassifyInput): { classification: ErrorClassification; hint: string } {
  const { status, message, details } = input;
  const reason = details.errorInfo?.reason ?? '';
  const permanent = (hint: string) => ({ classification: 'permanent' as const, hint });
  const retryable = (hint: string) => ({ classification: 'retryable' as const, hint });

  switch (status) {
    case 'RESOURCE_EXHAUSTED': {
      const quota = failedQuota(details, message);
      if (STOCKOUT_RE.test(message)) {
        return permanent(
          'The region has no capacity for this machine/accelerator right now: try another region or ' +
            'machine type, use a reservation, or retry later.',
        );
      }
      // A finished operation has given up; rate limits only ever come back synchronously.
      if (quota.kind !== 'other' || input.source === 'operation' || input.source === 'compute-operation') {
        return permanent(quotaHint(quota));
      }
      const rateLimited = reason === 'RATE_LIMIT_EXCEEDED' || RATE_LIMIT_RE.test(message);
      // An allocation quota (forwarding rules, addresses, …) does not refill by waiting.
      const allocation = ALLOCATION_QUOTA_REASONS.has(reason) || COMPUTE_QUOTA_RE.test(message);
      if (!rateLimited && allocation) return permanent(quotaHint(quota));
      if (rateLimited || input.source === 'http') {
        return retryable(
          'Rate limited by Google: retried with backoff; lower the request rate if it persists.',
        );
      }
      return permanent(quotaHint(quota));
    }
    case 'UNAVAILABLE':
    case 'INTERNAL':
    case 'UNKNOWN':
    case 'DATA_LOSS':
      return retryable('Transient Google-side failure: retried with backoff.');
    case 'DEADLINE_EXCEEDED':
      return retryable(
        input.source === 'timeout'
          ? 'No response in time: retried; raise the request timeout if the call is legitimately slow.'
          : 'Google timed out the call: retried with backoff; for :deploy, check whether the resources were created first.',
      );
    case 'ABORTED':
      return retryable('Concurrent modification: re-read the resource and retry.');
    case 'UNAUTHENTICATED':
      return permanent(
        'The credentials were rejected even after a refresh: run `gcloud auth application-default login`, ' +
          'or point GOOGLE_APPLICATION_CREDENTIALS at a valid service-account key or external-account config.',
      );
    case 'PERMISSION_DENIED':
      return permanent(permissionHint(input));
    case 'NOT_FOUND':
      return permanent(
        'Check the project, region and resource ID (Vertex resources live in one region and are only visible ' +
          'through that region’s host). For cleanup this means the resource is already gone.',
      );
    case 'ALREADY_EXISTS':
      return permanent(
        'A resource with this ID already exists: adopt it if its labels show it belongs to this deployment, ' +
          'otherwise choose another ID.',
      );
    case 'FAILED_PRECONDITION':
      return permanent(preconditionHint(message, details));
    case 'INVALID_ARGUMENT':
    case 'OUT_OF_RANGE':
      return permanent(invalidArgumentHint(message, details));
    case 'UNIMPLEMENTED':
      return permanent(
        'This method is not available for this API version or region: check the region and API version.',
      );
    case 'CANCELLED':
      return permanent('The call was cancelled.');
    case 'OK':
      return permanent('The server reported OK inside an error; this is a server bug.');
  }
}

/** The quota a RESOURCE_EXHAUSTED names, from the structured details first, then Google's message. */
interface FailedQuota {
  /** e.g. `aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus`, `compute.googleapis.com/forwarding_rules`. */
  metric?: string;
  /** Quota ID or limit name, e.g. `CustomModelServingL4GPUsPerProjectPerRegion`, `FORWARDING_RULES`. */
  id?: string;
  limit?: number;
  /** Only serving quotas are charged per replica, and only GPU quotas per accelerator. */
  kind: 'serving-gpu' | 'serving' | 'other';
}

function failedQuota(details: ErrorDetails, message: string): FailedQuota {
  const violations = details.quotaViolations;
  const info = details.errorInfo?.metadata ?? {};
  const metric =
    violations.find((v) => v.quotaMetric)?.quotaMetric ??
    info.quota_metric ??
    QUOTA_METRIC_RE.exec(message)?.[0] ??
    QUOTED_METRIC_RE.exec(message)?.[1];
  const id =
    violations.find((v) => v.quotaId)?.quotaId ??
    info.quota_id ??
    info.quota_limit ??
    COMPUTE_QUOTA_RE.exec(message)?.[1] ??
    QUOTED_LIMIT_RE.exec(message)?.[1];
  const limit =
    violations.find((v) => v.quotaValue !== undefined)?.quotaValue ??
    finiteNumber(info.quota_limit_value) ??
    finiteNumber(COMPUTE_LIMIT_RE.exec(message)?.[1]);
  // Judge by the quota's own names when there are any, so a message that merely mentions GPUs does not count.
  const names = [metric, id].filter(Boolean).join(' ');
  const gpu = names ? GPU_QUOTA_NAME_RE.test(names) : GPU_QUOTA_MESSAGE_RE.test(message);
  const serving = SERVING_QUOTA_RE.test(names || message);
  return {
    ...(metric ? { metric } : {}),
    ...(id ? { id } : {}),
    ...(limit !== undefined ? { limit } : {}),
    kind: gpu ? 'serving-gpu' : serving ? 'serving' : 'other',
  };
}

function finiteNumber(text: string | undefined): number | undefined {
  const value = text === undefined ? NaN : Number(text);
  return Number.isFinite(value) ? value : undefined;
}

function quotaHint(quota: FailedQuota): string {
  const name = quota.metric
    ? `quota metric ${quota.metric}`
    : quota.id
      ? `quota ${quota.id}`
      : 'the quota named in the message';
  const notes = [
    quota.metric && quota.id ? `quota ID ${quota.id}` : undefined,
    quota.limit !== undefined ? `limit ${quota.limit}` : undefined,
  ].filter(Boolean);
  const what = notes.length > 0 ? `${name} (${notes.join(', ')})` : name;
  const increase = `Quota exhausted: request an increase of ${what}`;
  const quotasPage = '(Google Cloud console → IAM & Admin → Quotas)';
  switch (quota.kind) {
    case 'serving-gpu':
      return (
        `${increase} for this project and region ${quotasPage}, or lower maxReplicaCount × acceleratorCount, ` +
        'or deploy in another region. Serving GPU quota is charged for maxReplicaCount × accelerators per replica.'
      );
    case 'serving':
      return (
        `${increase} for this project and region ${quotasPage}, or lower maxReplicaCount or pick a smaller ` +
        'machine type, or deploy in another region. Serving quota is charged for every replica up to maxReplicaCount.'
      );
    case 'other':
      return (
        `${increase} for the project (and region) it applies to ${quotasPage}, or delete unused resources it ` +
        'counts; retrying cannot succeed until there is room.'
      );
  }
}

function permissionHint(input: ClassifyInput): string {
  const { message, details } = input;
  const reason = details.errorInfo?.reason ?? '';
  if (
    reason === 'SERVICE_DISABLED' ||
    /has not been used in project|is disabled|API .*not enabled/i.test(message)
  ) {
    const service = details.errorInfo?.metadata.service ?? input.service;
    const consumer = details.errorInfo?.metadata.consumer?.replace(/^projects\//, '');
    return `Enable the API: gcloud services enable ${service}${consumer ? ` --project ${consumer}` : ''}, then retry.`;
  }
  if (/\bEULA\b/i.test(message)) {
    return 'The model requires accepting its license: set modelConfig.acceptEula to true.';
  }
  if (/storage\.objects\.(get|list)|storage\.buckets/i.test(message)) {
    return (
      'Vertex AI cannot read the model weights: grant the Vertex AI service agent ' +
      '(service-PROJECT_NUMBER@gcp-sa-aiplatform.iam.gserviceaccount.com) roles/storage.objectViewer on the bucket.'
    );
  }
  // Vertex: ErrorInfo or "Permission 'x' denied"; Compute: "Required 'x' permission for …".
  const permission =
    details.errorInfo?.metadata.permission ??
    /Permission '([\w.]+)'/.exec(message)?.[1] ??
    /Required '([\w.]+)' permission/.exec(message)?.[1];
  const role = input.service.startsWith('compute.') ? 'roles/compute.networkAdmin' : 'roles/aiplatform.user';
  return (
    `Grant the calling identity a role with ${permission ? `permission ${permission}` : 'the missing permission'} ` +
    `on the project (e.g. ${role}).`
  );
}

function preconditionHint(message: string, details: ErrorDetails): string {
  if (/Model server exited unexpectedly|model server log/i.test(message)) {
    return 'The serving container stopped while starting: its own log lines say why (container logging, roles/logging.viewer).';
  }
  if (/deployed model|DeployedModel|has deployed|undeploy/i.test(message)) {
    return 'The resource still has deployed models: undeploy every deployed model first, then retry the delete.';
  }
  const violation = details.preconditionViolations[0];
  if (violation?.description)
    return `Precondition not met: ${violation.description}. Resolve it, then retry.`;
  return 'The resource is not in a state that allows this call: wait for pending operations to finish, then retry.';
}

function invalidArgumentHint(message: string, details: ErrorDetails): string {
  if (/hugging face access token/i.test(message)) {
    return 'The model is gated on Hugging Face: set modelConfig.huggingFaceAccessToken.';
  }
  if (details.fieldViolations.length > 0) {
    const fields = details.fieldViolations
      .slice(0, 5)
      .map((v) => `${v.field || '(request)'}: ${v.description}`)
      .join('; ');
    return `Fix the request fields: ${fields}.`;
  }
  if (/Unknown name|Cannot find field/i.test(message)) {
    return 'The request has a field this API version does not accept: remove it (check the v1beta1 API reference).';
  }
  return 'Fix the request as the message says; retrying the same request cannot succeed.';
}

// --- constructors ------------------------------------------------------------------------------

/** Maps a synchronous error response (`{ "error": google.rpc.Status }`, or Compute's older envelope). */
export function errorFromResponse(input: {
  call: string;
  service: string;
  httpStatus: number;
  body: Buffer;
  retryAfterHeader?: string;
}): GcpApiError {
  const text = input.body.toString('utf8');
  const envelope = parseErrorEnvelope(text);
  const details = parseErrorDetails(envelope?.details);
  const computeReasons = envelope?.errors.map((e) => e.reason ?? '').filter(Boolean) ?? [];
  const status =
    namedCode(envelope?.status) ??
    codeForComputeReason(computeReasons[0]) ??
    canonicalCodeForHttpStatus(input.httpStatus);
  const googleMessage =
    envelope?.message ||
    (text.trim() ? truncate(text.trim(), 500) : `HTTP ${input.httpStatus} with an empty body`);
  const retryAfterMs = parseRetryAfterMs(input.retryAfterHeader) ?? details.retryDelayMs;
  const { classification, hint } = classify({
    source: 'http',
    status,
    httpStatus: input.httpStatus,
    message: googleMessage,
    details,
    service: input.service,
  });
  return new GcpApiError({
    source: 'http',
    call: input.call,
    status,
    httpStatus: input.httpStatus,
    googleMessage,
    details,
    retryAfterMs,
    classification,
    hint,
  });
}

const ErrorEnvelopeSchema = z.looseObject({
  error: z.looseObject({
    code: z.number().int().optional(),
    message: str.optional(),
    status: str.optional(),
    details: z.array(z.unknown()).optional(),
    // Compute's older envelope.
    errors: z
      .array(z.looseObject({ reason: str.optional(), message: str.optional(), domain: str.optional() }))
      .default([]),
  }),
});

function parseErrorEnvelope(text: string): z.infer<typeof ErrorEnvelopeSchema>['error'] | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  // Vertex sometimes wraps the envelope in a one-element array (streaming endpoints).
  const candidate = Array.isArray(json) ? json[0] : json;
  const parsed = ErrorEnvelopeSchema.safeParse(candidate);
  return parsed.success ? parsed.data.error : undefined;
}

function namedCode(name: string | undefined): CanonicalCode | undefined {
  return name && (CANONICAL_CODES as readonly string[]).includes(name) ? (name as CanonicalCode) : undefined;
}

const COMPUTE_REASON_CODES: Record<string, CanonicalCode> = {
  alreadyExists: 'ALREADY_EXISTS',
  RESOURCE_ALREADY_EXISTS: 'ALREADY_EXISTS',
  notFound: 'NOT_FOUND',
  RESOURCE_NOT_FOUND: 'NOT_FOUND',
  resourceInUseByAnotherResource: 'FAILED_PRECONDITION',
  RESOURCE_IN_USE_BY_ANOTHER_RESOURCE: 'FAILED_PRECONDITION',
  IP_IN_USE_BY_ANOTHER_RESOURCE: 'FAILED_PRECONDITION',
  resourceNotReady: 'UNAVAILABLE',
  RESOURCE_NOT_READY: 'UNAVAILABLE',
  rateLimitExceeded: 'RESOURCE_EXHAUSTED',
  RATE_LIMIT_EXCEEDED: 'RESOURCE_EXHAUSTED',
  quotaExceeded: 'RESOURCE_EXHAUSTED',
  QUOTA_EXCEEDED: 'RESOURCE_EXHAUSTED',
  ZONE_RESOURCE_POOL_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  forbidden: 'PERMISSION_DENIED',
  PERMISSIONS_ERROR: 'PERMISSION_DENIED',
  invalid: 'INVALID_ARGUMENT',
  INVALID_FIELD_VALUE: 'INVALID_ARGUMENT',
  badRequest: 'INVALID_ARGUMENT',
  required: 'INVALID_ARGUMENT',
  conditionNotMet: 'FAILED_PRECONDITION',
  CONDITION_NOT_MET: 'FAILED_PRECONDITION',
  backendError: 'UNAVAILABLE',
  internalError: 'INTERNAL',
};

function codeForComputeReason(reason: string | undefined): CanonicalCode | undefined {
  return reason ? COMPUTE_REASON_CODES[reason] : undefined;
}

/** The `error` of a finished google.longrunning.Operation (numeric canonical `code`, no `status`). */
export function errorFromOperation(operationName: string, status: RpcStatus, service: string): GcpApiError {
  const canonical = canonicalCodeName(status.code ?? 2);
  const details = parseErrorDetails(status.details);
  const googleMessage = status.message || `operation failed with code ${status.code ?? 'UNKNOWN'}`;
  const { classification, hint } = classify({
    source: 'operation',
    status: canonical,
    message: googleMessage,
    details,
    service,
  });
  return new GcpApiError({
    source: 'operation',
    call: `operation ${operationName}`,
    status: canonical,
    googleMessage,
    details,
    retryAfterMs: details.retryDelayMs,
    classification,
    hint,
  });
}

export interface ComputeOperationErrorInput {
  operationName: string;
  errors: Array<{ code?: string; message?: string; location?: string; errorDetails?: unknown }>;
  httpErrorStatusCode?: number;
}

// Compute's own detail shapes (compute.proto Errors.errorDetails[]): not google.rpc `@type`d, and its
// ErrorInfo spells the map `metadatas`.
const ComputeErrorDetail = z.looseObject({
  quotaInfo: z
    .looseObject({
      metricName: str.optional(),
      limitName: str.optional(),
      limit: z.number().optional(),
      dimensions: z.record(str, str).optional(),
    })
    .optional(),
  errorInfo: z
    .looseObject({
      reason: str.default(''),
      domain: str.default(''),
      metadatas: z.record(str, str).optional(),
      metadata: z.record(str, str).optional(),
    })
    .optional(),
});

function computeOperationDetails(errors: ComputeOperationErrorInput['errors']): ErrorDetails {
  const out = emptyDetails();
  for (const error of errors.slice(0, MAX_DETAILS)) {
    const list = Array.isArray(error.errorDetails) ? (error.errorDetails as unknown[]) : [];
    for (const raw of list.slice(0, MAX_DETAILS)) {
      const parsed = ComputeErrorDetail.safeParse(raw);
      if (!parsed.success) continue;
      const { quotaInfo, errorInfo } = parsed.data;
      if (quotaInfo && (quotaInfo.metricName || quotaInfo.limitName)) {
        out.quotaViolations.push({
          ...(quotaInfo.metricName ? { quotaMetric: quotaInfo.metricName } : {}),
          ...(quotaInfo.limitName ? { quotaId: quotaInfo.limitName } : {}),
          ...(quotaInfo.dimensions ? { quotaDimensions: quotaInfo.dimensions } : {}),
          ...(quotaInfo.limit !== undefined ? { quotaValue: quotaInfo.limit } : {}),
        });
      }
      if (errorInfo && !out.errorInfo) {
        out.errorInfo = {
          reason: errorInfo.reason,
          domain: errorInfo.domain,
          metadata: errorInfo.metadatas ?? errorInfo.metadata ?? {},
        };
      }
    }
  }
  return out;
}

/** A Compute Operation that is DONE with `error.errors[]`. */
export function errorFromComputeOperation(input: ComputeOperationErrorInput): GcpApiError {
  const codes = input.errors.map((e) => e.code ?? '').filter(Boolean);
  const status =
    codes.map(codeForComputeReason).find((c) => c !== undefined) ??
    (input.httpErrorStatusCode ? canonicalCodeForHttpStatus(input.httpErrorStatusCode) : 'UNKNOWN');
  const googleMessage =
    input.errors
      .slice(0, 5)
      .map((e) => [e.code, e.message, e.location && `(at ${e.location})`].filter(Boolean).join(': '))
      .join('; ') || 'operation finished with an error';
  const details = computeOperationDetails(input.errors);
  const { classification, hint } = classify({
    source: 'compute-operation',
    status,
    message: googleMessage,
    details,
    service: 'compute.googleapis.com',
  });
  return new GcpApiError({
    source: 'compute-operation',
    call: `Compute operation ${input.operationName}`,
    status,
    httpStatus: input.httpErrorStatusCode,
    googleMessage,
    details,
    classification,
    hint,
  });
}

const PERMANENT_NETWORK_CODES =
  /^(ERR_TLS_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT|UNABLE_TO_VERIFY|ERR_SSL_|ERR_INVALID_URL)/;

/** A request that got no HTTP response. */
export function errorFromNetwork(call: string, host: string, err: unknown): GcpApiError {
  const code = (err as { code?: unknown } | null)?.code;
  const codeText = typeof code === 'string' ? code : 'network error';
  const detail = err instanceof Error ? err.message : String(err);
  const tls = typeof code === 'string' && PERMANENT_NETWORK_CODES.test(code);
  return new GcpApiError({
    source: 'network',
    call,
    status: 'UNAVAILABLE',
    googleMessage: `could not reach ${host}: ${codeText} (${detail})`,
    classification: tls ? 'permanent' : 'retryable',
    hint: tls
      ? 'TLS verification failed: check the host name; for a PSC internal IP, set access.tlsServerName to a name ' +
        'its certificate covers, or opt out of the check with GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY=true.'
      : 'Network failure before any response: retried with backoff; check connectivity and the base URL if it persists.',
  });
}

export function errorFromTimeout(call: string, timeoutMs: number, phase: 'response' | 'idle'): GcpApiError {
  return new GcpApiError({
    source: 'timeout',
    call,
    status: 'DEADLINE_EXCEEDED',
    googleMessage:
      phase === 'response'
        ? `no complete response within ${timeoutMs} ms`
        : `the stream sent nothing for ${timeoutMs} ms`,
    classification: 'retryable',
    hint: 'Retried with backoff; raise the request timeout if the call is legitimately slow.',
  });
}

/** Credentials could not be obtained (no ADC configured, token exchange failed, …). */
export function errorFromAuth(err: unknown): GcpApiError {
  const detail = redactTokenLike(err instanceof Error ? err.message : String(err));
  const status = (err as { status?: unknown; response?: { status?: unknown } } | null) ?? {};
  const httpStatus = typeof status.status === 'number' ? status.status : status.response?.status;
  const code = (err as { code?: unknown } | null)?.code;
  const transient =
    (typeof httpStatus === 'number' && (httpStatus >= 500 || httpStatus === 429)) ||
    (typeof code === 'string' && /^(ECONN|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EPIPE|UND_ERR)/.test(code));
  return new GcpApiError({
    source: 'auth',
    call: 'obtaining Google credentials (Application Default Credentials)',
    status: transient ? 'UNAVAILABLE' : 'UNAUTHENTICATED',
    googleMessage: truncate(detail, MAX_MESSAGE_CHARS),
    classification: transient ? 'retryable' : 'permanent',
    hint: transient
      ? 'The token service did not answer: retried with backoff.'
      : 'Configure Application Default Credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key or ' +
        'external-account config, run `gcloud auth application-default login`, or attach a service account.',
  });
}

/** A 2xx response whose body does not match what the API documents. */
export function errorFromUnexpectedBody(call: string, problem: string): GcpApiError {
  return new GcpApiError({
    source: 'response',
    call,
    status: 'INTERNAL',
    googleMessage: `unexpected response body: ${problem}`,
    classification: 'permanent',
    hint: 'The API answered in a shape this client does not understand: check the base URL points at the Google API (or the emulator).',
  });
}

/** An in-band error object inside an SSE stream (status 200 was already sent). */
export function errorFromStream(call: string, error: unknown): GcpApiError {
  const parsed = z
    .looseObject({
      message: str.optional(),
      code: z.union([z.number(), str]).optional(),
      status: str.optional(),
      type: str.optional(),
    })
    .safeParse(error);
  const info = parsed.success ? parsed.data : {};
  const numeric = typeof info.code === 'number' ? info.code : Number(info.code);
  const status =
    namedCode(info.status) ??
    (Number.isInteger(numeric) && numeric >= 100 ? canonicalCodeForHttpStatus(numeric) : undefined) ??
    (Number.isInteger(numeric) && numeric > 0 ? canonicalCodeName(numeric) : 'UNKNOWN');
  const googleMessage =
    info.message ?? (typeof error === 'string' ? error : truncate(JSON.stringify(error) ?? '', 500));
  const { classification, hint } = classify({
    source: 'stream',
    status,
    message: googleMessage,
    details: emptyDetails(),
    service: 'aiplatform.googleapis.com',
  });
  return new GcpApiError({ source: 'stream', call, status, googleMessage, classification, hint });
}

/** Shortens `text` to `max` characters, marking the cut with an ellipsis. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
