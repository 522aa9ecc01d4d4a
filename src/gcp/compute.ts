import { createHash } from 'node:crypto';
import net from 'node:net';
import { z } from 'zod';
import type { GcpClientConfig } from './config';
import { type GcpApiError, errorFromComputeOperation } from './errors';
import { type CallOptions, type HttpMethod, type HttpTransport, sendJsonCall } from './http';
import { InvalidRequestError, parseInput } from './input';
import { COMPUTE_NAME_RE, LOCATION_RE, PROJECT_RE } from './names';
import {
  type Address,
  AddressSchema,
  type ComputeOperation,
  ComputeOperationSchema,
  type ForwardingRule,
  ForwardingRuleSchema,
} from './schemas';

const SERVICE = 'compute.googleapis.com';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** Compute `requestId`: a UUID other than the all-zero one; a retried insert with the same ID is a no-op. */
const RequestId = z
  .string()
  .regex(UUID_RE, 'must be a UUID (see computeRequestId)')
  .refine((id) => id !== ZERO_UUID, 'the all-zero UUID is not accepted');

/**
 * A deterministic request ID (RFC 4122 name-based, SHA-1) for `seed`, so a retried activity sends
 * the same ID and Compute ignores the duplicate. Seed with something unique per resource and action,
 * e.g. `insert-address:<deployment>`.
 */
export function computeRequestId(seed: string): string {
  const hash = createHash('sha1').update('garden-deploy/compute-request-id\0').update(seed).digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const Project = z.string().regex(PROJECT_RE, 'must be a project ID or number');
const Region = z.string().regex(LOCATION_RE, 'must be a region such as us-central1');
const ResourceName = z
  .string()
  .regex(COMPUTE_NAME_RE, '1-63 of lowercase letters, digits and hyphens, starting with a letter');

const RegionalRef = z.strictObject({ project: Project, region: Region, name: ResourceName });
export type RegionalResourceRef = z.input<typeof RegionalRef>;

const API_PREFIX_RE = /^https:\/\/(?:www|compute)\.googleapis\.com\/compute\/v1\//;
const NETWORK_RE = /^projects\/[^/]+\/global\/networks\/[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBNETWORK_RE = /^projects\/[^/]+\/regions\/[^/]+\/subnetworks\/[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_ATTACHMENT_RE =
  /^projects\/[^/]+\/regions\/[^/]+\/serviceAttachments\/[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const ADDRESS_REF_RE = /^projects\/[^/]+\/regions\/[^/]+\/addresses\/[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/** Full URL or relative name → relative name; a bare name is expanded with `expand`. */
function resourcePath(
  value: string,
  pattern: RegExp,
  expand: ((name: string) => string) | undefined,
): string | undefined {
  const relative = value.replace(API_PREFIX_RE, '');
  if (pattern.test(relative)) return relative;
  if (expand && COMPUTE_NAME_RE.test(value)) return expand(value);
  return undefined;
}

export const InsertAddressInputSchema = z.strictObject({
  project: Project,
  region: Region,
  name: ResourceName,
  /** `projects/P/regions/R/subnetworks/S`, its URL, or just `S` (in the same project and region). */
  subnetwork: z.string().min(1).max(1024),
  /** A specific internal IPv4 in the subnet; the subnet picks one when absent. */
  address: z
    .string()
    .refine((a) => net.isIPv4(a), 'must be an IPv4 address')
    .optional(),
  description: z.string().max(2048).optional(),
  requestId: RequestId,
});
export type InsertAddressInput = z.input<typeof InsertAddressInputSchema>;

export const InsertForwardingRuleInputSchema = z.strictObject({
  project: Project,
  region: Region,
  name: ResourceName,
  /** The PSC service attachment (from the endpoint), `projects/T/regions/R/serviceAttachments/SA` or its URL. */
  target: z.string().min(1).max(1024),
  /** `projects/P/global/networks/N`, its URL, or just `N`. */
  network: z.string().min(1).max(1024),
  /** The reserved address: a literal IPv4, `projects/P/regions/R/addresses/A`, its URL, or just `A`. */
  ipAddress: z.string().min(1).max(1024),
  allowPscGlobalAccess: z.boolean().optional(),
  /** Service Directory registration of the PSC endpoint (namespace `projects/P/locations/R/namespaces/N`). */
  serviceDirectoryRegistration: z
    .strictObject({
      namespace: z.string().regex(/^projects\/[^/]+\/locations\/[^/]+\/namespaces\/[^/]+$/),
      service: z.string().regex(COMPUTE_NAME_RE).optional(),
    })
    .optional(),
  description: z.string().max(2048).optional(),
  requestId: RequestId,
});
export type InsertForwardingRuleInput = z.input<typeof InsertForwardingRuleInputSchema>;

/** The Compute `Address` body for a regional internal address in a subnet (purpose defaults to GCE_ENDPOINT). */
export function buildAddressBody(input: InsertAddressInput): Record<string, unknown> {
  const i = parseInput(InsertAddressInputSchema, input, 'address');
  const subnetwork = resourcePath(
    i.subnetwork,
    SUBNETWORK_RE,
    (s) => `projects/${i.project}/regions/${i.region}/subnetworks/${s}`,
  );
  if (!subnetwork) {
    throw new InvalidRequestError(
      `invalid address: subnetwork "${i.subnetwork}" must be projects/P/regions/R/subnetworks/S or a subnetwork name`,
    );
  }
  return {
    name: i.name,
    addressType: 'INTERNAL',
    subnetwork,
    ...(i.address ? { address: i.address } : {}),
    ...(i.description ? { description: i.description } : {}),
  };
}

/**
 * The Compute `ForwardingRule` body of a PSC endpoint to a published service: JSON field
 * `IPAddress` (capital I and P) and `loadBalancingScheme: ""`, which PSC requires.
 */
export function buildForwardingRuleBody(input: InsertForwardingRuleInput): Record<string, unknown> {
  const i = parseInput(InsertForwardingRuleInputSchema, input, 'forwarding rule');
  const target = resourcePath(i.target, SERVICE_ATTACHMENT_RE, undefined);
  const network = resourcePath(i.network, NETWORK_RE, (n) => `projects/${i.project}/global/networks/${n}`);
  const ipAddress = net.isIPv4(i.ipAddress)
    ? i.ipAddress
    : resourcePath(
        i.ipAddress,
        ADDRESS_REF_RE,
        (a) => `projects/${i.project}/regions/${i.region}/addresses/${a}`,
      );
  const problems = [
    !target &&
      `target "${i.target}" must be a service attachment (projects/P/regions/R/serviceAttachments/NAME)`,
    !network && `network "${i.network}" must be projects/P/global/networks/N or a network name`,
    !ipAddress &&
      `ipAddress "${i.ipAddress}" must be an IPv4 address, projects/P/regions/R/addresses/A or an address name`,
  ].filter(Boolean);
  if (problems.length > 0) throw new InvalidRequestError(`invalid forwarding rule: ${problems.join('; ')}`);
  return {
    name: i.name,
    target,
    network,
    IPAddress: ipAddress,
    loadBalancingScheme: '',
    ...(i.allowPscGlobalAccess !== undefined ? { allowPscGlobalAccess: i.allowPscGlobalAccess } : {}),
    ...(i.serviceDirectoryRegistration
      ? { serviceDirectoryRegistrations: [i.serviceDirectoryRegistration] }
      : {}),
    ...(i.description ? { description: i.description } : {}),
  };
}

/** The failure of a finished Compute operation (`status: DONE` with `error.errors[]`), if any. */
export function computeOperationError(op: ComputeOperation): GcpApiError | undefined {
  if (op.status !== 'DONE' || !op.error || op.error.errors.length === 0) return undefined;
  return errorFromComputeOperation({
    operationName: op.name,
    errors: op.error.errors,
    httpErrorStatusCode: op.httpErrorStatusCode,
  });
}

/** Compute Engine v1 calls for the consumer side of Private Service Connect. */
export class ComputeClient {
  constructor(
    private readonly transport: HttpTransport,
    private readonly config: GcpClientConfig,
  ) {}

  /** `POST compute/v1/projects/P/regions/R/addresses?requestId=…` — reserves an internal address. */
  async insertAddress(input: InsertAddressInput, options: CallOptions = {}): Promise<ComputeOperation> {
    const body = buildAddressBody(input);
    return this.call(
      'POST',
      `${regionPath(input)}/addresses`,
      { requestId: input.requestId },
      body,
      options,
      ComputeOperationSchema,
    );
  }

  async getAddress(ref: RegionalResourceRef, options: CallOptions = {}): Promise<Address> {
    const r = parseInput(RegionalRef, ref, 'address reference');
    return this.call('GET', `${regionPath(r)}/addresses/${r.name}`, {}, undefined, options, AddressSchema);
  }

  async deleteAddress(
    ref: RegionalResourceRef & { requestId?: string },
    options: CallOptions = {},
  ): Promise<ComputeOperation> {
    const { requestId, ...rest } = ref;
    const r = parseInput(RegionalRef, rest, 'address reference');
    const query = {
      requestId: requestId === undefined ? undefined : parseInput(RequestId, requestId, 'requestId'),
    };
    return this.call(
      'DELETE',
      `${regionPath(r)}/addresses/${r.name}`,
      query,
      undefined,
      options,
      ComputeOperationSchema,
    );
  }

  /** `POST compute/v1/projects/P/regions/R/forwardingRules?requestId=…` — the PSC endpoint. */
  async insertForwardingRule(
    input: InsertForwardingRuleInput,
    options: CallOptions = {},
  ): Promise<ComputeOperation> {
    const body = buildForwardingRuleBody(input);
    return this.call(
      'POST',
      `${regionPath(input)}/forwardingRules`,
      { requestId: input.requestId },
      body,
      options,
      ComputeOperationSchema,
    );
  }

  /** Read `pscConnectionStatus` (ACCEPTED when usable) and `IPAddress` here. */
  async getForwardingRule(ref: RegionalResourceRef, options: CallOptions = {}): Promise<ForwardingRule> {
    const r = parseInput(RegionalRef, ref, 'forwarding rule reference');
    return this.call(
      'GET',
      `${regionPath(r)}/forwardingRules/${r.name}`,
      {},
      undefined,
      options,
      ForwardingRuleSchema,
    );
  }

  async deleteForwardingRule(
    ref: RegionalResourceRef & { requestId?: string },
    options: CallOptions = {},
  ): Promise<ComputeOperation> {
    const { requestId, ...rest } = ref;
    const r = parseInput(RegionalRef, rest, 'forwarding rule reference');
    const query = {
      requestId: requestId === undefined ? undefined : parseInput(RequestId, requestId, 'requestId'),
    };
    return this.call(
      'DELETE',
      `${regionPath(r)}/forwardingRules/${r.name}`,
      query,
      undefined,
      options,
      ComputeOperationSchema,
    );
  }

  /** `GET compute/v1/projects/P/regions/R/operations/NAME`; check `computeOperationError` once DONE. */
  async getRegionOperation(
    ref: { project: string; region: string; operation: string },
    options: CallOptions = {},
  ): Promise<ComputeOperation> {
    return this.call('GET', operationPath(ref), {}, undefined, options, ComputeOperationSchema);
  }

  /**
   * `POST compute/v1/projects/P/regions/R/operations/NAME/wait` — returns once the operation is
   * DONE or after about two minutes (Compute's own bound; then check `status`).
   */
  async waitRegionOperation(
    ref: { project: string; region: string; operation: string },
    options: CallOptions = {},
  ): Promise<ComputeOperation> {
    const hold = { ...options, timeoutMs: options.timeoutMs ?? COMPUTE_WAIT_HOLD_MS + 10_000 };
    return this.call('POST', `${operationPath(ref)}/wait`, {}, undefined, hold, ComputeOperationSchema);
  }

  private async call<S extends z.ZodType>(
    method: HttpMethod,
    path: string,
    query: Record<string, string | undefined>,
    body: unknown,
    options: CallOptions,
    schema: S,
  ): Promise<z.output<S>> {
    const url = new URL(`${this.config.computeBaseUrl.replace(/\/+$/, '')}/compute/v1/${path}`);
    return sendJsonCall(
      this.transport,
      this.config,
      { service: SERVICE, method, url, query, body, options },
      schema,
    );
  }
}

const OperationRef = z.strictObject({
  project: Project,
  region: Region,
  operation: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/, 'must be a Compute operation name'),
});

/** How long Compute holds an `operations/NAME/wait` call at most. */
const COMPUTE_WAIT_HOLD_MS = 120_000;

/** `projects/P/regions/R/operations/NAME` of a checked operation reference. */
function operationPath(ref: z.input<typeof OperationRef>): string {
  const r = parseInput(OperationRef, ref, 'operation reference');
  return `${regionPath(r)}/operations/${r.operation}`;
}

function regionPath(ref: { project: string; region: string }): string {
  parseInput(z.object({ project: Project, region: Region }), ref, 'project/region');
  return `projects/${ref.project}/regions/${ref.region}`;
}
