import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  Attempted,
  CleanupInput,
  CleanupResult,
  DeploymentActivities,
  OwnershipProof,
  PscConnection,
  ValidatedDeployment,
} from '../../activities/contract';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  DeployStage as DeployStageKey,
  DeploymentName,
  EndpointId,
  GcpProject,
  GcpRegion,
  ModelUri,
} from '../../search-attributes';
import { TRANSIENT_RETRY } from '../deployment/activities';
import { machineText, smokeTarget } from '../deployment/deploy-steps';
import { summarizeFailure } from '../failures';
import { progressQuery } from '../messages';
import { cancelSignal, rollbackSignal } from './signals';
import { ProgressTracker } from '../progress';
import { deploymentResult } from '../results';
import type {
  AbortKind,
  DeployModelInput,
  DeployStage,
  DeploymentOutcome,
  DeploymentResult,
  StepName,
} from '../types';

const DEFAULT_HEARTBEAT_TIMEOUT_MS = 60_000;

/**
 * garden-deploy 0.1's workflow, frozen: still registered so that deployments started before the
 * durable `deployment` workflow finish on the code they started with (their histories replay
 * against it, test/histories/0.1/). New deployments never start it. Do not change the commands
 * it issues.
 *
 * One deployment of a fine-tuned model to Vertex AI:
 * validate weights → deploy → wait for replicas → PSC (private only) → smoke tests.
 * Every step registers its compensation before it runs; a failure, a `cancel`/`rollback` signal or
 * a Temporal cancellation runs them in reverse, shielded from cancellation, so nothing is left
 * billing. A success stays open to `rollback` for the spec's `rollbackWindow`.
 */
export async function deployModel(input: DeployModelInput): Promise<DeploymentResult> {
  const { workflowId } = workflowInfo();
  const rawName = input?.spec && typeof input.spec.name === 'string' ? input.spec.name : workflowId;
  const tracker = new ProgressTracker(rawName);
  const compensations = new Compensations(tracker);
  const activities = activityProxies(input?.settings?.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS);
  const steps = new CancellationScope();
  let abort: { kind: AbortKind; reason: string } | undefined;
  /** Set once compensations start or the deployment ends: later cancel/rollback requests change nothing. */
  let finished = false;
  let publishedStage: DeployStage | undefined;

  const publish = (stage?: DeployStage): void => {
    if (stage) tracker.setStage(stage);
    if (tracker.stage !== publishedStage) {
      upsertSearchAttributes([{ key: DeployStageKey, value: tracker.stage }]);
      publishedStage = tracker.stage;
    }
    setCurrentDetails(tracker.toMarkdown());
  };

  const requestAbort =
    (kind: AbortKind) =>
    (reason?: string): void => {
      if (abort || finished) return; // the first request wins; nothing to undo once finished
      abort = { kind, reason: reason?.trim() || `${kind} requested` };
      tracker.setAbort(kind, abort.reason);
      publish(kind === 'cancel' ? 'CANCELLING' : 'ROLLING_BACK');
      steps.cancel();
    };
  setHandler(cancelSignal, requestAbort('cancel'));
  setHandler(rollbackSignal, requestAbort('rollback'));
  setHandler(progressQuery, () => tracker.snapshot());

  /** Runs one step's activity, keeping its progress row current. */
  async function step<T extends { attempt: number }>(
    name: StepName,
    stage: DeployStage,
    run: () => Promise<T>,
    detail: (result: T) => string,
  ): Promise<T> {
    tracker.startStep(name);
    publish(stage);
    try {
      const result = await run();
      tracker.finishStep(name, result.attempt, detail(result));
      publish();
      return result;
    } catch (err) {
      if (!isCancellation(err)) {
        const failure = summarizeFailure(err);
        tracker.failStep(name, failure);
        if (failure.validation) tracker.setValidation(failure.validation);
      }
      throw err;
    }
  }

  async function runSteps(): Promise<ValidatedDeployment> {
    const validated = await step(
      'validate',
      'VALIDATING',
      () => activities.validate.validateWeights(input.spec),
      (v) =>
        `${v.validation.sizeGuess ?? v.validation.family ?? 'model'} ok; machine ${machineText(v.spec.machine)}`,
    );
    const { spec, ids } = validated;
    tracker.setValidation(validated.validation);
    tracker.describe({
      deployment: spec.name,
      project: spec.project,
      region: spec.region,
      modelUri: spec.model.uri,
    });
    upsertSearchAttributes([
      { key: DeploymentName, value: spec.name },
      { key: ModelUri, value: spec.model.uri },
      { key: GcpProject, value: spec.project },
      { key: GcpRegion, value: spec.region },
    ] satisfies SearchAttributeUpdatePair[]);

    const ownership: OwnershipProof = {
      deploymentLabel: spec.name,
      endpointDisplayName: ids.endpointDisplayName,
      modelDisplayName: ids.modelDisplayName,
      notBefore: Date.now(),
    };
    const cleanupInput = (): CleanupInput => ({
      project: spec.project,
      region: spec.region,
      ownership,
      ids,
      resources: tracker.resources,
      consumerProject: spec.access.type === 'private' ? spec.access.consumerProject : undefined,
    });
    // Registered before the step: a deploy cut short may still have created all three.
    compensations.add('deploy', () => activities.cleanup.deleteModel(cleanupInput()));
    compensations.add('deploy', () => activities.cleanup.deleteEndpoint(cleanupInput()));
    compensations.add('deploy', () => activities.cleanup.undeployModels(cleanupInput()));
    const deployed = await step(
      'deploy',
      'DEPLOYING',
      () =>
        activities
          .deploy(spec.timeouts.deploy)
          .deployToVertex({ spec, ids, ownership, deadline: Date.now() + spec.timeouts.deploy }),
      (d) => `${d.adopted ? 'adopted' : 'created'} ${d.resources.endpoint ?? ids.endpointId}`,
    );
    tracker.addResources(deployed.resources);
    upsertSearchAttributes([{ key: EndpointId, value: ids.endpointId }]);

    const endpoint = deployed.resources.endpoint;
    if (!endpoint)
      throw ApplicationFailure.nonRetryable('deploy finished without an endpoint', 'DeployOperationFailed');
    const replicas = await step(
      'waitForReplicas',
      'WAITING_FOR_REPLICAS',
      () =>
        activities.wait(spec.timeouts.replicas).waitForReplicas({
          endpoint,
          deployedModelId: deployed.resources.deployedModelId,
          minReplicas: spec.replicas.min,
          deadline: Date.now() + spec.timeouts.replicas,
        }),
      (r) => `${r.available}/${r.target} replicas available`,
    );
    tracker.setReplicas(replicas.available, replicas.target);
    tracker.addResources({
      dedicatedEndpointDns: replicas.dedicatedEndpointDns,
      serviceAttachment: replicas.serviceAttachment,
      deployedModelId: replicas.deployedModelId,
    });

    let psc: PscConnection | undefined;
    if (spec.access.type === 'private') {
      const serviceAttachment = tracker.resources.serviceAttachment;
      if (!serviceAttachment) {
        throw ApplicationFailure.nonRetryable(
          'the private endpoint reports no PSC service attachment; check the endpoint in the console',
          'DeployOperationFailed',
        );
      }
      const pscInput = { spec, ids, serviceAttachment };
      const pscActivities = activities.wait(spec.timeouts.psc);
      psc = await step(
        'psc',
        'CONNECTING_PSC',
        async () => {
          compensations.add('psc', () => activities.cleanup.releasePscAddress(cleanupInput()));
          const address = await pscActivities.reservePscAddress(pscInput);
          tracker.addResources({ pscAddress: address.address, pscIpAddress: address.ipAddress });
          compensations.add('psc', () => activities.cleanup.deletePscForwardingRule(cleanupInput()));
          const connection = await pscActivities.createPscForwardingRule({ ...pscInput, address });
          tracker.addResources({ pscForwardingRule: connection.forwardingRule });
          publish();
          return pscActivities.waitForPscConnection({
            ...pscInput,
            connection,
            deadline: Date.now() + spec.timeouts.psc,
          });
        },
        (c) => `${c.status} at ${c.ipAddress}`,
      );
    } else {
      tracker.skipStep('psc', 'public endpoint');
    }

    const target = smokeTarget(validated, tracker.resources.dedicatedEndpointDns, psc?.ipAddress);
    if (target.kind === 'skip') {
      tracker.skipStep('smoke', target.reason);
    } else {
      const smoke = await step(
        'smoke',
        'SMOKE_TESTING',
        () =>
          activities.smoke(spec.timeouts.smoke).runSmokeTests({ endpoint, target, tests: spec.smoke.tests }),
        (s) => `${s.results.filter((r) => r.passed).length}/${s.results.length} passed`,
      );
      tracker.setSmoke(smoke.results);
      const failed = smoke.results.filter((r) => !r.passed);
      if (failed.length > 0) {
        const message = `smoke test ${failed.map((r) => `"${r.name}": ${r.failure ?? 'failed'}`).join('; ')}`;
        if (spec.smoke.onFailure === 'rollback') {
          tracker.failStep('smoke', { message, type: 'SmokeTestFailed', attempt: smoke.attempt });
          throw ApplicationFailure.nonRetryable(message, 'SmokeTestFailed');
        }
        tracker.recordError(
          { message: `${message} (kept: smoke.onFailure is "keep")`, type: 'SmokeTestFailed' },
          'smoke',
        );
      }
    }
    return validated;
  }

  /** Undo everything, then end as the cause dictates. */
  async function unwind(err: unknown): Promise<DeploymentResult> {
    const cancelled = isCancellation(err);
    if (!abort && !cancelled) {
      const failure = summarizeFailure(err);
      if (!tracker.runningStep()) tracker.recordError(failure);
    }
    finished = true;
    publish(abort?.kind === 'rollback' ? 'ROLLING_BACK' : abort || cancelled ? 'CANCELLING' : 'ROLLING_BACK');
    await CancellationScope.nonCancellable(() => compensations.runAll(publish));
    if (abort) {
      publish(abort.kind === 'cancel' ? 'CANCELLED' : 'ROLLED_BACK');
      return result(abort.kind === 'cancel' ? 'cancelled' : 'rolled-back', abort.reason);
    }
    if (cancelled) {
      publish('CANCELLED');
      throw err;
    }
    publish('FAILED');
    const failure = summarizeFailure(err);
    const removed = tracker.removed.filter((r) => r.outcome === 'removed').map((r) => r.resource);
    throw ApplicationFailure.create({
      message: `${failure.message}${removed.length ? ` — rolled back: removed ${removed.join(', ')}` : ' — nothing was left behind'}`,
      type: failure.type ?? 'DeploymentFailed',
      nonRetryable: true,
      details: [tracker.snapshot()],
    });
  }

  function result(outcome: DeploymentOutcome, reason?: string): DeploymentResult {
    return deploymentResult(tracker.snapshot(), workflowId, outcome, { reason });
  }

  let validated: ValidatedDeployment;
  try {
    validated = await steps.run(runSteps);
  } catch (err) {
    return unwind(err);
  }

  publish('SERVING');
  const window = validated.spec.rollbackWindow;
  if (window > 0) {
    tracker.setRollbackWindowEnd(new Date(Date.now() + window));
    publish();
    try {
      await condition(() => abort !== undefined, window);
    } catch (err) {
      return unwind(err); // the workflow itself was cancelled while serving
    }
    if (abort) return unwind(new Error(abort.reason));
    tracker.setRollbackWindowEnd(undefined);
  }
  finished = true;
  publish();
  log.info('deployment serving', { deployment: validated.spec.name, endpoint: tracker.resources.endpoint });
  return result('serving');
}

/** Compensations registered as steps start, run newest first. */
class Compensations {
  private readonly stack: Array<{ step: StepName; run: () => Promise<Attempted<CleanupResult>> }> = [];

  constructor(private readonly tracker: ProgressTracker) {}

  add(step: StepName, run: () => Promise<Attempted<CleanupResult>>): void {
    this.stack.push({ step, run });
  }

  async runAll(publish: () => void): Promise<void> {
    while (this.stack.length > 0) {
      const next = this.stack.pop();
      if (!next) break;
      this.tracker.compensating(next.step);
      publish();
      const { outcomes } = await next.run();
      this.tracker.compensated(next.step, outcomes);
      publish();
    }
  }
}

/** Activity stubs with a retry policy and timeouts matched to each kind of step. */
function activityProxies(heartbeatTimeoutMs: number) {
  const transient = TRANSIENT_RETRY;
  const long = (budgetMs: number) =>
    proxyActivities<DeploymentActivities>({
      startToCloseTimeout: budgetMs + 10 * 60_000,
      heartbeatTimeout: heartbeatTimeoutMs,
      retry: { ...transient, maximumAttempts: 20 },
      // Let the activity stop what it started (e.g. cancel the operation) before compensations run.
      cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    });
  return {
    validate: proxyActivities<DeploymentActivities>({
      startToCloseTimeout: '15m',
      heartbeatTimeout: heartbeatTimeoutMs,
      retry: { ...transient, maximumAttempts: 5 },
    }),
    deploy: long,
    wait: long,
    smoke: (budgetMs: number) =>
      proxyActivities<DeploymentActivities>({
        startToCloseTimeout: budgetMs,
        heartbeatTimeout: heartbeatTimeoutMs,
        retry: { ...transient, maximumAttempts: 5 },
      }),
    // Compensations retry until they succeed: a leftover endpoint bills GPUs by the hour.
    cleanup: proxyActivities<DeploymentActivities>({
      startToCloseTimeout: '15m',
      heartbeatTimeout: heartbeatTimeoutMs,
      retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '2m' },
    }),
  };
}
