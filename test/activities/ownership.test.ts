import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type {
  CleanupInput,
  DeploymentIdentity,
  OwnershipProof,
  ValidatedDeployment,
} from '../../src/activities/contract';
import { judgeOwnership, judgePscOwnership, pscDescription } from '../../src/activities/ownership';
import { DEPLOYMENT_LABEL, IDENTITY_LABELS } from '../../src/constants';
import type { DeploymentSpecInput } from '../../src/spec';
import { failureOf, freshProject, inActivity, publicSpec, useSampleModel } from './env';

/**
 * Ownership by identity, not by name: what the deploy step labels, what it refuses, and what the
 * compensations leave alone (with the reason), against the emulator; the rules themselves as pure
 * functions.
 */

const t = useSampleModel();

const identityOf = (v: ValidatedDeployment, incarnation = randomUUID()): DeploymentIdentity => ({
  project: v.spec.project,
  region: v.spec.region,
  name: v.spec.name,
  workflowId: v.ids.workflowId,
  incarnation,
  revision: 1,
});

const proofOf = (v: ValidatedDeployment, identity: DeploymentIdentity): OwnershipProof => ({
  deploymentLabel: v.spec.name,
  endpointDisplayName: v.ids.endpointDisplayName,
  modelDisplayName: v.ids.modelDisplayName,
  notBefore: Date.now(),
  identity,
  fingerprints: {},
});

async function validated(spec: DeploymentSpecInput): Promise<ValidatedDeployment> {
  return inActivity().exec(t.activities.validateWeights, spec);
}

describe('ownership against the emulator', () => {
  it('labels with the identity, keeps labels someone else set meanwhile, and records creation times', async () => {
    const project = await freshProject('own-labels', { deployMs: 1_500 });
    const v = await validated(publicSpec(project, t.modelUri, 'labelled'));
    const identity = identityOf(v);
    const ownership = proofOf(v, identity);
    const started = await inActivity().exec(t.activities.startDeploy, {
      spec: v.spec,
      ids: v.ids,
      ownership,
    });
    expect(started).toMatchObject({ adopted: false, operation: expect.stringMatching(/\/operations\//) });

    // Google (or a policy) labels the endpoint before the deploy step does.
    const endpointName = `projects/${project}/locations/us-central1/endpoints/labelled`;
    const endpoint = await waitFor(() => t.gcp.vertex.getEndpoint(endpointName).catch(() => undefined));
    await t.gcp.vertex.setEndpointLabels(endpoint.name, { 'goog-managed-by': 'vertex' });

    const finished = await inActivity().exec(t.activities.finishDeploy, {
      spec: v.spec,
      ids: v.ids,
      ownership,
      operation: started.operation!,
      deadline: Date.now() + 60_000,
    });
    const labelled = await t.gcp.vertex.getEndpoint(finished.resources.endpoint!);
    expect(labelled.labels).toEqual({
      'goog-managed-by': 'vertex',
      [DEPLOYMENT_LABEL]: 'labelled',
      [IDENTITY_LABELS.incarnation]: identity.incarnation,
      [IDENTITY_LABELS.project]: project,
      [IDENTITY_LABELS.region]: 'us-central1',
      [IDENTITY_LABELS.revision]: '1',
      team: 'ml-platform',
    });
    expect(finished.fingerprints).toEqual({
      endpointCreateTime: labelled.createTime,
      modelCreateTime: (await t.gcp.vertex.getModel(finished.resources.model!)).createTime,
    });

    // A later deployment of the same name (another incarnation) must not adopt it.
    const later = proofOf(v, identityOf(v));
    const refused = await failureOf(
      inActivity().exec(t.activities.startDeploy, { spec: v.spec, ids: v.ids, ownership: later }),
    );
    expect(refused.type).toBe('ResourceConflict');
    expect(refused.message).toContain(`(incarnation ${identity.incarnation}), not this one`);
    expect(refused.message).toContain(`garden-deploy teardown ${v.ids.workflowId}`);

    // Nor remove it; the deployment that made it does.
    const cleanup = (proof: OwnershipProof): CleanupInput => ({
      project,
      region: 'us-central1',
      ownership: proof,
      ids: v.ids,
      resources: finished.resources,
    });
    const foreign = await inActivity().exec(t.activities.deleteEndpoint, cleanup(later));
    expect(foreign.outcomes).toEqual([
      expect.objectContaining({ outcome: 'not-ours', reason: expect.stringContaining(identity.incarnation) }),
    ]);
    const own = { ...ownership, fingerprints: finished.fingerprints };
    expect(
      (await inActivity().exec(t.activities.deleteEndpoint, cleanup(own))).outcomes.at(-1),
    ).toMatchObject({
      outcome: 'removed',
    });
    expect((await inActivity().exec(t.activities.deleteModel, cleanup(own))).outcomes).toEqual([
      expect.objectContaining({ outcome: 'removed' }),
    ]);
    expect((await t.admin.resources(project)).endpoints).toEqual([]);
  });
});

async function waitFor<T>(read: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out');
}

describe('ownership rules', () => {
  const identity: DeploymentIdentity = {
    project: 'proj-a',
    region: 'us-central1',
    name: 'llama-ft',
    workflowId: 'deploy/proj-a/us-central1/llama-ft',
    incarnation: '11111111-1111-4111-8111-111111111111',
    revision: 1,
  };
  const proof: OwnershipProof = {
    deploymentLabel: 'llama-ft',
    endpointDisplayName: 'llama-ft',
    modelDisplayName: 'llama-ft',
    notBefore: Date.parse('2026-06-01T00:00:00Z'),
    identity,
  };
  const ours = {
    labels: { [DEPLOYMENT_LABEL]: 'llama-ft', [IDENTITY_LABELS.incarnation]: identity.incarnation },
    displayName: 'llama-ft',
    createTime: '2026-06-01T00:05:00Z',
  };

  it('decides Vertex resources by identity labels and recorded creation time, never by name alone', () => {
    expect(judgeOwnership(ours, 'llama-ft', proof, undefined, 0)).toEqual({ ours: true });
    expect(judgeOwnership(ours, 'llama-ft', proof, ours.createTime, 0)).toEqual({ ours: true });
    const recreated = judgeOwnership(ours, 'llama-ft', proof, '2026-06-01T00:01:00Z', 0);
    expect(recreated).toMatchObject({ ours: false, reason: expect.stringMatching(/recreated/) });
    const otherRun = { ...ours, labels: { ...ours.labels, [IDENTITY_LABELS.incarnation]: 'other' } };
    expect(judgeOwnership(otherRun, 'llama-ft', proof, undefined, 0)).toMatchObject({ ours: false });
    // Name label only: a 0.1 deployment's (or a copy of our labels), not ours.
    const nameOnly = { ...ours, labels: { [DEPLOYMENT_LABEL]: 'llama-ft' } };
    expect(judgeOwnership(nameOnly, 'llama-ft', proof, undefined, 0)).toMatchObject({ ours: false });
    // ...but it is for a 0.1 proof, which has no identity.
    const legacy = { ...proof, identity: undefined };
    expect(judgeOwnership(nameOnly, 'llama-ft', legacy, undefined, 0)).toEqual({ ours: true });
    // Unlabelled: ours only before we recorded it, with our display name, made after we started.
    const bare = { displayName: 'llama-ft', createTime: '2026-06-01T00:05:00Z' };
    expect(judgeOwnership(bare, 'llama-ft', proof, undefined, 0)).toEqual({ ours: true });
    expect(
      judgeOwnership({ ...bare, createTime: '2026-05-01T00:00:00Z' }, 'llama-ft', proof, undefined, 0),
    ).toMatchObject({ ours: false, reason: expect.stringMatching(/before this deployment started/) });
    expect(judgeOwnership({ ...bare, displayName: 'x' }, 'llama-ft', proof, undefined, 0)).toMatchObject({
      ours: false,
    });
  });

  it('decides PSC resources by the identity in their description and their recorded Compute id', () => {
    const description = pscDescription('llama-ft', identity.workflowId, identity);
    expect(judgePscOwnership({ description, id: '42' }, 'llama-ft', identity)).toEqual({ ours: true });
    expect(judgePscOwnership({ description, id: '42' }, 'llama-ft', identity, '42')).toEqual({ ours: true });
    expect(judgePscOwnership({ description, id: '43' }, 'llama-ft', identity, '42')).toMatchObject({
      ours: false,
      reason: expect.stringMatching(/recreated/),
    });
    // Same name in another project (Shared VPC): not ours.
    const other = pscDescription('llama-ft', 'deploy/proj-b/us-central1/llama-ft', {
      ...identity,
      project: 'proj-b',
      workflowId: 'deploy/proj-b/us-central1/llama-ft',
    });
    expect(judgePscOwnership({ description: other }, 'llama-ft', identity)).toMatchObject({ ours: false });
  });
});
