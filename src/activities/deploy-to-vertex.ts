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
  type FinishDeployInput,
  NON_RETRYABLE_ERRORS,
  type StartDeployInput,
  type StartDeployResult,
} from './contract';
import type { ActivityContext } from './deps';
import { currentAttempt, isCancellation, permanentFailure, toActivityFailure } from './failures';
import { identityLabels } from './ownership';
import { beat, callOptions, cancelRequestedByWorkflow, pollUntil, retryTransient } from './runtime';
import { servingInput } from './serving-request';
import {
  dedicatedDnsOf,
  deployedModelOf,
  endpointOf,
  getIfExists,
  judgeVertexOwnership,
  modelOf,
  operationDone,
  serviceAttachmentOf,
} from './vertex-resources';

/**
 * The deploy step, as two activities so the workflow holds the operation name before anything
 * waits on it: `startDeploy` submits Model Garden `:deploy` with the deployment's own endpoint and
 * model ids (a repeated call can never create a second endpoint: an existing one is adopted when it
 * is ours and refused otherwise); `finishDeploy` awaits the operation, then labels the endpoint and
 * model with the deployment's identity (`:deploy` cannot carry labels in v1beta1) and records their
 * creation times. `deployToVertex` runs both in one activity for workflows of garden-deploy 0.1.
 */
export function deployActivities(ctx: ActivityContext) {
  const vertex = ctx.gcp.vertex;

  /** Refuses a resource that is not this deployment's, naming it and how to resolve it. */
  function assertOurs(input: StartDeployInput, kind: 'endpoint' | 'model', resource: Endpoint | Model): void {
    const verdict = judgeVertexOwnership(ctx, kind, resource, input.ownership);
    if (verdict.ours) return;
    const { spec, ids } = input;
    const id = kind === 'endpoint' ? ids.endpointId : ids.modelId;
    throw permanentFailure(
      NON_RETRYABLE_ERRORS.resourceConflict,
      `${kind} ${resource.name} already exists and is not this deployment's: ${verdict.reason}. ` +
        `If it is a leftover of an earlier deployment of "${spec.name}", remove it with \`garden-deploy teardown ${ids.workflowId}\`; ` +
        `otherwise delete it (gcloud ai ${kind}s delete ${id} --project ${spec.project} --region ${spec.region}) ` +
        `or choose another ${kind}.id in the spec.`,
    );
  }

  /** GET the endpoint; submit `:deploy` when it does not exist. */
  async function submit(input: StartDeployInput): Promise<StartDeployResult> {
    const endpoint = endpointOf(input.spec.project, input.spec.region, input.ids);
    const existing = await retryTransient(ctx, () =>
      getIfExists(() => vertex.getEndpoint(endpoint, callOptions())),
    );
    if (existing) {
      assertOurs(input, 'endpoint', existing);
      return { adopted: true };
    }
    try {
      const op = await retryTransient(ctx, () => vertex.deploy(deployRequestOf(input), callOptions()));
      return { operation: op.name, adopted: false };
    } catch (err) {
      // An earlier attempt's :deploy got in (its answer was lost), or someone else's: `finish` tells which.
      if (!isAlreadyExists(err)) throw err;
      return { adopted: true };
    }
  }

  /** Waits for the operation (or the adopted endpoint to serve our model), then labels both. */
  async function finish(
    input: FinishDeployInput,
    progress: (status: string) => unknown,
  ): Promise<Omit<DeployToVertexResult, 'adopted'> & { adopted: boolean }> {
    const { spec, ids, deadline, operation } = input;
    const endpoint = endpointOf(spec.project, spec.region, ids);
    const model = modelOf(spec.project, spec.region, ids);
    let adopted = operation === undefined;
    let finished: { endpoint: string; model: string } | undefined;
    if (operation) {
      const op = await pollUntil(ctx, {
        progress: () => progress('waiting for the deploy operation'),
        check: operationDone(ctx, operation),
        longPoll: true,
        resumable: true,
        deadline: {
          at: deadline,
          expired: async () => {
            await cancelQuietly(ctx, operation);
            throw permanentFailure(
              NON_RETRYABLE_ERRORS.deployFailed,
              `the deploy operation ${operation} did not finish within timeouts.deploy (${formatDuration(spec.timeouts.deploy)}); ` +
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
        resumable: true,
        check: async () => {
          const found = await getIfExists(() => vertex.getEndpoint(endpoint, callOptions()));
          if (!found) {
            // The conflict may be the model id; a model of ours means our deploy is still importing.
            const existingModel = await getIfExists(() => vertex.getModel(model, callOptions()));
            if (existingModel) assertOurs(input, 'model', existingModel);
            return undefined;
          }
          assertOurs(input, 'endpoint', found);
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
    const labels = {
      ...(input.ownership.identity
        ? identityLabels(input.ownership.identity)
        : { [DEPLOYMENT_LABEL]: spec.name }),
      ...spec.labels,
    };
    // Merged over the labels the resource has: Google's own labels stay.
    const labelled = await retryTransient(ctx, async () => {
      const current = await vertex.getEndpoint(deployed.endpoint, callOptions());
      assertOurs(input, 'endpoint', current);
      if (hasLabels(current.labels, labels)) return current;
      return vertex.setEndpointLabels(
        current.name,
        { ...current.labels, ...labels },
        { ...callOptions(), ...(current.etag ? { etag: current.etag } : {}) },
      );
    });
    const labelledModel = await retryTransient(ctx, async () => {
      const current = await vertex.getModel(deployed.model, callOptions());
      assertOurs(input, 'model', current);
      if (hasLabels(current.labels, labels)) return current;
      return vertex.setModelLabels(
        current.name,
        { ...current.labels, ...labels },
        { ...callOptions(), ...(current.etag ? { etag: current.etag } : {}) },
      );
    });

    const serving = deployedModelOf(labelled, deployed.model);
    const attachment = serviceAttachmentOf(labelled, serving);
    const dns = dedicatedDnsOf(labelled);
    return {
      adopted,
      resources: {
        ...(operation ? { deployOperation: operation } : {}),
        endpoint: labelled.name,
        model: deployed.model,
        ...(serving ? { deployedModelId: serving.id } : {}),
        ...(dns ? { dedicatedEndpointDns: dns } : {}),
        ...(attachment ? { serviceAttachment: attachment } : {}),
      },
      fingerprints: {
        ...(labelled.createTime ? { endpointCreateTime: labelled.createTime } : {}),
        ...(labelledModel.createTime ? { modelCreateTime: labelledModel.createTime } : {}),
      },
    };
  }

  /** Stops Google's work only when the workflow cancelled us; after a crash the next attempt resumes it. */
  async function onFailure(err: unknown, operation: string | undefined, input: StartDeployInput) {
    if (operation && isCancellation(err) && cancelRequestedByWorkflow()) await cancelQuietly(ctx, operation);
    return toActivityFailure(err, `deploying ${input.spec.model.uri} to endpoint ${input.ids.endpointId}`);
  }

  async function startDeploy(input: StartDeployInput): Promise<Attempted<StartDeployResult>> {
    beat({ status: 'submitting :deploy' });
    try {
      return { ...(await submit(input)), attempt: currentAttempt() };
    } catch (err) {
      throw await onFailure(err, undefined, input);
    }
  }

  async function finishDeploy(input: FinishDeployInput): Promise<Attempted<DeployToVertexResult>> {
    const progress = (status: string) => ({
      ...(input.operation ? { operationName: input.operation } : {}),
      status,
    });
    try {
      return { ...(await finish(input, progress)), attempt: currentAttempt() };
    } catch (err) {
      throw await onFailure(err, input.operation, input);
    }
  }

  async function deployToVertex(input: DeployToVertexInput): Promise<Attempted<DeployToVertexResult>> {
    const resumed = DeployHeartbeatSchema.safeParse(activityInfo().heartbeatDetails ?? {});
    const checkpoint = resumed.success ? resumed.data : {};
    const submittedAt = checkpoint.submittedAt ?? Date.now();
    let operation = checkpoint.operationName;
    const progress = (status: string): DeployHeartbeat => ({
      submittedAt,
      ...(operation ? { operationName: operation } : {}),
      status,
    });
    try {
      let adopted = false;
      if (!operation) {
        const started = await submit(input);
        operation = started.operation;
        adopted = started.adopted;
        // The attempt's first heartbeat goes out at once: the name reaches the server before a crash can lose it.
        if (operation) beat(progress('deploy operation started'));
      }
      const result = await finish({ ...input, ...(operation ? { operation } : {}) }, progress);
      return { ...result, adopted: adopted || result.adopted, attempt: currentAttempt() };
    } catch (err) {
      throw await onFailure(err, operation, input);
    }
  }

  return { startDeploy, finishDeploy, deployToVertex };
}

/**
 * What `deployToVertex` checkpoints in its heartbeat. A new attempt after a worker crash or a
 * heartbeat timeout resumes the operation named here instead of issuing a second `:deploy`.
 */
const DeployHeartbeatSchema = z.looseObject({
  submittedAt: z.number().int().positive().optional(),
  operationName: z.string().min(1).max(1_000).optional(),
});
type DeployHeartbeat = z.infer<typeof DeployHeartbeatSchema> & { status: string };

/** The `:deploy` request of a validated spec: every serving option as the client's input. */
export function deployRequestOf({ spec, ids }: Pick<StartDeployInput, 'spec' | 'ids'>): DeployInput {
  return {
    project: spec.project,
    location: spec.region,
    gcsUri: spec.model.uri,
    modelUserId: ids.modelId,
    modelDisplayName: ids.modelDisplayName,
    endpointUserId: ids.endpointId,
    endpointDisplayName: ids.endpointDisplayName,
    ...servingInput(spec),
    ...(spec.endpoint.dedicated === false ? { dedicatedEndpointDisabled: true } : {}),
    ...(spec.fastTryout ? { fastTryoutEnabled: true } : {}),
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
export async function cancelQuietly(ctx: ActivityContext, operation: string): Promise<void> {
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
