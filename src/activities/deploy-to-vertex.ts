import { activityInfo, log } from '@temporalio/activity';
import { z } from 'zod';
import { DEPLOYMENT_LABEL } from '../constants';
import {
  type DeployInput,
  type Endpoint,
  type Model,
  type Operation,
  hasLabels,
  isAlreadyExists,
  isNotFound,
  readDeployResponse,
} from '../gcp';
import { formatDuration } from '../spec';
import {
  type Attempted,
  type DeployToVertexInput,
  type DeployToVertexResult,
  NON_RETRYABLE_ERRORS,
} from './contract';
import type { ActivityContext } from './deps';
import { currentAttempt, isCancellation, permanentFailure, toActivityFailure } from './failures';
import { beat, callOptions, cancelRequestedByWorkflow, pollUntil, retryTransient } from './runtime';
import {
  dedicatedDnsOf,
  deployedModelOf,
  endpointOf,
  getIfExists,
  judgeVertexOwnership,
  modelOf,
  serviceAttachmentOf,
} from './vertex-resources';

/**
 * What the deploy step checkpoints in its heartbeat. A new attempt after a worker crash or a
 * heartbeat timeout resumes the operation named here instead of issuing a second `:deploy`.
 */
const DeployHeartbeatSchema = z.looseObject({
  submittedAt: z.number().int().positive().optional(),
  operationName: z.string().min(1).max(1_000).optional(),
});
type DeployHeartbeat = z.infer<typeof DeployHeartbeatSchema> & { status: string };

/**
 * Model Garden `:deploy` with the deployment's own endpoint and model ids, so a repeated call can
 * never create a second endpoint: an endpoint that already exists is adopted when it is ours and
 * refused otherwise. Awaits the operation, then labels the endpoint and model as this
 * deployment's (`:deploy` cannot carry endpoint labels in v1beta1).
 */
export function deployToVertexActivity(ctx: ActivityContext) {
  return async function deployToVertex(input: DeployToVertexInput): Promise<Attempted<DeployToVertexResult>> {
    const { spec, ids, ownership, deadline } = input;
    const vertex = ctx.gcp.vertex;
    const endpoint = endpointOf(spec.project, spec.region, ids);
    const model = modelOf(spec.project, spec.region, ids);
    const resumed = DeployHeartbeatSchema.safeParse(activityInfo().heartbeatDetails ?? {});
    const checkpoint = resumed.success ? resumed.data : {};
    const submittedAt = checkpoint.submittedAt ?? Date.now();
    let operationName = checkpoint.operationName;
    const progress = (status: string): DeployHeartbeat => ({
      submittedAt,
      ...(operationName ? { operationName } : {}),
      status,
    });

    /** Refuses a resource that is not this deployment's, naming it and how to resolve it. */
    const assertOurs = (kind: 'endpoint' | 'model', resource: Endpoint | Model): void => {
      const verdict = judgeVertexOwnership(ctx, kind, resource, ownership);
      if (verdict.ours) return;
      const id = kind === 'endpoint' ? ids.endpointId : ids.modelId;
      throw permanentFailure(
        NON_RETRYABLE_ERRORS.resourceConflict,
        `${kind} ${resource.name} already exists and is not this deployment's: ${verdict.reason}. ` +
          `Delete it (gcloud ai ${kind}s delete ${id} --project ${spec.project} --region ${spec.region}) ` +
          `or choose another ${kind}.id in the spec.`,
      );
    };

    try {
      let adopted = false;
      if (!operationName) {
        // No heartbeat before the operation name is known: the SDK sends an attempt's first heartbeat at
        // once but throttles later ones, and the name must reach the server before a crash can lose it.
        const existing = await retryTransient(ctx, () =>
          getIfExists(() => vertex.getEndpoint(endpoint, callOptions())),
        );
        if (existing) {
          assertOurs('endpoint', existing);
          adopted = true;
        } else {
          try {
            const op = await retryTransient(ctx, () => vertex.deploy(deployRequest(input), callOptions()));
            operationName = op.name;
            beat(progress('deploy operation started'));
          } catch (err) {
            if (!isAlreadyExists(err)) throw err;
            adopted = true;
          }
        }
      }

      let finished: { endpoint: string; model: string } | undefined;
      if (operationName) {
        const name = operationName;
        const op = await pollUntil(ctx, {
          progress: () => progress('waiting for the deploy operation'),
          check: async () => {
            const current = await getIfExists(() => vertex.getOperation(name, callOptions()));
            if (!current) return null;
            return current.done ? current : undefined;
          },
          deadline: {
            at: deadline,
            expired: async () => {
              await cancelQuietly(ctx, name);
              throw permanentFailure(
                NON_RETRYABLE_ERRORS.deployFailed,
                `the deploy operation ${name} did not finish within timeouts.deploy (${formatDuration(spec.timeouts.deploy)}); ` +
                  'it was cancelled and the rollback removes whatever it created. Large models can take longer: raise timeouts.deploy.',
              );
            },
          },
        });
        // Forgotten by the server, or a repeated :deploy whose first one won the ids: look the endpoint up.
        if (op && op.error?.status !== 'ALREADY_EXISTS') finished = finishedDeploy(op, model);
        else adopted = true;
      }
      const deployed =
        finished ??
        (await pollUntil(ctx, {
          progress: () => progress(`adopting endpoint ${ids.endpointId} created by an earlier attempt`),
          check: async () => {
            const found = await getIfExists(() => vertex.getEndpoint(endpoint, callOptions()));
            if (!found) {
              // The conflict may be the model id; a model of ours means our deploy is still importing.
              const existingModel = await getIfExists(() => vertex.getModel(model, callOptions()));
              if (existingModel) assertOurs('model', existingModel);
              return undefined;
            }
            assertOurs('endpoint', found);
            const serving = deployedModelOf(found, model);
            return serving ? { endpoint: found.name, model: serving.model ?? model } : undefined;
          },
          deadline: {
            at: deadline,
            expired: async () => {
              throw permanentFailure(
                NON_RETRYABLE_ERRORS.deployFailed,
                `endpoint ${endpoint} belongs to this deployment but ${ids.modelId} was not deployed to it within ` +
                  `timeouts.deploy (${formatDuration(spec.timeouts.deploy)}); the deploy operation that created it may have failed ` +
                  '(see the operations in the Cloud console). The rollback removes the endpoint; start the deployment again.',
              );
            },
          },
        }));

      beat(progress('labelling the endpoint and model'));
      const labels = { [DEPLOYMENT_LABEL]: spec.name, ...spec.labels };
      const labelled = await retryTransient(ctx, async () => {
        const current = await vertex.getEndpoint(deployed.endpoint, callOptions());
        if (hasLabels(current.labels, labels)) return current;
        return vertex.setEndpointLabels(
          current.name,
          { ...current.labels, ...labels },
          {
            ...callOptions(),
            ...(current.etag ? { etag: current.etag } : {}),
          },
        );
      });
      await retryTransient(ctx, async () => {
        const current = await vertex.getModel(deployed.model, callOptions());
        if (hasLabels(current.labels, labels)) return;
        await vertex.setModelLabels(
          current.name,
          { ...current.labels, ...labels },
          {
            ...callOptions(),
            ...(current.etag ? { etag: current.etag } : {}),
          },
        );
      });

      const serving = deployedModelOf(labelled, deployed.model);
      const attachment = serviceAttachmentOf(labelled, serving);
      const dns = dedicatedDnsOf(labelled);
      return {
        adopted,
        resources: {
          ...(operationName ? { deployOperation: operationName } : {}),
          endpoint: labelled.name,
          model: deployed.model,
          ...(serving ? { deployedModelId: serving.id } : {}),
          ...(dns ? { dedicatedEndpointDns: dns } : {}),
          ...(attachment ? { serviceAttachment: attachment } : {}),
        },
        attempt: currentAttempt(),
      };
    } catch (err) {
      // Only the workflow's cancel stops Google's work; after a crash or shutdown the next attempt resumes it.
      if (operationName && isCancellation(err) && cancelRequestedByWorkflow()) {
        await cancelQuietly(ctx, operationName);
      }
      throw toActivityFailure(err, `deploying ${spec.model.uri} to endpoint ${ids.endpointId}`);
    }
  };
}

function deployRequest({ spec, ids }: DeployToVertexInput): DeployInput {
  return {
    project: spec.project,
    location: spec.region,
    gcsUri: spec.model.uri,
    modelUserId: ids.modelId,
    modelDisplayName: ids.modelDisplayName,
    endpointUserId: ids.endpointId,
    endpointDisplayName: ids.endpointDisplayName,
    machine: {
      machineType: spec.machine.type,
      acceleratorType: spec.machine.acceleratorType,
      acceleratorCount: spec.machine.acceleratorCount,
    },
    minReplicaCount: spec.replicas.min,
    maxReplicaCount: spec.replicas.max,
    ...(spec.access.type === 'private'
      ? { privateServiceConnect: { projectAllowlist: spec.access.projectAllowlist } }
      : {}),
  };
}

/** The endpoint and model of a finished operation; its error as a permanent failure. */
function finishedDeploy(op: Operation, model: string): { endpoint: string; model: string } {
  if (op.error) {
    const quota = op.error.status === 'RESOURCE_EXHAUSTED';
    throw permanentFailure(
      quota ? NON_RETRYABLE_ERRORS.quotaExhausted : NON_RETRYABLE_ERRORS.deployFailed,
      `the deploy operation ${op.name} failed (${op.error.status}): ${op.error.googleMessage} — ${op.error.hint}`,
    );
  }
  const response = readDeployResponse(op);
  return { endpoint: response.endpoint, model: response.model ?? model };
}

/** `:cancel` of a deploy operation, best effort: a failure to cancel must not hide why we stopped. */
async function cancelQuietly(ctx: ActivityContext, operation: string): Promise<void> {
  try {
    await ctx.gcp.vertex.cancelOperation(operation, { timeoutMs: 15_000 });
  } catch (err) {
    if (!isNotFound(err)) {
      log.warn('could not cancel the deploy operation', {
        operation,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
