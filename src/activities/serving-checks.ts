import {
  type GcpApiError,
  containerLogLines,
  isGcpApiError,
  readServingQuota,
  readMutateDeployedModelResponse,
} from '../gcp';
import { classifyContainerLogs } from '../diagnosis/container-logs';
import type { MachineSpec } from '../spec';
import {
  type Attempted,
  type ConfigureInput,
  type DiagnoseInput,
  type DiagnoseResult,
  NON_RETRYABLE_ERRORS,
  type QuotaCheckInput,
  type QuotaCheckResult,
  type QuotaReading,
} from './contract';
import type { ActivityContext } from './deps';
import { currentAttempt, permanentFailure, toActivityFailure } from './failures';
import { beat, callOptions, pollUntil, retryTransient } from './runtime';
import { endedOperation, refuseUnlessOurs } from './vertex-resources';

/** Where Google documents how to ask for more serving quota. */
const QUOTA_REQUEST_URL = 'https://cloud.google.com/vertex-ai/docs/quotas#requesting_additional_quota';
/** Container lines read after a failed start. */
const LOG_LINES = 50;

/**
 * The checks around a deploy that no Google client makes for custom weights: the serving GPU quota
 * before anything is requested (gcloud's own check, lifecycle-apis.md §4.2), the serving
 * container's own lines after a start fails (Cloud Logging, §3), and what `:deploy` cannot set
 * (container logging, the inference timeout) once the deployed model exists.
 */
export function servingCheckActivities(ctx: ActivityContext) {
  const { vertex, quotas, monitoring, logging } = ctx.gcp;

  /** GPUs a machine is charged for per replica. */
  const gpus = (machine: MachineSpec) =>
    machine.acceleratorCount * Math.max(1, machine.multihostGpuNodeCount ?? 1);

  async function checkServingQuota(input: QuotaCheckInput): Promise<Attempted<QuotaCheckResult>> {
    beat({ status: 'reading the serving GPU quota' });
    const chosen = input.machines[0]!;
    let first: QuotaReading | undefined;
    try {
      for (const machine of input.machines) {
        const reading = await retryTransient(ctx, () =>
          readServingQuota(
            { quotas, monitoring },
            {
              project: input.project,
              region: input.region,
              acceleratorType: machine.acceleratorType,
              spot: input.spot ?? false,
            },
            callOptions(),
          ),
        );
        if (!reading) {
          if (machine === chosen)
            return unchecked(chosen, `no serving quota is known for ${machine.acceleratorType}; not checked`);
          continue;
        }
        const numbers: QuotaReading = {
          quotaId: reading.quota.quotaId,
          metric: reading.quota.metric,
          limit: reading.limit,
          usage: reading.usage,
          requested: input.maxReplicas * gpus(machine),
        };
        first ??= numbers;
        if (numbers.usage + numbers.requested <= numbers.limit)
          return { verdict: 'fits', machine, reading: numbers, attempt: currentAttempt() };
      }
    } catch (err) {
      // A check that cannot run (no permission, API off) must not stop a deployment: say so and go on.
      if (isGcpApiError(err) && err.classification !== 'retryable')
        return unchecked(chosen, `the quota check could not run: ${describe(err)}`);
      throw toActivityFailure(err, `checking the serving GPU quota of ${input.project}`);
    }
    const q = first!;
    const others =
      input.machines.length > 1
        ? ` (nor does any of the ${input.machines.length - 1} other machines that fit the model)`
        : '';
    throw permanentFailure(
      NON_RETRYABLE_ERRORS.quotaShortfall,
      `not enough serving GPU quota for ${input.maxReplicas} × ${gpus(chosen)} ${chosen.acceleratorType} in ${input.region}${others}: ` +
        `quota ${q.quotaId} (${q.metric}) has limit ${q.limit}, ${q.usage} in use, and this deployment asks for ${q.requested} ` +
        `(replicas.max × accelerators). Nothing was created. Ask for more at ${QUOTA_REQUEST_URL} (Cloud console → IAM & Admin → ` +
        'Quotas), lower replicas.max, or pick another machine or region.',
    );
  }

  function unchecked(machine: MachineSpec, warning: string): Attempted<QuotaCheckResult> {
    return { verdict: 'unchecked', machine, warning, attempt: currentAttempt() };
  }

  async function diagnoseStart(input: DiagnoseInput): Promise<Attempted<DiagnoseResult>> {
    beat({ status: 'reading the serving container logs' });
    try {
      const lines = await retryTransient(ctx, () =>
        containerLogLines(
          logging,
          {
            project: input.project,
            region: input.region,
            endpointId: input.endpointId,
            ...(input.deployedModelId ? { deployedModelId: input.deployedModelId } : {}),
            since: new Date(input.since),
            max: LOG_LINES,
          },
          callOptions(),
        ),
      );
      return { rootCause: classifyContainerLogs(lines.map((l) => l.message)), attempt: currentAttempt() };
    } catch (err) {
      // The diagnosis explains a failure; it must never become the failure.
      if (isGcpApiError(err))
        return {
          unavailable: `the container logs could not be read: ${describe(err)}`,
          attempt: currentAttempt(),
        };
      throw toActivityFailure(err, `reading the container logs of endpoint ${input.endpointId}`);
    }
  }

  async function configureDeployedModel(input: ConfigureInput): Promise<Attempted<{ changed: string[] }>> {
    beat({ status: 'configuring the deployed model' });
    try {
      const changed: string[] = [];
      const endpoint = await retryTransient(ctx, () => vertex.getEndpoint(input.endpoint, callOptions()));
      refuseUnlessOurs(
        ctx,
        'endpoint',
        endpoint,
        input.ownership,
        (reason) => `endpoint ${input.endpoint} is not this deployment's: ${reason}`,
      );
      const deployed = endpoint.deployedModels.find((m) => m.id === input.deployedModelId);
      if (deployed && Boolean(deployed.enableContainerLogging) !== input.containerLogging) {
        const op = await retryTransient(ctx, () =>
          vertex.mutateDeployedModel(
            {
              endpoint: input.endpoint,
              deployedModelId: input.deployedModelId,
              enableContainerLogging: input.containerLogging,
            },
            callOptions(),
          ),
        );
        readMutateDeployedModelResponse(await untilDone(op.name));
        changed.push(`container logging ${input.containerLogging ? 'on' : 'off'}`);
      }
      const timeout = input.inferenceTimeoutMs;
      if (
        timeout !== undefined &&
        endpoint.clientConnectionConfig?.inferenceTimeout !== `${timeout / 1000}s`
      ) {
        const op = await retryTransient(ctx, () =>
          vertex.setInferenceTimeout(input.endpoint, timeout, callOptions()),
        );
        const done = await untilDone(op.name);
        if (done.error) throw done.error;
        changed.push(`inference timeout ${timeout / 1000}s`);
      }
      return { changed, attempt: currentAttempt() };
    } catch (err) {
      throw toActivityFailure(err, `configuring ${input.endpoint}`);
    }
  }

  function untilDone(name: string) {
    return pollUntil(ctx, {
      progress: () => ({ status: `waiting for ${name}`, operationName: name }),
      check: () => endedOperation(ctx, name),
    });
  }

  return { checkServingQuota, diagnoseStart, configureDeployedModel };
}

function describe(err: GcpApiError): string {
  return `${err.httpStatus ?? ''} ${err.status}: ${err.googleMessage} — ${err.hint}`.trim();
}
