import { randomUUID } from 'node:crypto';
import * as activity from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/activity';
import { Worker } from '@temporalio/worker';
import type { CleanupInput, DeploymentActivities } from '../../src/activities/contract';
import { type DeploymentSpecInput, deploymentIds, parseDeploymentSpec } from '../../src/spec';
import { getTestEnv, workflowBundle } from '../harness/env';

/**
 * A worker running the real workflows with scripted activities (the pattern of
 * test/workflows/deploy-model.test.ts), for client and CLI tests: each deployment follows the
 * script registered under its workflow id; its teardown follows the same script.
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
  hold?: Partial<Record<ActivityName, { gate: Gate; heartbeat: unknown }>>;
  /** Fail the first `attempts` attempts with a retryable error carrying `message`. */
  flaky?: Partial<Record<ActivityName, { attempts: number; message: string }>>;
  /** Fail at once, for good. */
  fail?: Partial<Record<ActivityName, string>>;
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

export interface ScriptedWorker {
  taskQueue: string;
  /** Registers the script the deployment with this spec follows; returns it. */
  script(spec: DeploymentSpecInput, script?: Partial<Script>): Script;
  stop(): Promise<void>;
}

export async function startScriptedWorker(taskQueue: string): Promise<ScriptedWorker> {
  const { nativeConnection, namespace } = await getTestEnv();
  const scripts = new Map<string, Script>();
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace,
    taskQueue,
    workflowBundle: workflowBundle(),
    activities: scriptedActivities(scripts),
  });
  const running = worker.run();
  return {
    taskQueue,
    script(spec, script = {}) {
      const full: Script = { calls: [], ...script };
      scripts.set(workflowIdOf(spec), full);
      return full;
    },
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

function scriptedActivities(scripts: Map<string, Script>): DeploymentActivities {
  const scriptOf = (): Script => {
    const id = activity.activityInfo().workflowExecution?.workflowId ?? '';
    const script = scripts.get(id) ?? scripts.get(id.replace(/^teardown\//, 'deploy/'));
    if (!script) throw ApplicationFailure.nonRetryable(`no script for ${id}`, 'NoScript');
    return script;
  };
  const run = async <T>(name: ActivityName, value: () => T): Promise<T & { attempt: number }> => {
    const script = scriptOf();
    const { attempt } = activity.activityInfo();
    script.calls.push(name);
    const failure = script.fail?.[name];
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
    return { ...value(), attempt };
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
    deployToVertex: (input) =>
      run('deployToVertex', () => ({
        adopted: false,
        resources: {
          endpoint: `projects/1/locations/${input.spec.region}/endpoints/${input.ids.endpointId}`,
          model: `projects/1/locations/${input.spec.region}/models/${input.ids.modelId}`,
          deployedModelId: '42',
        },
      })),
    waitForReplicas: (input) =>
      run('waitForReplicas', () => ({
        available: input.minReplicas,
        target: input.minReplicas,
        dedicatedEndpointDns: 'ep.us-central1-1.prediction.vertexai.goog',
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
      run('runSmokeTests', () => ({
        results: input.tests.map((test) => ({
          name: test.name,
          mode: test.mode,
          passed: true,
          latencyMs: 120,
          answerPreview: 'I am a fine-tuned Llama.',
        })),
      })),
    deletePscForwardingRule: cleanup('deletePscForwardingRule'),
    releasePscAddress: cleanup('releasePscAddress'),
    undeployModels: cleanup('undeployModels'),
    deleteEndpoint: cleanup('deleteEndpoint'),
    deleteModel: cleanup('deleteModel'),
  };
}
