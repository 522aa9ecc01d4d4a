import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { RpcStatus } from './errors';
import type { TimingInput } from './options';

/**
 * The emulator's whole world as plain JSON: resources keyed by their full resource names, the
 * operations that change them, issued tokens and call statistics. Times are epoch milliseconds, so
 * a state saved to disk resumes exactly where it was (running operations keep their deadlines).
 */

/** What config.json says about the model: what a serving container checks its flags and memory against. */
export interface ModelFacts {
  architecture: string;
  /** `max_position_embeddings`. */
  maxModelLen?: number;
  /** Parameters the server allocates at start (counted from config.json). */
  parameters?: number;
  /** config.json's `torch_dtype` as vLLM names it (`bfloat16`, `float16`, `float32`), what `--dtype auto` takes. */
  dtype?: string;
  numLayers?: number;
}

/** What the serving container learned from the model folder; kept with the model for inference. */
export interface ServedModel extends ModelFacts {
  /** Family id from `src/models` when the architecture is one we know. */
  family?: string;
  /** Chat completions need a chat template, as in vLLM. */
  chatTemplate: boolean;
  /** Bytes of the tensors the safetensors headers declare. */
  weightBytes?: number;
}

/** Result of the serving stack reading the model folder (see `serving.ts`). */
export type ServingInspection =
  | { ok: true; served: ServedModel }
  | { ok: false; stage: 'import'; error: RpcStatus }
  | {
      ok: false;
      stage: 'serving';
      error: RpcStatus;
      /** The server's last log line (quoted in `error`) and what it was loading when it died. */
      logLine?: string;
      phase?: 'tokenizer' | 'weights';
      /** config.json's facts (read before the server failed). */
      facts?: ModelFacts;
    };

/**
 * A deployed model whose replicas never become ready: its container starts again and again, and
 * each attempt's lines are logged as it happens (see `container.ts`).
 */
export interface StuckContainer {
  cause: 'healthTimeout' | 'wrongPort';
  /** The port the server listens on, and the one Vertex sends its health checks to. */
  listenPort: number;
  probePort: number;
  healthRoute: string;
  /** When the deployment's own attempt ended; restarts follow every `restartMs`. */
  since: number;
  /** Restarts logged so far. */
  logged: number;
}

export interface DeployedModelRecord {
  id: string;
  model: string;
  displayName: string;
  createTime: number;
  /** Canonical `DedicatedResources` JSON as requested (with server defaults filled in). */
  dedicatedResources: Record<string, unknown>;
  /**
   * Replicas the current ramp brings up: min_replica_count (the initial count with scale-to-zero)
   * after the deploy, the new min_replica_count after a mutation.
   */
  initialReplicas: number;
  /** Replicas already available when the ramp starts (0 after a deploy; kept ones after a mutation). */
  rampFrom?: number;
  /** Ramped replica k of the n − rampFrom new ones becomes available at rampStart + rampMs·k/(n − rampFrom). */
  rampStart: number;
  rampMs: number;
  neverReady: boolean;
  systemLabels?: Record<string, string>;
  fastTryoutEnabled?: boolean;
  enableContainerLogging?: boolean;
  enableAccessLogging?: boolean;
  /** Set when no replica ever becomes ready (with `neverReady`). */
  stuck?: StuckContainer;
  served: ServedModel;
}

/** The fields Endpoints and Models share, all that their PATCH and etag need. */
export interface VertexResourceRecord {
  name: string;
  /** Project number. */
  project: string;
  location: string;
  id: string;
  displayName: string;
  description?: string;
  labels: Record<string, string>;
  createTime: number;
  updateTime: number;
  revision: number;
}

/** Every change to an Endpoint or Model moves its updateTime and revision (and so its etag). */
export function touch(resource: VertexResourceRecord, now: number): void {
  resource.updateTime = now;
  resource.revision += 1;
}

export interface EndpointRecord extends VertexResourceRecord {
  dedicatedEndpointEnabled: boolean;
  psc?: {
    projectAllowlist: string[];
    enableSecurePrivateServiceConnect?: boolean;
    /** Set once a model is deployed (the producer side exists from then on). */
    serviceAttachment?: string;
  };
  deployedModels: DeployedModelRecord[];
  trafficSplit: Record<string, number>;
  /** Set by UpdateEndpointLongRunning (`:update`). */
  clientConnectionConfig?: { inferenceTimeout?: string };
  /** Inference requests routed so far: the n-th takes routing draw n (see `traffic.ts`). */
  requestCount?: number;
}

export interface ModelRecord extends VertexResourceRecord {
  artifactUri: string;
  containerSpec?: Record<string, unknown>;
  served?: ServedModel;
}

/** What a deploy-only fault (or the quota check) decided when the deployment was accepted. */
export type DeployFault = 'quotaExhausted' | 'replicasNeverReady' | 'outOfMemory';

export interface DeployWork {
  gcsUri: string;
  /** When the Model and Endpoint appear (or an import-stage failure ends the operation). */
  importAt: number;
  endpointId: string;
  modelId: string;
  deployedModelId: string;
  endpointDisplayName: string;
  modelDisplayName: string;
  dedicatedResources: Record<string, unknown>;
  initialReplicas: number;
  /** `model_config.container_spec` when the request overrides the serving container. */
  containerSpec?: Record<string, unknown>;
  dedicatedEndpointEnabled: boolean;
  psc?: { projectAllowlist: string[]; enableSecurePrivateServiceConnect?: boolean };
  systemLabels?: Record<string, string>;
  fastTryoutEnabled?: boolean;
  fault?: DeployFault;
  /**
   * The `createsAfterCancel` fault: a `:cancel` sets `endsAt` (cancel + `ms`) instead of ending the
   * operation; then the Model and Endpoint are created (if not yet) and it ends CANCELLED.
   */
  createsAfterCancel?: { ms: number; endsAt?: number };
  inspection?: ServingInspection;
  /** Model and Endpoint have been created (import stage passed). */
  created: boolean;
}

/** A `:mutateDeployedModel` in flight; the change applies at the operation's `doneAt`. */
export interface MutateWork {
  deployedModelId: string;
  /** The deployed model's whole `DedicatedResources` JSON after the change. */
  dedicatedResources: Record<string, unknown>;
  /** Present when the mask names enable_container_logging. */
  enableContainerLogging?: boolean;
  /** Set once the change is applied: the operation ends when this many replicas are available. */
  waitFor?: number;
}

/** An `endpoints.deployModel` in flight; the model is deployed at the operation's `doneAt`. */
export interface DeployModelWork {
  /** The id the request gave, or the one generated when it was accepted. */
  deployedModelId: string;
  /** Canonical Model name (project number, no version suffix). */
  model: string;
  /** Empty means the Model's display name. */
  displayName?: string;
  dedicatedResources: Record<string, unknown>;
  initialReplicas: number;
  enableContainerLogging?: boolean;
  /** The request's non-empty split, "0" (or the given id) standing for the new model. */
  trafficSplit?: Record<string, number>;
  fault?: DeployFault;
  enableAccessLogging?: boolean;
}

export type VertexOperationKind =
  | 'deploy'
  | 'deployModel'
  | 'undeploy'
  | 'mutateDeployedModel'
  | 'updateEndpoint'
  | 'deleteEndpoint'
  | 'deleteModel';

export interface VertexOperationRecord {
  name: string;
  project: string;
  location: string;
  kind: VertexOperationKind;
  createTime: number;
  updateTime: number;
  /** When the operation may complete (deploys also wait for the weight inspection). */
  doneAt: number;
  done: boolean;
  error?: RpcStatus;
  response?: Record<string, unknown>;
  /** Resource the operation acts on (endpoint or model name). */
  target?: string;
  deploy?: DeployWork;
  deployModel?: DeployModelWork;
  undeploy?: { deployedModelId: string; trafficSplit?: Record<string, number> };
  mutate?: MutateWork;
  /** UpdateEndpointLongRunning: the endpoint's new `clientConnectionConfig` (absent = cleared). */
  update?: { clientConnectionConfig?: { inferenceTimeout?: string } };
}

export interface AddressRecord {
  /** `projects/{projectId}/regions/{region}/addresses/{name}` */
  key: string;
  projectId: string;
  region: string;
  name: string;
  id: string;
  address: string;
  addressType: string;
  purpose?: string;
  subnetwork?: string;
  network?: string;
  description?: string;
  labels?: Record<string, string>;
  networkTier?: string;
  ipVersion?: string;
  prefixLength?: number;
  creationTimestamp: number;
}

export interface ForwardingRuleRecord {
  key: string;
  projectId: string;
  region: string;
  name: string;
  id: string;
  ipAddress: string;
  /** Key of the reserved address the rule uses, when it names one. */
  addressKey?: string;
  target: string;
  network?: string;
  subnetwork?: string;
  description?: string;
  labels?: Record<string, string>;
  loadBalancingScheme: string;
  allowPscGlobalAccess?: boolean;
  noAutomateDnsZone?: boolean;
  serviceDirectoryRegistrations?: Record<string, unknown>[];
  pscConnectionId: string;
  creationTimestamp: number;
  /** `pscConnectionStatus` leaves PENDING at this time. */
  pscDecisionAt: number;
}

export interface ComputeOperationRecord {
  /** `projects/{projectId}/regions/{region}/operations/{name}` */
  key: string;
  projectId: string;
  region: string;
  name: string;
  id: string;
  operationType: 'insert' | 'delete';
  targetLink: string;
  targetId: string;
  insertTime: number;
  doneAt: number;
  done: boolean;
  requestId?: string;
  /** Set when the operation ends DONE with an error instead of applying its change. */
  failure?: { code: string; message: string; httpStatus: number; httpMessage: string };
  /** Applied when the operation completes. */
  apply:
    | { kind: 'createAddress'; record: AddressRecord }
    | { kind: 'createForwardingRule'; record: ForwardingRuleRecord }
    | { kind: 'deleteAddress'; key: string }
    | { kind: 'deleteForwardingRule'; key: string };
}

export interface TokenRecord {
  accessToken: string;
  issuedAt: number;
  expiresAt: number;
  scope?: string;
}

/** A region's accelerator quota as the admin API set it (keys: AcceleratorType names). */
export interface RegionQuota {
  /** Limits other than the default. */
  limits?: Record<string, number>;
  /** Usage on top of what the emulator's own deployments charge. */
  usage?: Record<string, number>;
  /** When `usage` was last set (Monitoring's usage series steps there). */
  usageSetAt?: number;
}

export interface ProjectRecord {
  id?: string;
  /** Per-project timing overrides set through the admin API. */
  timing?: TimingInput;
  /** Accelerator quota per region, set through the admin API. */
  quota?: Record<string, RegionQuota>;
}

export interface EmulatorState {
  version: 1;
  projects: Record<string, ProjectRecord>;
  endpoints: Record<string, EndpointRecord>;
  models: Record<string, ModelRecord>;
  operations: Record<string, VertexOperationRecord>;
  addresses: Record<string, AddressRecord>;
  forwardingRules: Record<string, ForwardingRuleRecord>;
  computeOperations: Record<string, ComputeOperationRecord>;
  tokens: Record<string, TokenRecord>;
  /** Calls per route, by project number ('-' for calls without a project). */
  calls: Record<string, Record<string, number>>;
  /** Resources created per kind, by project number. */
  creations: Record<string, Record<string, number>>;
}

export function emptyState(): EmulatorState {
  return {
    version: 1,
    projects: {},
    endpoints: {},
    models: {},
    operations: {},
    addresses: {},
    forwardingRules: {},
    computeOperations: {},
    tokens: {},
    calls: {},
    creations: {},
  };
}

const record = z.record(z.string(), z.record(z.string(), z.unknown()));
/** Structural check of a state file: enough to refuse a wrong or damaged file with a clear error. */
const StateFileSchema = z
  .object({
    version: z.literal(1),
    projects: record,
    endpoints: record,
    models: record,
    operations: record,
    addresses: record,
    forwardingRules: record,
    computeOperations: record,
    tokens: record,
    calls: z.record(z.string(), z.record(z.string(), z.number().int().min(0))),
    creations: z.record(z.string(), z.record(z.string(), z.number().int().min(0))),
  })
  .strict();

const MAX_STATE_FILE_BYTES = 256 * 1024 * 1024;

export class StateFileError extends Error {
  override readonly name = 'StateFileError';
}

/** Loads a saved state; a missing file is an empty state. */
export function loadStateFile(file: string): EmulatorState {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw new StateFileError(`cannot read emulator state file ${file}: ${(err as Error).message}`);
  }
  if (size > MAX_STATE_FILE_BYTES) {
    throw new StateFileError(
      `emulator state file ${file} is ${size} bytes (limit ${MAX_STATE_FILE_BYTES}); delete it to start empty`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new StateFileError(
      `emulator state file ${file} is not valid JSON (${(err as Error).message}); delete it or point --state-file elsewhere`,
    );
  }
  const result = StateFileSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new StateFileError(
      `${file} is not an emulator state file (${issue.path.join('.') || '(root)'}: ${issue.message}); delete it or point --state-file elsewhere`,
    );
  }
  return parsed as EmulatorState;
}

/** Atomic save: write a sibling temp file, then rename over the old one. */
export function saveStateFile(file: string, state: EmulatorState): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(state));
  renameSync(temp, file);
}

// ---------------------------------------------------------------------------------------------
// Identifiers

/**
 * A stable 12-digit project number for a project id (real numbers are 12 digits). Requests may use
 * either form; returned names always use the number.
 */
export function projectNumberFor(projectId: string): string {
  const digest = createHash('sha256').update(`garden-deploy-emulator:${projectId}`).digest();
  return (100_000_000_000n + (digest.readBigUInt64BE(0) % 900_000_000_000n)).toString();
}

export function isProjectNumber(value: string): boolean {
  return /^[1-9]\d{0,18}$/.test(value);
}

/** A random decimal id of `digits` digits without a leading zero (operation and deployed-model ids). */
export function numericId(digits = 19): string {
  let out = String(1 + (randomBytes(1)[0]! % 9));
  while (out.length < digits) out += String(randomBytes(1)[0]! % 10);
  return out;
}

export function timestamp(ms: number): string {
  return new Date(ms).toISOString();
}
