import type { RootCause } from '../diagnosis/container-logs';
import type { ServingStats } from '../rollout/gates';
import type { DeploymentIds, DeploymentSpec, DeploymentSpecInput, MachineSpec, SmokeMode } from '../spec';

/**
 * The contract between the deployment workflow and its activities: inputs and outputs are plain,
 * JSON-serialisable data that never carries a credential. `createActivities(deps)` implements it.
 */

/**
 * How a smoke test words a request the endpoint failed; the workflow's diagnosis recognises a
 * server error (5xx) by `SMOKE_SERVER_ERROR`, so the two stay side by side.
 */
export function smokeRequestFailure(code: string, detail: string): string {
  return `request failed (${code}): ${detail}`;
}
export const SMOKE_SERVER_ERROR = /request failed \(5\d\d /;

/** Error `type`s activities throw as non-retryable `ApplicationFailure`s; the workflow's retry policies name them too. */
/**
 * The failure type of an activity attempt that ended only to wait for Google (the next attempt
 * checks again later); the heartbeat's `wait.yields` counts them. Never shown as a failure.
 */
export const STILL_WAITING = 'StillWaiting';

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
  /** A compensation that cannot remove a resource (only non-retryable for permission/request errors). */
  cleanupBlocked: 'CleanupBlocked',
  scaleFailed: 'ScaleFailed',
  /** An upgrade's step that cannot work as asked (e.g. the endpoint lost a deployed model it needs). */
  upgradeFailed: 'UpgradeFailed',
  /** The quota check found too little serving GPU quota: nothing was created. */
  quotaShortfall: 'QuotaShortfall',
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
  /** The objects checked, pinned by GCS generation: an upgrade to the same bytes changes nothing. */
  weights?: WeightsFingerprint;
}

/** The weights a revision was validated from, pinned by GCS generation. */
export interface WeightsFingerprint {
  objects: number;
  bytes: number;
  /** SHA-256 (hex, first 16 chars) over every object's name, size and generation. */
  digest: string;
  /** Generation of each object, for the first 64 (by name). */
  generations?: Record<string, string>;
}

export interface ValidatedDeployment {
  /** Parsed spec with `machine: auto` resolved to the validator's recommendation. */
  spec: DeploymentSpec & { machine: MachineSpec };
  ids: DeploymentIds;
  validation: ValidationSummary;
  /** With `machine: auto`: the machines that fit the model, best first (the quota check may pick a later one). */
  machines?: MachineSpec[];
}

/**
 * Who a deployment is. Every resource it creates carries this (labels on Vertex resources, the
 * description of Compute ones), and every adopt and delete checks it, so nothing is taken over or
 * removed on the strength of a name.
 */
export interface DeploymentIdentity {
  project: string;
  region: string;
  name: string;
  /** `deploy/{project}/{region}/{name}`. */
  workflowId: string;
  /**
   * The first run id of the deployment's workflow: stable across continue-as-new, different for a
   * later deployment of the same name (which must not adopt what an earlier one left behind).
   */
  incarnation: string;
  /** Revision the resources belong to (1 for the first deploy). */
  revision: number;
}

/**
 * What this deployment recorded about the resources it created, checked on every later adopt and
 * delete: a resource under the same name with another creation time or Compute id was recreated by
 * someone else.
 */
export interface ResourceFingerprints {
  endpointCreateTime?: string;
  modelCreateTime?: string;
  pscAddressId?: string;
  pscForwardingRuleId?: string;
}

/** Identifies resources created by this deployment, so nothing foreign is adopted or deleted. */
export interface OwnershipProof {
  /** Value of the `garden-deploy-deployment` label garden-deploy puts on what it creates. */
  deploymentLabel: string;
  endpointDisplayName: string;
  modelDisplayName: string;
  /**
   * Epoch ms when the deploy step first started. `:deploy` cannot carry labels, so until this
   * deployment has labelled (and fingerprinted) them, an unlabelled endpoint or model with its id
   * and display name created after this is its own.
   */
  notBefore: number;
  /**
   * The deployment's identity; absent in inputs of deployments started by garden-deploy 0.1
   * (workflow `deployModel`), which are judged by the name label alone, as they were.
   */
  identity?: DeploymentIdentity;
  fingerprints?: ResourceFingerprints;
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
  /** Creation times of the endpoint and model as labelled: later deletes check them. */
  fingerprints?: ResourceFingerprints;
}

/** `startDeploy`: submit `:deploy` (or find what an earlier attempt submitted). */
export type StartDeployInput = Omit<DeployToVertexInput, 'deadline'>;

export interface StartDeployResult {
  /**
   * The deploy operation, recorded by the workflow before anything waits on it, so a cancel or
   * timeout can stop it. Absent when the endpoint already existed (an earlier attempt's, adopted).
   */
  operation?: string;
  adopted: boolean;
}

/** `finishDeploy`: wait for the operation (or the adopted endpoint), then label what it created. */
export interface FinishDeployInput extends DeployToVertexInput {
  operation?: string;
}

/** `scaleDeployment`: min/max replicas of the serving deployed model, in place. */
export interface ScaleInput {
  endpoint: string;
  deployedModelId: string;
  minReplicas: number;
  maxReplicas: number;
  /** New autoscaling targets (all of them), when they change. */
  autoscaling?: NonNullable<DeploymentSpec['replicas']['autoscaling']>;
  /** Container logging on or off, when it changes. */
  containerLogging?: boolean;
  ownership: OwnershipProof;
  /** Epoch ms after which the step fails when `minReplicas` are not available yet. */
  deadline: number;
}

export interface ScaleResult {
  available: number;
  minReplicas: number;
  maxReplicas: number;
  /** The mutateDeployedModel operation. */
  operation: string;
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
  /** Written into the Compute descriptions and checked on adoption (absent from 0.1 workflows). */
  identity?: DeploymentIdentity;
  /** A resource of this deployment recorded earlier must still have the same Compute id. */
  fingerprints?: ResourceFingerprints;
}

export interface PscAddress {
  address: string;
  ipAddress: string;
  /** Compute's numeric id of the address (its fingerprint). */
  id?: string;
}

export interface PscConnection {
  forwardingRule: string;
  ipAddress: string;
  status: string;
  /** Compute's numeric id of the forwarding rule (its fingerprint). */
  id?: string;
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
  /** The deployed model that answered (Vertex's `X-Vertex-AI-Deployed-Model-Id`). */
  deployedModelId?: string;
}

export interface CleanupInput {
  project: string;
  region: string;
  /**
   * How to recognise this deployment's resources. Absent only in the `teardownDeployment` workflow
   * of garden-deploy 0.1, which removes the recorded names as recorded.
   */
  ownership?: OwnershipProof;
  resources: DeploymentResources;
  /** Deterministic ids, for resources a step may have created before it could report them. */
  ids?: DeploymentIds;
  consumerProject?: string;
  /** How long `stopDeployOperation` waits for a cancelled operation to end (default 30 min). */
  stopWaitMs?: number;
}

/**
 * What a compensation did: removed it, found it already gone, left it because it is not ours, or
 * (an operator's `abandonCleanup`) left it for the operator to remove.
 */
export interface CleanupOutcome {
  resource: string;
  outcome: 'removed' | 'already-gone' | 'not-ours' | 'abandoned';
  /** Why it was left alone (`not-ours`, `abandoned`). */
  reason?: string;
}

export interface CleanupResult {
  outcomes: CleanupOutcome[];
}

/**
 * Every activity result carries the attempt that produced it (and every failure carries it in its
 * details), so the progress query can show attempts per step.
 */
export type Attempted<T> = T & { attempt: number };

/** `startRevisionDeploy`/`finishRevisionDeploy`: a new revision's Model onto the deployment's endpoint. */
export interface RevisionDeployInput {
  /** The deployment's endpoint (as recorded). */
  endpoint: string;
  /** The revision's Model (as its staging deploy created it). */
  model: string;
  /** The fixed id it gets on the endpoint (`revisionDeployedModelId`). */
  deployedModelId: string;
  displayName: string;
  spec: ValidatedDeployment['spec'];
  /** Endpoint proof: the deployment's; model proof: the revision's display name and creation time. */
  ownership: OwnershipProof;
  /** The split once it is deployed: the serving revision keeps all traffic ("0" = the new model). */
  trafficSplit: Record<string, number>;
}

export interface RevisionDeployStarted {
  /** The deployModel operation; absent when an earlier attempt's is found instead. */
  operation?: string;
  adopted: boolean;
}

/** `setTraffic`: the endpoint's traffic split, read-modify-write on its etag. */
export interface TrafficInput {
  endpoint: string;
  ownership: OwnershipProof;
  /** Percent per deployed model id, summing to 100; every id must be deployed on the endpoint. */
  split: Record<string, number>;
}

export interface TrafficResult {
  /** The split as the endpoint reports it afterwards. */
  trafficSplit: Record<string, number>;
  /** False when the endpoint already had this split. */
  changed: boolean;
}

/** `undeployRevision`: one deployed model off the endpoint, its traffic on `keep`. */
export interface UndeployRevisionInput {
  endpoint: string;
  ownership: OwnershipProof;
  deployedModelId: string;
  /** The deployed model that takes all the traffic (the serving revision on a rollback, the new one on retire). */
  keep: string;
  /** A deployModel operation of this deployed model that may still run: waited out first. */
  operation?: string;
  /** How long that operation may take to end. */
  stopWaitMs?: number;
}

/** `measureTraffic`: what each deployed model served over the last `windowMs` (Cloud Monitoring). */
export interface TrafficWindowInput {
  project: string;
  endpointId: string;
  windowMs: number;
  /** Read the p95 latencies too (only when a latency gate needs them). */
  latency: boolean;
}

export interface TrafficWindowResult {
  byDeployedModel: Record<string, ServingStats>;
}

/** `checkServingQuota`: the serving GPU quota against what the deployment asks for, before `:deploy`. */
export interface QuotaCheckInput {
  project: string;
  region: string;
  /** The chosen machine first; with `machine: auto`, the other fitting machines in order of preference. */
  machines: MachineSpec[];
  maxReplicas: number;
  /** Spot VMs are charged to the preemptible quota. */
  spot?: boolean;
}

export interface QuotaCheckResult {
  /** `fits`: enough quota; `unchecked`: the check could not run (warning says why); the deploy goes on either way. */
  verdict: 'fits' | 'unchecked';
  /** The machine to deploy on: the chosen one, or (machine auto) the first candidate that fits. */
  machine: MachineSpec;
  reading?: QuotaReading;
  warning?: string;
}

/** One quota as read: its id and metric, the limit, what is used, and what the deployment asks for. */
export interface QuotaReading {
  quotaId: string;
  metric: string;
  limit: number;
  usage: number;
  requested: number;
}

/** `diagnoseStart`: the serving container's last lines and what they say, after a failed start. */
export interface DiagnoseInput {
  project: string;
  region: string;
  endpointId: string;
  deployedModelId?: string;
  /** Epoch ms: lines since then (the deploy's start). */
  since: number;
}

export interface DiagnoseResult {
  rootCause?: RootCause;
  /** Why no lines could be read (e.g. roles/logging.viewer missing). */
  unavailable?: string;
}

/** `configureDeployedModel`: what `:deploy` cannot set, once the deployed model exists. */
export interface ConfigureInput {
  endpoint: string;
  deployedModelId: string;
  ownership: OwnershipProof;
  containerLogging: boolean;
  inferenceTimeoutMs?: number;
}

export interface DeploymentActivities {
  validateWeights(spec: DeploymentSpecInput): Promise<Attempted<ValidatedDeployment>>;
  /** 0.1 workflows: `startDeploy` and `finishDeploy` in one activity, resumed from its heartbeat. */
  deployToVertex(input: DeployToVertexInput): Promise<Attempted<DeployToVertexResult>>;
  startDeploy(input: StartDeployInput): Promise<Attempted<StartDeployResult>>;
  finishDeploy(input: FinishDeployInput): Promise<Attempted<DeployToVertexResult>>;
  waitForReplicas(input: WaitForReplicasInput): Promise<Attempted<ReplicaStatus>>;
  reservePscAddress(input: PscInput): Promise<Attempted<PscAddress>>;
  createPscForwardingRule(input: PscInput & { address: PscAddress }): Promise<Attempted<PscConnection>>;
  waitForPscConnection(
    input: PscInput & { connection: PscConnection; deadline: number },
  ): Promise<Attempted<PscConnection>>;
  runSmokeTests(input: SmokeInput): Promise<Attempted<{ results: SmokeResult[] }>>;
  deletePscForwardingRule(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  releasePscAddress(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  /** Cancels a running deploy operation and waits until Vertex reports it done. */
  stopDeployOperation(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  /** Cancels or waits out a running deploy operation, then undeploys every model of our endpoint. */
  undeployModels(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  deleteEndpoint(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  deleteModel(input: CleanupInput): Promise<Attempted<CleanupResult>>;
  scaleDeployment(input: ScaleInput): Promise<Attempted<ScaleResult>>;
  startRevisionDeploy(input: RevisionDeployInput): Promise<Attempted<RevisionDeployStarted>>;
  /** Waits for the deployModel operation (or the adopted one's deployed model); labels nothing (the Model is labelled). */
  finishRevisionDeploy(
    input: RevisionDeployInput & { operation?: string; deadline: number },
  ): Promise<Attempted<{ deployedModelId: string }>>;
  setTraffic(input: TrafficInput): Promise<Attempted<TrafficResult>>;
  undeployRevision(input: UndeployRevisionInput): Promise<Attempted<CleanupResult>>;
  measureTraffic(input: TrafficWindowInput): Promise<Attempted<TrafficWindowResult>>;
  checkServingQuota(input: QuotaCheckInput): Promise<Attempted<QuotaCheckResult>>;
  diagnoseStart(input: DiagnoseInput): Promise<Attempted<DiagnoseResult>>;
  configureDeployedModel(input: ConfigureInput): Promise<Attempted<{ changed: string[] }>>;
}
