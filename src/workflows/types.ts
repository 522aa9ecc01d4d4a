import type {
  CleanupOutcome,
  DeploymentIdentity,
  DeploymentResources,
  OwnershipProof,
  QuotaCheckResult,
  SmokeResult,
  ValidatedDeployment,
  ValidationSummary,
  WeightsFingerprint,
} from '../activities/contract';
import type { RootCause } from '../diagnosis/container-logs';
import type { GateReport } from '../rollout/gates';
import type { AutoscalingTarget } from '../spec/autoscaling';
import type { DeploymentIds, DeploymentSpec, DeploymentSpecInput } from '../spec';
import type { DeploymentSettings, DeploymentStart } from '../spec/requests';

/** Steps in the order they run; `psc` only for private endpoints. */
export const STEP_NAMES = ['validate', 'deploy', 'waitForReplicas', 'psc', 'smoke'] as const;
export type StepName = (typeof STEP_NAMES)[number];

export type StepStatus =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'skipped'
  /** Stopped by a cancel or rollback while it ran. */
  | 'cancelled'
  | 'compensating'
  | 'compensated';

export interface StepProgress {
  name: StepName;
  status: StepStatus;
  /** Attempts of the step's activity known to the workflow (completed or failed). */
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  detail?: string;
}

/** The `DeployStage` search attribute and the headline of the progress query. */
export const DEPLOY_STAGES = [
  'VALIDATING',
  'DEPLOYING',
  'WAITING_FOR_REPLICAS',
  'CONNECTING_PSC',
  'SMOKE_TESTING',
  'SERVING',
  /** Serving, while a `scale` changes its replicas. */
  'SCALING',
  'ROLLING_BACK',
  'ROLLED_BACK',
  'CANCELLING',
  'CANCELLED',
  'FAILED',
  'TEARING_DOWN',
  'TORN_DOWN',
  /** A compensation spent its retry budget: waiting for an operator's `retryCleanup` or `abandonCleanup`. */
  'CLEANUP_BLOCKED',
  /** Serving, while a new revision is validated, staged and given traffic step by step. */
  'UPGRADING',
  /** Serving; an upgrade waits for an operator (`resume`, `promote` or `rollback`). */
  'UPGRADE_PAUSED',
  /** Serving; an upgrade is being undone (traffic back on the serving revision, the new one removed). */
  'UPGRADE_ROLLING_BACK',
] as const;
export type DeployStage = (typeof DEPLOY_STAGES)[number];

export type AbortKind = 'cancel' | 'rollback';

/** Why a deployment removes what it created; decides its final stage. */
export type UndoKind = AbortKind | 'failure' | 'teardown';

/**
 * Where a revision is in its life: the first deploys (`deploying`); a later one is validated, runs
 * alone on a staging endpoint (`staging`), takes a share of the traffic (`canary`), then serves;
 * the one it replaced is `retired`; one undone is `rolled-back`.
 */
export type RevisionState =
  | 'validating'
  | 'deploying'
  | 'staging'
  | 'canary'
  | 'serving'
  /** Replaced, but kept deployed at 0 % (`strategy.retainPrevious`) so a rollback is instant. */
  | 'retained'
  | 'rolled-back'
  | 'cancelled'
  | 'failed'
  | 'retired';

/** A numbered revision of a deployment: its weights, and how far it got. */
export interface RevisionSummary {
  number: number;
  modelUri: string;
  state: RevisionState;
  /** The spec it was deployed from (as parsed). */
  spec?: DeploymentSpec;
  startedAt: string;
  servingAt?: string;
  endedAt?: string;
  /** The objects validated, with their GCS generations (a digest, and the generations of up to 64 files). */
  weights?: WeightsFingerprint;
  /** `g2-standard-12 (1× NVIDIA_L4)`. */
  machine?: string;
  /** Its Vertex Model and its deployed model on the endpoint. */
  model?: string;
  deployedModelId?: string;
  /** Why it was rolled back or failed. */
  reason?: string;
}

/** One entry of the endpoint's live traffic split, by revision. */
export interface TrafficShare {
  revision: number;
  deployedModelId: string;
  percent: number;
}

/** Where an upgrade is: validate → stage (own endpoint) → free staging → deploy at 0 % → shift/bake → retain → retire. */
export const UPGRADE_PHASES = [
  'validating',
  'staging',
  'freeing-staging',
  'deploying',
  'shifting',
  'final-bake',
  'retaining',
  'retiring',
  'rolling-back',
  'done',
] as const;
export type UpgradePhase = (typeof UPGRADE_PHASES)[number];

/** How an upgrade ended: the new revision serves, was rolled back (gate, operator, failure), or nothing changed. */
export type UpgradeOutcome = 'completed' | 'rolled-back' | 'unchanged';

/** A gate evaluation, when and at which share of the traffic. */
export interface GateEvaluation extends GateReport {
  at: string;
  percent: number;
}

export interface UpgradeProgress {
  revision: number;
  /** The revision serving when it started. */
  from: number;
  /** The Update that started it (deploy or upgrade). */
  requestId?: string;
  phase: UpgradePhase;
  /** `10 % (bake 5m) → 35 % (bake 1m) → … → 100 %`. */
  strategy: string;
  /** The traffic step it is at (1-based), its share, and when its bake ends. */
  step?: { index: number; of: number; percent: number; bakeEndsAt?: string };
  paused?: { at: string; reason: string };
  /** An operator asked to skip the remaining steps. */
  promoted?: boolean;
  /** The latest gate evaluation, and the one that failed (if any). */
  lastGate?: GateEvaluation;
  failedGate?: GateEvaluation;
  /** Gate evaluations so far. */
  evaluations: number;
  /** What it created so far (the staging endpoint goes once its smoke tests pass). */
  resources?: { stagingEndpoint?: string; model?: string; deployedModelId?: string };
  /** A compensation that keeps failing while the upgrade is undone: what it is and Google's answer. */
  blocked?: string;
  outcome?: UpgradeOutcome;
  reason?: string;
  startedAt: string;
  endedAt?: string;
}

/** The compensations, as names for progress; each removes one kind of resource. */
export const CLEANUP_TASKS = [
  'stopDeployOperation',
  'undeployModels',
  'deleteEndpoint',
  'deleteModel',
  'deletePscForwardingRule',
  'releasePscAddress',
] as const;
export type CleanupTaskName = (typeof CLEANUP_TASKS)[number];

export interface CleanupTaskProgress {
  task: CleanupTaskName;
  /** Billing resources (Vertex) and PSC resources are removed side by side. */
  chain: 'vertex' | 'psc';
  state: 'pending' | 'running' | 'done' | 'blocked' | 'abandoned';
  /** A second look for resources that appear late (after a cancelled deploy operation). */
  lateLook?: boolean;
  /** Removes what an upgrade to this revision created (its staging endpoint and Model), not the deployment's own. */
  revision?: number;
  attempts: number;
  /** Why it is blocked: the resource, Google's error, and what an operator can do. */
  error?: string;
}

export interface CleanupProgress {
  kind: UndoKind;
  reason: string;
  state: 'running' | 'blocked' | 'done' | 'abandoned';
  tasks: CleanupTaskProgress[];
  startedAt: string;
  /** When it became blocked (CLEANUP_BLOCKED). */
  blockedAt?: string;
}

export interface DeployProgress {
  deployment: string;
  project?: string;
  region?: string;
  modelUri?: string;
  stage: DeployStage;
  /** 0–100, by step weight. */
  percent: number;
  steps: StepProgress[];
  resources: DeploymentResources;
  replicas?: { available: number; target: number };
  validation?: ValidationSummary;
  smoke?: SmokeResult[];
  /** Compensations run so far, in order. */
  removed: CleanupOutcome[];
  lastError?: { step?: StepName; type?: string; message: string; at: string };
  abort?: { kind: AbortKind; reason: string; at: string };
  rollbackWindowEndsAt?: string;
  startedAt: string;
  updatedAt: string;
  /** The current revision (deployments of the current shape). */
  revision?: RevisionSummary;
  /** Every revision after the first deploy started, oldest first (the latest 20). */
  revisions?: RevisionSummary[];
  /** The endpoint's traffic split by revision, as last set. */
  traffic?: TrafficShare[];
  /** The running upgrade, or the last one. */
  upgrade?: UpgradeProgress;
  /** The serving GPU quota check before `:deploy` (a `warning` when it could not run). */
  quota?: QuotaCheckResult;
  /** Why the serving container did not start, from its own lines (after a failed start). */
  rootCause?: RootCause;
  /** Replicas the serving revision is scaled to. */
  scale?: { min: number; max: number };
  /** Who this deployment is (labels and descriptions on its resources carry it). */
  identity?: DeploymentIdentity;
  /** What its resources are recognised by: a teardown after termination starts from it. */
  ownership?: OwnershipProof;
  /** The removal in progress (or blocked, or finished). */
  cleanup?: CleanupProgress;
}

/** Input of garden-deploy 0.1's `deployModel` workflow. */
export interface DeployModelInput {
  spec: DeploymentSpecInput;
  /** Operator tuning, not part of the deployment's description. */
  settings?: {
    /** Heartbeat timeout of long activities: how fast a dead worker is noticed (default 60 s). */
    heartbeatTimeoutMs?: number;
  };
}

export type DeploymentOutcome =
  | 'serving'
  | 'rolled-back'
  | 'cancelled'
  | 'torn-down'
  | 'failed'
  /** The removal stopped on a compensation that spent its budget (stage CLEANUP_BLOCKED). */
  | 'cleanup-blocked';

export interface DeploymentResult {
  outcome: DeploymentOutcome;
  deployment: string;
  workflowId: string;
  project: string;
  region: string;
  resources: DeploymentResources;
  /** `https://{dedicatedEndpointDns}` or the PSC address. */
  inferenceUrl?: string;
  smoke: SmokeResult[];
  removed: CleanupOutcome[];
  validation?: ValidationSummary;
  reason?: string;
  revision?: RevisionSummary;
  /** Serving: until when `rollback` removes it. */
  rollbackWindowEndsAt?: string;
  /** What blocks the removal, for `cleanup-blocked`. */
  blocked?: CleanupTaskProgress[];
  /** A deploy that turned out to be an upgrade: how it ended. */
  upgrade?: UpgradeResult;
}

/** The answer to `upgrade` (and to a `deploy` that upgrades), `promote`, `pause`, `resume`, and a rollback of an upgrade. */
export interface UpgradeResult {
  deployment: string;
  workflowId: string;
  /** The upgrade's revision and the one it replaces. */
  revision: number;
  from: number;
  /** `in-progress` for pause and resume, which answer at once. */
  outcome: UpgradeOutcome | 'in-progress';
  phase: UpgradePhase;
  /** The revision serving now. */
  serving: number;
  traffic: TrafficShare[];
  reason?: string;
  paused?: boolean;
  /** The gate that failed, with its numbers. */
  failedGate?: GateEvaluation;
}

/**
 * The start input's spec and settings and the Updates' arguments are defined by zod schemas in
 * `src/spec/requests.ts` (published to other languages by `npm run contract`); type-only here.
 */
export type {
  ControlRequest,
  DeployRequest,
  DeploymentSettings,
  DeploymentStart,
  ScaleRequest,
  UpgradeRequest,
} from '../spec/requests';

/** A teardown of what an earlier run of this deployment left behind (terminated, or garden-deploy 0.1's). */
export interface RecoveryInput {
  project: string;
  region: string;
  deployment: string;
  /** The run whose resources are removed. */
  previous: { workflowId: string; runId: string; workflowType: string; status: string };
  /** Its ownership proof: its identity (incarnation) and fingerprints, or 0.1's name label. */
  ownership: OwnershipProof;
  /** What it recorded; the derived ids cover what it created but could not record. */
  resources: DeploymentResources;
  ids: DeploymentIds;
  consumerProject?: string;
  reason?: string;
  /** An upgrade that was running: what it may have created (staging endpoint, Model) is removed too. */
  upgrade?: { revision: number };
}

/** The input of the `deployment` workflow. */
export type DeploymentInput =
  | (DeploymentStart & {
      /** State carried over continue-as-new. */
      carried?: CarriedState;
    })
  | { recover: RecoveryInput; settings?: DeploymentSettings; carried?: CarriedState };

/** What a deployment carries over continue-as-new: everything it knows, nothing it is doing. */
export interface CarriedState {
  progress: DeployProgress;
  /** Absent for the teardown of an earlier run. */
  spec?: DeploymentSpec;
  validated?: ValidatedDeployment;
  phase: 'serving' | 'blocked';
  rollbackWindowEndsAt?: number;
  requests: RequestRecord[];
  /** Why the first deploy failed, when the removal after it is blocked. */
  failure?: { message: string; type?: string };
}

/** The outcome of an Update, kept so the same request id gets the same answer after continue-as-new. */
export interface RequestRecord {
  id: string;
  update: string;
  result: unknown;
}

export interface ScaleOutcome {
  deployment: string;
  replicas: { min: number; max: number };
  autoscaling?: AutoscalingTarget[];
  containerLogging: boolean;
  available: number;
  /** False when the deployment already had these counts. */
  changed: boolean;
}

/** Input of garden-deploy 0.1's `teardownDeployment` workflow. */
export interface TeardownInput {
  project: string;
  region: string;
  resources: DeploymentResources;
  deployment: string;
  consumerProject?: string;
  reason?: string;
}

export interface TeardownResult {
  deployment: string;
  removed: CleanupOutcome[];
}
