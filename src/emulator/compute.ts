import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { EmulatorCore } from './core';
import { ApiError } from './errors';
import {
  MANAGEMENT_BODY_LIMIT,
  type RequestContext,
  type Route,
  managementRoute,
  parseJsonBody,
  readBody,
  sendJson,
} from './http';
import {
  type AddressRecord,
  type ComputeOperationRecord,
  type ForwardingRuleRecord,
  isProjectNumber,
  numericId,
  projectNumberFor,
  timestamp,
} from './state';

/**
 * Compute Engine v1, the PSC consumer side: regional addresses, forwarding rules that target a
 * Vertex endpoint's service attachment, and the regional operations they return. Field names
 * follow compute.proto / the discovery document (note `IPAddress`).
 */

const COMPUTE_BASE = 'https://www.googleapis.com/compute/v1/';
const NAME_RE = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REQUEST_ID_TTL_MS = 60 * 60 * 1000;

const labels = z.record(z.string().max(63), z.string().max(63)).optional();
/** Output-only fields a client may echo back; Compute ignores them on insert. */
const outputOnly = {
  kind: z.string().optional(),
  id: z.string().optional(),
  selfLink: z.string().optional(),
  creationTimestamp: z.string().optional(),
  region: z.string().optional(),
  labelFingerprint: z.string().optional(),
};

const AddressSchema = z
  .object({
    name: z.string(),
    address: z.string().optional(),
    addressType: z.enum(['INTERNAL', 'EXTERNAL']).optional(),
    purpose: z
      .enum([
        'GCE_ENDPOINT',
        'DNS_RESOLVER',
        'VPC_PEERING',
        'NAT_AUTO',
        'PRIVATE_SERVICE_CONNECT',
        'SHARED_LOADBALANCER_VIP',
        'IPSEC_INTERCONNECT',
        'SERVERLESS',
        'IPV6_ONLY',
      ])
      .optional(),
    subnetwork: z.string().optional(),
    network: z.string().optional(),
    description: z.string().max(2048).optional(),
    labels,
    networkTier: z
      .enum(['PREMIUM', 'STANDARD', 'FIXED_STANDARD', 'STANDARD_OVERRIDES_FIXED_STANDARD'])
      .optional(),
    ipVersion: z.enum(['IPV4', 'IPV6']).optional(),
    prefixLength: z.number().int().min(0).max(128).optional(),
    status: z.string().optional(),
    users: z.array(z.string()).optional(),
    ...outputOnly,
  })
  .strict();

const ForwardingRuleSchema = z
  .object({
    name: z.string(),
    target: z.string().optional(),
    network: z.string().optional(),
    subnetwork: z.string().optional(),
    IPAddress: z.string().optional(),
    IPProtocol: z.string().optional(),
    loadBalancingScheme: z.string().optional(),
    allowPscGlobalAccess: z.boolean().optional(),
    allowGlobalAccess: z.boolean().optional(),
    noAutomateDnsZone: z.boolean().optional(),
    serviceDirectoryRegistrations: z
      .array(
        z
          .object({
            namespace: z.string().optional(),
            service: z.string().optional(),
            serviceDirectoryRegion: z.string().optional(),
          })
          .strict(),
      )
      .max(1)
      .optional(),
    description: z.string().max(2048).optional(),
    labels,
    networkTier: z.enum(['PREMIUM', 'STANDARD']).optional(),
    ipVersion: z.enum(['IPV4', 'IPV6']).optional(),
    backendService: z.string().optional(),
    portRange: z.string().optional(),
    ports: z.array(z.string()).optional(),
    allPorts: z.boolean().optional(),
    pscConnectionId: z.string().optional(),
    pscConnectionStatus: z.string().optional(),
    fingerprint: z.string().optional(),
    ...outputOnly,
  })
  .strict();

/** zod issues → Compute's messages (`Invalid value for field 'resource.x': ...`, unknown names). */
function invalidBody(error: z.ZodError, resourceField: string): ApiError {
  const messages = error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys
        .map(
          (key) =>
            `Invalid JSON payload received. Unknown name "${key}" at '${resourceField}${issue.path.length ? `.${issue.path.join('.')}` : ''}': Cannot find field.`,
        )
        .join('\n');
    }
    return `Invalid value for field 'resource.${issue.path.join('.')}': ${issue.message}.`;
  });
  return new ApiError('INVALID_ARGUMENT', messages.join('\n'), { computeReason: 'invalid' });
}

function invalidField(field: string, value: string, why: string): ApiError {
  return new ApiError('INVALID_ARGUMENT', `Invalid value for field '${field}': '${value}'. ${why}`, {
    computeReason: 'invalid',
  });
}

/** Compute names resources by project id; a number is mapped back to the id when known. */
function computeProject(core: EmulatorCore, param: string): string {
  return isProjectNumber(param)
    ? (core.resolveProject(param).id ?? param)
    : (core.resolveProject(param), param);
}

function stripComputeUrl(value: string): string {
  return value.replace(/^https:\/\/(www|compute)\.googleapis\.com\/compute\/(v1|beta|alpha)\//, '');
}

function regionUrl(projectId: string, region: string): string {
  return `${COMPUTE_BASE}projects/${projectId}/regions/${region}`;
}

function fingerprint(seed: string): string {
  return createHash('sha256').update(seed).digest('base64').slice(0, 12);
}

function checkRequestId(url: URL): string | undefined {
  const requestId = url.searchParams.get('requestId') ?? undefined;
  if (requestId !== undefined && (!UUID_RE.test(requestId) || /^[0-]+$/.test(requestId))) {
    throw invalidField(
      'requestId',
      requestId,
      'The request ID must be a valid UUID with the exception that zero UUID is not supported (00000000-0000-0000-0000-000000000000).',
    );
  }
  for (const key of url.searchParams.keys()) {
    if (
      key !== 'requestId' &&
      key !== 'alt' &&
      key !== 'prettyPrint' &&
      key !== 'fields' &&
      key !== 'quotaUser'
    ) {
      throw new ApiError(
        'INVALID_ARGUMENT',
        `Invalid JSON payload received. Unknown name "${key}": Cannot bind query parameter.`,
        {
          computeReason: 'invalid',
        },
      );
    }
  }
  return requestId;
}

/** A regional insert or delete that goes ahead: where it acts, on what key, under which requestId. */
interface RegionalChange {
  projectId: string;
  region: string;
  requestId: string | undefined;
  key: string;
}

/**
 * A retried insert/delete with the same requestId gets the original operation back: answered here,
 * and true, when this call is such a retry.
 */
function answeredReplay(
  core: EmulatorCore,
  ctx: RequestContext,
  projectId: string,
  requestId: string | undefined,
): boolean {
  if (!requestId) return false;
  const previous = Object.values(core.state.computeOperations).find(
    (op) =>
      op.projectId === projectId && op.requestId === requestId && ctx.now - op.insertTime < REQUEST_ID_TTL_MS,
  );
  if (previous) sendJson(ctx.res, 200, computeOperationJson(previous));
  return previous !== undefined;
}

function operationName(now: number): string {
  return `operation-${now}-${randomBytes(7).toString('hex').slice(0, 13)}-${randomBytes(4).toString('hex')}-${randomBytes(4).toString('hex')}`;
}

function newOperation(
  core: EmulatorCore,
  ctx: RequestContext,
  change: RegionalChange,
  fields: Pick<ComputeOperationRecord, 'operationType' | 'targetId' | 'apply'>,
): ComputeOperationRecord {
  const { projectId, region, requestId } = change;
  const name = operationName(ctx.now);
  const op: ComputeOperationRecord = {
    key: `projects/${projectId}/regions/${region}/operations/${name}`,
    projectId,
    region,
    name,
    id: numericId(),
    insertTime: ctx.now,
    doneAt: ctx.now + core.timing(projectNumberFor(projectId)).computeOperationMs,
    done: false,
    operationType: fields.operationType,
    targetLink: `${COMPUTE_BASE}${change.key}`,
    targetId: fields.targetId,
    apply: fields.apply,
    ...(requestId ? { requestId } : {}),
  };
  core.state.computeOperations[op.key] = op;
  core.markDirty();
  return op;
}

export function computeOperationJson(op: ComputeOperationRecord): Record<string, unknown> {
  const failed = op.failure;
  return {
    kind: 'compute#operation',
    id: op.id,
    name: op.name,
    operationType: op.operationType,
    targetLink: op.targetLink,
    targetId: op.targetId,
    status: op.done ? 'DONE' : 'RUNNING',
    user: `garden-deploy-emulator@${op.projectId}.iam.gserviceaccount.com`,
    progress: op.done ? 100 : 0,
    insertTime: timestamp(op.insertTime),
    startTime: timestamp(op.insertTime),
    ...(op.done ? { endTime: timestamp(op.doneAt) } : {}),
    selfLink: `${COMPUTE_BASE}${op.key}`,
    region: regionUrl(op.projectId, op.region),
    ...(op.done && failed
      ? {
          error: { errors: [{ code: failed.code, message: failed.message }] },
          httpErrorStatusCode: failed.httpStatus,
          httpErrorMessage: failed.httpMessage,
        }
      : {}),
  };
}

function usersOf(core: EmulatorCore, address: AddressRecord): string[] {
  return Object.values(core.state.forwardingRules)
    .filter((rule) => rule.addressKey === address.key)
    .map((rule) => `${COMPUTE_BASE}${rule.key}`);
}

export function addressJson(core: EmulatorCore, address: AddressRecord): Record<string, unknown> {
  const users = usersOf(core, address);
  return {
    kind: 'compute#address',
    id: address.id,
    creationTimestamp: timestamp(address.creationTimestamp),
    name: address.name,
    ...(address.description ? { description: address.description } : {}),
    address: address.address,
    status: users.length ? 'IN_USE' : 'RESERVED',
    region: regionUrl(address.projectId, address.region),
    selfLink: `${COMPUTE_BASE}${address.key}`,
    ...(users.length ? { users } : {}),
    networkTier: address.networkTier ?? 'PREMIUM',
    ...(address.labels ? { labels: address.labels } : {}),
    labelFingerprint: fingerprint(JSON.stringify(address.labels ?? {})),
    addressType: address.addressType,
    ...(address.purpose ? { purpose: address.purpose } : {}),
    ...(address.subnetwork ? { subnetwork: `${COMPUTE_BASE}${address.subnetwork}` } : {}),
    ...(address.network ? { network: `${COMPUTE_BASE}${address.network}` } : {}),
    ...(address.ipVersion ? { ipVersion: address.ipVersion } : {}),
    ...(address.prefixLength !== undefined ? { prefixLength: address.prefixLength } : {}),
  };
}

export type PscConnectionStatus = 'PENDING' | 'ACCEPTED' | 'REJECTED' | 'CLOSED';

/**
 * The producer's answer: PENDING until the decision time, then ACCEPTED when the consumer project
 * is on the endpoint's allowlist, REJECTED when not, CLOSED once the endpoint is gone.
 */
export function pscConnectionStatus(
  core: EmulatorCore,
  rule: ForwardingRuleRecord,
  now: number,
): PscConnectionStatus {
  if (now < rule.pscDecisionAt) return 'PENDING';
  const endpoint = Object.values(core.state.endpoints).find((e) => e.psc?.serviceAttachment === rule.target);
  if (!endpoint) return 'CLOSED';
  const consumer = new Set([rule.projectId, projectNumberFor(rule.projectId)]);
  const allowed = endpoint.psc!.projectAllowlist.some(
    (p) => consumer.has(p) || consumer.has(isProjectNumber(p) ? p : projectNumberFor(p)),
  );
  return allowed ? 'ACCEPTED' : 'REJECTED';
}

export function forwardingRuleJson(
  core: EmulatorCore,
  rule: ForwardingRuleRecord,
  now: number,
): Record<string, unknown> {
  return {
    kind: 'compute#forwardingRule',
    id: rule.id,
    creationTimestamp: timestamp(rule.creationTimestamp),
    name: rule.name,
    ...(rule.description ? { description: rule.description } : {}),
    region: regionUrl(rule.projectId, rule.region),
    IPAddress: rule.ipAddress,
    target: `${COMPUTE_BASE}${rule.target}`,
    selfLink: `${COMPUTE_BASE}${rule.key}`,
    ...(rule.network ? { network: `${COMPUTE_BASE}${rule.network}` } : {}),
    ...(rule.subnetwork ? { subnetwork: `${COMPUTE_BASE}${rule.subnetwork}` } : {}),
    networkTier: 'PREMIUM',
    ...(rule.labels ? { labels: rule.labels } : {}),
    labelFingerprint: fingerprint(JSON.stringify(rule.labels ?? {})),
    fingerprint: fingerprint(`${rule.key}#${rule.id}`),
    pscConnectionId: rule.pscConnectionId,
    pscConnectionStatus: pscConnectionStatus(core, rule, now),
    ...(rule.serviceDirectoryRegistrations
      ? { serviceDirectoryRegistrations: rule.serviceDirectoryRegistrations }
      : {}),
    ...(rule.allowPscGlobalAccess ? { allowPscGlobalAccess: true } : {}),
    ...(rule.noAutomateDnsZone ? { noAutomateDnsZone: true } : {}),
  };
}

function notFound(key: string): ApiError {
  return new ApiError('NOT_FOUND', `The resource '${key}' was not found`, { computeReason: 'notFound' });
}

function alreadyExists(key: string): ApiError {
  return new ApiError('ALREADY_EXISTS', `The resource '${key}' already exists`, {
    computeReason: 'alreadyExists',
  });
}

/** Pending inserts count as existing: a second insert of the same name conflicts. */
function pendingInsert(core: EmulatorCore, key: string): boolean {
  return Object.values(core.state.computeOperations).some(
    (op) =>
      !op.done &&
      (op.apply.kind === 'createAddress' || op.apply.kind === 'createForwardingRule') &&
      op.apply.record.key === key,
  );
}

/**
 * Deterministic internal address for a subnetwork: 10.<subnet hash>.<n>.<m>, the first one free in
 * the whole emulator. Real VPCs may overlap, but here a prediction call finds its PSC endpoint by IP
 * alone, so two consumer networks must never hand out the same address.
 */
function allocateInternalAddress(
  core: EmulatorCore,
  projectId: string,
  region: string,
  subnetwork: string | undefined,
): string {
  const second =
    createHash('sha256')
      .update(`${projectId}/${region}/${subnetwork ?? 'default'}`)
      .digest()[0]! % 250;
  const taken = takenAddresses(core);
  for (let n = 2; n < 65_000; n++) {
    const candidate = `10.${second}.${Math.floor(n / 256)}.${n % 256}`;
    if (n % 256 !== 0 && n % 256 !== 255 && !taken.has(candidate)) return candidate;
  }
  throw new ApiError(
    'RESOURCE_EXHAUSTED',
    `No free internal IP address left in ${subnetwork ?? 'the default subnetwork'}.`,
    { computeReason: 'ipSpaceExhausted' },
  );
}

/** Addresses reserved (or being reserved) in one project and region, or anywhere. */
function takenAddresses(core: EmulatorCore, scope?: { projectId: string; region: string }): Set<string> {
  const all = [
    ...Object.values(core.state.addresses),
    ...Object.values(core.state.computeOperations).flatMap((op) =>
      !op.done && op.apply.kind === 'createAddress' ? [op.apply.record] : [],
    ),
  ];
  return new Set(
    all
      .filter((a) => !scope || (a.projectId === scope.projectId && a.region === scope.region))
      .map((a) => a.address),
  );
}

async function readResource<T>(ctx: RequestContext, schema: z.ZodType<T>, resourceField: string): Promise<T> {
  const body = parseJsonBody(await readBody(ctx.req, MANAGEMENT_BODY_LIMIT));
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw invalidBody(parsed.error, resourceField);
  return parsed.data;
}

/**
 * The checks every regional insert makes first, in Compute's order: query, body, a retried
 * requestId (answered with its original operation: then undefined), the name, a name in use.
 */
async function beginInsert<T extends { name: string }>(
  core: EmulatorCore,
  ctx: RequestContext,
  collection: 'addresses' | 'forwardingRules',
  schema: z.ZodType<T>,
  resourceField: string,
): Promise<(RegionalChange & { body: T }) | undefined> {
  const projectId = computeProject(core, ctx.params[0]!);
  const region = ctx.params[1]!;
  const requestId = checkRequestId(ctx.url);
  const body = await readResource(ctx, schema, resourceField);
  if (answeredReplay(core, ctx, projectId, requestId)) return undefined;
  if (!NAME_RE.test(body.name)) {
    throw invalidField(
      'resource.name',
      body.name,
      "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
    );
  }
  const key = `projects/${projectId}/regions/${region}/${collection}/${body.name}`;
  if (core.state[collection][key] || pendingInsert(core, key)) throw alreadyExists(key);
  return { projectId, region, requestId, key, body };
}

/** The start every regional delete shares; undefined when a retried requestId was answered. */
function beginDelete(
  core: EmulatorCore,
  ctx: RequestContext,
  collection: 'addresses' | 'forwardingRules',
): RegionalChange | undefined {
  const projectId = computeProject(core, ctx.params[0]!);
  const region = ctx.params[1]!;
  const requestId = checkRequestId(ctx.url);
  if (answeredReplay(core, ctx, projectId, requestId)) return undefined;
  return {
    projectId,
    region,
    requestId,
    key: `projects/${projectId}/regions/${region}/${collection}/${ctx.params[2]}`,
  };
}

async function insertAddress(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const insert = await beginInsert(core, ctx, 'addresses', AddressSchema, 'address_resource');
  if (!insert) return;
  const { projectId, region, key, body } = insert;
  const addressType = body.addressType ?? 'EXTERNAL';
  const subnetwork = body.subnetwork ? stripComputeUrl(body.subnetwork) : undefined;
  if (subnetwork && addressType !== 'INTERNAL') {
    throw invalidField(
      'resource.subnetwork',
      body.subnetwork!,
      'A subnetwork can only be given for INTERNAL addresses.',
    );
  }
  let ip = body.address;
  if (ip !== undefined) {
    if (!IPV4_RE.test(ip))
      throw invalidField('resource.address', ip, 'Must be an IPv4 address such as 10.10.0.5.');
    if (takenAddresses(core, { projectId, region }).has(ip)) {
      throw new ApiError(
        'INVALID_ARGUMENT',
        `IP address '${ip}' is already being used by another resource.`,
        { computeReason: 'ipInUseByAnotherResource' },
      );
    }
  } else {
    ip =
      addressType === 'INTERNAL'
        ? allocateInternalAddress(core, projectId, region, subnetwork)
        : `34.${createHash('sha256').update(key).digest()[0]! % 250}.${Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
  }
  const record: AddressRecord = {
    key,
    projectId,
    region,
    name: body.name,
    id: numericId(),
    address: ip,
    addressType,
    ...(addressType === 'INTERNAL'
      ? { purpose: body.purpose ?? 'GCE_ENDPOINT' }
      : body.purpose
        ? { purpose: body.purpose }
        : {}),
    ...(subnetwork ? { subnetwork } : {}),
    ...(body.network ? { network: stripComputeUrl(body.network) } : {}),
    ...(body.description ? { description: body.description } : {}),
    ...(body.labels ? { labels: body.labels } : {}),
    ...(body.networkTier ? { networkTier: body.networkTier } : {}),
    ...(body.ipVersion ? { ipVersion: body.ipVersion } : {}),
    ...(body.prefixLength !== undefined ? { prefixLength: body.prefixLength } : {}),
    creationTimestamp: ctx.now,
  };
  const op = newOperation(core, ctx, insert, {
    operationType: 'insert',
    targetId: record.id,
    apply: { kind: 'createAddress', record },
  });
  sendJson(ctx.res, 200, computeOperationJson(op));
}

function getAddress(core: EmulatorCore, ctx: RequestContext): void {
  checkRequestId(ctx.url);
  const key = `projects/${computeProject(core, ctx.params[0]!)}/regions/${ctx.params[1]}/addresses/${ctx.params[2]}`;
  const address = core.state.addresses[key];
  if (!address) throw notFound(key);
  sendJson(ctx.res, 200, addressJson(core, address));
}

function deleteAddress(core: EmulatorCore, ctx: RequestContext): void {
  const change = beginDelete(core, ctx, 'addresses');
  if (!change) return;
  const { key } = change;
  const address = core.state.addresses[key];
  if (!address) throw notFound(key);
  const users = usersOf(core, address);
  if (users.length) {
    throw new ApiError(
      'FAILED_PRECONDITION',
      `The address resource '${key}' is already being used by '${stripComputeUrl(users[0]!)}'`,
      {
        computeReason: 'resourceInUseByAnotherResource',
      },
    );
  }
  const op = newOperation(core, ctx, change, {
    operationType: 'delete',
    targetId: address.id,
    apply: { kind: 'deleteAddress', key },
  });
  sendJson(ctx.res, 200, computeOperationJson(op));
}

/** An address reference (literal IP, URL, partial URL or name) → the reserved address in this project/region. */
function resolveAddress(
  core: EmulatorCore,
  projectId: string,
  region: string,
  reference: string,
): AddressRecord | undefined {
  const addresses = Object.values(core.state.addresses).filter(
    (a) => a.projectId === projectId && a.region === region,
  );
  if (IPV4_RE.test(reference)) return addresses.find((a) => a.address === reference);
  const path = stripComputeUrl(reference);
  const name = path.split('/').pop()!;
  const key = path.startsWith('projects/')
    ? path
    : `projects/${projectId}/regions/${region}/addresses/${name}`;
  return core.state.addresses[key];
}

async function insertForwardingRule(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const insert = await beginInsert(
    core,
    ctx,
    'forwardingRules',
    ForwardingRuleSchema,
    'forwarding_rule_resource',
  );
  if (!insert) return;
  const { projectId, region, key, body } = insert;
  if (!body.target) {
    throw invalidField(
      'resource.target',
      '',
      'A Private Service Connect endpoint needs the service attachment as its target.',
    );
  }
  const target = stripComputeUrl(body.target);
  const targetMatch = /^projects\/[^/]+\/regions\/([^/]+)\/serviceAttachments\/[^/]+$/.exec(target);
  if (!targetMatch) {
    throw invalidField(
      'resource.target',
      body.target,
      'Expected a service attachment: projects/PROJECT/regions/REGION/serviceAttachments/NAME.',
    );
  }
  if (targetMatch[1] !== region) {
    throw invalidField(
      'resource.target',
      body.target,
      `The service attachment is in region ${targetMatch[1]}; the forwarding rule must be in the same region.`,
    );
  }
  if (body.loadBalancingScheme !== undefined && body.loadBalancingScheme !== '') {
    throw invalidField(
      'resource.loadBalancingScheme',
      body.loadBalancingScheme,
      'Forwarding rules that target a service attachment (Private Service Connect endpoints) must leave loadBalancingScheme empty.',
    );
  }
  if (body.backendService) {
    throw invalidField(
      'resource.backendService',
      body.backendService,
      'A forwarding rule has either a target or a backendService, not both.',
    );
  }
  if (!body.network) {
    throw invalidField(
      'resource.network',
      '',
      'Network is required for Private Service Connect forwarding rules.',
    );
  }
  if (!body.IPAddress) {
    throw invalidField(
      'resource.IPAddress',
      '',
      'Reserve an INTERNAL address in the subnetwork and pass its name, URL or IP.',
    );
  }
  const address = resolveAddress(core, projectId, region, body.IPAddress);
  if (!address) {
    throw invalidField(
      'resource.IPAddress',
      body.IPAddress,
      `No reserved address matches it in projects/${projectId}/regions/${region}; reserve one first.`,
    );
  }
  if (address.addressType !== 'INTERNAL') {
    throw invalidField(
      'resource.IPAddress',
      body.IPAddress,
      'Private Service Connect endpoints need an INTERNAL address.',
    );
  }
  const inUse = usersOf(core, address);
  const pendingUse = Object.values(core.state.computeOperations).some(
    (op) =>
      !op.done && op.apply.kind === 'createForwardingRule' && op.apply.record.addressKey === address.key,
  );
  if (inUse.length || pendingUse) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `IP address '${address.address}' is already being used by another resource.`,
      {
        computeReason: 'ipInUseByAnotherResource',
      },
    );
  }
  const timing = core.timing(projectNumberFor(projectId));
  const record: ForwardingRuleRecord = {
    key,
    projectId,
    region,
    name: body.name,
    id: numericId(),
    ipAddress: address.address,
    addressKey: address.key,
    target,
    network: stripComputeUrl(body.network),
    ...(body.subnetwork ? { subnetwork: stripComputeUrl(body.subnetwork) } : {}),
    ...(body.description ? { description: body.description } : {}),
    ...(body.labels ? { labels: body.labels } : {}),
    loadBalancingScheme: '',
    ...(body.allowPscGlobalAccess ? { allowPscGlobalAccess: true } : {}),
    ...(body.noAutomateDnsZone ? { noAutomateDnsZone: true } : {}),
    ...(body.serviceDirectoryRegistrations
      ? { serviceDirectoryRegistrations: body.serviceDirectoryRegistrations }
      : {}),
    pscConnectionId: numericId(17),
    creationTimestamp: ctx.now,
    pscDecisionAt: ctx.now + timing.computeOperationMs + timing.pscAcceptMs,
  };
  // The attachment is looked up when the operation runs, as Compute does: DONE with an error.
  const attachmentExists = Object.values(core.state.endpoints).some(
    (e) => e.psc?.serviceAttachment === target,
  );
  const op = newOperation(core, ctx, insert, {
    operationType: 'insert',
    targetId: record.id,
    apply: { kind: 'createForwardingRule', record },
  });
  if (!attachmentExists) {
    op.failure = {
      code: 'RESOURCE_NOT_FOUND',
      message: `The resource '${target}' was not found`,
      httpStatus: 404,
      httpMessage: 'NOT FOUND',
    };
  }
  sendJson(ctx.res, 200, computeOperationJson(op));
}

function getForwardingRule(core: EmulatorCore, ctx: RequestContext): void {
  checkRequestId(ctx.url);
  const key = `projects/${computeProject(core, ctx.params[0]!)}/regions/${ctx.params[1]}/forwardingRules/${ctx.params[2]}`;
  const rule = core.state.forwardingRules[key];
  if (!rule) throw notFound(key);
  sendJson(ctx.res, 200, forwardingRuleJson(core, rule, ctx.now));
}

function deleteForwardingRule(core: EmulatorCore, ctx: RequestContext): void {
  const change = beginDelete(core, ctx, 'forwardingRules');
  if (!change) return;
  const { key } = change;
  const rule = core.state.forwardingRules[key];
  if (!rule) throw notFound(key);
  const op = newOperation(core, ctx, change, {
    operationType: 'delete',
    targetId: rule.id,
    apply: { kind: 'deleteForwardingRule', key },
  });
  sendJson(ctx.res, 200, computeOperationJson(op));
}

function findOperation(core: EmulatorCore, ctx: RequestContext): ComputeOperationRecord {
  const key = `projects/${computeProject(core, ctx.params[0]!)}/regions/${ctx.params[1]}/operations/${ctx.params[2]}`;
  const op = core.state.computeOperations[key];
  if (!op) throw notFound(key);
  return op;
}

function isDone(core: EmulatorCore, op: ComputeOperationRecord): boolean {
  return (core.state.computeOperations[op.key] ?? op).done;
}

function getOperation(core: EmulatorCore, ctx: RequestContext): void {
  checkRequestId(ctx.url);
  sendJson(ctx.res, 200, computeOperationJson(findOperation(core, ctx)));
}

/** `operations/{op}/wait`: returns when DONE or after at most two minutes, like Compute. */
async function waitOperation(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  checkRequestId(ctx.url);
  const op = findOperation(core, ctx);
  if (!(await core.until(() => isDone(core, op), ctx.now + 120_000, ctx.res))) return;
  sendJson(ctx.res, 200, computeOperationJson(core.state.computeOperations[op.key] ?? op));
}

const R = '/compute/v1/projects/([^/]+)/regions/([^/]+)';

export function computeRoutes(core: EmulatorCore): Route[] {
  const route = managementRoute(core, 'compute', (params) => params[0]);
  return [
    route('compute.addresses.insert', 'POST', `${R}/addresses`, 'compute.addresses.create', insertAddress),
    route('compute.addresses.get', 'GET', `${R}/addresses/([^/]+)`, 'compute.addresses.get', getAddress),
    route(
      'compute.addresses.delete',
      'DELETE',
      `${R}/addresses/([^/]+)`,
      'compute.addresses.delete',
      deleteAddress,
    ),
    route(
      'compute.forwardingRules.insert',
      'POST',
      `${R}/forwardingRules`,
      'compute.forwardingRules.create',
      insertForwardingRule,
    ),
    route(
      'compute.forwardingRules.get',
      'GET',
      `${R}/forwardingRules/([^/]+)`,
      'compute.forwardingRules.get',
      getForwardingRule,
    ),
    route(
      'compute.forwardingRules.delete',
      'DELETE',
      `${R}/forwardingRules/([^/]+)`,
      'compute.forwardingRules.delete',
      deleteForwardingRule,
    ),
    route(
      'compute.regionOperations.get',
      'GET',
      `${R}/operations/([^/]+)`,
      'compute.regionOperations.get',
      getOperation,
    ),
    route(
      'compute.regionOperations.wait',
      'POST',
      `${R}/operations/([^/]+)/wait`,
      'compute.regionOperations.get',
      waitOperation,
    ),
  ];
}
