import { type Attempted, NON_RETRYABLE_ERRORS, type ScaleInput, type ScaleResult } from './contract';
import type { ActivityContext } from './deps';
import { currentAttempt, permanentFailure, toActivityFailure } from './failures';
import { beat, callOptions, pollUntil, retryTransient } from './runtime';
import { autoscalingInput } from './serving-request';
import { refuseUnlessOurs } from './vertex-resources';

/**
 * Changes the replicas, autoscaling targets and container logging of the serving deployed model in
 * place (`mutateDeployedModel`, no new deployment, no traffic change), then waits until
 * `minReplicas` are available. The endpoint must
 * still be this deployment's; a deployed model already at the asked counts is left alone, so a
 * retried attempt sends no second mutation.
 */
export function scaleActivity(ctx: ActivityContext) {
  const vertex = ctx.gcp.vertex;
  return async function scaleDeployment(input: ScaleInput): Promise<Attempted<ScaleResult>> {
    const { endpoint: name, deployedModelId, minReplicas, maxReplicas } = input;
    let available = 0;
    try {
      beat({ status: `scaling ${deployedModelId} to ${minReplicas}–${maxReplicas} replicas` });
      const endpoint = await retryTransient(ctx, () => vertex.getEndpoint(name, callOptions()));
      refuseUnlessOurs(
        ctx,
        'endpoint',
        endpoint,
        input.ownership,
        (reason) => `endpoint ${name} is no longer this deployment's (${reason}); nothing was scaled`,
      );
      const deployed = endpoint.deployedModels.find((m) => m.id === deployedModelId);
      if (!deployed) {
        throw permanentFailure(
          NON_RETRYABLE_ERRORS.scaleFailed,
          `endpoint ${name} has no deployed model ${deployedModelId} (someone undeployed it); nothing was scaled. ` +
            'Tear the deployment down and deploy it again.',
        );
      }
      const current = deployed.dedicatedResources;
      const autoscaling = input.autoscaling && autoscalingInput(input.autoscaling);
      const change = {
        ...(current?.minReplicaCount !== minReplicas || current?.maxReplicaCount !== maxReplicas
          ? { minReplicaCount: minReplicas, maxReplicaCount: maxReplicas }
          : {}),
        ...(autoscaling &&
        JSON.stringify(current?.autoscalingMetricSpecs ?? []) !== JSON.stringify(autoscaling)
          ? { autoscalingMetricSpecs: autoscaling }
          : {}),
        ...(input.containerLogging !== undefined &&
        Boolean(deployed.enableContainerLogging) !== input.containerLogging
          ? { enableContainerLogging: input.containerLogging }
          : {}),
      };
      let operation = '';
      if (Object.keys(change).length > 0) {
        const op = await retryTransient(ctx, () =>
          vertex.mutateDeployedModel({ endpoint: name, deployedModelId, ...change }, callOptions()),
        );
        operation = op.name;
        const finished = await pollUntil(ctx, {
          progress: () => ({ operationName: op.name, status: 'waiting for mutateDeployedModel' }),
          check: async () => {
            const now = await vertex.getOperation(op.name, callOptions());
            return now.done ? now : undefined;
          },
        });
        if (finished.error) {
          throw permanentFailure(
            finished.error.status === 'RESOURCE_EXHAUSTED'
              ? NON_RETRYABLE_ERRORS.quotaExhausted
              : NON_RETRYABLE_ERRORS.scaleFailed,
            `mutateDeployedModel of ${deployedModelId} failed (${finished.error.status}): ${finished.error.googleMessage} — ${finished.error.hint}`,
          );
        }
      }
      await pollUntil(ctx, {
        progress: () => ({ available, target: minReplicas }),
        check: async () => {
          const now = await vertex.getEndpoint(name, callOptions());
          available =
            now.deployedModels.find((m) => m.id === deployedModelId)?.status?.availableReplicaCount ?? 0;
          return available >= minReplicas ? available : undefined;
        },
        deadline: {
          at: input.deadline,
          expired: async () => {
            throw permanentFailure(
              NON_RETRYABLE_ERRORS.replicasTimeout,
              `only ${available} of ${minReplicas} replicas of ${deployedModelId} became available after scaling ` +
                '(timeouts.replicas); the new counts stay set. Check the endpoint in the Cloud console.',
            );
          },
        },
      });
      return { available, minReplicas, maxReplicas, operation, attempt: currentAttempt() };
    } catch (err) {
      throw toActivityFailure(err, `scaling ${deployedModelId} of ${name}`);
    }
  };
}
