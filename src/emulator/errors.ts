/** google.rpc canonical codes (google/rpc/code.proto) with their HTTP mapping. */
const RPC_CODES = {
  CANCELLED: { code: 1, http: 499 },
  UNKNOWN: { code: 2, http: 500 },
  INVALID_ARGUMENT: { code: 3, http: 400 },
  DEADLINE_EXCEEDED: { code: 4, http: 504 },
  NOT_FOUND: { code: 5, http: 404 },
  ALREADY_EXISTS: { code: 6, http: 409 },
  PERMISSION_DENIED: { code: 7, http: 403 },
  RESOURCE_EXHAUSTED: { code: 8, http: 429 },
  FAILED_PRECONDITION: { code: 9, http: 400 },
  ABORTED: { code: 10, http: 409 },
  OUT_OF_RANGE: { code: 11, http: 400 },
  UNIMPLEMENTED: { code: 12, http: 501 },
  INTERNAL: { code: 13, http: 500 },
  UNAVAILABLE: { code: 14, http: 503 },
  DATA_LOSS: { code: 15, http: 500 },
  UNAUTHENTICATED: { code: 16, http: 401 },
} as const;

export type RpcStatusName = keyof typeof RPC_CODES;

/** `google.rpc.Status` as it appears inside an Operation (`code` is the canonical number). */
export interface RpcStatus {
  code: number;
  message: string;
  details?: Record<string, unknown>[];
}

/**
 * A synchronous API error. Vertex renders it as `{error: {code: HTTP, message, status, details}}`;
 * Compute renders it in its own envelope (`{error: {code, message, errors: [{domain, reason}]}}`).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly httpStatus: number;

  constructor(
    readonly status: RpcStatusName,
    message: string,
    readonly options: {
      details?: Record<string, unknown>[];
      /** Compute `errors[].reason`, e.g. `notFound`, `alreadyExists`. */
      computeReason?: string;
      headers?: Record<string, string>;
      /** When the HTTP status differs from the canonical mapping (e.g. 413). */
      httpStatus?: number;
    } = {},
  ) {
    super(message);
    this.httpStatus = options.httpStatus ?? RPC_CODES[status].http;
  }

  toVertexBody(): Record<string, unknown> {
    return {
      error: {
        code: this.httpStatus,
        message: this.message,
        status: this.status,
        ...(this.options.details?.length ? { details: this.options.details } : {}),
      },
    };
  }

  toComputeBody(): Record<string, unknown> {
    const reason = this.options.computeReason ?? COMPUTE_REASONS[this.status] ?? 'backendError';
    return {
      error: {
        code: this.httpStatus,
        message: this.message,
        errors: [{ message: this.message, domain: 'global', reason }],
      },
    };
  }

  /** The same error as an Operation's `error` field. */
  toRpcStatus(): RpcStatus {
    return {
      code: RPC_CODES[this.status].code,
      message: this.message,
      ...(this.options.details?.length ? { details: this.options.details } : {}),
    };
  }
}

const COMPUTE_REASONS: Partial<Record<RpcStatusName, string>> = {
  INVALID_ARGUMENT: 'invalid',
  FAILED_PRECONDITION: 'resourceInUseByAnotherResource',
  NOT_FOUND: 'notFound',
  ALREADY_EXISTS: 'alreadyExists',
  PERMISSION_DENIED: 'forbidden',
  UNAUTHENTICATED: 'required',
  RESOURCE_EXHAUSTED: 'rateLimitExceeded',
  UNAVAILABLE: 'backendError',
  INTERNAL: 'backendError',
  DEADLINE_EXCEEDED: 'backendError',
};

export function statusNameForHttp(http: number): RpcStatusName {
  switch (http) {
    case 400:
      return 'INVALID_ARGUMENT';
    case 429:
      return 'RESOURCE_EXHAUSTED';
    case 503:
      return 'UNAVAILABLE';
    case 504:
      return 'DEADLINE_EXCEEDED';
    default:
      return 'INTERNAL';
  }
}

export function badRequest(fieldViolations: { field: string; description: string }[]): ApiError {
  return new ApiError('INVALID_ARGUMENT', fieldViolations.map((v) => v.description).join('\n'), {
    details: [
      {
        '@type': 'type.googleapis.com/google.rpc.BadRequest',
        fieldViolations: fieldViolations.map((v) => (v.field ? v : { description: v.description })),
      },
    ],
  });
}
