import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { OwnershipProof, ValidatedDeployment } from '../../activities/contract';
import { summarizeFailure } from '../failures';
import type { ScaleOutcome, ScaleRequest } from '../types';
import type { StepContext } from './deploy-steps';

/**
 * `scale` of the serving deployment: the request's replicas (max defaults to the current one, at
 * least min), applied in place; the deployment's spec then records them.
 */
export async function scaleServing(ctx: StepContext, request: ScaleRequest): Promise<ScaleOutcome> {
  const { state, tracker } = ctx;
  const validated = state.validated!;
  const spec = state.spec!;
  const current = tracker.snapshot().scale ?? spec.replicas;
  const replicas = { min: request.min, max: request.max ?? Math.max(request.min, current.max) };
  const outcome = await scaleInPlace(ctx, validated.spec, state.ownership!, replicas);
  state.spec = { ...spec, replicas };
  state.validated = { ...validated, spec: { ...validated.spec, replicas } };
  return outcome;
}

/**
 * `scale` of a serving deployment: min/max replicas of its deployed model in place (same endpoint,
 * same deployed model), shown as SCALING until the new minimum is available. A failure leaves it
 * SERVING, recorded as its last error, and fails the request with Google's reason.
 */
export async function scaleInPlace(
  ctx: Pick<StepContext, 'tracker' | 'activities' | 'publish'>,
  spec: ValidatedDeployment['spec'],
  ownership: OwnershipProof,
  replicas: { min: number; max: number },
): Promise<ScaleOutcome> {
  const { tracker } = ctx;
  const { resources } = tracker;
  ctx.publish('SCALING');
  try {
    const scaled = await ctx.activities.wait(spec.timeouts.replicas).scaleDeployment({
      endpoint: resources.endpoint!,
      deployedModelId: resources.deployedModelId!,
      minReplicas: replicas.min,
      maxReplicas: replicas.max,
      ownership,
      deadline: Date.now() + spec.timeouts.replicas,
    });
    tracker.setScale(replicas);
    tracker.setReplicas(scaled.available, replicas.min);
    return {
      deployment: spec.name,
      replicas,
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
