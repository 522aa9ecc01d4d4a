import { randomUUID } from 'node:crypto';
import * as activity from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { expect } from 'vitest';
import type { CleanupInput, DeploymentActivities } from '../../src/activities/contract';
import type { ServingStats } from '../../src/rollout/gates';
import { type DeploymentSpecInput, deploymentIds, parseDeploymentSpec } from '../../src/spec';
import { workerTracingOptions } from '../../src/tracing';
import { getTestEnv, workflowBundle } from '../harness/env';

/**
 * A worker running the real workflows with scripted activities, for workflow, client and CLI
 * tests: each deployment follows the script registered under its workflow id; its teardown
 * follows the same script.
 */

export type ActivityName = keyof DeploymentActivities;

/** Opened by the test; an activity held at it heartbeats its details until then. */
export class Gate {
  private release!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  open(): void {
    this.release();
  }
}

export interface Script {
  /** Activities in the order the workflows called them. */
  calls: string[];
  /** Hold the activity (heartbeating `heartbeat`) until the gate opens or it is cancelled. */
  hold?: Partial<Record<ActivityName, { gate: Gate; heartbeat?: unknown }>>;
  /** Fail the first `attempts` attempts with a retryable error carrying `message`. */
  flaky?: Partial<Record<ActivityName, { attempts: number; message: string }>>;
  /** Fail at once, for good: a non-retryable ScriptedFailure with this message, or the error made. */
  fail?: Partial<Record<ActivityName, string | (() => Error)>>;
  /** The smoke tests get an answer, but fail for this reason. */
  smokeFailure?: string;
  /**
   * What Monitoring reports during an upgrade's bakes: the new revision's and the serving one's
   * requests (default: a busy, healthy canary).
   */
  traffic?: { candidate: ServingStats; baseline: ServingStats };
  /** The deployed model ids the upgrade deployed, in order (the last one is the canary). */
  deployedModels?: string[];
}

export interface ScriptedWorkerOptions {
  /** Record `deployToVertex:<endpoint id>` and `runSmokeTests:<target kind>`, not the bare names. */
  callDetails?: boolean;
  /** The dedicated endpoint's DNS name waitForReplicas reports. */
  dedicatedEndpointDns?: string;
}

export const publicSpec = (name: string): DeploymentSpecInput => ({
  name,
  project: 'my-project',
  region: 'us-central1',
  model: { uri: `gs://models-bucket/${name}/` },
  machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
});

/** A deployment name no other test (or earlier run on the same server) uses. */
export function uniqueName(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

export const workflowIdOf = (spec: DeploymentSpecInput) =>
  deploymentIds(parseDeploymentSpec(spec)).workflowId;

/** Asserts that no workflow `workflowId` was ever started. */
export async function expectNoWorkflow(client: Client, workflowId: string): Promise<void> {
  const lookup = await client.workflow
    .getHandle(workflowId)
    .describe()
    .catch((err: unknown) => err);
  expect(lookup).toBeInstanceOf(WorkflowNotFoundError);
}

export interface ScriptedWorker {
  taskQueue: string;
  /** Registers the script the deployment with this spec follows; returns it. */
  script(spec: DeploymentSpecInput, script?: Partial<Script>): Script;
  /** Registers the script the workflow with this id follows; returns it. */
  scriptWorkflow(workflowId: string, script?: Partial<Script>): Script;
  stop(): Promise<void>;
}

export async function startScriptedWorker(
  taskQueue: string,
  options: ScriptedWorkerOptions = {},
): Promise<ScriptedWorker> {
  const { nativeConnection, namespace } = await getTestEnv();
  const scripts = new Map<string, Script>();
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace,
    taskQueue,
    workflowBundle: workflowBundle(),
    // The bundle's tracing workflow interceptors need their sink, even with tracing off.
    ...workerTracingOptions(undefined),
    activities: scriptedActivities(scripts, options),
  });
  const running = worker.run();
  const scriptWorkflow = (workflowId: string, script: Partial<Script> = {}): Script => {
    const full: Script = { calls: [], ...script };
    scripts.set(workflowId, full);
    return full;
  };
  return {
    taskQueue,
    script: (spec, script) => scriptWorkflow(workflowIdOf(spec), script),
    scriptWorkflow,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

function scriptedActivities(
  scripts: Map<string, Script>,
  {
    callDetails = false,
    dedicatedEndpointDns = 'ep.us-central1-1.prediction.vertexai.goog',
  }: ScriptedWorkerOptions,
): DeploymentActivities {
  const scriptOf = (): Script => {
    const id = activity.activityInfo().workflowExecution?.workflowId ?? '';
    const script = scripts.get(id) ?? scripts.get(id.replace(/^teardown\//, 'deploy/'));
    if (!script) throw ApplicationFailure.nonRetryable(`no script for ${id}`, 'NoScript');
    return script;
  };
  const run = async <T>(
    name: ActivityName,
    value: (script: Script) => T,
    detail?: string,
  ): Promise<T & { attempt: number }> => {
    const script = scriptOf();
    const { attempt } = activity.activityInfo();
    script.calls.push(callDetails && detail ? `${name}:${detail}` : name);
    const failure = script.fail?.[name];
    if (typeof failure === 'function') throw failure();
    if (failure) throw ApplicationFailure.nonRetryable(failure, 'ScriptedFailure', { attempt });
    const flaky = script.flaky?.[name];
    if (flaky && attempt <= flaky.attempts) throw ApplicationFailure.retryable(flaky.message, 'Transient');
    const hold = script.hold?.[name];
    if (hold) {
      let open = false;
      void hold.gate.opened.then(() => (open = true));
      while (!open) {
        activity.heartbeat(hold.heartbeat);
        await activity.sleep(100); // throws CancelledFailure once the workflow cancels us
      }
    }
    return { ...value(script), attempt };
  };
  const cleanup = (name: ActivityName) => (input: CleanupInput) =>
    run(name, () => ({
      outcomes: [{ resource: `${name}(${input.resources.endpoint ?? '-'})`, outcome: 'removed' as const }],
    }));
  return {
    validateWeights: (raw) =>
      run('validateWeights', () => {
        const spec = parseDeploymentSpec(raw);
        const machine =
          spec.machine === 'auto'
            ? { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4' as const, acceleratorCount: 1 }
            : spec.machine;
        return {
          spec: { ...spec, machine },
          ids: deploymentIds(spec),
          validation: {
            ok: true,
            family: 'llama',
            sizeGuess: 'Llama-tiny',
            errors: 0,
            warnings: 0,
            highlights: [],
          },
        };
      }),
    deployToVertex: (input) => run('deployToVertex', () => deployed(input), input.ids.endpointId),
    startDeploy: (input) =>
      run(
        'startDeploy',
        () => ({
          operation: `projects/1/locations/${input.spec.region}/operations/deploy-${input.ids.endpointId}`,
          adopted: false,
        }),
        input.ids.endpointId,
      ),
    finishDeploy: (input) => run('finishDeploy', () => deployed(input), input.ids.endpointId),
    waitForReplicas: (input) =>
      run('waitForReplicas', () => ({
        available: input.minReplicas,
        target: input.minReplicas,
        dedicatedEndpointDns,
        serviceAttachment: 'projects/tenant/regions/us-central1/serviceAttachments/sa',
        deployedModelId: '42',
      })),
    reservePscAddress: () =>
      run('reservePscAddress', () => ({
        address: 'projects/consumer-project/regions/us-central1/addresses/ip',
        ipAddress: '10.0.0.7',
      })),
    createPscForwardingRule: (input) =>
      run('createPscForwardingRule', () => ({
        forwardingRule: 'projects/consumer-project/regions/us-central1/forwardingRules/fr',
        ipAddress: input.address.ipAddress,
        status: 'PENDING',
      })),
    waitForPscConnection: (input) =>
      run('waitForPscConnection', () => ({ ...input.connection, status: 'ACCEPTED' })),
    runSmokeTests: (input) =>
      run(
        'runSmokeTests',
        ({ smokeFailure }) => ({
          results: input.tests.map((test) => ({
            name: test.name,
            mode: test.mode,
            passed: smokeFailure === undefined,
            ...(smokeFailure === undefined ? {} : { failure: smokeFailure }),
            latencyMs: 120,
            answerPreview: 'I am a fine-tuned Llama.',
          })),
        }),
        input.target.kind === 'psc' && input.target.tlsServerName
          ? `psc@${input.target.tlsServerName}`
          : input.target.kind,
      ),
    deletePscForwardingRule: cleanup('deletePscForwardingRule'),
    releasePscAddress: cleanup('releasePscAddress'),
    stopDeployOperation: cleanup('stopDeployOperation'),
    undeployModels: cleanup('undeployModels'),
    deleteEndpoint: cleanup('deleteEndpoint'),
    deleteModel: cleanup('deleteModel'),
    scaleDeployment: (input) =>
      run('scaleDeployment', () => ({
        available: input.minReplicas,
        minReplicas: input.minReplicas,
        maxReplicas: input.maxReplicas,
        operation: 'projects/1/locations/us-central1/operations/mutate-1',
      })),
    startRevisionDeploy: (input) =>
      run(
        'startRevisionDeploy',
        (script) => {
          script.deployedModels = [...(script.deployedModels ?? []), input.deployedModelId];
          return {
            operation: `projects/1/locations/us-central1/operations/deploy-model-${input.deployedModelId}`,
            adopted: false,
          };
        },
        input.model,
      ),
    finishRevisionDeploy: (input) =>
      run('finishRevisionDeploy', () => ({ deployedModelId: input.deployedModelId })),
    // Recorded as the share of the latest deployed model (the canary): setTraffic:10, …, setTraffic:0.
    setTraffic: (input) => {
      const canary = scriptOf().deployedModels?.at(-1) ?? '';
      return run(
        'setTraffic',
        () => ({ trafficSplit: input.split, changed: true }),
        String(input.split[canary] ?? 0),
      );
    },
    undeployRevision: (input) =>
      run(
        'undeployRevision',
        () => ({
          outcomes: [
            {
              resource: `${input.endpoint}/deployedModels/${input.deployedModelId}`,
              outcome: 'removed' as const,
            },
          ],
        }),
        input.deployedModelId,
      ),
    checkServingQuota: (input) =>
      run('checkServingQuota', () => ({ verdict: 'fits' as const, machine: input.machines[0]! })),
    diagnoseStart: () => run('diagnoseStart', () => ({ unavailable: 'scripted: no container logs' })),
    configureDeployedModel: () => run('configureDeployedModel', () => ({ changed: [] })),
    measureTraffic: () =>
      run('measureTraffic', (script) => {
        const traffic = script.traffic ?? {
          candidate: { requests: 100, errors: 0, p95Ms: 100 },
          baseline: { requests: 900, errors: 0, p95Ms: 100 },
        };
        const canary = script.deployedModels?.at(-1) ?? '0';
        return { byDeployedModel: { [canary]: traffic.candidate, '42': traffic.baseline } };
      }),
  };
}

/** What a scripted deploy creates: the endpoint and model of the deployment's ids. */
function deployed(input: { spec: { region: string }; ids: { endpointId: string; modelId: string } }) {
  return {
    adopted: false,
    resources: {
      endpoint: `projects/1/locations/${input.spec.region}/endpoints/${input.ids.endpointId}`,
      model: `projects/1/locations/${input.spec.region}/models/${input.ids.modelId}`,
      deployedModelId: '42',
    },
    fingerprints: { endpointCreateTime: '2026-01-01T00:00:00Z', modelCreateTime: '2026-01-01T00:00:00Z' },
  };
}

/**
 * The calls with consecutive repeats collapsed: on a starved machine a step can miss its 2 s
 * heartbeat timeout and run again, which is a retry of the same step, not another step.
 */
export function withoutRetries(calls: readonly string[]): string[] {
  return calls.filter((call, i) => call !== calls[i - 1]);
}
