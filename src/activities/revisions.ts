import {
  type Endpoint,
  GcpApiError,
  endpointTraffic,
  isAlreadyExists,
  isNotFound,
  readDeployModelResponse,
} from '../gcp';
import { formatDuration } from '../spec';
import {
  type Attempted,
  type CleanupResult,
  NON_RETRYABLE_ERRORS,
  type OwnershipProof,
  type RevisionDeployInput,
  type RevisionDeployStarted,
  type TrafficInput,
  type TrafficResult,
  type TrafficWindowInput,
  type TrafficWindowResult,
  type UndeployRevisionInput,
} from './contract';
import type { ActivityContext } from './deps';
import { machineInput, scalingInput } from './serving-request';
import { cleanupFailure, currentAttempt, permanentFailure, toActivityFailure } from './failures';
import { beat, callOptions, pollUntil, retryTransient } from './runtime';
import { DEFAULT_STOP_WAIT_MS } from './compensations';
import { endedOperation, getIfExists, operationDone, refuseUnlessOurs } from './vertex-resources';

/** Default bound on waiting out a deployModel operation before undeploying what it deploys. */
/** Read-modify-write rounds of a traffic split before giving up on a busy endpoint. */
const SPLIT_ATTEMPTS = 5;

/**
 * The steps of an upgrade on the deployment's own endpoint: deploy the new revision's Model next
 * to the serving one (`deployModel` with a fixed deployed-model id, so a retry never deploys twice),
 * move traffic between them (UpdateEndpoint's `traffic_split`, on the endpoint's etag), take one
 * off again, and read what each served (Cloud Monitoring). Every call first checks the endpoint
 * and model are this deployment's.
 */
export function revisionActivities(ctx: ActivityContext) {
  const { vertex, monitoring } = ctx.gcp;

  /** The endpoint, refused unless it is this deployment's; undefined when gone. */
  async function ourEndpoint(name: string, ownership: OwnershipProof): Promise<Endpoint | undefined> {
    const endpoint = await retryTransient(ctx, () =>
      getIfExists(() => vertex.getEndpoint(name, callOptions())),
    );
    if (!endpoint) return undefined;
    refuseUnlessOurs(
      ctx,
      'endpoint',
      endpoint,
      ownership,
      (reason) => `endpoint ${name} is not this deployment's: ${reason}; nothing was changed on it`,
    );
    return endpoint;
  }

  async function requireEndpoint(name: string, ownership: OwnershipProof): Promise<Endpoint> {
    const endpoint = await ourEndpoint(name, ownership);
    if (endpoint) return endpoint;
    throw permanentFailure(
      NON_RETRYABLE_ERRORS.upgradeFailed,
      `the deployment's endpoint ${name} no longer exists (deleted outside garden-deploy?); tear the deployment down and deploy it again`,
    );
  }

  async function startRevisionDeploy(input: RevisionDeployInput): Promise<Attempted<RevisionDeployStarted>> {
    beat({ status: `deploying ${input.model} on ${input.endpoint}` });
    try {
      const endpoint = await requireEndpoint(input.endpoint, input.ownership);
      const model = await retryTransient(ctx, () => vertex.getModel(input.model, callOptions()));
      refuseUnlessOurs(
        ctx,
        'model',
        model,
        input.ownership,
        (reason) => `model ${input.model} is not this deployment's: ${reason}`,
      );
      if (endpoint.deployedModels.some((m) => m.id === input.deployedModelId))
        return { adopted: true, attempt: currentAttempt() };
      const { spec } = input;
      try {
        const op = await retryTransient(ctx, () =>
          vertex.deployModel(
            {
              endpoint: input.endpoint,
              deployedModelId: input.deployedModelId,
              model: input.model,
              displayName: input.displayName,
              // The Model carries its container already; the deployed model gets its resources.
              machine: machineInput(spec.machine, spec.capacity),
              ...scalingInput(spec),
              enableContainerLogging: spec.logging.container,
              ...(spec.logging.access ? { enableAccessLogging: true } : {}),
              trafficSplit: input.trafficSplit,
            },
            callOptions(),
          ),
        );
        return { operation: op.name, adopted: false, attempt: currentAttempt() };
      } catch (err) {
        // An earlier attempt's deployModel is running (its answer was lost): finish waits for it.
        if (isAlreadyExists(err)) return { adopted: true, attempt: currentAttempt() };
        throw err;
      }
    } catch (err) {
      throw toActivityFailure(err, `deploying ${input.model} on ${input.endpoint}`);
    }
  }

  async function finishRevisionDeploy(
    input: RevisionDeployInput & { operation?: string; deadline: number },
  ): Promise<Attempted<{ deployedModelId: string }>> {
    const { operation, deadline } = input;
    const expired = async (): Promise<never> => {
      throw permanentFailure(
        NON_RETRYABLE_ERRORS.deployFailed,
        `${input.model} was not deployed on ${input.endpoint} within timeouts.deploy ` +
          `(${formatDuration(input.spec.timeouts.deploy)}); the upgrade is rolled back`,
      );
    };
    try {
      if (operation) {
        const op = await pollUntil(ctx, {
          progress: () => ({ status: 'waiting for the deployModel operation', operationName: operation }),
          check: operationDone(ctx, operation),
          longPoll: true,
          resumable: true,
          deadline: { at: deadline, expired },
        });
        if (op?.error) {
          const quota = op.error.status === 'RESOURCE_EXHAUSTED';
          throw permanentFailure(
            quota ? NON_RETRYABLE_ERRORS.quotaExhausted : NON_RETRYABLE_ERRORS.deployFailed,
            `deploying ${input.model} on ${input.endpoint} failed (${op.error.status}): ${op.error.googleMessage} — ${op.error.hint}` +
              (quota ? ' (during an upgrade the old and the new revision run side by side)' : ''),
          );
        }
        if (op) return { deployedModelId: readDeployModelResponse(op).id, attempt: currentAttempt() };
      }
      // Adopted (or the operation was forgotten): wait for our deployed model to appear.
      await pollUntil(ctx, {
        progress: () => ({ status: `waiting for deployed model ${input.deployedModelId}` }),
        resumable: true,
        check: async () => {
          const endpoint = await requireEndpoint(input.endpoint, input.ownership);
          return endpoint.deployedModels.some((m) => m.id === input.deployedModelId) ? true : undefined;
        },
        deadline: { at: deadline, expired },
      });
      return { deployedModelId: input.deployedModelId, attempt: currentAttempt() };
    } catch (err) {
      throw toActivityFailure(err, `deploying ${input.model} on ${input.endpoint}`);
    }
  }

  async function setTraffic(input: TrafficInput): Promise<Attempted<TrafficResult>> {
    beat({ status: `traffic split ${JSON.stringify(input.split)}` });
    try {
      for (let round = 1; ; round++) {
        const endpoint = await requireEndpoint(input.endpoint, input.ownership);
        const deployed = new Set(endpoint.deployedModels.map((m) => m.id));
        const missing = Object.keys(input.split).filter((id) => !deployed.has(id));
        if (missing.length > 0) {
          throw permanentFailure(
            NON_RETRYABLE_ERRORS.upgradeFailed,
            `cannot route traffic to deployed model(s) ${missing.join(', ')}: they are not on ${input.endpoint} ` +
              `(deployed: ${[...deployed].join(', ') || 'none'})`,
          );
        }
        if (sameSplit(endpoint.trafficSplit, input.split))
          return { trafficSplit: endpoint.trafficSplit, changed: false, attempt: currentAttempt() };
        try {
          const updated = await retryTransient(ctx, () =>
            vertex.setTrafficSplit(input.endpoint, input.split, {
              ...callOptions(),
              ...(endpoint.etag ? { etag: endpoint.etag } : {}),
            }),
          );
          return { trafficSplit: updated.trafficSplit, changed: true, attempt: currentAttempt() };
        } catch (err) {
          // Someone changed the endpoint since we read it: read it again and re-apply.
          if (!(err instanceof GcpApiError && err.status === 'ABORTED') || round >= SPLIT_ATTEMPTS) throw err;
        }
      }
    } catch (err) {
      throw toActivityFailure(err, `setting the traffic split of ${input.endpoint}`);
    }
  }

  async function undeployRevision(input: UndeployRevisionInput): Promise<Attempted<CleanupResult>> {
    const resource = `${input.endpoint}/deployedModels/${input.deployedModelId}`;
    try {
      if (input.operation) await waitOut(input.operation, input.stopWaitMs ?? DEFAULT_STOP_WAIT_MS);
      const endpoint = await ourEndpoint(input.endpoint, input.ownership);
      if (!endpoint?.deployedModels.some((m) => m.id === input.deployedModelId))
        return { outcomes: [{ resource, outcome: 'already-gone' }], attempt: currentAttempt() };
      const others = endpoint.deployedModels.map((m) => m.id).filter((id) => id !== input.deployedModelId);
      const heir = others.includes(input.keep) ? input.keep : others[0];
      beat({ removing: resource });
      const op = await retryTransient(ctx, () =>
        getIfExists(() =>
          vertex.undeployModel(
            {
              endpoint: input.endpoint,
              deployedModelId: input.deployedModelId,
              ...(heir ? { trafficSplit: { [heir]: 100 } } : {}),
            },
            callOptions(),
          ),
        ),
      );
      if (!op) return { outcomes: [{ resource, outcome: 'already-gone' }], attempt: currentAttempt() };
      const done = await waitOut(op.name, DEFAULT_STOP_WAIT_MS);
      if (done.error && !isNotFound(done.error)) throw done.error;
      return {
        outcomes: [{ resource, outcome: done.error ? 'already-gone' : 'removed' }],
        attempt: currentAttempt(),
      };
    } catch (err) {
      throw cleanupFailure(err, `undeploy ${resource}`, true);
    }
  }

  /** Polls an operation until done, bounded; past the bound the attempt fails naming it. */
  function waitOut(operation: string, waitMs: number) {
    return pollUntil(ctx, {
      progress: () => ({ status: `waiting for ${operation} to end`, operation }),
      check: () => endedOperation(ctx, operation),
      deadline: {
        at: Date.now() + waitMs,
        expired: async () => {
          throw new Error(`operation ${operation} is still running after ${formatDuration(waitMs)}`);
        },
      },
    });
  }

  async function measureTraffic(input: TrafficWindowInput): Promise<Attempted<TrafficWindowResult>> {
    beat({ status: `reading serving metrics of ${input.endpointId}` });
    try {
      const byDeployedModel = await retryTransient(ctx, () =>
        endpointTraffic(monitoring, input, callOptions()),
      );
      return { byDeployedModel, attempt: currentAttempt() };
    } catch (err) {
      throw toActivityFailure(err, `reading the serving metrics of endpoint ${input.endpointId}`);
    }
  }

  return { startRevisionDeploy, finishRevisionDeploy, setTraffic, undeployRevision, measureTraffic };
}

function sameSplit(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((key) => (a[key] ?? 0) === (b[key] ?? 0));
}
