import type { DeploymentIds, DeploymentSpec, DeploymentSpecInput, MachineSpec, SmokeMode } from '../spec';

/**
 * The contract between the deployment workflow and its activities: inputs and outputs are plain,
 * JSON-serialisable data that never carries a credential. `createActivities(deps)` implements it.
 */

/** Error `type`s activities throw as non-retryable `ApplicationFailure`s; the workflow's retry policies name them too. */
export const NON_RETRYABLE_ERRORS = {
  invalidSpec: 'InvalidDeploymentSpec',
  weightsInvalid: 'WeightValidationFailed',
  gcpPermanent: 'GcpPermanentError',
  quotaExhausted: 'QuotaExhausted',
  deployFailed: 'DeployOperationFailed',
  resourceConflict: 'ResourceConflict',
  replicasTimeout: 'ReplicasNotReady',
  pscRejected: 'PscConnectionRejected',
  pscTimeout: 'PscConnectionPending',
} as const;

/**
 * What activities put in `ApplicationFailure.details[0]`: the attempt that failed and, for a
 * failed validation, its summary.
 */
export interface ActivityFailureDetails {
  attempt: number;
  validation?: ValidationSummary;
}

/** Condensed validation report: small enough for workflow history and the progress query. */
export interface ValidationSummary {
  ok: boolean;
  family?: string;
  sizeGuess?: string;
  parameterCount?: number;
  weightBytes?: number;
  dtype?: string;
  errors: number;
  warnings: number;
  /** The most important findings, `rule: message`, at most a handful. */
  highlights: string[];
  recommendedMachine?: MachineSpec;
}

export interface ValidatedDeployment {
  /** Parsed spec with `machine: auto` resolved to the validator's recommendation. */
  spec: DeploymentSpec & { machine: MachineSpec };
  ids: DeploymentIds;
  validation: ValidationSummary;
}

/** Identifies resources created by this deployment, so nothing foreign is adopted or deleted. */
export interface OwnershipProof {
  /** Value of the `garden-deploy-deployment` label garden-deploy puts on what it creates. */
  deploymentLabel: string;
  endpointDisplayName: string;
  modelDisplayName: string;
  /** Epoch ms when the deploy step first started; an unlabelled resource created before it is not ours. */
  notBefore: number;
}

/** Everything a deployment may have created, as full resource names. */
export interface DeploymentResources {
  deployOperation?: string;
  endpoint?: string;
  model?: string;
  deployedModelId?: string;
  dedicatedEndpointDns?: string;
  serviceAttachment?: string;
  pscAddress?: string;
  pscIpAddress?: string;
  pscForwardingRule?: string;
}

export interface DeployToVertexInput {
  spec: ValidatedDeployment['spec'];
  ids: DeploymentIds;
  ownership: OwnershipProof;
  /** Epoch ms after which a still-running deploy operation fails the step (spec `timeouts.deploy`). */
  deadline: number;
}

export interface DeployToVertexResult {
  /** True when an existing endpoint of this deployment was adopted instead of created. */
  adopted: boolean;
  resources: DeploymentResources;
}

export interface WaitForReplicasInput {
  endpoint: string;
  deployedModelId?: string;
  minReplicas: number;
  /** Epoch ms after which the step fails with `ReplicasNotReady`. */
  deadline: number;
}

export interface ReplicaStatus {
  available: number;
  target: number;
  message?: string;
  dedicatedEndpointDns?: string;
  serviceAttachment?: string;
  deployedModelId?: string;
}

export interface PscInput {
  spec: ValidatedDeployment['spec'];
  ids: DeploymentIds;
  serviceAttachment: string;
}

export interface PscAddress {
  address: string;
  ipAddress: string;
}

export interface PscConnection {
  forwardingRule: string;
  ipAddress: string;
  status: string;
}

export type SmokeTarget =
  | { kind: 'dedicated'; host: string }
  /** `tlsServerName`: the DNS name the PSC endpoint's certificate is verified against (spec `access.tlsServerName`). */
  | { kind: 'psc'; ipAddress: string; tlsServerName?: string }
  | { kind: 'skip'; reason: string };

export interface SmokeInput {
  endpoint: string;
  target: Exclude<SmokeTarget, { kind: 'skip' }>;
  tests: DeploymentSpec['smoke']['tests'];
}

export interface SmokeResult {
  name: string;
  mode: SmokeMode;
  passed: boolean;
  latencyMs?: number;
  promptTokens?: number;
  completionTokens?: number;
  /** First characters of the answer. */
  answerPreview?: string;
  /** Why it failed: transport error or which expectation did not hold. */
  failure?: string;
}

export interface CleanupInput {
  project: string;
  region: string;
  /**
   * How to recognise this deployment's resources. Absent for a teardown of a finished deployment:
   * its recorded resource names are removed as recorded.
   */
  ownership?: OwnershipProof;
  resources: DeploymentResources;
  /** Deterministic ids, for resources a step may have created before it could report them. */
  ids?: DeploymentIds;
  consumerProject?: string;
}

/** What a compensation did: removed it, found it already gone, or left it because it is not ours. */
export interface CleanupOutcome {
  resource: string;
  outcome: 'removed' | 'already-gone' | 'not-ours';
}

export interface CleanupResult {
  outcomes: CleanupOutcome[];
}

/**
 * Every activity result carries the attempt that produced it (and every failure carries it in its
 * details), so the progress query can show attempts per step.
 */
export type Attempted<T> = T & { attempt: number };

export interface DeploymentActivities {
  validateWeights(spec: DeploymentSpecInput): Promise<Attempted<ValidatedDeployment>>;
  deployToVertex(input: DeployToVertexInput): Promise<Attempted<DeployToVertexResult>>;
  waitForReplicas(input: WaitForReplicasInput): Promise<Attempted<ReplicaStatus>>;
  reservePscAddress(input: PscInput): Promise<Attempted<PscAddress>>;
  createPscForwardingRule(input: PscInput & { address: PscAddress }): Promise<Attempted<PscConnection>>;
  waitForPscConnection(
    input: PscInput & { connection: PscConnection; deadline: number },
  ): Promise<Attempted<PscConnection>>;
  runSmokeTests(input: SmokeInput): Promise<Attempted<{ results: SmokeResult[] }>>;
  deletePscForwardingRule(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  releasePscAddress(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  /** Cancels or waits out a running deploy operation, then undeploys every model of our endpoint. */
  undeployModels(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  deleteEndpoint(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  deleteModel(input: CleanupInput): Promise<Attempted<CleanupResult>>;
}
