import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getProgress, scaleDeployment, teardownDeployment } from '../../src/client';
import { readDeploymentSpecDocument, type DeploymentSpecInput } from '../../src/spec';
import type { DeploymentResult } from '../../src/workflows/types';
import { runCli } from '../cli/run-cli';
import { freshProject, publicSpec } from '../activities/env';
import { getTestEnv } from '../harness/env';
import { deploy, expectNothingLeft, recordHistory, uniqueName, useWorkerAndModel } from './harness';

/**
 * The acceptance of the whole serving surface, end to end on the dev server, fake GCS and the
 * emulator: every `:deploy` option reaches the deployed model; the serving GPU quota is checked
 * before `:deploy`; a start that fails is explained from the container's own lines, in `status`
 * too; scale changes replicas and autoscaling in place.
 */

const t = useWorkerAndModel();

type Json = Record<string, unknown>;

/** The project's one endpoint, its deployed models and its models, as the emulator holds them. */
async function emulated(project: string) {
  const resources = await t.admin.resources(project);
  const endpoint = resources.endpoints[0] as Json & { deployedModels?: Json[] };
  return { endpoint, deployed: endpoint?.deployedModels ?? [], models: resources.models as Json[] };
}

async function statusText(workflowId: string): Promise<string> {
  const { temporalAddress, namespace } = await getTestEnv();
  const run = await runCli(['status', workflowId], {
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: namespace,
    TEMPORAL_CONFIG_FILE: path.join(__dirname, 'no-temporal.toml'),
    GARDEN_DEPLOY_DATA_DIR: path.join(__dirname, 'no-stack'),
  });
  return run.stdout + run.stderr;
}

/** Tokens the emulator issued: none may show up in anything a deployment reports. */
async function expectNoToken(...texts: string[]): Promise<void> {
  const tokens = (await t.admin.tokens()).map((issued) => issued.accessToken);
  expect(tokens.length).toBeGreaterThan(0);
  for (const text of texts) for (const token of tokens) expect(text).not.toContain(token);
  for (const text of texts) expect(text).not.toMatch(/ya29\.|Bearer [A-Za-z0-9]/);
}

describe.concurrent('the serving surface', () => {
  it('every option of examples/serving-options.yaml reaches Vertex; scale then changes replicas and autoscaling in place', async () => {
    const project = await freshProject('e2e-options');
    // 2 replicas × 8 GPUs × 2 hosts: more than the default 16 H100s.
    await t.admin.setQuota(project, { region: 'us-central1', limits: { NVIDIA_H100_80GB: 64 } });
    const example = (await readDeploymentSpecDocument(
      path.resolve(__dirname, '../../examples/serving-options.yaml'),
    )) as DeploymentSpecInput;
    const container = example.container!;
    const spec: DeploymentSpecInput = {
      ...example,
      name: uniqueName('options'),
      project,
      model: { uri: t.modelUri },
      // The sample model: 4 attention heads, 4096 positions.
      container: {
        ...container,
        args: [
          '--port=8080',
          '--max-model-len=2048',
          '--tensor-parallel-size=2',
          '--pipeline-parallel-size=2',
        ],
      },
      validation: { contextLength: 2048 },
      capacity: {
        ...example.capacity,
        reservation: {
          type: 'SPECIFIC_RESERVATION',
          key: 'compute.googleapis.com/reservation-name',
          values: [`projects/${project}/zones/us-central1-a/reservations/h100-serving`],
        },
      },
      endpoint: { ...example.endpoint, inferenceTimeout: '90s' },
    };
    const { client } = await getTestEnv();
    const started = await deploy(client, t.worker.taskQueue, spec, 'serving-options');
    const result: DeploymentResult = await started.result();
    expect(result.outcome, result.reason).toBe('serving');

    const { endpoint, deployed, models } = await emulated(project);
    expect(deployed).toHaveLength(1);
    expect(deployed[0]).toMatchObject({
      enableContainerLogging: true,
      dedicatedResources: {
        machineSpec: {
          machineType: 'a3-highgpu-8g',
          acceleratorType: 'NVIDIA_H100_80GB',
          acceleratorCount: 8,
          multihostGpuNodeCount: 2,
          reservationAffinity: {
            reservationAffinityType: 'SPECIFIC_RESERVATION',
            key: 'compute.googleapis.com/reservation-name',
            values: [`projects/${project}/zones/us-central1-a/reservations/h100-serving`],
          },
        },
        minReplicaCount: 1,
        maxReplicaCount: 2,
        requiredReplicaCount: 1,
        autoscalingMetricSpecs: [
          { metricName: 'aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle', target: 70 },
          { metricName: 'aiplatform.googleapis.com/prediction/online/request_count', target: 600 },
        ],
      },
    });
    expect(endpoint).toMatchObject({ clientConnectionConfig: { inferenceTimeout: '90s' } });
    expect(endpoint.dedicatedEndpointEnabled).toBe(true);
    expect(models[0]).toMatchObject({
      containerSpec: {
        imageUri: container.image,
        command: container.command,
        args: expect.arrayContaining(['--max-model-len=2048']),
        env: [{ name: 'VLLM_LOGGING_LEVEL', value: 'INFO' }],
        ports: [{ containerPort: 8080 }],
        predictRoute: '/generate',
        healthRoute: '/ping',
        startupProbe: { httpGet: { path: '/ping', port: 8080 }, periodSeconds: 30, failureThreshold: 120 },
        healthProbe: { httpGet: { path: '/ping', port: 8080 }, periodSeconds: 10, timeoutSeconds: 5 },
        sharedMemorySizeMb: '16384',
        deploymentTimeout: '7200s',
      },
    });
    const progress = (await getProgress(client, started.workflowId)).progress!;
    expect(progress.quota).toMatchObject({
      verdict: 'fits',
      reading: {
        quotaId: 'CustomModelServingH100GPUsPerProjectPerRegion',
        limit: 64,
        usage: 0,
        requested: 32,
      },
    });

    // Scale: replicas and an autoscaling target, in place (same deployed model, nothing deployed again).
    const before = await t.admin.stats(project);
    const scaled = await scaleDeployment(client, started.workflowId, {
      min: 2,
      autoscaling: [{ metric: 'accelerator/duty_cycle', target: 50 }],
    });
    expect(await scaled.result()).toMatchObject({
      replicas: { min: 2, max: 2 },
      autoscaling: [{ metric: 'accelerator/duty_cycle', target: 50 }],
      available: 2,
      changed: true,
    });
    const after = await emulated(project);
    expect(after.deployed.map((d) => d.id)).toEqual(deployed.map((d) => d.id));
    expect(after.deployed[0]).toMatchObject({
      dedicatedResources: {
        minReplicaCount: 2,
        maxReplicaCount: 2,
        autoscalingMetricSpecs: [
          { metricName: 'aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle', target: 50 },
        ],
      },
    });
    const stats = await t.admin.stats(project);
    expect(stats.creations).toEqual(before.creations);
    expect(stats.calls['vertex.deploy']).toBe(1);
    expect(stats.calls['vertex.endpoints.deployModel'] ?? 0).toBe(0);

    await (await teardownDeployment(client, started.workflowId)).result();
    await expectNothingLeft(project);
  });

  it('spot, a GPU partition, scale to zero, flex start, a shared endpoint and fast tryout', async () => {
    const project = await freshProject('e2e-spot');
    const { client } = await getTestEnv();
    const spec: DeploymentSpecInput = {
      ...publicSpec(project, t.modelUri, uniqueName('spot')),
      machine: {
        type: 'a2-highgpu-1g',
        acceleratorType: 'NVIDIA_TESLA_A100',
        acceleratorCount: 1,
        gpuPartitionSize: '1g.5gb',
      },
      replicas: {
        min: 0,
        max: 2,
        initial: 1,
        scaleToZero: { minScaleupPeriod: '5m', idleScaledownPeriod: '1h' },
      },
      capacity: { spot: true, flexStart: { maxRuntime: '1d' } },
      endpoint: { dedicated: false },
      fastTryout: true,
      logging: { container: false },
      smoke: { target: 'skip', skipReason: 'scales to zero; no replica to answer' },
    };
    const started = await deploy(client, t.worker.taskQueue, spec, 'spot-scale-to-zero');
    const result = await started.result();
    expect(result.outcome, result.reason).toBe('serving');
    const { endpoint, deployed } = await emulated(project);
    expect(endpoint.dedicatedEndpointEnabled ?? false).toBe(false);
    expect(deployed[0]).toMatchObject({
      dedicatedResources: {
        machineSpec: { gpuPartitionSize: '1g.5gb' },
        maxReplicaCount: 2,
        initialReplicaCount: 1,
        spot: true,
        flexStart: { maxRuntimeDuration: '86400s' },
        scaleToZeroSpec: { minScaleupPeriod: '300s', idleScaledownPeriod: '3600s' },
      },
    });
    expect(deployed[0]!.enableContainerLogging ?? false).toBe(false);
    // Spot VMs are charged to the preemptible quota (its own limit and usage).
    const progress = (await getProgress(client, started.workflowId)).progress!;
    expect(progress.quota).toMatchObject({
      verdict: 'fits',
      reading: { quotaId: 'CustomModelServingPreemptibleA100GPUsPerProjectPerRegion', requested: 2 },
    });
    await (await teardownDeployment(client, started.workflowId)).result();
    await expectNothingLeft(project);
  });

  it('a vLLM argument the model cannot take fails at validation with its rule id; the corrected spec deploys', async () => {
    const project = await freshProject('e2e-vllm-args');
    const { client } = await getTestEnv();
    const container = { image: 'us-docker.pkg.dev/x/pytorch-vllm-serve:1', args: ['--max-model-len=100000'] };
    const wrong = { ...publicSpec(project, t.modelUri, uniqueName('args')), container };
    const failed = await (await deploy(client, t.worker.taskQueue, wrong)).result();
    expect(failed.outcome).toBe('failed');
    expect(failed.reason).toContain('vllm.max-model-len-exceeds-model');
    expect((await t.admin.stats(project)).calls['vertex.deploy'] ?? 0).toBe(0);
    const corrected = {
      ...wrong,
      name: uniqueName('args'),
      container: { ...container, args: ['--max-model-len=4096'] },
    };
    const started = await deploy(client, t.worker.taskQueue, corrected);
    expect((await started.result()).outcome).toBe('serving');
    await (await teardownDeployment(client, started.workflowId)).result();
    await expectNothingLeft(project);
  });

  it('an L4 quota of 2 with 1 in use refuses 2 × 1 L4 before :deploy; enough quota deploys', async () => {
    const project = await freshProject('e2e-quota-check');
    await t.admin.setQuota(project, {
      region: 'us-central1',
      limits: { NVIDIA_L4: 2 },
      usage: { NVIDIA_L4: 1 },
    });
    const { client } = await getTestEnv();
    const spec = { ...publicSpec(project, t.modelUri, uniqueName('short')), replicas: { min: 1, max: 2 } };
    const started = await deploy(client, t.worker.taskQueue, spec, 'quota-shortfall');
    const result = await started.result();
    expect(result.outcome).toBe('failed');
    expect(result.reason).toContain('CustomModelServingL4GPUsPerProjectPerRegion');
    expect(result.reason).toMatch(/limit 2, 1 in use, and this deployment asks for 2/);
    expect(result.reason).toContain('https://cloud.google.com/vertex-ai/docs/quotas');
    const stats = await t.admin.stats(project);
    expect(stats.calls['vertex.deploy'] ?? 0).toBe(0);
    expect(stats.calls['cloudquotas.quotaInfos.get']).toBeGreaterThan(0);
    expect(stats.calls['monitoring.timeSeries.list']).toBeGreaterThan(0);
    expect(stats.creations).toEqual({});
    const progress = (await getProgress(client, started.workflowId)).progress!;
    expect(progress.lastError).toMatchObject({ type: 'QuotaShortfall' });
    expect(await statusText(started.workflowId)).toContain('limit 2, 1 in use');
    await recordHistory(client, started, 'quota-shortfall');

    await t.admin.setQuota(project, { region: 'us-central1', limits: { NVIDIA_L4: 3 } });
    const enough = await deploy(client, t.worker.taskQueue, { ...spec, name: uniqueName('enough') });
    expect((await enough.result()).outcome).toBe('serving');
    expect((await getProgress(client, enough.workflowId)).progress?.quota).toMatchObject({
      verdict: 'fits',
      reading: { limit: 3, usage: 1, requested: 2 },
    });
    await (await teardownDeployment(client, enough.workflowId)).result();
    await expectNothingLeft(project);
  });

  it('a quota check that is denied warns and deploys', async () => {
    const project = await freshProject('e2e-quota-denied');
    await t.admin.addFaultRules([{ route: 'cloudquotas.*', project, action: '403' }]);
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(project, t.modelUri, uniqueName('denied')),
    );
    expect((await started.result()).outcome).toBe('serving');
    const progress = (await getProgress(client, started.workflowId)).progress!;
    expect(progress.quota).toMatchObject({ verdict: 'unchecked' });
    expect(progress.quota?.warning).toMatch(/PERMISSION_DENIED/);
    expect(await statusText(started.workflowId)).toMatch(/Quota not checked: .*PERMISSION_DENIED/);
    await t.admin.clearFaults({ project });
    await (await teardownDeployment(client, started.workflowId)).result();
    await expectNothingLeft(project);
  });

  it('a server that never becomes ready fails with its root cause and the container’s lines in status', async () => {
    const project = await freshProject('e2e-never-ready');
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['never-ready'] }]);
    const { client } = await getTestEnv();
    const spec = {
      ...publicSpec(project, t.modelUri, uniqueName('never')),
      timeouts: { replicas: '10s' },
    };
    const started = await deploy(client, t.worker.taskQueue, spec, 'never-ready');
    const result = await started.result();
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/root cause \(port-or-health-mismatch\)/);
    const progress = (await getProgress(client, started.workflowId)).progress!;
    expect(progress.rootCause).toMatchObject({ class: 'port-or-health-mismatch' });
    expect(progress.rootCause!.lines.some((line) => /Readiness probe failed/.test(line))).toBe(true);
    const status = await statusText(started.workflowId);
    expect(status).toContain('Root cause (port-or-health-mismatch)');
    expect(status).toMatch(/Readiness probe failed/);
    await expectNoToken(status, JSON.stringify(progress));
    await expectNothingLeft(project);
    await recordHistory(client, started, 'never-ready');
  });

  it('a server out of GPU memory fails with its root cause and the container’s lines in status', async () => {
    const project = await freshProject('e2e-oom');
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: ['oom'] }]);
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(project, t.modelUri, uniqueName('oom')),
    );
    const result = await started.result();
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/root cause \(out-of-gpu-memory\)/);
    const progress = (await getProgress(client, started.workflowId)).progress!;
    expect(progress.rootCause).toMatchObject({ class: 'out-of-gpu-memory' });
    expect(progress.rootCause!.evidence).toMatch(/CUDA out of memory/);
    const status = await statusText(started.workflowId);
    expect(status).toContain('Root cause (out-of-gpu-memory)');
    expect(status).toMatch(/torch\.OutOfMemoryError: CUDA out of memory/);
    const history = await client.workflow.getHandle(started.workflowId).fetchHistory();
    await expectNoToken(status, JSON.stringify(progress), JSON.stringify(history));
    await expectNothingLeft(project);
  });
});
