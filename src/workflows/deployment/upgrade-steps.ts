import { ApplicationFailure, CancellationScope } from '@temporalio/workflow';
import type {
  CleanupInput,
  DeploymentIdentity,
  OwnershipProof,
  ValidatedDeployment,
} from '../../activities/contract';
import { type GateReport, describeSmokeFailures, judgeGates } from '../../rollout/gates';
import { type TrafficStep, splitFor, trafficSteps } from '../../rollout/plan';
import type { DeploymentIds } from '../../spec';
import { revisionDeployedModelId, revisionIds } from '../../spec/ids';
import { countGateEvaluation } from '../metrics';
import type { ProgressTracker } from '../progress';
import type { DeployStage, DeploymentSettings, GateEvaluation } from '../types';
import type { DeploymentActivityStubs } from './activities';
import { type DeploymentState, machineText, smokeTarget } from './deploy-steps';
import { cleanupInputOf } from './removal';
import type { UpgradeRun } from './upgrade-run';

/** What the upgrade reads and changes in the deployment. */
export interface UpgradeContext {
  readonly state: DeploymentState;
  readonly tracker: ProgressTracker;
  readonly activities: DeploymentActivityStubs;
  readonly settings: Required<DeploymentSettings>;
  publish(stage?: DeployStage): void;
}

/** The revision serving when the upgrade started: where traffic goes back to on a rollback. */
interface Serving {
  number: number;
  model: string;
  deployedModelId: string;
  /** The deployment's proof: its endpoint, and this revision's model. */
  proof: OwnershipProof;
}

/** Thrown by a gate that failed (or an idle canary the spec rolls back): the upgrade is undone. */
export class GateFailure extends Error {
  override readonly name = 'GateFailure';
  constructor(readonly evaluation: GateEvaluation) {
    super(evaluation.summary);
  }
}

/**
 * An upgrade of a serving deployment, top to bottom. Each step registers its undo before it runs;
 * a failure, a failed gate or an operator's rollback cancels the run, and its compensations put all
 * traffic back on the serving revision and remove everything of the new one.
 *
 * validate → stage on its own endpoint (replicas, smoke tests, alone) → free the staging GPUs →
 * deploy on the deployment's endpoint at 0 % → shift traffic step by step, baking with gates →
 * keep the previous revision at 0 % (`retainPrevious`) → retire it.
 */
export async function upgradeSteps(ctx: UpgradeContext, run: UpgradeRun): Promise<'completed' | 'unchanged'> {
  const { state, tracker, activities } = ctx;
  const serving = servingRevision(ctx);

  // 1. The new weights pass pre-flight validation before anything is created.
  const validated = await activities.validate.validateWeights(run.spec);
  run.validated = validated;
  tracker.moveRevision(run.revision, 'validating', {
    machine: machineText(validated.spec.machine),
    ...(validated.validation.weights ? { weights: validated.validation.weights } : {}),
  });
  if (sameRevision(state.validated!, validated)) return 'unchanged';

  // 2. Its own staging endpoint: replicas come up and smoke tests run with no production traffic.
  const identity: DeploymentIdentity = { ...state.ownership!.identity!, revision: run.revision };
  const ids = revisionIds(validated.ids, validated.spec.name, run.revision);
  const stagingProof: OwnershipProof = {
    deploymentLabel: validated.spec.name,
    endpointDisplayName: ids.endpointDisplayName,
    modelDisplayName: ids.modelDisplayName,
    notBefore: Date.now(),
    identity,
    fingerprints: {},
  };
  const staging = stagingRecord(ctx, validated, ids, stagingProof);
  run.compensate('removeStaging', 'remove the staging endpoint and the new model', () =>
    removeStaging(ctx, staging.cleanup(), { model: true }),
  );
  await stage(ctx, run, staging, validated, ids, identity);

  // 3. The staging GPUs are freed before the new revision takes production capacity.
  run.enter('freeing-staging');
  await removeStaging(ctx, staging.cleanup(), { model: false });
  run.forget('remove the staging endpoint and the new model');
  const model = staging.model!;
  const modelProof: OwnershipProof = {
    ...serving.proof,
    modelDisplayName: ids.modelDisplayName,
    identity,
    fingerprints: {
      ...serving.proof.fingerprints,
      ...(stagingProof.fingerprints?.modelCreateTime
        ? { modelCreateTime: stagingProof.fingerprints.modelCreateTime }
        : {}),
    },
  };
  run.compensate('deleteModel', 'delete the new model', () =>
    activities.cleanup.deleteModel(modelCleanup(ctx, model, modelProof)),
  );

  // 4. On the deployment's endpoint next to the serving revision, at 0 % until its replicas are up.
  const next = revisionDeployedModelId(identity.incarnation, run.revision);
  run.enter('deploying');
  const spec = validated.spec;
  const endpoint = tracker.resources.endpoint!;
  const deployInput = {
    endpoint,
    model,
    deployedModelId: next,
    displayName: ids.modelDisplayName,
    spec,
    ownership: modelProof,
    trafficSplit: { [serving.deployedModelId]: 100, '0': 0 },
  };
  // The deployModel operation, once submitted: the undo waits it out before undeploying.
  const production: { operation?: string } = {};
  run.compensate(
    'restoreTraffic',
    `traffic back to r${serving.number}, r${run.revision} undeployed`,
    async () => {
      await activities.short.setTraffic({
        endpoint,
        ownership: serving.proof,
        split: { [serving.deployedModelId]: 100 },
      });
      showTraffic(ctx, serving, run.revision, next, 0);
      return activities.cleanup.undeployRevision({
        endpoint,
        ownership: serving.proof,
        deployedModelId: next,
        keep: serving.deployedModelId,
        ...(production.operation ? { operation: production.operation } : {}),
        stopWaitMs: ctx.settings.stopWaitMs,
      });
    },
  );
  const started = await CancellationScope.nonCancellable(() =>
    activities.short.startRevisionDeploy(deployInput),
  );
  production.operation = started.operation;
  await activities.wait(spec.timeouts.deploy).finishRevisionDeploy({
    ...deployInput,
    ...(started.operation ? { operation: started.operation } : {}),
    deadline: Date.now() + spec.timeouts.deploy,
  });
  tracker.moveRevision(run.revision, 'canary', { model, deployedModelId: next });
  tracker.patchUpgrade({ resources: { model, deployedModelId: next } });
  await activities.wait(spec.timeouts.replicas).waitForReplicas({
    endpoint,
    deployedModelId: next,
    minReplicas: spec.replicas.min,
    deadline: Date.now() + spec.timeouts.replicas,
  });
  showTraffic(ctx, serving, run.revision, next, 0);

  // 5. Traffic moves step by step; every bake evaluates the gates, and a failed gate rolls back.
  const steps = trafficSteps(run.spec.strategy);
  run.enter('shifting');
  for (const [index, step] of steps.entries()) {
    await run.untilResumed();
    const percent = run.promoteRequested ? 100 : step.percent;
    await shift(ctx, serving, run.revision, next, percent, endpoint);
    tracker.patchUpgrade({ step: { index: index + 1, of: steps.length, percent } });
    if (percent === 100) {
      if (!run.promoteRequested && step.bakeMs > 0) {
        run.enter('final-bake');
        await bake(ctx, run, serving, next, step);
      }
      break;
    }
    if (step.bakeMs > 0) await bake(ctx, run, serving, next, step);
  }
  tracker.moveRevision(run.revision, 'serving');

  // 6. The previous revision stays deployed at 0 % for `retainPrevious`: a rollback is instant.
  const retain = run.spec.strategy.retainPrevious;
  if (retain > 0 && !run.promoteRequested) {
    run.enter('retaining');
    tracker.moveRevision(serving.number, 'retained');
    const until = Date.now() + retain;
    while (Date.now() < until && !run.promoteRequested) {
      await run.waitFor(until - Date.now());
      await run.untilResumed();
    }
  }

  // 7. Past the point of no return: the previous revision is undeployed and its model deleted.
  run.enter('retiring');
  run.forgetAll();
  await untilDone(run, () =>
    activities.cleanup.undeployRevision({
      endpoint,
      ownership: serving.proof,
      deployedModelId: serving.deployedModelId,
      keep: next,
      stopWaitMs: ctx.settings.stopWaitMs,
    }),
  );
  tracker.setTraffic([{ revision: run.revision, deployedModelId: next, percent: 100 }]);
  await untilDone(run, () => activities.cleanup.deleteModel(modelCleanup(ctx, serving.model, serving.proof)));
  tracker.moveRevision(serving.number, 'retired');
  adoptRevision(ctx, run, validated, model, next, modelProof);
  return 'completed';
}

/** The serving revision as the deployment recorded it. */
function servingRevision(ctx: UpgradeContext): Serving {
  const { resources } = ctx.tracker;
  return {
    number: ctx.tracker.revision?.number ?? 1,
    model: resources.model!,
    deployedModelId: resources.deployedModelId!,
    proof: ctx.state.ownership!,
  };
}

/** Same bytes (by GCS generation) on the same machine: there is nothing to deploy. */
function sameRevision(current: ValidatedDeployment, next: ValidatedDeployment): boolean {
  const a = current.validation.weights;
  const b = next.validation.weights;
  return (
    a !== undefined &&
    b !== undefined &&
    a.digest === b.digest &&
    current.spec.model.uri === next.spec.model.uri &&
    machineText(current.spec.machine) === machineText(next.spec.machine)
  );
}

/** What the staging step created, as it learns it; its cleanup input from that. */
function stagingRecord(
  ctx: UpgradeContext,
  validated: ValidatedDeployment,
  ids: DeploymentIds,
  ownership: OwnershipProof,
) {
  const spec = validated.spec;
  const record = {
    endpoint: undefined as string | undefined,
    model: undefined as string | undefined,
    operation: undefined as string | undefined,
    pscAddress: undefined as string | undefined,
    pscForwardingRule: undefined as string | undefined,
    pscStarted: false,
    cleanup: (): CleanupInput =>
      cleanupInputOf({
        project: spec.project,
        region: spec.region,
        ownership,
        resources: {
          ...(record.endpoint ? { endpoint: record.endpoint } : {}),
          ...(record.model ? { model: record.model } : {}),
          ...(record.operation ? { deployOperation: record.operation } : {}),
          ...(record.pscAddress ? { pscAddress: record.pscAddress } : {}),
          ...(record.pscForwardingRule ? { pscForwardingRule: record.pscForwardingRule } : {}),
        },
        ids,
        ...(spec.access.type === 'private' && record.pscStarted
          ? { consumerProject: spec.access.consumerProject }
          : {}),
        stopWaitMs: ctx.settings.stopWaitMs,
      }),
  };
  return record;
}
type Staging = ReturnType<typeof stagingRecord>;

/**
 * Model Garden `:deploy` of the new weights onto the staging endpoint (one replica), its replicas,
 * PSC for a private deployment, and the smoke tests, which must all pass.
 */
async function stage(
  ctx: UpgradeContext,
  run: UpgradeRun,
  staging: Staging,
  validated: ValidatedDeployment,
  ids: DeploymentIds,
  identity: DeploymentIdentity,
): Promise<void> {
  const { activities, tracker } = ctx;
  run.enter('staging');
  tracker.moveRevision(run.revision, 'staging');
  ctx.publish();
  const ownership = staging.cleanup().ownership!;
  // One replica proves the weights serve; a private deployment stages privately, on a picked address.
  const access =
    validated.spec.access.type === 'private'
      ? { ...validated.spec.access, ipAddress: undefined }
      : validated.spec.access;
  const spec = { ...validated.spec, replicas: { min: 1, max: 1 }, access };
  const started = await CancellationScope.nonCancellable(() =>
    activities.short.startDeploy({ spec, ids, ownership }),
  );
  staging.operation = started.operation;
  const deployed = await activities.wait(spec.timeouts.deploy).finishDeploy({
    spec,
    ids,
    ownership,
    deadline: Date.now() + spec.timeouts.deploy,
    ...(started.operation ? { operation: started.operation } : {}),
  });
  Object.assign(ownership.fingerprints ?? {}, deployed.fingerprints);
  staging.endpoint = deployed.resources.endpoint;
  staging.model = deployed.resources.model;
  tracker.patchUpgrade({
    resources: { stagingEndpoint: staging.endpoint, model: staging.model },
  });
  tracker.moveRevision(run.revision, 'staging', { ...(staging.model ? { model: staging.model } : {}) });
  const replicas = await activities.wait(spec.timeouts.replicas).waitForReplicas({
    endpoint: staging.endpoint!,
    deployedModelId: deployed.resources.deployedModelId,
    minReplicas: 1,
    deadline: Date.now() + spec.timeouts.replicas,
  });

  let pscIp: string | undefined;
  if (spec.access.type === 'private') {
    const serviceAttachment = replicas.serviceAttachment ?? deployed.resources.serviceAttachment;
    if (!serviceAttachment) upgradeFailure('the staging endpoint reports no PSC service attachment');
    const fingerprints = ownership.fingerprints ?? {};
    const pscInput = { spec, ids, serviceAttachment, identity, fingerprints };
    const psc = activities.wait(spec.timeouts.psc);
    staging.pscStarted = true;
    const address = await psc.reservePscAddress(pscInput);
    staging.pscAddress = address.address;
    if (address.id) fingerprints.pscAddressId = address.id;
    const connection = await psc.createPscForwardingRule({ ...pscInput, address });
    staging.pscForwardingRule = connection.forwardingRule;
    if (connection.id) fingerprints.pscForwardingRuleId = connection.id;
    const ready = await psc.waitForPscConnection({
      ...pscInput,
      connection,
      deadline: Date.now() + spec.timeouts.psc,
    });
    pscIp = ready.ipAddress;
  }

  const target = smokeTarget({ ...validated, spec }, replicas.dedicatedEndpointDns, pscIp);
  if (target.kind === 'skip') return;
  const smoke = await activities
    .smoke(spec.timeouts.smoke)
    .runSmokeTests({ endpoint: staging.endpoint!, target, tests: spec.smoke.tests });
  const failed = smoke.results.filter((r) => !r.passed);
  if (failed.length > 0) {
    upgradeFailure(
      `staging smoke test ${describeSmokeFailures(failed)}; ` +
        'the new revision never reached the production endpoint',
      'SmokeTestFailed',
    );
  }
}

/** Removes the staging endpoint (and its PSC resources), and the new model too when `model`. */
async function removeStaging(ctx: UpgradeContext, input: CleanupInput, { model }: { model: boolean }) {
  const { cleanup } = ctx.activities;
  const vertex = async () => {
    await cleanup.undeployModels(input);
    await cleanup.deleteEndpoint(input);
    if (model) await cleanup.deleteModel(input);
  };
  const psc = async () => {
    if (!input.consumerProject) return;
    await cleanup.deletePscForwardingRule(input);
    await cleanup.releasePscAddress(input);
  };
  await Promise.all([vertex(), psc()]);
}

function modelCleanup(ctx: UpgradeContext, model: string, ownership: OwnershipProof): CleanupInput {
  const spec = ctx.state.validated!.spec;
  return cleanupInputOf({
    project: spec.project,
    region: spec.region,
    ownership,
    resources: { model },
    stopWaitMs: ctx.settings.stopWaitMs,
  });
}

/** Moves `percent` of the traffic to the new revision, the rest staying on the serving one. */
async function shift(
  ctx: UpgradeContext,
  serving: Serving,
  revision: number,
  next: string,
  percent: number,
  endpoint: string,
): Promise<void> {
  await ctx.activities.short.setTraffic({
    endpoint,
    ownership: serving.proof,
    split: splitFor(serving.deployedModelId, next, percent),
  });
  showTraffic(ctx, serving, revision, next, percent);
}

function showTraffic(ctx: UpgradeContext, serving: Serving, revision: number, next: string, percent: number) {
  ctx.tracker.setTraffic([
    { revision: serving.number, deployedModelId: serving.deployedModelId, percent: 100 - percent },
    { revision, deployedModelId: next, percent },
  ]);
  ctx.publish();
}

/**
 * Bakes one traffic step: gates are evaluated every `gates.interval` and at the end; a failure
 * throws GateFailure. Time paused does not count. An idle new revision at the end is handled as
 * `gates.onIdle` says: wait for an operator, promote, or roll back. A promote ends the bake.
 */
async function bake(
  ctx: UpgradeContext,
  run: UpgradeRun,
  serving: Serving,
  next: string,
  step: TrafficStep,
): Promise<void> {
  const gates = run.spec.gates;
  const startedAt = Date.now();
  let baked = 0;
  let idlePause = false;
  for (;;) {
    // Resumed after an idle pause: the step bakes again, in full.
    if (idlePause && !run.paused) [baked, idlePause] = [0, false];
    const left = step.bakeMs - baked;
    ctx.tracker.patchUpgrade({
      step: {
        ...ctx.tracker.upgrade!.step!,
        bakeEndsAt: new Date(Date.now() + Math.max(0, left)).toISOString(),
      },
    });
    const before = Date.now();
    await run.waitFor(run.paused ? gates.interval : Math.min(gates.interval, Math.max(0, left)));
    if (!run.paused) baked += Date.now() - before;
    if (run.promoteRequested) return;
    const evaluation = await evaluateGates(ctx, run, serving, next, step.percent, Date.now() - startedAt);
    if (evaluation.verdict === 'fail') throw new GateFailure(evaluation);
    if (baked < step.bakeMs || run.paused) continue;
    if (evaluation.verdict === 'pass' || gates.onIdle === 'promote') return;
    if (gates.onIdle === 'rollback')
      throw new GateFailure({
        ...evaluation,
        summary: `idle canary rolled back (gates.onIdle): ${evaluation.summary}`,
      });
    run.pause(
      `${evaluation.summary}; waiting for an operator: resume to bake again, promote, or rollback (gates.onIdle: pause)`,
    );
    idlePause = true;
    ctx.publish('UPGRADE_PAUSED');
  }
}

/** One gate evaluation: what each revision served since the step began, and the smoke tests on the endpoint. */
async function evaluateGates(
  ctx: UpgradeContext,
  run: UpgradeRun,
  serving: Serving,
  next: string,
  percent: number,
  windowMs: number,
): Promise<GateEvaluation> {
  const { activities, state, tracker } = ctx;
  const spec = state.validated!.spec;
  const gates = run.spec.gates;
  const target = smokeTarget(
    run.validated!,
    tracker.resources.dedicatedEndpointDns,
    tracker.resources.pscIpAddress,
  );
  const [traffic, smoke] = await Promise.all([
    activities.short.measureTraffic({
      project: spec.project,
      endpointId: state.validated!.ids.endpointId,
      windowMs,
      latency: gates.latencyP95 !== undefined,
    }),
    gates.smoke && target.kind !== 'skip'
      ? activities
          .smoke(run.spec.timeouts.smoke)
          .runSmokeTests({ endpoint: tracker.resources.endpoint!, target, tests: run.spec.smoke.tests })
      : undefined,
  ]);
  const report: GateReport = judgeGates({
    gates,
    candidate: traffic.byDeployedModel[next] ?? { requests: 0, errors: 0 },
    ...(traffic.byDeployedModel[serving.deployedModelId]
      ? { baseline: traffic.byDeployedModel[serving.deployedModelId] }
      : {}),
    candidateId: next,
    ...(smoke ? { smoke: smoke.results } : {}),
  });
  countGateEvaluation(report);
  const evaluation: GateEvaluation = { ...report, at: new Date().toISOString(), percent };
  tracker.patchUpgrade({
    lastGate: evaluation,
    evaluations: (tracker.upgrade?.evaluations ?? 0) + 1,
  });
  ctx.publish();
  return evaluation;
}

/** A forward step past the point of no return: retried until it succeeds, visibly blocked meanwhile. */
async function untilDone(run: UpgradeRun, step: () => Promise<unknown>): Promise<void> {
  run.compensate('retirePrevious', 'retire the previous revision', step);
  await run.undo();
}

/** The new revision is the deployment's now: its model, deployed model, spec and proof. */
function adoptRevision(
  ctx: UpgradeContext,
  run: UpgradeRun,
  validated: ValidatedDeployment,
  model: string,
  deployedModelId: string,
  modelProof: OwnershipProof,
): void {
  const { state, tracker } = ctx;
  state.spec = run.spec;
  state.validated = { ...validated, ids: { ...validated.ids, modelId: model.split('/').pop()! } };
  state.ownership = modelProof;
  tracker.addResources({ model, deployedModelId });
  tracker.setOwnership(modelProof);
  tracker.setScale({ min: validated.spec.replicas.min, max: validated.spec.replicas.max });
  const revision = tracker.revisions.find((r) => r.number === run.revision)!;
  tracker.setRevision(revision);
  tracker.describe({
    deployment: validated.spec.name,
    project: validated.spec.project,
    region: validated.spec.region,
    modelUri: validated.spec.model.uri,
  });
}

function upgradeFailure(message: string, type = 'UpgradeFailed'): never {
  throw ApplicationFailure.nonRetryable(message, type);
}
