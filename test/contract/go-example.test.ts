import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { getProgress, startDeployment, teardownDeployment } from '../../src/client';
import { toolsDir } from '../../src/local-stack/tools';
import { type DeploymentSpecInput, deploymentWorkflowId, parseDeploymentSpec } from '../../src/spec';
import { freshProject, publicSpec } from '../activities/env';
import { E2E_SETTINGS, expectNothingLeft, uniqueName, useWorkerAndModel } from '../e2e/harness';
import { getTestEnv } from '../harness/env';

/**
 * The Go example (examples/go) deploys through the Go Temporal SDK alone, as docs/contract.md
 * says: against the harness's dev server and a worker of this file, it starts a deployment, follows
 * its progress until it serves, and has a different spec refused; the TypeScript client then sees
 * the same deployment (attaches to it) and tears it down.
 */

const GO_DIR = path.resolve(__dirname, '../../examples/go');
const GO_MISSING =
  'Go is not installed (no `go` on PATH), and the Go example test needs it: install Go 1.26+ ' +
  '(go.temporal.io/sdk v1.51 needs it; an older Go with GOTOOLCHAIN=auto fetches it) from https://go.dev/dl/ ' +
  'and put its bin/ on PATH (e.g. /usr/local/go/bin).';

/**
 * `go build` of the example, once per version of its sources and of Go, into the per-user cache
 * beside the pinned tools. The first build downloads the SDK and compiles gRPC and the Temporal API
 * (about 2 minutes on 2 cores); later ones cost nothing.
 */
async function buildGoExample(): Promise<string> {
  const version = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) throw new Error(GO_MISSING);
  const hash = createHash('sha256').update(version.stdout);
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(await readFile(path.join(GO_DIR, file)));
  const dir = path.join(toolsDir(), 'examples', `garden-deploy-go-${hash.digest('hex').slice(0, 16)}`);
  const binary = path.join(dir, 'garden-deploy-go');
  if (
    await access(binary).then(
      () => true,
      () => false,
    )
  )
    return binary;
  await mkdir(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`; // renamed when complete: a concurrent run never sees half a file
  try {
    await promisify(execFile)('go', ['build', '-o', partial, '.'], {
      cwd: GO_DIR,
      // -mod=mod: go.sum is checked in, modules come from the module proxy.
      env: { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false' },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const { stderr } = err as { stderr?: string };
    throw new Error(`go build of examples/go failed:\n${stderr ?? String(err)}`);
  }
  await rename(partial, binary);
  return binary;
}

interface GoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runGo(binary: string, args: string[]): Promise<GoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the Go example (examples/go)', () => {
  const env = useWorkerAndModel();
  let binary: string;
  let specDir: string;
  beforeAll(async () => {
    [binary, specDir] = await Promise.all([
      buildGoExample(),
      mkdtemp(path.join(os.tmpdir(), 'garden-deploy-go-spec-')),
    ]);
  }, 900_000);

  /** Runs the Go program on `spec` (written as its parsed form, which the workflow takes). */
  async function deployWithGo(spec: DeploymentSpecInput, label: string): Promise<GoRun> {
    const { temporalAddress, namespace } = await getTestEnv();
    const file = path.join(specDir, `${label}.json`);
    await writeFile(file, JSON.stringify(parseDeploymentSpec(spec)));
    return runGo(binary, [
      ...['-address', temporalAddress],
      ...['-namespace', namespace],
      ...['-task-queue', env.worker.taskQueue],
      ...['-spec', file],
      ...['-settings', JSON.stringify(E2E_SETTINGS)],
      ...['-timeout', '150s'],
      ...['-interval', '200ms'],
    ]);
  }

  it('starts a deployment, follows its progress until it serves; TypeScript sees it and tears it down', async () => {
    const { client } = await getTestEnv();
    const project = await freshProject('go');
    const spec = publicSpec(project, env.modelUri, uniqueName('go'));
    const workflowId = deploymentWorkflowId(spec);

    const run = await deployWithGo(spec, 'serving');
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.code, output).toBe(0);
    expect(run.stdout).toContain(`deployment ${workflowId} (run `);
    expect(run.stdout).toMatch(/^stage VALIDATING /m);
    expect(run.stdout).toMatch(/^stage SERVING 100%/m);
    expect(run.stdout).toMatch(/^serving: endpoint projects\/.+, inference URL https:\/\//m);

    // The TypeScript client finds the same deployment: its type, stage and search attributes.
    const status = await getProgress(client, workflowId);
    expect(status).toMatchObject({
      workflowType: 'deployment',
      status: 'RUNNING',
      stage: 'SERVING',
      deployment: spec.name,
      project,
      region: spec.region,
      modelUri: spec.model.uri,
      taskQueue: env.worker.taskQueue,
    });
    // ...and deploying the same spec from TypeScript attaches to it.
    const attached = await startDeployment(client, spec, { taskQueue: env.worker.taskQueue });
    expect(attached).toMatchObject({ workflowId, runId: status.runId, started: false });
    expect((await attached.result()).outcome).toBe('serving');

    // Another spec (here its labels) is refused with the deployment's reason, through the Go SDK.
    const refused = await deployWithGo({ ...spec, labels: { team: 'elsewhere' } }, 'refused');
    expect(refused.code, `${refused.stdout}\n${refused.stderr}`).toBe(2);
    expect(refused.stderr).toMatch(/^refused: .*labels/m);

    const teardown = await teardownDeployment(client, workflowId);
    expect((await teardown.result()).outcome).toBe('torn-down');
    await expectNothingLeft(project);
  });
});
