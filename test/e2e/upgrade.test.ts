import { describe, expect, it } from 'vitest';
import {
  type DeploymentRequest,
  cancelDeployment,
  getProgress,
  teardownDeployment,
  upgradeDeployment,
} from '../../src/client';
import type { EmulatorResources } from '../../src/emulator/admin-client';
import { dedicatedTarget } from '../../src/gcp';
import type { DeploymentSpecInput } from '../../src/spec';
import type { DeploymentResult, UpgradeResult } from '../../src/workflows/types';
import { freshProject, privateSpec, publicSpec, uploadModel } from '../activities/env';
import { getTestEnv } from '../harness/env';
import { eventually } from '../harness/eventually';
import { type Load, startLoad } from '../harness/load';
import {
  E2E_SETTINGS,
  E2E_WAIT,
  deploy,
  expectNothingLeft,
  recordHistory,
  uniqueName,
  useWorkerAndModel,
} from './harness';

/**
 * The acceptance of upgrades, end to end on the dev server, fake GCS and the emulator: an upgrade
 * under steady load loses no request; a failing, slow or idle revision is rolled back (or waits);
 * weights that fail validation or a staging smoke test never reach the production endpoint; a
 * cancel or a quota error at each phase leaves the old revision at 100 % and nothing of the new one.
 */

const t = useWorkerAndModel();

/** Fast bakes: the gates are evaluated every 200 ms. */
const FAST_GATES = { interval: '200ms', minRequests: 5 } as const;

async function servingDeployment(label: string, spec: Partial<DeploymentSpecInput> = {}) {
  const project = await freshProject(label, { deployModelMs: 300 });
  const { client } = await getTestEnv();
  const base: DeploymentSpecInput = {
    ...publicSpec(project, t.modelUri, uniqueName(label)),
    gates: FAST_GATES,
    ...spec,
  };
  const started = await deploy(client, t.worker.taskQueue, base);
  const serving = await started.result();
  expect(serving.outcome).toBe('serving');
  const target = dedicatedTarget(
    { name: serving.resources.endpoint!, dedicatedEndpointDns: serving.resources.dedicatedEndpointDns! },
    t.gcp.config.dedicatedDnsSuffixes,
  );
  const run = { workflowId: started.workflowId, runId: started.runId };
  return { project, client, spec: base, workflowId: started.workflowId, run, serving, target };
}

/** The same deployment with the next fine-tune's weights (a fresh upload, unless given). */
async function nextRevision(
  spec: DeploymentSpecInput,
  more: Partial<DeploymentSpecInput> = {},
  uri?: string,
) {
  return { ...spec, model: { uri: uri ?? (await uploadModel()) }, ...more } satisfies DeploymentSpecInput;
}

/** The project's endpoints and models, and what the deployment's endpoint serves. */
async function resourcesOf(project: string) {
  const left: EmulatorResources = await t.admin.resources(project);
  const endpoints = left.endpoints as Array<{
    name: string;
    deployedModels?: Array<{ id: string; model: string }>;
    trafficSplit?: Record<string, number>;
  }>;
  return {
    endpoints: endpoints.map((e) => e.name),
    models: left.models.map((m) => m.name.split('/').pop()),
    deployed: endpoints.flatMap((e) => (e.deployedModels ?? []).map((d) => d.id)),
    split: endpoints[0]?.trafficSplit,
  };
}

/** r1 still serves alone, with all the traffic, and nothing of any later revision exists. */
async function expectOnlyFirstRevision(project: string, spec: DeploymentSpecInput, r1: DeploymentResult) {
  expect(await resourcesOf(project)).toEqual({
    endpoints: [r1.resources.endpoint],
    models: [spec.name],
    deployed: [r1.resources.deployedModelId],
    split: { [r1.resources.deployedModelId!]: 100 },
  });
}

async function settled(request: DeploymentRequest<UpgradeResult>): Promise<UpgradeResult> {
  return request.result();
}

// Each test runs whole deployments and upgrades with bakes of seconds: minutes on a loaded machine.
describe.concurrent('upgrades, end to end', { timeout: 240_000 }, () => {
  it('under steady load: canary → linear → 100 %; no request fails; every answer from r1 or r2; r1 is gone after', async () => {
    const d = await servingDeployment('upg-load');
    const next = await nextRevision(d.spec, {
      strategy: {
        canary: { percent: 10, bake: '3s' },
        linear: { step: 50, interval: '2s' },
        finalBake: '1s',
      },
    });
    const load: Load = startLoad(t.gcp, d.target);
    const request = await upgradeDeployment(d.client, next);
    const result = await settled(request);
    const report = await load.stop();
    expect(result).toMatchObject({ outcome: 'completed', revision: 2, from: 1, serving: 2 });
    expect(report.failures).toEqual([]);
    const r1 = d.serving.resources.deployedModelId!;
    const progress = (await getProgress(d.client, d.workflowId)).progress!;
    const r2 = progress.revision!.deployedModelId!;
    expect(Object.keys(report.byDeployedModel).sort()).toEqual([r1, r2].sort());
    expect(report.byDeployedModel[r2]).toBeGreaterThan(0);
    expect(progress.upgrade?.evaluations).toBeGreaterThanOrEqual(3);
    expect(progress.revisions?.map((r) => [r.number, r.state])).toEqual([
      [1, 'retired'],
      [2, 'serving'],
    ]);
    const state = await resourcesOf(d.project);
    expect(state.models).toEqual([`${d.spec.name}-r2`]);
    expect(state.deployed).toEqual([r2]);
    expect(state.split).toEqual({ [r2]: 100 });
    expect(state.endpoints).toHaveLength(1);
    await recordHistory(d.client, d.run, 'upgrade-completed');
    await (await teardownDeployment(d.client, d.workflowId)).result();
    await expectNothingLeft(d.project);
  });

  it('a private deployment stages the new revision privately (its own PSC address) and keeps only its own PSC resources', async () => {
    const [project, consumer] = await Promise.all([
      freshProject('upg-priv', { deployModelMs: 300 }),
      freshProject('upg-priv-c'),
    ]);
    const { client } = await getTestEnv();
    const spec: DeploymentSpecInput = {
      ...privateSpec(project, consumer, t.modelUri, uniqueName('upg-priv')),
      strategy: { canary: { percent: 50, bake: '1s' } },
      gates: { ...FAST_GATES, minRequests: 0, onIdle: 'promote' },
    };
    const started = await deploy(client, t.worker.taskQueue, spec);
    const serving = await started.result();
    expect(serving.outcome).toBe('serving');
    const before = await t.admin.resources(consumer);
    const upgrade = await upgradeDeployment(client, await nextRevision(spec));
    // Staging runs behind a PSC connection of its own, next to the production one.
    await eventually(
      'the staging forwarding rule',
      async () => (await t.admin.resources(consumer)).forwardingRules.length === 2,
      E2E_WAIT,
    );
    expect((await upgrade.result()).outcome).toBe('completed');
    const after = await t.admin.resources(consumer);
    expect(after.addresses.map((a) => a.name)).toEqual(before.addresses.map((a) => a.name));
    expect(after.forwardingRules.map((r) => r.name)).toEqual(before.forwardingRules.map((r) => r.name));
    expect((await resourcesOf(project)).models).toEqual([`${spec.name}-r2`]);
    await (await teardownDeployment(client, started.workflowId)).result();
    await expectNothingLeft(project, consumer);
  });

  it('a revision that fails 20 % of its requests is rolled back in its first bake, naming the gate and the ratio', async () => {
    const d = await servingDeployment('upg-fail');
    const next = await nextRevision(d.spec, { strategy: { canary: { percent: 50, bake: '20s' } } });
    await t.admin.addFaultRules([
      {
        route: 'inference.*',
        project: d.project,
        model: `${d.spec.name}-r2`,
        action: '500',
        probability: 0.2,
      },
    ]);
    const load = startLoad(t.gcp, d.target);
    const result = await settled(await upgradeDeployment(d.client, next));
    await load.stop();
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(
      /rolled back automatically at 50 %: gate failed: error ratio \d+\.\d+ % \(\d+\/\d+ 5xx\) > 5\.00 %/,
    );
    expect(result.failedGate?.checks.find((c) => c.gate === 'errorRatio')?.measured).toBeGreaterThan(0.05);
    expect(result.traffic).toEqual([
      { revision: 1, deployedModelId: d.serving.resources.deployedModelId, percent: 100 },
    ]);
    await expectOnlyFirstRevision(d.project, d.spec, d.serving);
    const progress = (await getProgress(d.client, d.workflowId)).progress!;
    expect(progress.revisions?.find((r) => r.number === 2)).toMatchObject({ state: 'rolled-back' });
    await recordHistory(d.client, d.run, 'upgrade-gate-rollback');
  });

  it('weights that fail validation, or a staging smoke test that fails, never reach the production endpoint', async () => {
    const d = await servingDeployment('upg-stage');
    const production = async () =>
      (await t.admin.resources(d.project)).endpoints.find((e) => e.name === d.serving.resources.endpoint);
    const before = await production();
    const broken = await nextRevision(d.spec, {}, await uploadModel({ variant: 'missing-tokenizer' }));
    const invalid = await settled(await upgradeDeployment(d.client, broken));
    expect(invalid).toMatchObject({ outcome: 'rolled-back' });
    expect(invalid.reason).toMatch(/validating failed: the model at .* failed validation/);
    const failingSmoke = await nextRevision(d.spec, {
      smoke: { tests: [{ name: 'strict', prompt: 'hello', expect: { regex: '^never matches$' } }] },
    });
    const smoke = await settled(await upgradeDeployment(d.client, failingSmoke));
    expect(smoke.reason).toMatch(
      /staging smoke test "strict": the answer does not match.*never reached the production endpoint/,
    );
    const stats = await t.admin.stats(d.project);
    expect(stats.calls['vertex.endpoints.deployModel'] ?? 0).toBe(0);
    // Not even touched: same etag, deployed models and split as before both upgrades.
    expect(await production()).toEqual(before);
    await expectOnlyFirstRevision(d.project, d.spec, d.serving);
  });

  it('a slow revision (p95 above the ceiling) is rolled back', async () => {
    const d = await servingDeployment('upg-slow', {
      gates: { ...FAST_GATES, smoke: false, latencyP95: { max: '250ms' } },
    });
    await t.admin.addFaultRules([
      { route: 'inference.*', project: d.project, model: `${d.spec.name}-r2`, action: 'latency:600' },
    ]);
    const load = startLoad(t.gcp, d.target, { workers: 4 });
    const slow = await settled(
      await upgradeDeployment(
        d.client,
        await nextRevision(d.spec, { strategy: { canary: { percent: 50, bake: '20s' } } }),
      ),
    );
    await load.stop();
    expect(slow.outcome).toBe('rolled-back');
    expect(slow.reason).toMatch(/p95 latency \d+ ms > 250 ms/);
    await expectOnlyFirstRevision(d.project, d.spec, d.serving);
  });

  it('an idle canary is reported and waits (not promoted), or passes when the spec allows it', async () => {
    const d = await servingDeployment('upg-idle', { gates: { ...FAST_GATES, smoke: false } });
    // No traffic at all: the canary is idle, reported, and not promoted.
    const idle = await upgradeDeployment(
      d.client,
      await nextRevision(d.spec, { strategy: { canary: { percent: 10, bake: '1s' } } }),
    );
    const paused = await eventually(
      'the idle pause',
      async () => {
        const progress = (await getProgress(d.client, d.workflowId)).progress;
        return progress?.upgrade?.paused && progress.stage === 'UPGRADE_PAUSED' ? progress : undefined;
      },
      E2E_WAIT,
    );
    expect(paused.upgrade?.paused?.reason).toMatch(/idle: 0 requests served, fewer than the 5/);
    expect(paused.traffic?.find((s) => s.revision === 2)?.percent).toBe(10);
    const cancelled = await (
      await cancelDeployment(d.client, d.workflowId, { reason: 'no traffic today' })
    ).result();
    expect(cancelled.upgrade).toMatchObject({ outcome: 'rolled-back' });
    expect((await idle.result()).outcome).toBe('rolled-back');
    await expectOnlyFirstRevision(d.project, d.spec, d.serving);

    // The spec may allow promotion without traffic.
    const allowed = await settled(
      await upgradeDeployment(
        d.client,
        await nextRevision(d.spec, {
          strategy: { canary: { percent: 10, bake: '1s' } },
          gates: { ...FAST_GATES, smoke: false, onIdle: 'promote' },
        }),
      ),
    );
    expect(allowed).toMatchObject({ outcome: 'completed', revision: 3 });
  });

  it.each([
    ['staging', { deployMs: 4_000 }],
    ['deploying', { deployModelMs: 4_000 }],
    ['shifting', {}],
    ['retaining', {}],
  ] as const)('a cancel while %s leaves r1 at 100 % and nothing of r2', async (phase, timing) => {
    const d = await servingDeployment(`upg-cancel-${phase.slice(0, 5)}`);
    await t.admin.setTiming(d.project, timing);
    // Idle canaries go on (onIdle: promote): the retaining phase comes after a short canary.
    const next = await nextRevision(d.spec, {
      strategy:
        phase === 'retaining'
          ? { canary: { percent: 10, bake: '500ms' }, retainPrevious: '1h' }
          : { canary: { percent: 10, bake: '1h' } },
      gates: { ...FAST_GATES, onIdle: 'promote', minRequests: 0 },
    });
    const upgrade = await upgradeDeployment(d.client, next);
    await eventually(
      `phase ${phase}`,
      async () => (await getProgress(d.client, d.workflowId)).progress?.upgrade?.phase === phase,
      E2E_WAIT,
    );
    const cancelled = await (await cancelDeployment(d.client, d.workflowId)).result();
    expect(cancelled).toMatchObject({ outcome: 'serving', upgrade: { outcome: 'rolled-back' } });
    expect((await upgrade.result()).outcome).toBe('rolled-back');
    await expectOnlyFirstRevision(d.project, d.spec, d.serving);
  });

  it('a deployment terminated while upgrading is removed by teardown, its staging endpoint and new model too', async () => {
    const d = await servingDeployment('upg-term');
    await t.admin.setTiming(d.project, { replicaRampMs: 120_000 });
    await upgradeDeployment(d.client, await nextRevision(d.spec));
    await eventually(
      'the staging endpoint',
      async () =>
        (await resourcesOf(d.project)).endpoints.length === 2 &&
        (await resourcesOf(d.project)).models.length === 2,
      E2E_WAIT,
    );
    await d.client.workflow.getHandle(d.workflowId).terminate('test: lost');
    const torn = await (
      await teardownDeployment(d.client, d.workflowId, { settings: E2E_SETTINGS })
    ).result();
    expect(torn.outcome).toBe('torn-down');
    expect(torn.removed.filter((r) => r.outcome === 'removed').map((r) => r.resource)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`/endpoints/${d.spec.name}-s2-`)),
        expect.stringMatching(/-r2$/),
      ]),
    );
    await expectNothingLeft(d.project);
  });

  it.each([
    ['staging', 'vertex.deploy'],
    ['deploying', 'vertex.endpoints.deployModel'],
  ] as const)('a quota error while %s rolls back: r1 at 100 %, nothing of r2', async (phase, route) => {
    const d = await servingDeployment(`upg-quota-${phase.slice(0, 5)}`);
    await t.admin.addFaultRules([{ route, project: d.project, sequence: ['quota'] }]);
    const result = await settled(await upgradeDeployment(d.client, await nextRevision(d.spec)));
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(
      new RegExp(`${phase} failed: .*RESOURCE_EXHAUSTED.*custom_model_serving_nvidia_l4_gpus`),
    );
    await expectOnlyFirstRevision(d.project, d.spec, d.serving);
  });
});
