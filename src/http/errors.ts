import { z } from 'zod';
import {
  AmbiguousDeploymentError,
  DeploymentNotFoundError,
  DeploymentStateError,
  RequestAlreadyDoneError,
  InvalidFilterError,
  RequestNotFoundError,
  TemporalConnectionError,
} from '../client';
import { CodecConfigError, ENCRYPTED_ENCODING, PayloadDecryptionError } from '../codec';
import { InvalidSpecError, type SpecIssue } from '../spec';

/**
 * The API's one error shape, `{"error": {"code", "message", "issues"?}}`, and how the library's
 * errors map onto statuses: a bad spec is 400 with the same field paths the CLI prints, an unknown
 * deployment 404, a request the deployment refuses 409 with its own reason.
 */

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('Stable machine-readable code, e.g. invalid_spec, unauthenticated, conflict'),
      message: z.string().describe('What is wrong and how to fix it'),
      issues: z
        .array(z.object({ path: z.string(), message: z.string() }))
        .optional()
        .describe('Each invalid field, by dotted path (e.g. smoke.tests[0].mode)'),
    }),
  })
  .describe('Every answer other than 2xx');
export type ErrorBody = z.output<typeof ErrorBodySchema>;

/** An answer other than 2xx. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: SpecIssue[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): ErrorBody {
    return {
      error: { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) },
    };
  }
}

/** A retried request whose idempotency key was used before for another request. */
export class IdempotencyKeyReusedError extends HttpError {
  constructor(what: string) {
    super(
      422,
      'idempotency_key_reused',
      `this Idempotency-Key was used for ${what} with another body; send a new key for a new request, or ` +
        'the same body to get the first request’s answer',
    );
  }
}

/** Fastify's own errors carry `statusCode` and a `FST_*` code. */
interface FrameworkError {
  statusCode?: number;
  code?: string;
  message: string;
}

const FRAMEWORK_CODES: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** The library's (and the framework's) errors as answers; undefined for an unexpected error (500). */
export function toHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof InvalidSpecError)
    return new HttpError(400, 'invalid_spec', 'invalid deployment spec', err.issues);
  if (err instanceof InvalidFilterError) return new HttpError(400, 'invalid_filter', err.message);
  if (err instanceof DeploymentNotFoundError || err instanceof RequestNotFoundError)
    return new HttpError(404, 'not_found', err.message);
  if (err instanceof AmbiguousDeploymentError) return new HttpError(409, 'ambiguous', err.message);
  if (err instanceof DeploymentStateError) return new HttpError(409, 'refused', err.message);
  if (err instanceof RequestAlreadyDoneError) return new HttpError(409, 'conflict', err.message);
  if (err instanceof TemporalConnectionError) return new HttpError(503, 'temporal_unavailable', err.message);
  if (err instanceof CodecConfigError || err instanceof PayloadDecryptionError)
    return new HttpError(500, 'payload_codec', err.message);
  if (err instanceof Error && err.message === `Unknown encoding: ${ENCRYPTED_ENCODING}`) {
    return new HttpError(
      500,
      'payload_codec',
      "the deployment's payloads are encrypted and this server has no keys: give it the workers' keyring " +
        '(GARDEN_DEPLOY_CODEC_KEY_FILE or GARDEN_DEPLOY_CODEC_KEYS)',
    );
  }
  const framework = err as FrameworkError;
  if (typeof framework?.statusCode === 'number' && framework.code?.startsWith('FST_')) {
    const status = framework.statusCode;
    if (status === 413)
      return new HttpError(413, 'payload_too_large', 'the request body is larger than the server accepts');
    return new HttpError(status, FRAMEWORK_CODES[status] ?? 'bad_request', framework.message);
  }
  return undefined;
}
