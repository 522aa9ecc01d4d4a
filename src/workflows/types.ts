import type {
  CleanupOutcome,
  DeploymentResources,
  SmokeResult,
  ValidationSummary,
} from '../activities/contract';
import type { DeploymentSpecInput } from '../spec';

/** Steps in the order they run; `psc` only for private endpoints. */
export const STEP_NAMES = ['validate', 'deploy', 'waitForReplicas', 'psc', 'smoke'] as const;
export type StepName = (typeof STEP_NAMES)[number];

export type StepStatus =
  'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'compensating' | 'compensated';

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
  'ROLLING_BACK',
  'ROLLED_BACK',
  'CANCELLING',
  'CANCELLED',
  'FAILED',
] as const;
export type DeployStage = (typeof DEPLOY_STAGES)[number];

export type AbortKind = 'cancel' | 'rollback';

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
}

export interface DeployModelInput {
  spec: DeploymentSpecInput;
  /** Operator tuning, not part of the deployment's description. */
  settings?: {
    /** Heartbeat timeout of long activities: how fast a dead worker is noticed (default 60 s). */
    heartbeatTimeoutMs?: number;
  };
}

export type DeploymentOutcome = 'serving' | 'rolled-back' | 'cancelled';

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
}

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
