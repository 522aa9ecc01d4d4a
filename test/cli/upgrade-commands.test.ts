import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { startDeployment } from '../../src/client';
import type { DeploymentSpecInput } from '../../src/spec';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import {
  Gate,
  type ScriptedWorker,
  publicSpec,
  startScriptedWorker,
  uniqueName,
  workflowIdOf,
} from '../client/scripted-worker';
import { runCli } from './run-cli';

/**
 * The upgrade commands as a user runs them (child processes, not a TTY), against a worker running
 * the real workflows with scripted activities: upgrade, a deploy that upgrades, status with
 * revisions and traffic bars, a rolled-back upgrade, and promote / pause / resume.
 */

let worker: ScriptedWorker;
let tmp: string;
let env: Record<string, string>;

beforeAll(async () => {
  const { temporalAddress, namespace } = await getTestEnv();
  worker = await startScriptedWorker(uniqueTaskQueue('cli-upgrade'));
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cli-upgrade-'));
  env = {
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: namespace,
    TEMPORAL_CONFIG_FILE: path.join(tmp, 'no-temporal.toml'),
    GARDEN_DEPLOY_DATA_DIR: tmp,
    GARDEN_DEPLOY_TASK_QUEUE: worker.taskQueue,
  };
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await rm(tmp, { recursive: true, force: true });
  await closeTestEnv();
});

const specOf = (name: string): DeploymentSpecInput => ({
  ...publicSpec(name),
  strategy: { canary: { percent: 10, bake: '300ms' }, linear: { step: 50, interval: '200ms' } },
  gates: { interval: '100ms' },
});

async function serving(spec: DeploymentSpecInput, script: Parameters<ScriptedWorker['script']>[1] = {}) {
  const { client } = await getTestEnv();
  const registered = worker.script(spec, script);
  const started = await startDeployment(client, spec, { taskQueue: worker.taskQueue });
  expect((await started.result()).outcome).toBe('serving');
  return { script: registered, workflowId: started.workflowId };
}

async function specFile(spec: DeploymentSpecInput): Promise<string> {
  const file = path.join(tmp, `${spec.name}-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, toYaml(spec));
  return file;
}

const next = (spec: DeploymentSpecInput): DeploymentSpecInput => ({
  ...spec,
  model: { uri: spec.model.uri.replace(/\/$/, '-v2/') },
});

describe.concurrent('garden-deploy upgrade, promote, pause, resume', { timeout: 240_000 }, () => {
  it('upgrade -f follows the upgrade to the end; status then shows the revisions and the traffic', async () => {
    const spec = specOf(uniqueName('cli-upgrade'));
    const { workflowId } = await serving(spec);
    const run = await runCli(['upgrade', spec.name, '-f', await specFile(next(spec))], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Upgrade accepted for ${workflowId} (it was at stage SERVING)`);
    // Not a TTY: one line per change of the upgrade, not the first deploy's steps again.
    expect(run.stdout).toMatch(
      /upgrade r1 → r2: staging[\s\S]*traffic: r1 90 % · r2 10 %[\s\S]*gates at 10 %: pass[\s\S]*upgrade r1 → r2: completed/,
    );
    expect(run.stdout).not.toContain('Validate weights');
    expect(run.stdout).toContain(`✔ ${spec.name}: r2 serves (upgrade from r1 completed)`);
    expect(run.stdout).toMatch(/Traffic:\n {4}r2 {3}█{20} 100 %/);

    const status = await runCli(['status', workflowId], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('Revision 2 (serving)');
    expect(status.stdout).toMatch(
      /Revisions:\n {4}r2 serving .*-v2\/ · g2-standard-12 \(1× NVIDIA_L4\)\n {4}r1 retired/,
    );
    expect(status.stdout).toContain('Last upgrade r1 → r2: completed');
  });

  it('a deploy of another model says it is an upgrade; a rolled-back upgrade exits 1 naming the failed gate', async () => {
    const spec = specOf(uniqueName('cli-redeploy'));
    const { script } = await serving(spec);
    const deploy = await runCli(['deploy', '-f', await specFile(next(spec))], env);
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(deploy.stdout).toMatch(
      /Upgrading deploy\/.* to revision r2 \(r1 serves another model, machine or validation\)/,
    );
    expect(deploy.stdout).toContain(`r2 serves (upgrade from r1 completed)`);

    script.traffic = { candidate: { requests: 40, errors: 20 }, baseline: { requests: 360, errors: 0 } };
    const third = { ...spec, model: { uri: spec.model.uri.replace(/\/$/, '-v3/') } };
    const run = await runCli(['upgrade', spec.name, '-f', await specFile(third), '--json'], env);
    expect(run.code, run.stderr).toBe(1);
    const json = JSON.parse(run.stdout) as { result: { outcome: string; reason: string; serving: number } };
    expect(json.result).toMatchObject({ outcome: 'rolled-back', serving: 2 });
    expect(json.result.reason).toMatch(/error ratio 50\.0 % \(20\/40 5xx\) > 5\.00 %/);
  });

  it('pause, resume and promote steer a running upgrade; without one they exit 2 with the reason', async () => {
    const spec = specOf(uniqueName('cli-steer'));
    const { script, workflowId } = await serving({
      ...spec,
      strategy: { canary: { percent: 10, bake: '1h' } },
    });
    const none = await runCli(['promote', spec.name], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/has no upgrade in progress to promote \(revision r1 serves\)/);

    const validating = new Gate();
    script.hold = { validateWeights: { gate: validating } };
    const upgrade = runCli(
      [
        'upgrade',
        workflowId,
        '-f',
        await specFile({ ...next(spec), strategy: { canary: { percent: 10, bake: '1h' } } }),
      ],
      env,
    );
    await eventually(
      'the upgrade to start',
      async () => script.calls.filter((c) => c === 'validateWeights').length >= 2,
    );
    const pause = await runCli(['pause', spec.name, '--reason', 'dashboards'], env);
    expect(pause.code, pause.stderr).toBe(0);
    expect(pause.stdout).toContain(`▶ ${spec.name}: upgrade to r2 paused (validating)`);
    const twice = await runCli(['pause', spec.name], env);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/already paused \(dashboards\)/);
    const resume = await runCli(['resume', spec.name], env);
    expect(resume.code, resume.stderr).toBe(0);
    expect(resume.stdout).toContain(`▶ ${spec.name}: upgrade to r2 running (validating)`);
    validating.open();
    await eventually('the canary', async () => script.calls.some((c) => c.startsWith('setTraffic')));
    const promote = await runCli(['promote', spec.name], env);
    expect(promote.code, promote.stderr).toBe(0);
    expect(promote.stdout).toContain(`✔ ${spec.name}: r2 serves (upgrade from r1 completed)`);
    expect((await upgrade).code).toBe(0);
  });

  it('an upgrade with a spec of another deployment, or a bad spec, exits 2 and starts nothing', async () => {
    const spec = specOf(uniqueName('cli-mismatch'));
    await serving(spec);
    const other = await runCli(['upgrade', 'someone-else', '-f', await specFile(next(spec))], env);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/the spec is for deployment .*, not someone-else/);
    const bad = await runCli(
      [
        'upgrade',
        spec.name,
        '-f',
        await specFile({ ...next(spec), strategy: { canary: { percent: 0, bake: '1m' } } }),
      ],
      env,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/strategy\.canary\.percent: canary\.percent is 1–99/);
    expect(workflowIdOf(spec)).toMatch(/^deploy\//);
  });
});
