import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeployments, startDeployment } from '../../src/client';
import { findFreePort } from '../../src/local-stack/process';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import {
  Gate,
  type ScriptedWorker,
  expectNoWorkflow,
  publicSpec,
  startScriptedWorker,
  uniqueName,
  workflowIdOf,
} from '../client/scripted-worker';
import { runCli } from './run-cli';

/**
 * The deployment commands as a user runs them: child processes pointed at the test server by
 * TEMPORAL_ADDRESS, a worker running the real workflows with scripted activities.
 */

let worker: ScriptedWorker;
let tmp: string;
let env: Record<string, string>;
const UI = 'http://ui.test:8233';

beforeAll(async () => {
  const { temporalAddress, namespace } = await getTestEnv();
  worker = await startScriptedWorker(uniqueTaskQueue('cli'));
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cli-test-'));
  env = {
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: namespace,
    TEMPORAL_CONFIG_FILE: path.join(tmp, 'no-temporal.toml'),
    GARDEN_DEPLOY_DATA_DIR: tmp, // no local stack here
    GARDEN_DEPLOY_TASK_QUEUE: worker.taskQueue,
    GARDEN_DEPLOY_TEMPORAL_UI_URL: UI,
  };
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await rm(tmp, { recursive: true, force: true });
  await closeTestEnv();
});

const uiLink = (workflowId: string) => `${UI}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;

/** Flags for a complete spec without a file. */
function specFlags(name: string): string[] {
  return [
    '--name',
    name,
    '--project',
    'my-project',
    '--region',
    'us-central1',
    '--model-uri',
    `gs://models-bucket/${name}/`,
    '--machine-type',
    'g2-standard-12',
    '--accelerator-type',
    'NVIDIA_L4',
    '--accelerator-count',
    '1',
  ];
}

// Concurrent: each test has its own deployments (unique names, scripted per workflow id), and
// the time goes to CLI processes starting and Temporal round trips.
describe.concurrent('garden-deploy deployment commands', { timeout: 240_000 }, () => {
  it('deploy (flags only) prints the workflow id and UI link, follows progress, then the endpoint and smoke answers', async () => {
    const name = uniqueName('cli-deploy');
    worker.script(publicSpec(name));
    const workflowId = `deploy/my-project/us-central1/${name}`;
    const run = await runCli(['deploy', ...specFlags(name)], env);
    expect(run.stderr).toBe('');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Started ${workflowId}\n  Temporal UI: ${uiLink(workflowId)}\n`);
    // Not a TTY: one appended line per change, in order.
    expect(run.stdout).toMatch(
      /Validate weights: succeeded[\s\S]*Deploy to Vertex AI: succeeded[\s\S]*Smoke tests: succeeded/,
    );
    expect(run.stdout).not.toContain('\x1b[');
    expect(run.stdout).toContain(`✔ ${name} is serving`);
    expect(run.stdout).toContain(`Endpoint:       projects/1/locations/us-central1/endpoints/${name}`);
    expect(run.stdout).toContain('Inference URL:  https://ep.us-central1-1.prediction.vertexai.goog');
    expect(run.stdout).toContain('✔ smoke-1 (chat, 120 ms): "I am a fine-tuned Llama."');
  });

  it('deploy -f merges flags over the file and follows until it serves; rollback within the window undoes it', async () => {
    const name = uniqueName('cli-window');
    worker.script({ ...publicSpec(name), project: 'my-ml-project' }); // the example's project
    const workflowId = `deploy/my-ml-project/us-central1/${name}`;
    const run = await runCli(
      ['deploy', '-f', 'examples/public.yaml', '--name', name, '--min-replicas', '2'],
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Started ${workflowId}`);
    expect(run.stdout).toContain(`✔ ${name} is serving`);
    expect(run.stdout).toContain('Wait for replicas: succeeded · 2/2 replicas available');
    expect(run.stdout).toMatch(
      new RegExp(`Open to rollback until \\S+: garden-deploy rollback ${workflowId}`),
    );

    const rollback = await runCli(['rollback', workflowId, '--reason', 'bad answers'], env);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(rollback.stdout).toContain(`Rollback accepted for ${workflowId} (it was at stage SERVING)`);
    expect(rollback.stdout).toContain(`✖ ${name} was rolled back: bad answers`);
    expect(rollback.stdout).toMatch(/Removed:\n {4}✔ undeployModels\(.*\) \(removed\)/);

    const again = await runCli(['rollback', workflowId], env);
    expect(again.code, again.stderr).toBe(2);
    expect(again.stderr).toMatch(
      /^garden-deploy rollback: .* already ended \(rolled back\) at .*; nothing is left to rollback\n$/,
    );
  });

  it('deploy --detach --json prints the start facts; another spec is refused; watch --json returns the result', async () => {
    const name = uniqueName('cli-json');
    const gate = new Gate();
    worker.script(publicSpec(name), { hold: { validateWeights: { gate, heartbeat: {} } } });
    const first = await runCli(['deploy', ...specFlags(name), '--detach', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const started = JSON.parse(first.stdout) as Record<string, unknown>;
    const workflowId = workflowIdOf(publicSpec(name));
    expect(started).toMatchObject({ workflowId, started: true, uiUrl: uiLink(workflowId) });

    const same = await runCli(['deploy', ...specFlags(name), '--detach'], env);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain(
      `Attached to ${workflowId}: it exists with this spec, nothing new was started`,
    );
    const other = await runCli(['deploy', ...specFlags(name), '--min-replicas', '3', '--detach'], env);
    expect(other.code, other.stdout).toBe(2);
    expect(other.stderr).toContain(`garden-deploy deploy: deployment ${workflowId} already exists`);
    expect(other.stderr).toContain('replicas.min: 1 → 3');
    expect(other.stderr).toContain(
      `garden-deploy scale ${name}\` (--min, --max, --autoscaling, --container-logging)`,
    );

    gate.open();
    const watch = await runCli(['watch', workflowId, '--json'], env);
    expect(watch.code, watch.stderr).toBe(0);
    const watched = JSON.parse(watch.stdout) as { result: { outcome: string; workflowId: string } };
    expect(watched.result).toMatchObject({ outcome: 'serving', workflowId });
    expect(watch.stderr).toContain('Smoke tests: succeeded'); // progress goes to stderr with --json
  });

  it('a bad spec prints every field error and exits 2 without starting anything', async () => {
    const { client } = await getTestEnv();
    const name = uniqueName('cli-bad');
    const file = path.join(tmp, `${name}.yaml`);
    await writeFile(
      file,
      [
        `name: ${name}`,
        'project: my-project',
        'region: Moon',
        'model: { uri: "s3://nope/" }',
        'replicas: { min: 0 }',
        'colour: blue',
      ].join('\n'),
    );
    const run = await runCli(['deploy', '-f', file, '--accelerator-count', '2'], env);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trim().split('\n');
    expect(lines[0]).toBe(`garden-deploy deploy: invalid deployment spec (${file} + flags):`);
    expect(lines.slice(1)).toEqual(
      expect.arrayContaining([
        '  - machine: --machine-type, --accelerator-type and --accelerator-count go together: give all three',
        expect.stringMatching(/^ {2}- region \(--region\): expected a region like "us-central1"$/),
        expect.stringMatching(/^ {2}- model\.uri \(--model-uri\): /),
        expect.stringMatching(/^ {2}- replicas\.min \(--min-replicas\): /),
        '  - (root): unknown field(s) "colour"',
      ]),
    );
    await expectNoWorkflow(client, `deploy/my-project/Moon/${name}`);
  });

  it('a failed deployment exits 1 with the failure message', async () => {
    const name = uniqueName('cli-fail');
    worker.script(publicSpec(name), { fail: { validateWeights: 'tokenizer.json is missing' } });
    const run = await runCli(['deploy', ...specFlags(name)], env);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toContain('Validate weights: failed · tokenizer.json is missing');
    expect(run.stdout).toContain(`✖ ${name} failed: tokenizer.json is missing`);
  });

  it('status shows the steps (and --json parses); an unknown deployment exits 2', async () => {
    const { client } = await getTestEnv();
    const name = uniqueName('cli-status');
    const spec = publicSpec(name);
    const gate = new Gate();
    worker.script(spec, {
      hold: { waitForReplicas: { gate, heartbeat: { available: 1, target: 3, message: 'scaling up' } } },
    });
    const { workflowId } = await startDeployment(
      client,
      { ...spec, replicas: { min: 3 } },
      {
        taskQueue: worker.taskQueue,
        settings: { heartbeatTimeoutMs: 2_000 },
      },
    );
    try {
      const human = await eventually(
        'status to show the replicas',
        async () => {
          const run = await runCli(['status', workflowId], env);
          return run.stdout.includes('replicas 1/3') ? run : undefined;
        },
        { intervalMs: 200 },
      );
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toMatch(new RegExp(`^${name}  WAITING_FOR_REPLICAS  \\d+%`));
      expect(human.stdout).toContain(uiLink(workflowId));
      expect(human.stdout).toMatch(/✔ Validate weights +Llama-tiny ok/);
      expect(human.stdout).toMatch(/▶ Wait for replicas +replicas 1\/3 \(scaling up\)/);

      const json = await runCli(['status', workflowId, '--json'], env);
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({
        workflowId,
        status: 'RUNNING',
        stage: 'WAITING_FOR_REPLICAS',
        replicas: { available: 1, target: 3 },
        uiUrl: uiLink(workflowId),
      });
    } finally {
      gate.open();
    }

    const unknown = await runCli(['status', 'deploy/my-project/us-central1/never-deployed'], env);
    expect(unknown.code, unknown.stderr).toBe(2);
    expect(unknown.stderr).toMatch(
      /^garden-deploy status: no workflow deploy\/my-project\/us-central1\/never-deployed in namespace default/,
    );
  });

  it('cancel stops a running deployment and reports what it removed; a second cancel is refused', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('cli-cancel'));
    const gate = new Gate();
    const script = worker.script(spec, {
      hold: { finishDeploy: { gate, heartbeat: { operationName: 'op-1' } } },
    });
    const { workflowId } = await startDeployment(client, spec, {
      taskQueue: worker.taskQueue,
      settings: { heartbeatTimeoutMs: 2_000, lateResourceGraceMs: 100 },
    });
    await eventually('deploy to start', async () => script.calls.includes('finishDeploy'));

    const run = await runCli(['cancel', workflowId, '--reason', 'wrong checkpoint'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Cancel accepted for ${workflowId} (it was at stage DEPLOYING)`);
    expect(run.stdout).toContain(`✖ ${spec.name} was cancelled: wrong checkpoint`);
    expect(run.stdout).toContain('Deploy to Vertex AI: compensated');
    expect(script.calls.slice(-3)).toEqual(['undeployModels', 'deleteEndpoint', 'deleteModel']);

    const again = await runCli(['cancel', workflowId], env);
    expect(again.code, again.stderr).toBe(2);
    expect(again.stderr).toMatch(/already ended \(cancelled\) at .*; nothing is left to cancel/);
  });

  it('teardown refuses a deployment still deploying, removes a serving one and prints what it removed', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('cli-teardown'));
    const gate = new Gate();
    worker.script(spec, { hold: { runSmokeTests: { gate, heartbeat: {} } } });
    const { workflowId } = await startDeployment(client, spec, { taskQueue: worker.taskQueue });
    await eventually(
      'smoke tests',
      async () => (await runCli(['status', workflowId, '--json'], env)).stdout.includes('SMOKE_TESTING'),
      { intervalMs: 200 },
    );

    const refused = await runCli(['teardown', workflowId], env);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`garden-deploy cancel ${workflowId}`);

    gate.open();
    expect((await runCli(['watch', workflowId], env)).code).toBe(0);
    const run = await runCli(['teardown', workflowId], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Teardown accepted for ${workflowId} (it was at stage SERVING)`);
    expect(run.stdout).toContain(`✔ ${spec.name} is torn down`);
    expect(run.stdout).toContain(
      `✔ deleteEndpoint(projects/1/locations/us-central1/endpoints/${spec.name}) (removed)`,
    );
  });

  it('scale, a blocked teardown and abandon-cleanup from the command line, with their exit codes', async () => {
    const { client } = await getTestEnv();
    const spec = publicSpec(uniqueName('cli-ops'));
    const fail: Record<string, string> = { deleteModel: 'the model is still used by another endpoint' };
    worker.script(spec, { fail });
    const started = await startDeployment(client, spec, {
      taskQueue: worker.taskQueue,
      settings: { cleanupAttempts: 1, cleanupRetryMs: 100 },
    });
    await started.result();
    const { workflowId } = started;

    const scale = await runCli(['scale', workflowId, '--min', '2', '--max', '3'], env);
    expect(scale.code, scale.stderr).toBe(0);
    expect(scale.stdout).toContain(`Scale accepted for ${workflowId} (it was at stage SERVING)`);
    expect(scale.stdout).toContain(`✔ ${spec.name} scaled to 2–3 replicas (2 available)`);
    const badScale = await runCli(['scale', workflowId, '--min', '0'], env);
    expect(badScale.code).toBe(2);
    expect(badScale.stderr).toContain('min 0 needs replicas.scaleToZero in the spec');

    const teardown = await runCli(['teardown', workflowId], env);
    expect(teardown.code, teardown.stderr).toBe(1);
    expect(teardown.stdout).toContain(`✖ ${spec.name}: cleanup is blocked`);
    expect(teardown.stdout).toContain('Blocked: deleteModel after 1 attempt(s): the model is still used');
    expect(teardown.stdout).toContain(`Once fixed: garden-deploy retry-cleanup ${workflowId}`);
    const status = await runCli(['status', workflowId], env);
    expect(status.code, status.stderr).toBe(1);
    expect(status.stdout).toContain('CLEANUP_BLOCKED');

    const noReason = await runCli(['abandon-cleanup', workflowId], env);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain("required option '--reason <text>' not specified");
    const abandon = await runCli(['abandon-cleanup', workflowId, '--reason', 'deleted it myself'], env);
    expect(abandon.code, abandon.stderr).toBe(0);
    expect(abandon.stdout).toContain(`✔ ${spec.name} is torn down`);
    expect(abandon.stdout).toMatch(
      /! .*\/models\/.* \(abandoned: abandoned by an operator: deleted it myself\)/,
    );
    const late = await runCli(['retry-cleanup', workflowId], env);
    expect(late.code).toBe(2);
    expect(late.stderr).toMatch(/already ended \(torn down\)/);
  });

  it('list filters by search attributes as a table or JSON, and status resolves a bare name', async () => {
    const { client } = await getTestEnv();
    const bucket = uniqueName('cli-list');
    const name = uniqueName('listed');
    const spec = { ...publicSpec(name), model: { uri: `gs://${bucket}/m/` } };
    worker.script(spec);
    expect((await runCli(['deploy', ...specFlags(name), '--model-uri', spec.model.uri], env)).code).toBe(0);
    await eventually(
      'visibility',
      async () => (await listDeployments(client, { modelUri: `gs://${bucket}/` })).length === 1,
    );

    const json = await runCli(['list', '--model', `gs://${bucket}/`, '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject([
      { workflowId: workflowIdOf(spec), stage: 'SERVING', region: 'us-central1' },
    ]);

    const table = await runCli(
      ['list', '--model', `gs://${bucket}/`, '--region', 'us-central1', '--stage', 'SERVING'],
      env,
    );
    expect(table.code, table.stderr).toBe(0);
    const [header, row, ...rest] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^NAME +STAGE +WORKFLOW +PROJECT +REGION +STARTED +MODEL$/);
    expect(row).toMatch(
      new RegExp(`^${name} +SERVING +RUNNING +my-project +us-central1 +\\S+ \\S+ +gs://${bucket}/m/$`),
    );
    expect(rest).toEqual([]);

    const none = await runCli(['list', '--model', `gs://${bucket}/`, '--region', 'europe-west4'], env);
    expect(none.stdout).toBe('No deployments that may hold resources match (--all includes ended ones).\n');
    const badStage = await runCli(['list', '--stage', 'DONE'], env);
    expect(badStage.code, badStage.stderr).toBe(2);
    expect(badStage.stderr).toContain('stage must be one of VALIDATING, DEPLOYING');

    const byName = await runCli(['status', name, '--json'], env);
    expect(byName.code, byName.stderr).toBe(0);
    expect(JSON.parse(byName.stdout)).toMatchObject({ workflowId: workflowIdOf(spec), stage: 'SERVING' });
  });

  it('exits 2 and says how to fix it when Temporal is unreachable', async () => {
    const port = await findFreePort();
    const run = await runCli(['status', 'llama-ft'], { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(
        `^garden-deploy status: cannot reach Temporal at 127\\.0\\.0\\.1:${port} \\(address from TEMPORAL_ADDRESS\\)`,
      ),
    );
  });
});
