/** Vertex and Compute resource names: building, parsing, and the ID rules from the protos. */
import { InvalidRequestError } from './input';

/** Project ID (6–30 chars) or project number (what the server puts in returned names). */
export const PROJECT_RE = /^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[1-9][0-9]{0,19})$/;
export const LOCATION_RE = /^[a-z][a-z0-9-]{0,62}$/;
/** DeployRequest.EndpointConfig.endpoint_user_id: letter-first `[a-z0-9-]` ≤63 ending alphanumeric, or ≤9 digits. */
export const ENDPOINT_USER_ID_RE = /^(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[1-9][0-9]{0,8})$/;
/** DeployRequest.ModelConfig.model_user_id: ≤63 `[a-z0-9_-]`, first char not a digit or hyphen. */
export const MODEL_USER_ID_RE = /^[a-z_][a-z0-9_-]{0,62}$/;
/** Compute resource names (RFC 1035). */
export const COMPUTE_NAME_RE = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** One opaque path segment of a server-issued name (operation IDs, numeric endpoint IDs, …). */
const SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9_.~-]{0,127}$/;

export interface LocationRef {
  project: string;
  location: string;
}

export function locationName(ref: LocationRef): string {
  checkLocation(ref);
  return `projects/${ref.project}/locations/${ref.location}`;
}

export function endpointName(ref: LocationRef & { endpointId: string }): string {
  checkSegment(ref.endpointId, 'endpoint ID');
  return `${locationName(ref)}/endpoints/${ref.endpointId}`;
}

export function modelName(ref: LocationRef & { modelId: string }): string {
  checkSegment(ref.modelId, 'model ID');
  return `${locationName(ref)}/models/${ref.modelId}`;
}

export interface ParsedName extends LocationRef {
  /** The name itself, validated. */
  name: string;
  /** Last segment (endpoint ID, model ID, operation ID). */
  id: string;
}

const KIND_PATTERNS = {
  endpoint: /^projects\/([^/]+)\/locations\/([^/]+)\/endpoints\/([^/]+)$/,
  model: /^projects\/([^/]+)\/locations\/([^/]+)\/models\/([^/@]+)(?:@[^/]+)?$/,
  // Operations live under the location or nested under the resource they act on.
  operation: /^projects\/([^/]+)\/locations\/([^/]+)\/(?:[a-zA-Z]+\/[^/]+\/)*operations\/([^/]+)$/,
} as const;

const EXAMPLES: Record<keyof typeof KIND_PATTERNS, string> = {
  endpoint: 'projects/PROJECT/locations/REGION/endpoints/ENDPOINT_ID',
  model: 'projects/PROJECT/locations/REGION/models/MODEL_ID',
  operation: 'projects/PROJECT/locations/REGION/operations/OPERATION_ID',
};

/** Validates a Vertex resource name (also guards URL paths against `..`, `?`, `#`). */
export function parseVertexName(kind: keyof typeof KIND_PATTERNS, name: string): ParsedName {
  const match = KIND_PATTERNS[kind].exec(name);
  const segments = name.split('/');
  const safe = segments.every((s) => SEGMENT_RE.test(s.replace(/@[A-Za-z0-9_-]+$/, '')));
  if (!match || !safe) {
    throw new InvalidRequestError(`"${name}" is not a Vertex AI ${kind} name; expected ${EXAMPLES[kind]}`);
  }
  const ref = { project: match[1] ?? '', location: match[2] ?? '' };
  checkLocation(ref);
  return { ...ref, name, id: match[3] ?? '' };
}

export function checkLocation(ref: LocationRef): void {
  if (!PROJECT_RE.test(ref.project)) {
    throw new InvalidRequestError(
      `"${ref.project}" is not a Google Cloud project ID (6-30 lowercase letters, digits, hyphens) or number`,
    );
  }
  if (!LOCATION_RE.test(ref.location)) {
    throw new InvalidRequestError(
      `"${ref.location}" is not a location; expected a region such as us-central1`,
    );
  }
}

function checkSegment(value: string, what: string): void {
  if (!SEGMENT_RE.test(value)) {
    throw new InvalidRequestError(`"${value}" is not a valid ${what}`);
  }
}

export function checkComputeName(value: string, what: string): void {
  if (!COMPUTE_NAME_RE.test(value)) {
    throw new InvalidRequestError(
      `"${value}" is not a valid ${what}: 1-63 characters, lowercase letters, digits and hyphens, starting with a letter`,
    );
  }
}

/** Strips a scheme and trailing slash from a host value (`dedicatedEndpointDns` is documented with `https://`). */
export function bareHost(value: string): string {
  return value
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '');
}
