import { describe, expect, it } from 'vitest';
import {
  DeploymentNotFoundError,
  cancelDeployment,
  getProgress,
  retryCleanup,
  startDeployment,
  teardownDeployment,
} from '../../src/client';
import { IDENTITY_LABELS } from '../../src/constants';
import { pscTarget } from '../../src/gcp';
import type { DeploymentSpecInput } from '../../src/spec';
import { freshProject, privateSpec, publicSpec } from '../activities/env';
import { getTestEnv } from '../harness/env';
import { eventually } from '../harness/eventually';
import { refusal } from '../harness/refusal';
import {
  E2E_SETTINGS,
  E2E_WAIT,
  deploy,
  expectNothingLeft,
  recordHistory,
  uniqueName,
  untilStage,
  useWorkerAndModel,
} from './harness';

/**
 * The acceptance of "a deployment can never destroy what is not its own", end to end on the dev
 * server, fake GCS and the emulator: a second deploy of a serving name changes nothing, deployments
 * of one name in two projects share a consumer project, a late endpoint after a cancel is removed,
 * a blocked compensation says why and is retried, a terminated deployment is torn down by name,
 * and a look-alike endpoint is never deleted.
 */

const t = useWorkerAndModel();

/** What the emulator holds for a project, as names plus the facts that would show a takeover. */
async function snapshot(project: string) {
  const { endpoints, models } = await t.admin.resources(project);
  return {
    endpoints: endpoints.map((e) => ({
      name: e.name,
      deployedModels: (e.deployedModels as Array<{ id: string; model: string }> | undefined)?.map((d) => [
        d.id,
        d.model,
      ]),
      labels: e.labels,
      updateTime: e.updateTime,
    })),
    models: models.map((m) => ({ name: m.name, labels: m.labels, updateTime: m.updateTime })),
  };
}

describe.concurrent('ownership', () => {
  it('a second deploy of a serving name with another endpoint or a failing smoke test changes nothing; the same spec attaches', async () => {
    const project = await freshProject('own-redeploy');
    const { client } = await getTestEnv();
    const spec = publicSpec(project, t.modelUri, uniqueName('redeploy'));
    const first = await deploy(client, t.worker.taskQueue, spec);
    expect((await first.result()).outcome).toBe('serving');
    const before = await snapshot(project);
    const progressBefore = (await getProgress(client, first.workflowId)).progress;
    expect(before.endpoints[0]?.labels).toMatchObject({
      'garden-deploy-deployment': spec.name,
      [IDENTITY_LABELS.incarnation]: first.runId,
      [IDENTITY_LABELS.revision]: '1',
      team: 'ml-platform',
    });

    // Another endpoint is another deployment (other weights are an upgrade: test/e2e/upgrade.test.ts).
    const otherEndpoint: DeploymentSpecInput = { ...spec, endpoint: { id: `${spec.name}-other` } };
    expect(await refusal(startDeployment(client, otherEndpoint, { taskQueue: t.worker.taskQueue }))).toMatch(
      /already exists \(stage SERVING\) with another spec.*endpoint\.id: .*garden-deploy teardown/,
    );
    const failingSmoke: DeploymentSpecInput = {
      ...spec,
      smoke: { onFailure: 'rollback', tests: [{ prompt: 'hi', expect: { regex: '^never matches$' } }] },
    };
    expect(await refusal(startDeployment(client, failingSmoke, { taskQueue: t.worker.taskQueue }))).toMatch(
      /smoke\.tests/,
    );

    expect(await snapshot(project)).toEqual(before);
    const after = (await getProgress(client, first.workflowId)).progress;
    expect(after).toMatchObject({ stage: 'SERVING', revision: { number: 1, modelUri: spec.model.uri } });
    expect(after?.updatedAt).toBe(progressBefore?.updatedAt);
    const again = await startDeployment(client, spec, { taskQueue: t.worker.taskQueue });
    expect(again).toMatchObject({ started: false, runId: first.runId });
    expect((await again.result()).outcome).toBe('serving');
    await (await teardownDeployment(client, first.workflowId)).result();
    await expectNothingLeft(project);
  });

  it('two projects, one deployment name, one shared consumer project: both serve; tearing one down leaves the other reachable', async () => {
    const [a, b, consumer] = await Promise.all([
      freshProject('own-vpc-a'),
      freshProject('own-vpc-b'),
      freshProject('own-vpc-host'),
    ]);
    const { client } = await getTestEnv();
    const name = uniqueName('shared');
    const specOf = (project: string) => privateSpec(project, consumer, t.modelUri, name);
    const [inA, inB] = await Promise.all([
      deploy(client, t.worker.taskQueue, specOf(a)),
      deploy(client, t.worker.taskQueue, specOf(b)),
    ]);
    const [servingA, servingB] = await Promise.all([inA.result(), inB.result()]);
    expect([servingA.outcome, servingB.outcome]).toEqual(['serving', 'serving']);
    expect(servingA.resources.pscAddress).not.toBe(servingB.resources.pscAddress);
    expect((await t.admin.resources(consumer)).forwardingRules).toHaveLength(2);

    const torn = await (await teardownDeployment(client, inA.workflowId)).result();
    expect(torn.outcome).toBe('torn-down');
    expect(torn.removed.every((r) => r.outcome !== 'not-ours')).toBe(true);
    await expectNothingLeft(a);
    const left = await t.admin.resources(consumer);
    expect(left.addresses.map((r) => r.name)).toEqual([servingB.resources.pscAddress!.split('/').pop()]);
    expect(left.forwardingRules.map((r) => r.name)).toEqual([
      servingB.resources.pscForwardingRule!.split('/').pop(),
    ]);
    const answer = await t.gcp.prediction.chatCompletions(
      pscTarget(servingB.resources.endpoint!, servingB.resources.pscIpAddress!),
      { messages: [{ role: 'user', content: 'still there?' }], max_tokens: 8 },
    );
    expect(answer.choices[0]?.message.content).toBeTruthy();
    await (await teardownDeployment(client, inB.workflowId)).result();
    await expectNothingLeft(b, consumer);
  });

  it('cancel during the deploy while the endpoint appears 10 s after the cancel: nothing is left', async () => {
    const project = await freshProject('own-late', { importMs: 120_000, deployMs: 180_000 });
    await t.admin.addFaultRules([
      { route: 'vertex.deploy', project, sequence: ['creates-after-cancel:10000'] },
    ]);
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(project, t.modelUri, uniqueName('late')),
    );
    await untilStage(started, 'DEPLOYING', async (p) => Boolean(p.resources.deployOperation));
    expect((await t.admin.resources(project)).endpoints).toEqual([]);
    const result = await (
      await cancelDeployment(client, started.workflowId, { reason: 'wrong weights' })
    ).result();
    expect(result.outcome).toBe('cancelled');
    expect(result.removed.filter((r) => r.outcome === 'removed').map((r) => r.resource)).toEqual(
      expect.arrayContaining([expect.stringMatching(/\/endpoints\//), expect.stringMatching(/\/models\//)]),
    );
    await expectNothingLeft(project);
    await recordHistory(client, started, 'cancel-late-endpoint');
  });

  it('a 403 on the forwarding-rule delete: the endpoint goes anyway, CLEANUP_BLOCKED says why, retryCleanup finishes', async () => {
    const [project, consumer] = await Promise.all([freshProject('own-403'), freshProject('own-403-c')]);
    const { client } = await getTestEnv();
    const started = await deploy(
      client,
      t.worker.taskQueue,
      privateSpec(project, consumer, t.modelUri, uniqueName('denied')),
    );
    expect((await started.result()).outcome).toBe('serving');
    const [rule] = await t.admin.addFaultRules([
      { route: 'compute.forwardingRules.delete', project: consumer, action: '403' },
    ]);
    const blocked = await (await teardownDeployment(client, started.workflowId)).result();
    expect(blocked.outcome).toBe('cleanup-blocked');
    expect(blocked.blocked).toEqual([
      expect.objectContaining({
        task: 'deletePscForwardingRule',
        error: expect.stringMatching(/PERMISSION_DENIED.*compute\.forwardingRules\.delete/),
      }),
    ]);
    // What bills GPUs is gone although PSC cleanup is blocked.
    expect((await t.admin.resources(project)).endpoints).toEqual([]);
    expect((await t.admin.resources(project)).models).toEqual([]);
    const status = await getProgress(client, started.workflowId);
    expect(status.stage).toBe('CLEANUP_BLOCKED');
    expect(status.progress?.lastError?.message).toMatch(/garden-deploy retry-cleanup/);

    await t.admin.clearFaults({ id: rule! });
    const finished = await (await retryCleanup(client, started.workflowId)).result();
    expect(finished.outcome).toBe('torn-down');
    await expectNothingLeft(project, consumer);
    await recordHistory(client, started, 'cleanup-blocked-retried');
  });

  it('a deployment terminated mid-deploy, and one mid-PSC, are removed by teardown NAME', async () => {
    const [project, consumer] = await Promise.all([
      freshProject('own-term'),
      freshProject('own-term-c', { pscAcceptMs: 120_000 }),
    ]);
    const slow = await freshProject('own-term-slow', { deployMs: 120_000 });
    const { client } = await getTestEnv();
    const midDeploy = await deploy(
      client,
      t.worker.taskQueue,
      publicSpec(slow, t.modelUri, uniqueName('term-dep')),
    );
    const midPsc = await deploy(
      client,
      t.worker.taskQueue,
      privateSpec(project, consumer, t.modelUri, uniqueName('term-psc')),
    );
    await Promise.all([
      untilStage(midDeploy, 'DEPLOYING', async () => (await t.admin.resources(slow)).endpoints.length > 0),
      untilStage(
        midPsc,
        'CONNECTING_PSC',
        async () => (await t.admin.resources(consumer)).forwardingRules.length > 0,
      ),
    ]);
    await Promise.all([midDeploy.handle.terminate('test: lost'), midPsc.handle.terminate('test: lost')]);

    expect(
      await refusal(
        startDeployment(client, publicSpec(slow, t.modelUri, midDeploy.spec.name), {
          taskQueue: t.worker.taskQueue,
        }),
      ),
    ).toMatch(/ended without removing what it created.*garden-deploy teardown/);
    for (const terminated of [midDeploy, midPsc]) {
      // By name, as a user would: visibility may take a moment to know it.
      const request = await eventually(
        `teardown of ${terminated.spec.name}`,
        () =>
          teardownDeployment(client, terminated.spec.name, { settings: E2E_SETTINGS }).catch(
            (err: unknown) => {
              if (err instanceof DeploymentNotFoundError) return undefined;
              throw err;
            },
          ),
        E2E_WAIT,
      );
      expect(request.runId).not.toBe(terminated.runId);
      expect((await request.result()).outcome).toBe('torn-down');
    }
    await expectNothingLeft(slow, project, consumer);
  });

  it('teardown refuses a same-id endpoint that someone else created', async () => {
    const project = await freshProject('own-lookalike');
    const { client } = await getTestEnv();
    const spec = publicSpec(project, t.modelUri, uniqueName('lookalike'));
    const started = await deploy(client, t.worker.taskQueue, spec);
    const served = await started.result();
    const endpoint = served.resources.endpoint!;
    // A person replaces it: undeploy, delete, and a :deploy of their own with the same ids.
    const { vertex } = t.gcp;
    const current = await vertex.getEndpoint(endpoint);
    for (const model of current.deployedModels)
      await waitOp(await vertex.undeployModel({ endpoint, deployedModelId: model.id }));
    await waitOp(await vertex.deleteEndpoint(endpoint));
    await waitOp(await vertex.deleteModel(served.resources.model!));
    await waitOp(
      await vertex.deploy({
        project,
        location: 'us-central1',
        gcsUri: t.modelUri,
        endpointUserId: spec.name,
        endpointDisplayName: spec.name,
        modelUserId: spec.name,
        modelDisplayName: spec.name,
        machine: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
      }),
    );
    const result = await (await teardownDeployment(client, started.workflowId)).result();
    expect(result.outcome).toBe('torn-down');
    expect(result.removed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          outcome: 'not-ours',
          resource: expect.stringMatching(/\/endpoints\//),
          reason: expect.stringMatching(/recreated/),
        }),
      ]),
    );
    const left = await t.admin.resources(project);
    expect(left.endpoints).toHaveLength(1);
    expect(left.models).toHaveLength(1);
    await t.admin.reset(project);
  });
});

async function waitOp(op: { name: string; done: boolean }): Promise<void> {
  await eventually(
    `operation ${op.name}`,
    async () => op.done || (await t.gcp.vertex.getOperation(op.name)).done,
    E2E_WAIT,
  );
}
