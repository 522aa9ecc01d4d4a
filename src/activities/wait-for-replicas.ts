import {
  type Attempted,
  NON_RETRYABLE_ERRORS,
  type ReplicaStatus,
  type WaitForReplicasInput,
} from './contract';
import type { ActivityContext } from './deps';
import { currentAttempt, permanentFailure, toActivityFailure } from './failures';
import { callOptions, pollUntil } from './runtime';
import { dedicatedDnsOf, serviceAttachmentOf } from './vertex-resources';

/**
 * Polls the endpoint with backoff until the deployed model has `minReplicas` available replicas,
 * heartbeating N/M and Vertex's status message; past the deadline the step fails with the last
 * message seen.
 */
export function waitForReplicasActivity(ctx: ActivityContext) {
  return async function waitForReplicas(input: WaitForReplicasInput): Promise<Attempted<ReplicaStatus>> {
    let last: ReplicaStatus = { available: 0, target: input.minReplicas };
    try {
      const status = await pollUntil(ctx, {
        progress: () => ({ available: last.available, target: last.target, message: last.message }),
        resumable: true,
        check: async () => {
          const endpoint = await ctx.gcp.vertex.getEndpoint(input.endpoint, callOptions());
          const deployed = input.deployedModelId
            ? endpoint.deployedModels.find((m) => m.id === input.deployedModelId)
            : endpoint.deployedModels[0];
          if (!deployed) {
            throw permanentFailure(
              NON_RETRYABLE_ERRORS.replicasTimeout,
              `endpoint ${input.endpoint} has no deployed model${input.deployedModelId ? ` ${input.deployedModelId}` : ''}: ` +
                'it was undeployed while waiting for replicas; start the deployment again.',
            );
          }
          const dns = dedicatedDnsOf(endpoint);
          const attachment = serviceAttachmentOf(endpoint, deployed);
          last = {
            available: deployed.status?.availableReplicaCount ?? 0,
            target: input.minReplicas,
            deployedModelId: deployed.id,
            ...(deployed.status?.message ? { message: deployed.status.message } : {}),
            ...(dns ? { dedicatedEndpointDns: dns } : {}),
            ...(attachment ? { serviceAttachment: attachment } : {}),
          };
          return last.available >= input.minReplicas ? last : undefined;
        },
        deadline: {
          at: input.deadline,
          expired: async () => {
            throw permanentFailure(
              NON_RETRYABLE_ERRORS.replicasTimeout,
              `only ${last.available} of ${input.minReplicas} replicas of ${input.endpoint} became available by the ` +
                `deadline (timeouts.replicas, ${new Date(input.deadline).toISOString()})` +
                `${last.message ? `; Vertex reports: ${last.message}` : ''}. Check the endpoint's logs in the Cloud ` +
                'console (model server start-up errors, GPU stockout), or raise timeouts.replicas.',
            );
          },
        },
      });
      return { ...status, attempt: currentAttempt() };
    } catch (err) {
      throw toActivityFailure(err, `waiting for replicas of ${input.endpoint}`);
    }
  };
}
