import { describe, expect, it } from 'vitest';
import type {
  CleanupInput,
  DeploymentResources,
  PscInput,
  ValidatedDeployment,
} from '../../src/activities/contract';
import type { DeploymentSpecInput } from '../../src/spec';
import {
  deployInput,
  failureOf,
  freshProject,
  inActivity,
  ownershipOf,
  privateSpec,
  publicSpec,
  useSampleModel,
} from './env';

/** PSC, smoke tests and the compensations against the emulator. */

const t = useSampleModel();

/** Validate → deploy → replicas, as the workflow chains them; returns what a later step needs. */
async function deployed(spec: DeploymentSpecInput) {
  const v: ValidatedDeployment = await inActivity().exec(t.activities.validateWeights, spec);
  const ownership = ownershipOf(v);
  const deploy = await inActivity().exec(t.activities.deployToVertex, deployInput(v, ownership));
  const replicas = await inActivity().exec(t.activities.waitForReplicas, {
    endpoint: deploy.resources.endpoint!,
    deployedModelId: deploy.resources.deployedModelId,
    minReplicas: 1,
    deadline: Date.now() + 60_000,
  });
  const resources: DeploymentResources = { ...deploy.resources, ...replicas };
  return { v, ownership, resources };
}

const COMPENSATIONS = [
  'deletePscForwardingRule',
  'releasePscAddress',
  'undeployModels',
  'deleteEndpoint',
  'deleteModel',
] as const;

async function compensate(input: CleanupInput) {
  const outcomes = [];
  for (const step of COMPENSATIONS)
    outcomes.push(...(await inActivity().exec(t.activities[step], input)).outcomes);
  return outcomes;
}

describe('PSC, smoke tests and compensations', () => {
  it('connects a private endpoint through PSC idempotently, smoke-tests over the PSC address and removes everything', async () => {
    const project = await freshProject('psc');
    const consumer = await freshProject('consumer');
    const { v, ownership, resources } = await deployed(
      privateSpec(project, consumer, t.modelUri, 'private-llama'),
    );
    expect(resources.serviceAttachment).toMatch(
      /^projects\/[^/]+\/regions\/us-central1\/serviceAttachments\//,
    );
    expect(resources.dedicatedEndpointDns).toBeUndefined();

    const psc: PscInput = { spec: v.spec, ids: v.ids, serviceAttachment: resources.serviceAttachment! };
    const address = await inActivity().exec(t.activities.reservePscAddress, psc);
    expect(address.address).toBe(
      `projects/${consumer}/regions/us-central1/addresses/${v.ids.pscAddressName}`,
    );
    expect(address.ipAddress).toMatch(/^10\.\d+\.\d+\.\d+$/);
    const connection = await inActivity().exec(t.activities.createPscForwardingRule, { ...psc, address });
    expect(connection.forwardingRule).toBe(
      `projects/${consumer}/regions/us-central1/forwardingRules/${v.ids.pscForwardingRuleName}`,
    );
    const accepted = await inActivity().exec(t.activities.waitForPscConnection, {
      ...psc,
      connection,
      deadline: Date.now() + 30_000,
    });
    expect(accepted).toMatchObject({ status: 'ACCEPTED', ipAddress: address.ipAddress });

    // A retried step finds its own resources instead of creating more.
    expect(await inActivity({ attempt: 2 }).exec(t.activities.reservePscAddress, psc)).toMatchObject({
      address: address.address,
      ipAddress: address.ipAddress,
      attempt: 2,
    });
    await inActivity({ attempt: 2 }).exec(t.activities.createPscForwardingRule, { ...psc, address });
    expect((await t.admin.stats(consumer)).creations).toEqual({ address: 1, forwardingRule: 1 });

    const smoke = await inActivity().exec(t.activities.runSmokeTests, {
      endpoint: resources.endpoint!,
      target: { kind: 'psc', ipAddress: accepted.ipAddress },
      tests: v.spec.smoke.tests,
    });
    expect(smoke.results).toEqual([expect.objectContaining({ passed: true, mode: 'chat' })]);

    const cleanup: CleanupInput = {
      project,
      region: 'us-central1',
      ownership,
      ids: v.ids,
      consumerProject: consumer,
      resources: { ...resources, pscAddress: address.address, pscForwardingRule: connection.forwardingRule },
    };
    const outcomes = await compensate(cleanup);
    expect(outcomes.map((o) => o.outcome)).toEqual(['removed', 'removed', 'removed', 'removed', 'removed']);
    // Idempotent: a second run (a retry after a lost answer) finds everything gone.
    expect((await compensate(cleanup)).every((o) => o.outcome === 'already-gone')).toBe(true);
    for (const p of [project, consumer]) {
      const left = await t.admin.resources(p);
      expect([left.endpoints, left.models, left.addresses, left.forwardingRules]).toEqual([[], [], [], []]);
    }
  });

  it('refuses a consumer missing from the allowlist at validation, and fails a rejected connection with the allowlist hint', async () => {
    const project = await freshProject('psc-rej');
    const consumer = await freshProject('outsider');
    const spec = privateSpec(project, consumer, t.modelUri, 'private-llama');
    const notAllowed = (access: DeploymentSpecInput['access']) =>
      access?.type === 'private' ? { ...access, projectAllowlist: ['some-other-project'] } : access;
    const outsider = { ...spec, access: notAllowed(spec.access) };
    // Refused before anything is created, instead of a REJECTED connection after the GPU deployment.
    const invalid = await failureOf(inActivity().exec(t.activities.validateWeights, outsider));
    expect(invalid.type).toBe('InvalidDeploymentSpec');
    expect(invalid.nonRetryable).toBe(true);
    expect(invalid.message).toContain(`add "${consumer}" to access.projectAllowlist`);

    // The producer can still reject a listed consumer (the endpoint's allowlist changed out of
    // band): deploy with an endpoint allowlist that leaves it out — activities take the parsed spec
    // without parsing it again — and connect with the valid spec.
    const v: ValidatedDeployment = await inActivity().exec(t.activities.validateWeights, spec);
    if (v.spec.access.type !== 'private') throw new Error('expected a private spec');
    const endpointSpec = {
      ...v.spec,
      access: { ...v.spec.access, projectAllowlist: ['some-other-project'] },
    };
    const deploy = await inActivity().exec(
      t.activities.deployToVertex,
      deployInput({ ...v, spec: endpointSpec }),
    );
    const psc: PscInput = {
      spec: v.spec,
      ids: v.ids,
      serviceAttachment: deploy.resources.serviceAttachment!,
    };
    const address = await inActivity().exec(t.activities.reservePscAddress, psc);
    const connection = await inActivity().exec(t.activities.createPscForwardingRule, { ...psc, address });
    const failure = await failureOf(
      inActivity().exec(t.activities.waitForPscConnection, {
        ...psc,
        connection,
        deadline: Date.now() + 30_000,
      }),
    );
    expect(failure.type).toBe('PscConnectionRejected');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('REJECTED');
    expect(failure.message).toContain('The consumer project is listed, so check the endpoint’s PSC settings');
  });

  it('runs every smoke mode on the dedicated host and reports unmet expectations as results', async () => {
    const project = await freshProject('smoke');
    const spec = {
      ...publicSpec(project, t.modelUri, 'smoke-llama'),
      smoke: {
        tests: [
          { name: 'chat', prompt: 'Say hello', mode: 'chat', maxTokens: 8 },
          { name: 'stream', prompt: 'Say hello', mode: 'chat-stream', maxTokens: 8 },
          { name: 'predict', prompt: 'Say hello', mode: 'predict', maxTokens: 8 },
          { name: 'raw', prompt: 'Say hello', mode: 'stream-raw-predict', maxTokens: 8 },
          { name: 'regex', prompt: 'Say hello', mode: 'chat', maxTokens: 8, expect: { regex: '^PONG$' } },
        ],
      },
    } satisfies DeploymentSpecInput;
    const { v, resources } = await deployed(spec);
    const { results } = await inActivity().exec(t.activities.runSmokeTests, {
      endpoint: resources.endpoint!,
      target: { kind: 'dedicated', host: resources.dedicatedEndpointDns! },
      tests: v.spec.smoke.tests,
    });
    expect(results.map((r) => [r.name, r.passed])).toEqual([
      ['chat', true],
      ['stream', true],
      ['predict', true],
      ['raw', true],
      ['regex', false],
    ]);
    for (const r of results.slice(0, 4)) {
      expect(r.answerPreview!.split(' ')).toHaveLength(8);
      expect(r.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(results[0]).toMatchObject({ completionTokens: 8, promptTokens: expect.any(Number) });
    expect(results[1]).toMatchObject({ completionTokens: 8 });
    expect(results[4]!.failure).toBe('the answer does not match /^PONG$/');
    expect(results[4]!.answerPreview).toBe(results[0]!.answerPreview);
  });

  it('reports an answer slower than maxLatency as a failed result', async () => {
    const project = await freshProject('slow');
    const { resources } = await deployed(publicSpec(project, t.modelUri, 'slow-llama'));
    await t.admin.addFaultRules([{ route: 'inference.chatCompletions', project, action: 'latency:2000' }]);
    const { results } = await inActivity().exec(t.activities.runSmokeTests, {
      endpoint: resources.endpoint!,
      target: { kind: 'dedicated', host: resources.dedicatedEndpointDns! },
      tests: [
        {
          name: 'fast-enough',
          prompt: 'hi',
          mode: 'chat',
          maxTokens: 4,
          expect: { nonEmpty: true, ignoreCase: false, maxLatency: 300 },
        },
      ],
    });
    expect(results).toEqual([
      expect.objectContaining({
        name: 'fast-enough',
        passed: false,
        failure: 'no complete answer within maxLatency 300ms',
      }),
    ]);
  });
});
