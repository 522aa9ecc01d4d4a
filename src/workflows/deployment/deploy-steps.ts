import {
  ApplicationFailure,
  CancellationScope,
  patched,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type {
  DeploymentIdentity,
  OwnershipProof,
  PscConnection,
  SmokeTarget,
  ValidatedDeployment,
} from '../../activities/contract';
import { describeSmokeFailures } from '../../rollout/gates';
import { DeploymentName, EndpointId, GcpProject, GcpRegion, ModelUri } from '../../search-attributes';
import type { DeploymentSpec } from '../../spec';
import type { ProgressTracker } from '../progress';
import type { DeployStage, DeploymentSettings, StepName } from '../types';
import type { DeploymentActivityStubs } from './activities';

/** What the deploy steps read and record; the compensations work from the same record. */
export interface DeploymentState {
  /**
   * The spec as requested (parsed); `validated.spec` has `machine: auto` resolved. Absent in the
   * teardown of an earlier run.
   */
  spec?: DeploymentSpec;
  validated?: ValidatedDeployment;
  /** Set once validated; `ownership.fingerprints` grow as resources are created. */
  ownership?: OwnershipProof;
  /** `:deploy` may have been sent: an endpoint and model may exist, also before they are recorded. */
  deploySubmitted: boolean;
  /** The deploy operation ended and its endpoint and model are labelled and recorded. */
  deployFinished: boolean;
  /** The PSC step started: an address and forwarding rule may exist. */
  pscStarted: boolean;
}

export interface StepContext {
  readonly state: DeploymentState;
  readonly tracker: ProgressTracker;
  readonly activities: DeploymentActivityStubs;
  readonly settings: Required<DeploymentSettings>;
  publish(stage?: DeployStage): void;
  /** Runs one step's activity, keeping its progress row current. */
  step<T extends { attempt: number }>(
    name: StepName,
    stage: DeployStage,
    run: () => Promise<T>,
    detail: (result: T) => string,
  ): Promise<T>;
}

/**
 * The first deploy of a deployment, top to bottom:
 * validate weights → deploy (submit, then await) → wait for replicas → PSC (private only) → smoke
 * tests. Everything it creates is recorded in `state` (and the progress) before or as it is
 * created, so a cancel, a failure or a teardown after termination can find and remove it.
 */
export async function deploySteps(ctx: StepContext, requested: DeploymentSpec): Promise<void> {
  const { state, tracker, activities } = ctx;

  const validated = await ctx.step(
    'validate',
    'VALIDATING',
    () => activities.validate.validateWeights(requested),
    (v) =>
      `${v.validation.sizeGuess ?? v.validation.family ?? 'model'} ok; machine ${machineText(v.spec.machine)}`,
  );
  const { ids } = validated;
  let spec = validated.spec;
  state.validated = { spec, ids, validation: validated.validation };
  tracker.setValidation(validated.validation);
  describeDeployment(tracker, spec, ctx.settings.modelUriSearchAttribute);
  const identity = identityOf(spec);
  const ownership: OwnershipProof = {
    deploymentLabel: spec.name,
    endpointDisplayName: ids.endpointDisplayName,
    modelDisplayName: ids.modelDisplayName,
    notBefore: Date.now(),
    identity,
    fingerprints: {},
  };
  state.ownership = ownership;
  tracker.setIdentity(identity, ownership);

  const deployed = await ctx.step(
    'deploy',
    'DEPLOYING',
    async () => {
      // Before any GPU is asked for: too little quota fails here, in seconds, with the numbers.
      if (patched(QUOTA_CHECK)) spec = await checkQuota(ctx, validated);
      state.deploySubmitted = true;
      // Never cut short: the operation name must reach the workflow state, or a cancel could not stop it.
      const started = await CancellationScope.nonCancellable(() =>
        activities.short.startDeploy({ spec, ids, ownership }),
      );
      if (started.operation) tracker.addResources({ deployOperation: started.operation });
      ctx.publish();
      return activities.wait(spec.timeouts.deploy).finishDeploy({
        spec,
        ids,
        ownership,
        deadline: Date.now() + spec.timeouts.deploy,
        ...(started.operation ? { operation: started.operation } : {}),
      });
    },
    (d) => `${d.adopted ? 'adopted' : 'created'} ${d.resources.endpoint ?? ids.endpointId}`,
  );
  Object.assign(ownership.fingerprints ?? {}, deployed.fingerprints);
  tracker.addResources(deployed.resources);
  tracker.setOwnership(ownership);
  state.deployFinished = true;
  upsertSearchAttributes([{ key: EndpointId, value: ids.endpointId }]);

  const endpoint = deployed.resources.endpoint;
  if (!endpoint)
    throw ApplicationFailure.nonRetryable('deploy finished without an endpoint', 'DeployOperationFailed');
  const replicas = await ctx.step(
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
  tracker.setScale({ min: spec.replicas.min, max: spec.replicas.max });
  // What `:deploy` cannot set (container logging, the inference timeout), now that the model is deployed.
  if (patched(CONFIGURE_DEPLOYED_MODEL) && replicas.deployedModelId) {
    await activities.short.configureDeployedModel({
      endpoint,
      deployedModelId: replicas.deployedModelId,
      ownership,
      containerLogging: spec.logging.container,
      ...(spec.endpoint.inferenceTimeout ? { inferenceTimeoutMs: spec.endpoint.inferenceTimeout } : {}),
    });
  }
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
    const fingerprints = ownership.fingerprints ?? {};
    const pscInput = { spec, ids, serviceAttachment, identity, fingerprints };
    const pscActivities = activities.wait(spec.timeouts.psc);
    psc = await ctx.step(
      'psc',
      'CONNECTING_PSC',
      async () => {
        state.pscStarted = true;
        const address = await pscActivities.reservePscAddress(pscInput);
        if (address.id) fingerprints.pscAddressId = address.id;
        tracker.addResources({ pscAddress: address.address, pscIpAddress: address.ipAddress });
        tracker.setOwnership(ownership);
        const connection = await pscActivities.createPscForwardingRule({ ...pscInput, address });
        if (connection.id) fingerprints.pscForwardingRuleId = connection.id;
        tracker.addResources({ pscForwardingRule: connection.forwardingRule });
        tracker.setOwnership(ownership);
        ctx.publish();
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
    return;
  }
  const smoke = await ctx.step(
    'smoke',
    'SMOKE_TESTING',
    () => activities.smoke(spec.timeouts.smoke).runSmokeTests({ endpoint, target, tests: spec.smoke.tests }),
    (s) => `${s.results.filter((r) => r.passed).length}/${s.results.length} passed`,
  );
  tracker.setSmoke(smoke.results);
  const failed = smoke.results.filter((r) => !r.passed);
  if (failed.length === 0) return;
  const message = `smoke test ${describeSmokeFailures(failed)}`;
  if (spec.smoke.onFailure === 'rollback') {
    tracker.failStep('smoke', { message, type: 'SmokeTestFailed', attempt: smoke.attempt });
    throw ApplicationFailure.nonRetryable(message, 'SmokeTestFailed');
  }
  tracker.recordError(
    { message: `${message} (kept: smoke.onFailure is "keep")`, type: 'SmokeTestFailed' },
    'smoke',
  );
}

/** The first revision serves: what it runs (machine, weights, Model, deployed model), and all the traffic on it. */
export function recordFirstRevision(tracker: ProgressTracker, state: DeploymentState): void {
  const { model, deployedModelId } = tracker.resources;
  const validated = state.validated;
  const revision = tracker.revision;
  if (!revision || !validated) return;
  tracker.setRevision({
    ...revision,
    machine: machineText(validated.spec.machine),
    ...(validated.validation.weights ? { weights: validated.validation.weights } : {}),
    ...(model ? { model } : {}),
    ...(deployedModelId ? { deployedModelId } : {}),
  });
  if (deployedModelId) tracker.setTraffic([{ revision: revision.number, deployedModelId, percent: 100 }]);
}

/** Workflow changes of issue 11, for runs that started before them (`patched`). */
const QUOTA_CHECK = 'quota-check-before-deploy';
const CONFIGURE_DEPLOYED_MODEL = 'configure-deployed-model';

/**
 * The serving GPU quota against `replicas.max × accelerators`, before `:deploy`. A shortfall fails
 * the step (nothing created); a check that cannot run is a warning in the progress. With `machine:
 * auto` the first recommended machine that fits the remaining quota is used.
 */
async function checkQuota(
  ctx: StepContext,
  validated: ValidatedDeployment,
): Promise<ValidatedDeployment['spec']> {
  const { spec } = validated;
  // The chosen machine first (validateWeights lists it so, with the others that fit, for `machine: auto`).
  const machines = validated.machines ?? [spec.machine];
  const checked = await ctx.activities.short.checkServingQuota({
    project: spec.project,
    region: spec.region,
    machines,
    maxReplicas: spec.replicas.max,
    ...(spec.capacity.spot ? { spot: true } : {}),
  });
  ctx.tracker.setQuota(checked);
  ctx.publish();
  const chosen = { ...spec, machine: checked.machine };
  ctx.state.validated = { ...ctx.state.validated!, spec: chosen };
  return chosen;
}

/** The identity this run's resources carry: the workflow's first run id tells it from earlier ones. */
function identityOf(spec: DeploymentSpec): DeploymentIdentity {
  const info = workflowInfo();
  return {
    project: spec.project,
    region: spec.region,
    name: spec.name,
    workflowId: info.workflowId,
    incarnation: info.firstExecutionRunId,
    revision: 1,
  };
}

/** `withModelUri` false: payloads are encrypted, and an upsert is a history event in plaintext. */
function describeDeployment(tracker: ProgressTracker, spec: DeploymentSpec, withModelUri: boolean): void {
  tracker.describe({
    deployment: spec.name,
    project: spec.project,
    region: spec.region,
    modelUri: spec.model.uri,
  });
  upsertSearchAttributes([
    { key: DeploymentName, value: spec.name },
    ...(withModelUri ? [{ key: ModelUri, value: spec.model.uri }] : []),
    { key: GcpProject, value: spec.project },
    { key: GcpRegion, value: spec.region },
  ] satisfies SearchAttributeUpdatePair[]);
}

export function smokeTarget(
  validated: ValidatedDeployment,
  dns: string | undefined,
  pscIp: string | undefined,
): SmokeTarget {
  const { smoke, access } = validated.spec;
  if (smoke.target === 'skip') return { kind: 'skip', reason: smoke.skipReason ?? 'skipped by the spec' };
  if (smoke.tests.length === 0) return { kind: 'skip', reason: 'no smoke tests configured' };
  if (access.type === 'private') {
    if (!pscIp) return { kind: 'skip', reason: 'no PSC address' };
    // The endpoint's certificate is checked against this name while connecting to the PSC address.
    return {
      kind: 'psc',
      ipAddress: pscIp,
      ...(access.tlsServerName ? { tlsServerName: access.tlsServerName } : {}),
    };
  }
  return dns
    ? { kind: 'dedicated', host: dns }
    : { kind: 'skip', reason: 'the endpoint reports no dedicated DNS' };
}

export function machineText(machine: {
  type: string;
  acceleratorType: string;
  acceleratorCount: number;
}): string {
  return `${machine.type} (${machine.acceleratorCount}× ${machine.acceleratorType})`;
}
