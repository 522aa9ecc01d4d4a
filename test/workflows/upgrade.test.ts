import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cancelDeployment,
  pauseUpgrade,
  promoteUpgrade,
  resumeUpgrade,
  rollbackDeployment,
  scaleDeployment,
  startDeployment,
  teardownDeployment,
  upgradeDeployment,
} from '../../src/client';
import type { DeploymentSpecInput } from '../../src/spec';
import { progressQuery } from '../../src/workflows/messages';
import type { DeployProgress, DeploymentSettings } from '../../src/workflows/types';
import {
  Gate,
  type Script,
  type ScriptedWorker,
  publicSpec,
  startScriptedWorker,
  uniqueName,
} from '../client/scripted-worker';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import { refusal } from '../harness/refusal';

/**
 * Upgrades of the durable deployment on the real Temporal dev server with scripted activities: the
 * order of the steps, the traffic steps of a strategy, gates that roll back, idle canaries, and
 * promote / pause / resume / rollback accepted or refused (with the reason) in each phase.
 */

let worker: ScriptedWorker;

beforeAll(async () => {
  worker = await startScriptedWorker(uniqueTaskQueue('upgrade'), { callDetails: true });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await closeTestEnv();
});

const SETTINGS: DeploymentSettings = { heartbeatTimeoutMs: 2_000, cleanupAttempts: 2, cleanupRetryMs: 100 };

/** A deployment's first spec, with a fast strategy: 10 % canary, then 50 %, then 100 %. */
const specOf = (name: string): DeploymentSpecInput => ({
  ...publicSpec(name),
  strategy: { canary: { percent: 10, bake: '400ms' }, linear: { step: 50, interval: '300ms' } },
  gates: { interval: '100ms', minRequests: 10 },
});

/** The same deployment with other weights: an upgrade. */
const nextSpec = (spec: DeploymentSpecInput, label = 'v2'): DeploymentSpecInput => ({
  ...spec,
  model: { uri: spec.model.uri.replace(/\/$/, `-${label}/`) },
});

async function serving(spec: DeploymentSpecInput, script: Partial<Script> = {}) {
  const { client } = await getTestEnv();
  const registered = worker.script(spec, script);
  const started = await startDeployment(client, spec, { taskQueue: worker.taskQueue, settings: SETTINGS });
  expect((await started.result()).outcome).toBe('serving');
  registered.calls.length = 0;
  return { client, script: registered, workflowId: started.workflowId };
}

async function progressOf(workflowId: string): Promise<DeployProgress> {
  const { client } = await getTestEnv();
  return client.workflow.getHandle(workflowId).query(progressQuery);
}

const untilPhase = (workflowId: string, phase: string) =>
  eventually(`upgrade phase ${phase}`, async () => {
    const progress = await progressOf(workflowId);
    return progress.upgrade?.phase === phase && !progress.upgrade.endedAt ? progress : undefined;
  });

describe.concurrent('upgrades', () => {
  it('validates, stages alone, frees staging, deploys at 0 %, shifts 10 → 50 → 100 % with gates, retires the old revision', async () => {
    const spec = specOf(uniqueName('upgrade'));
    const { client, script, workflowId } = await serving(spec);
    const request = await upgradeDeployment(client, nextSpec(spec));
    const result = await request.result();
    expect(result).toMatchObject({ outcome: 'completed', revision: 2, from: 1, serving: 2 });
    const next = script.deployedModels![0]!;
    expect(next).toMatch(/^\d{10}$/);
    const staging = `${spec.name}-s2-`;
    const gateCalls = ['measureTraffic', 'runSmokeTests:dedicated'];
    const stagingDone = script.calls.indexOf('runSmokeTests:dedicated') + 1;
    expect(script.calls.slice(0, stagingDone)).toEqual([
      'validateWeights',
      expect.stringMatching(new RegExp(`^startDeploy:${staging}`)),
      expect.stringMatching(new RegExp(`^finishDeploy:${staging}`)),
      'waitForReplicas',
      'runSmokeTests:dedicated',
    ]);
    expect(script.calls.slice(stagingDone).filter((call) => !gateCalls.includes(call))).toEqual([
      'undeployModels',
      'deleteEndpoint',
      expect.stringMatching(/^startRevisionDeploy:.*\/models\/.*-r2$/),
      'finishRevisionDeploy',
      'waitForReplicas',
      'setTraffic:10',
      'setTraffic:50',
      'setTraffic:100',
      'undeployRevision:42',
      'deleteModel',
    ]);
    // Each bake evaluated the gates: Monitoring, and the smoke tests on the endpoint.
    for (const [from, to] of [
      ['setTraffic:10', 'setTraffic:50'],
      ['setTraffic:50', 'setTraffic:100'],
    ] as const) {
      const bake = script.calls.slice(script.calls.indexOf(from) + 1, script.calls.indexOf(to));
      expect(bake).toContain('measureTraffic');
      expect(new Set(bake)).toEqual(new Set(gateCalls));
    }
    const progress = await progressOf(workflowId);
    expect(progress.stage).toBe('SERVING');
    expect(progress.revision).toMatchObject({ number: 2, state: 'serving', deployedModelId: next });
    expect(progress.revisions?.map((r) => [r.number, r.state])).toEqual([
      [1, 'retired'],
      [2, 'serving'],
    ]);
    expect(progress.traffic).toEqual([{ revision: 2, deployedModelId: next, percent: 100 }]);
    expect(progress.resources.deployedModelId).toBe(next);
    expect(progress.resources.model).toMatch(/-r2$/);
    expect(progress.upgrade).toMatchObject({
      outcome: 'completed',
      phase: 'done',
      evaluations: expect.any(Number),
    });
    expect(progress.upgrade!.evaluations).toBeGreaterThanOrEqual(2);
    // The next upgrade goes from r2 to r3, replacing r2's deployed model.
    script.calls.length = 0;
    const third = await (await upgradeDeployment(client, nextSpec(spec, 'v3'))).result();
    expect(third).toMatchObject({ outcome: 'completed', revision: 3, from: 2 });
    expect(script.calls).toContain(`undeployRevision:${next}`);
  });

  it('a failed gate rolls back at once: traffic back on r1, the new revision undeployed and its model deleted, the gate and its numbers named', async () => {
    const spec = specOf(uniqueName('gate'));
    const { client, script, workflowId } = await serving(spec, {
      traffic: {
        candidate: { requests: 50, errors: 10, p95Ms: 100 },
        baseline: { requests: 450, errors: 0, p95Ms: 100 },
      },
    });
    const result = await (await upgradeDeployment(client, nextSpec(spec))).result();
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(
      /rolled back automatically at 10 %: gate failed: error ratio 20\.0 % \(10\/50 5xx\)/,
    );
    expect(result.failedGate?.checks.find((c) => c.gate === 'errorRatio')).toMatchObject({
      verdict: 'fail',
      measured: 0.2,
    });
    const next = script.deployedModels![0]!;
    const afterCanary = script.calls.slice(script.calls.indexOf('setTraffic:10') + 1);
    expect(afterCanary).toContain('measureTraffic');
    expect(afterCanary.filter((c) => c !== 'measureTraffic' && c !== 'runSmokeTests:dedicated')).toEqual([
      'setTraffic:0',
      `undeployRevision:${next}`,
      'deleteModel',
    ]);
    const progress = await progressOf(workflowId);
    expect(progress.stage).toBe('SERVING');
    expect(progress.revision).toMatchObject({ number: 1, state: 'serving' });
    expect(progress.revisions?.find((r) => r.number === 2)).toMatchObject({ state: 'rolled-back' });
    expect(progress.traffic).toEqual([{ revision: 1, deployedModelId: '42', percent: 100 }]);
    expect(progress.lastError?.message).toMatch(/upgrade to r2 rolled back automatically/);
  });

  it('an idle canary is reported and waits (onIdle: pause); resume bakes again, promote finishes it', async () => {
    const spec = specOf(uniqueName('idle'));
    const { client, script, workflowId } = await serving(spec, {
      traffic: { candidate: { requests: 2, errors: 0 }, baseline: { requests: 30, errors: 0 } },
    });
    const request = await upgradeDeployment(client, nextSpec(spec));
    const paused = await eventually('the idle pause', async () => {
      const progress = await progressOf(workflowId);
      return progress.upgrade?.paused ? progress : undefined;
    });
    expect(paused.stage).toBe('UPGRADE_PAUSED');
    expect(paused.upgrade?.paused?.reason).toMatch(
      /idle: 2 requests served, fewer than the 10.*gates\.onIdle: pause/,
    );
    expect(paused.traffic?.find((t) => t.revision === 2)?.percent).toBe(10);
    const resumed = await (await resumeUpgrade(client, workflowId)).result();
    expect(resumed).toMatchObject({ outcome: 'in-progress', phase: 'shifting' });
    expect(resumed.paused).toBeUndefined();
    script.traffic = { candidate: { requests: 40, errors: 0 }, baseline: { requests: 360, errors: 0 } };
    expect((await request.result()).outcome).toBe('completed');
  });

  it('onIdle: promote lets an idle canary through', async () => {
    const spec: DeploymentSpecInput = {
      ...specOf(uniqueName('idle-ok')),
      gates: { interval: '100ms', minRequests: 1_000, onIdle: 'promote' },
    };
    const { client } = await serving(spec, {
      traffic: { candidate: { requests: 0, errors: 0 }, baseline: { requests: 0, errors: 0 } },
    });
    expect((await (await upgradeDeployment(client, nextSpec(spec))).result()).outcome).toBe('completed');
  });

  it('promote, pause, resume and rollback are accepted or refused with the reason in each phase', async () => {
    const spec = specOf(uniqueName('steer'));
    const { client, script, workflowId } = await serving(spec);
    // No upgrade: nothing to steer, nothing to roll back.
    expect(await refusal(promoteUpgrade(client, workflowId))).toMatch(
      /no upgrade in progress to promote \(revision r1 serves\)/,
    );
    expect(await refusal(pauseUpgrade(client, workflowId))).toMatch(/no upgrade in progress to pause/);
    expect(await refusal(resumeUpgrade(client, workflowId))).toMatch(/no upgrade in progress to resume/);
    expect(await refusal(rollbackDeployment(client, workflowId))).toMatch(/outside its rollback window/);

    // Validating: pause and resume answer at once; a second pause, a scale, another spec are refused.
    const validating = new Gate();
    script.hold = { validateWeights: { gate: validating } };
    const upgrade = await upgradeDeployment(client, nextSpec(spec));
    await untilPhase(workflowId, 'validating');
    expect(await refusal(resumeUpgrade(client, workflowId))).toMatch(/is not paused \(phase validating\)/);
    expect(
      await (await pauseUpgrade(client, workflowId, { reason: 'checking dashboards' })).result(),
    ).toMatchObject({
      outcome: 'in-progress',
      paused: true,
      phase: 'validating',
    });
    expect(await refusal(pauseUpgrade(client, workflowId))).toMatch(/already paused \(checking dashboards\)/);
    expect(await refusal(scaleDeployment(client, workflowId, { min: 2 }))).toMatch(
      /an upgrade to r2 is in progress \(phase validating\)/,
    );
    expect(await refusal(upgradeDeployment(client, nextSpec(spec, 'v3')))).toMatch(
      /an upgrade to r2 is in progress \(phase validating, paused\)/,
    );
    expect(
      await refusal(startDeployment(client, nextSpec(spec, 'v3'), { taskQueue: worker.taskQueue })),
    ).toMatch(/an upgrade to r2 is in progress/);
    // The same upgrade again attaches to it.
    const again = await upgradeDeployment(client, nextSpec(spec));
    expect((await progressOf(workflowId)).upgrade?.revision).toBe(2);

    // Paused before the first shift: the new revision is deployed at 0 % and waits.
    validating.open();
    await eventually(
      'the deploy at 0 %',
      async () =>
        script.calls.includes('waitForReplicas') &&
        script.calls.filter((c) => c === 'waitForReplicas').length >= 2,
    );
    const held = await progressOf(workflowId);
    expect(held.stage).toBe('UPGRADE_PAUSED');
    expect(held.traffic?.find((t) => t.revision === 2)?.percent ?? 0).toBe(0);
    expect(script.calls.some((c) => c.startsWith('setTraffic'))).toBe(false);
    expect((await (await resumeUpgrade(client, workflowId)).result()).paused).toBeUndefined();

    // Retiring: too late to pause, promote or roll back.
    const retiring = new Gate();
    script.hold = { undeployRevision: { gate: retiring } };
    await untilPhase(workflowId, 'retiring');
    expect(await refusal(rollbackDeployment(client, workflowId))).toMatch(
      /is retiring: r1 is being retired, so it is too late/,
    );
    expect(await refusal(cancelDeployment(client, workflowId))).toMatch(/too late to roll back/);
    expect(await refusal(pauseUpgrade(client, workflowId))).toMatch(/retiring; it cannot be paused/);
    expect(await refusal(promoteUpgrade(client, workflowId))).toMatch(
      /retiring; there is nothing left to promote/,
    );
    retiring.open();
    expect((await upgrade.result()).outcome).toBe('completed');
    expect((await again.result()).outcome).toBe('completed');
    // After it: r1 is gone, so there is no rollback to it.
    expect(await refusal(rollbackDeployment(client, workflowId))).toMatch(/serves r2, and r1 was retired/);
  });

  it.each([
    ['validating', 'validateWeights', false],
    ['staging', 'waitForReplicas', false],
    ['freeing-staging', 'deleteEndpoint', false],
    ['deploying', 'finishRevisionDeploy', true],
    ['shifting', 'measureTraffic', true],
    ['retaining', undefined, true],
  ] as const)(
    'while %s: pause and resume are accepted at once, and a rollback undoes everything of r2',
    async (phase, held, onEndpoint) => {
      const spec: DeploymentSpecInput = {
        ...specOf(uniqueName(`phase-${phase.slice(0, 6)}`)),
        strategy: { canary: { percent: 10, bake: '200ms' }, retainPrevious: '1h' },
      };
      const { client, script, workflowId } = await serving(spec);
      const gate = new Gate();
      if (held) script.hold = { [held]: { gate } };
      const upgrade = await upgradeDeployment(client, nextSpec(spec));
      await untilPhase(workflowId, phase);
      expect(await (await pauseUpgrade(client, workflowId)).result()).toMatchObject({ paused: true, phase });
      expect((await progressOf(workflowId)).stage).toBe('UPGRADE_PAUSED');
      expect((await (await resumeUpgrade(client, workflowId)).result()).paused).toBeUndefined();
      const rollback = await rollbackDeployment(client, workflowId);
      gate.open(); // a held step ends; its undo may run the same activity again
      const rolledBack = await rollback.result();
      expect(rolledBack).toMatchObject({
        outcome: 'serving',
        upgrade: { outcome: 'rolled-back', serving: 1 },
      });
      expect((await upgrade.result()).outcome).toBe('rolled-back');
      const progress = await progressOf(workflowId);
      expect(progress).toMatchObject({ stage: 'SERVING', revision: { number: 1, state: 'serving' } });
      expect(progress.traffic).toEqual([{ revision: 1, deployedModelId: '42', percent: 100 }]);
      const next = script.deployedModels?.[0];
      if (onEndpoint) {
        expect(script.calls.slice(-3)).toEqual(['setTraffic:0', `undeployRevision:${next}`, 'deleteModel']);
      } else {
        expect(script.calls).not.toContain('startRevisionDeploy');
        // Validating created nothing; later, the staging endpoint and the new model go.
        if (phase === 'validating') expect(script.calls).not.toContain('startDeploy');
        else expect(script.calls.slice(-3)).toEqual(['undeployModels', 'deleteEndpoint', 'deleteModel']);
      }
    },
  );

  it('promote during the canary skips to 100 % and retires; rollback during a bake puts everything back', async () => {
    const spec: DeploymentSpecInput = {
      ...specOf(uniqueName('promote')),
      strategy: { canary: { percent: 10, bake: '1h' }, retainPrevious: '1h' },
    };
    const { client, script, workflowId } = await serving(spec);
    const first = await upgradeDeployment(client, nextSpec(spec));
    await eventually('the canary', async () => script.calls.includes('setTraffic:10'));
    const promoted = await (await promoteUpgrade(client, workflowId)).result();
    expect(promoted).toMatchObject({ outcome: 'completed', serving: 2 });
    expect((await first.result()).outcome).toBe('completed');
    expect(script.calls.filter((c) => c.startsWith('setTraffic'))).toEqual([
      'setTraffic:10',
      'setTraffic:100',
    ]);

    script.calls.length = 0;
    const second = await upgradeDeployment(client, nextSpec(spec, 'v3'));
    await eventually('the canary of r3', async () => script.calls.includes('setTraffic:10'));
    const canary = script.deployedModels!.at(-1)!;
    const rolledBack = await (
      await rollbackDeployment(client, workflowId, { reason: 'latency looks off' })
    ).result();
    expect(rolledBack).toMatchObject({ outcome: 'serving', upgrade: { outcome: 'rolled-back', serving: 2 } });
    expect(rolledBack.upgrade?.reason).toMatch(/rollback requested: latency looks off/);
    expect((await second.result()).outcome).toBe('rolled-back');
    expect(script.calls.slice(-3)).toEqual(['setTraffic:0', `undeployRevision:${canary}`, 'deleteModel']);
  });

  it('a deploy of another model is an upgrade and says so; other fields are refused naming the command', async () => {
    const spec = specOf(uniqueName('redeploy'));
    const { client } = await serving(spec);
    const started = await startDeployment(client, nextSpec(spec), { taskQueue: worker.taskQueue });
    expect(started.upgrade).toEqual({ revision: 2, from: 1 });
    const result = await started.result();
    expect(result).toMatchObject({ outcome: 'serving', upgrade: { outcome: 'completed', revision: 2 } });

    const replicas = { ...nextSpec(spec), replicas: { min: 3 } };
    expect(await refusal(upgradeDeployment(client, replicas))).toMatch(
      /only what changes in place differs.*garden-deploy scale/,
    );
    const access: DeploymentSpecInput = {
      ...nextSpec(spec),
      access: {
        type: 'private',
        projectAllowlist: ['consumer-project'],
        consumerProject: 'consumer-project',
        network: 'projects/consumer-project/global/networks/vpc',
        subnetwork: 'projects/consumer-project/regions/us-central1/subnetworks/sub',
      },
    };
    expect(await refusal(upgradeDeployment(client, access))).toMatch(/access.*cannot change on a deployment/);
    const smoke = { ...nextSpec(spec), smoke: { tests: [{ prompt: 'other' }] } };
    expect(await refusal(startDeployment(client, smoke, { taskQueue: worker.taskQueue }))).toMatch(
      /smoke\.tests.*take effect through `garden-deploy upgrade/,
    );
  });

  it('a teardown during an upgrade undoes the upgrade, then removes the deployment', async () => {
    const spec = specOf(uniqueName('teardown'));
    const { client, script, workflowId } = await serving(spec);
    const staging = new Gate();
    script.hold = { waitForReplicas: { gate: staging } };
    const upgrade = await upgradeDeployment(client, nextSpec(spec));
    await untilPhase(workflowId, 'staging');
    const torn = await (await teardownDeployment(client, workflowId)).result();
    expect(torn.outcome).toBe('torn-down');
    expect((await upgrade.result()).outcome).toBe('rolled-back');
    // The staging endpoint and new model went first, then the deployment's own resources.
    expect(
      script.calls.filter((c) => ['undeployModels', 'deleteEndpoint', 'deleteModel'].includes(c)),
    ).toEqual([
      'undeployModels',
      'deleteEndpoint',
      'deleteModel',
      'undeployModels',
      'deleteEndpoint',
      'deleteModel',
    ]);
  });
});
