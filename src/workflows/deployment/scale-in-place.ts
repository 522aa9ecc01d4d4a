import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { OwnershipProof, ValidatedDeployment } from '../../activities/contract';
import { summarizeFailure } from '../failures';
import type { DeploymentSpec } from '../../spec';
import { type AutoscalingTarget, autoscalingProblem } from '../../spec/autoscaling';
import type { ScaleOutcome, ScaleRequest } from '../types';
import type { StepContext } from './deploy-steps';

/** Why a `scale` request cannot be applied to a deployment of `spec`, or undefined when it can. */
export function scaleRequestProblem(
  request: ScaleRequest | undefined,
  spec: DeploymentSpec,
  current: { min: number; max: number } | undefined,
): string | undefined {
  const { min, max } = targetReplicas(request ?? {}, spec, current);
  const lowest = spec.replicas.scaleToZero ? 0 : 1;
  const whole = (n: unknown, from: number): n is number =>
    Number.isInteger(n) && (n as number) >= from && (n as number) <= 1000;
  if (!whole(min, lowest) || !whole(max, 1))
    return spec.replicas.scaleToZero
      ? 'min replicas must be a whole number from 0 to 1000, max from 1 to 1000'
      : 'min and max replicas must be whole numbers from 1 to 1000 (min 0 needs replicas.scaleToZero in the spec)';
  if (max < min) return `max replicas (${max}) must be at least min replicas (${min})`;
  if (request?.autoscaling !== undefined) {
    const problem = autoscalingProblem(request.autoscaling);
    if (problem) return problem;
  }
  if (request?.containerLogging !== undefined && typeof request.containerLogging !== 'boolean')
    return 'containerLogging must be true or false';
  return undefined;
}

/** The replicas a `scale` request asks for: what it leaves out stays (max at least min). */
function targetReplicas(
  request: ScaleRequest,
  spec: DeploymentSpec,
  current: { min: number; max: number } | undefined,
): { min: number; max: number } {
  const now = current ?? spec.replicas;
  const min = request.min ?? now.min;
  return { min, max: request.max ?? Math.max(min, now.max, 1) };
}

/**
 * `scale` of the serving deployment: the request's replicas, autoscaling targets and container
 * logging, applied in place; the deployment's spec then records them (an upgrade starts from there).
 */
export async function scaleServing(ctx: StepContext, request: ScaleRequest): Promise<ScaleOutcome> {
  const { state, tracker } = ctx;
  const validated = state.validated!;
  const spec = state.spec!;
  const replicas = targetReplicas(request, spec, tracker.scale);
  const outcome = await scaleInPlace(ctx, validated.spec, state.ownership!, {
    replicas,
    ...(request.autoscaling ? { autoscaling: request.autoscaling } : {}),
    ...(request.containerLogging !== undefined ? { containerLogging: request.containerLogging } : {}),
  });
  const scaled = <S extends Pick<DeploymentSpec, 'replicas' | 'logging'>>(before: S): S => ({
    ...before,
    replicas: {
      ...before.replicas,
      ...replicas,
      ...(request.autoscaling ? { autoscaling: request.autoscaling } : {}),
    },
    logging: { ...before.logging, container: outcome.containerLogging },
  });
  state.spec = scaled(spec);
  state.validated = { ...validated, spec: scaled(validated.spec) };
  return outcome;
}

/**
 * `scale` of a serving deployment: replicas, autoscaling and container logging of its deployed model in place (same endpoint,
 * same deployed model), shown as SCALING until the new minimum is available. A failure leaves it
 * SERVING, recorded as its last error, and fails the request with Google's reason.
 */
export async function scaleInPlace(
  ctx: Pick<StepContext, 'tracker' | 'activities' | 'publish'>,
  spec: ValidatedDeployment['spec'],
  ownership: OwnershipProof,
  change: {
    replicas: { min: number; max: number };
    autoscaling?: AutoscalingTarget[];
    containerLogging?: boolean;
  },
): Promise<ScaleOutcome> {
  const { replicas } = change;
  const { tracker } = ctx;
  const { resources } = tracker;
  ctx.publish('SCALING');
  try {
    const scaled = await ctx.activities.wait(spec.timeouts.replicas).scaleDeployment({
      endpoint: resources.endpoint!,
      deployedModelId: resources.deployedModelId!,
      minReplicas: replicas.min,
      maxReplicas: replicas.max,
      ...(change.autoscaling ? { autoscaling: change.autoscaling } : {}),
      ...(change.containerLogging !== undefined ? { containerLogging: change.containerLogging } : {}),
      ownership,
      deadline: Date.now() + spec.timeouts.replicas,
    });
    tracker.setScale(replicas);
    tracker.setReplicas(scaled.available, replicas.min);
    return {
      deployment: spec.name,
      replicas,
      ...((change.autoscaling ?? spec.replicas.autoscaling)
        ? { autoscaling: change.autoscaling ?? spec.replicas.autoscaling }
        : {}),
      containerLogging: change.containerLogging ?? spec.logging.container,
      available: scaled.available,
      changed: scaled.operation !== '',
    };
  } catch (err) {
    const failure = summarizeFailure(err);
    tracker.recordError(failure);
    throw ApplicationFailure.nonRetryable(
      `scaling ${workflowInfo().workflowId} failed: ${failure.message}`,
      failure.type ?? 'ScaleFailed',
    );
  } finally {
    ctx.publish('SERVING');
  }
}
