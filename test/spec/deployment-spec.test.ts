import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidSpecError, deploymentIds, loadDeploymentSpecFile, parseDeploymentSpec } from '../../src/spec';

const minimal = {
  name: 'llama-ft',
  project: 'my-project',
  region: 'us-central1',
  model: { uri: 'gs://bucket/models/llama/' },
};

function issuesOf(input: unknown): string[] {
  try {
    parseDeploymentSpec(input);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw err;
  }
  throw new Error('spec was accepted');
}

describe('DeploymentSpec', () => {
  it('fills sane defaults for a minimal spec', () => {
    const spec = parseDeploymentSpec(minimal);
    expect(spec.machine).toBe('auto');
    expect(spec.replicas).toEqual({ min: 1, max: 1 });
    expect(spec.access).toEqual({ type: 'public' });
    expect(spec.smoke.target).toBe('auto');
    expect(spec.smoke.onFailure).toBe('rollback');
    expect(spec.smoke.tests).toHaveLength(1);
    expect(spec.smoke.tests[0]).toMatchObject({
      name: 'smoke-1',
      mode: 'chat',
      maxTokens: 32,
      expect: { nonEmpty: true },
    });
    expect(spec.timeouts).toEqual({ deploy: 7_200_000, replicas: 1_800_000, psc: 600_000, smoke: 300_000 });
    expect(spec.rollbackWindow).toBe(0);
    expect(spec.validation.contextLength).toBe(8192);
  });

  it('derives every id from the spec', () => {
    const ids = deploymentIds(parseDeploymentSpec({ ...minimal, endpoint: { id: 'ep-1' } }));
    expect(ids).toMatchObject({
      workflowId: 'deploy/my-project/us-central1/llama-ft',
      endpointId: 'ep-1',
      modelId: 'llama-ft',
      pscAddressName: expect.stringMatching(/^llama-ft-[0-9a-f]{8}-psc-ip$/),
      pscForwardingRuleName: expect.stringMatching(/^llama-ft-[0-9a-f]{8}-psc-fr$/),
    });
    // The same name in another project gets other PSC names: both can share one consumer project.
    const other = deploymentIds(parseDeploymentSpec({ ...minimal, project: 'other-project' }));
    expect(other.pscAddressName).not.toBe(ids.pscAddressName);
    expect(other.pscForwardingRuleName).not.toBe(ids.pscForwardingRuleName);
    // Stable: the same spec always derives the same names (a retry finds what it created).
    expect(deploymentIds(parseDeploymentSpec({ ...minimal, endpoint: { id: 'ep-1' } }))).toEqual(ids);
    // The longest name still makes a valid Compute name (≤ 63).
    const longest = deploymentIds(parseDeploymentSpec({ ...minimal, name: `a${'b'.repeat(39)}` }));
    expect(longest.pscForwardingRuleName.length).toBeLessThanOrEqual(63);
  });

  it('parses durations and machine shapes', () => {
    const spec = parseDeploymentSpec({
      ...minimal,
      machine: { type: 'g2-standard-24', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 },
      timeouts: { deploy: '90m', replicas: '1h' },
      rollbackWindow: '30m',
      replicas: { min: 2 },
    });
    expect(spec.timeouts.deploy).toBe(5_400_000);
    expect(spec.timeouts.replicas).toBe(3_600_000);
    expect(spec.rollbackWindow).toBe(1_800_000);
    expect(spec.replicas).toEqual({ min: 2, max: 2 });
  });

  it('rejects unknown fields and bad values with the path of the field', () => {
    expect(issuesOf({ ...minimal, modle: {} })).toEqual([
      expect.stringMatching(/^: unknown field\(s\) "modle"/),
    ]);
    expect(issuesOf({ ...minimal, smoke: { tests: [{ prompt: 'hi', mode: 'completion' }] } })).toEqual([
      expect.stringMatching(/^smoke\.tests\[0\]\.mode: /),
    ]);
    expect(issuesOf({ ...minimal, model: { uri: 'gs://bucket' } })).toEqual([
      'model.uri: point at the model folder, not the bucket root',
    ]);
    expect(
      issuesOf({ ...minimal, machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4' } }),
    ).toEqual([expect.stringMatching(/^machine/)]);
    expect(issuesOf({ ...minimal, replicas: { min: 3, max: 2 } })).toEqual([
      'replicas.max: replicas.max must be ≥ replicas.min',
    ]);
    expect(issuesOf({ ...minimal, timeouts: { deploy: '5 minutes' } })[0]).toMatch(/^timeouts\.deploy: /);
    expect(issuesOf({ ...minimal, labels: { 'garden-deploy-x': 'a' } })[0]).toMatch(/reserved/);
    expect(issuesOf({ ...minimal, smoke: { target: 'skip' } })).toEqual([
      'smoke.skipReason: say why smoke tests are skipped',
    ]);
  });

  it('checks private access against the region and smoke target', () => {
    const access = {
      type: 'private',
      projectAllowlist: ['consumer-project'],
      consumerProject: 'consumer-project',
      network: 'projects/consumer-project/global/networks/vpc',
      subnetwork: 'projects/consumer-project/regions/europe-west4/subnetworks/sub',
    };
    expect(issuesOf({ ...minimal, access })).toEqual([
      "access.subnetwork: the subnetwork must be in the deployment's region us-central1",
    ]);
    const ok = parseDeploymentSpec({
      ...minimal,
      access: { ...access, subnetwork: 'projects/consumer-project/regions/us-central1/subnetworks/sub' },
    });
    expect(ok.access.type).toBe('private');
    expect(issuesOf({ ...minimal, access: ok.access, smoke: { target: 'dedicated' } })[0]).toMatch(
      /PSC address/,
    );
  });

  it('refuses a private endpoint whose consumer project is not in the allowlist, before anything is deployed', () => {
    const access = {
      type: 'private',
      projectAllowlist: ['other-project'],
      consumerProject: 'consumer-project',
      network: 'projects/consumer-project/global/networks/vpc',
      subnetwork: 'projects/consumer-project/regions/us-central1/subnetworks/sub',
    };
    expect(issuesOf({ ...minimal, access })).toEqual([
      'access.projectAllowlist: the consumer project consumer-project (access.consumerProject, where the PSC ' +
        'forwarding rule is created) is not in the allowlist, so its connection would be rejected: add ' +
        '"consumer-project" to access.projectAllowlist',
    ]);
    const spec = parseDeploymentSpec({
      ...minimal,
      access: { ...access, projectAllowlist: ['other-project', 'consumer-project'] },
    });
    expect(spec.access).toMatchObject({ projectAllowlist: ['other-project', 'consumer-project'] });
  });

  it('loads YAML files and refuses duplicate keys', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spec-'));
    const good = path.join(dir, 'good.yaml');
    await writeFile(
      good,
      'name: llama-ft\nproject: my-project\nregion: us-central1\nmodel:\n  uri: gs://my-bucket/m/\n',
    );
    expect((await loadDeploymentSpecFile(good)).name).toBe('llama-ft');
    const dup = path.join(dir, 'dup.yaml');
    await writeFile(dup, 'name: a\nname: b\n');
    await expect(loadDeploymentSpecFile(dup)).rejects.toThrow(/not valid YAML\/JSON.*(unique|duplicate)/is);
  });
});
