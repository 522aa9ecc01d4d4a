import { ApplicationFailure } from '@temporalio/activity';
import { describe, expect, it } from 'vitest';
import type { ActivityFailureDetails } from '../../src/activities/contract';
import type { DeploymentSpecInput } from '../../src/spec';
import { inActivity, publicSpec, uploadModel, useSampleModel } from './env';

/** The validate step: the spec and the weights are checked before anything billable exists. */

const t = useSampleModel();

async function failureOf(spec: unknown): Promise<ApplicationFailure> {
  const err = await inActivity()
    .exec(t.activities.validateWeights, spec as DeploymentSpecInput)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('validateWeights', () => {
  it('resolves machine: auto to the recommendation and derives the ids', async () => {
    const heartbeats: unknown[] = [];
    const env = inActivity();
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const result = await env.exec(t.activities.validateWeights, {
      ...publicSpec('my-project-1', t.modelUri, 'llama-ft'),
      machine: 'auto',
    });
    expect(result.attempt).toBe(1);
    expect(result.spec.machine).toEqual({
      type: 'g2-standard-12',
      acceleratorType: 'NVIDIA_L4',
      acceleratorCount: 1,
    });
    expect(result.ids).toMatchObject({
      workflowId: 'deploy/my-project-1/us-central1/llama-ft',
      endpointId: 'llama-ft',
    });
    expect(result.validation).toMatchObject({ ok: true, errors: 0, family: 'llama' });
    expect(result.validation.recommendedMachine).toEqual(result.spec.machine);
    expect(heartbeats).toContainEqual(expect.objectContaining({ phase: 'weights' }));
  });

  it('fails broken weights at once with what to fix and the summary in the details', async () => {
    const broken = await uploadModel({ variant: 'missing-tokenizer' });
    const failure = await failureOf(publicSpec('my-project-1', broken));
    expect(failure.type).toBe('WeightValidationFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/failed validation with \d+ error\(s\); nothing was deployed/);
    expect(failure.message).toContain('tokenizer.missing');
    const details = failure.details?.[0] as ActivityFailureDetails;
    expect(details.attempt).toBe(1);
    expect(details.validation).toMatchObject({ ok: false });
    expect(details.validation!.errors).toBeGreaterThan(0);
    expect(details.validation!.highlights.length).toBeLessThanOrEqual(5);
    expect(details.validation!.highlights[0]).toMatch(/^tokenizer\.missing/);
  });

  it('requires a chat template when a chat smoke test is configured, unless the spec says otherwise', async () => {
    const noChat = await uploadModel({ variant: 'no-chat-template' });
    const failure = await failureOf(publicSpec('my-project-1', noChat));
    expect(failure.message).toContain('tokenizer.chat-template-missing');
    const predictOnly = await inActivity().exec(t.activities.validateWeights, {
      ...publicSpec('my-project-1', noChat),
      smoke: { tests: [{ prompt: 'hi', mode: 'predict' }] },
    });
    expect(predictOnly.validation.ok).toBe(true);
    const optedOut = await inActivity().exec(t.activities.validateWeights, {
      ...publicSpec('my-project-1', noChat),
      validation: { requireChat: false },
    });
    expect(optedOut.validation.ok).toBe(true);
  });

  it('checks the machine the user chose', async () => {
    const failure = await failureOf({
      ...publicSpec('my-project-1', t.modelUri),
      machine: { type: 'g2-standard-24', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
    });
    expect(failure.type).toBe('WeightValidationFailed');
    expect(failure.message).toContain('machine.unknown');
  });

  it('fails an unreadable location without retrying', async () => {
    const failure = await failureOf(publicSpec('my-project-1', 'gs://no-such-bucket-for-garden/model/'));
    expect(failure.type).toBe('WeightValidationFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/cannot read the model at gs:\/\/no-such-bucket-for-garden\/model\//);
    expect(failure.message).toContain('location.not-found');
  });

  it('rejects an invalid spec listing every bad field', async () => {
    const failure = await failureOf({
      ...publicSpec('my-project-1', t.modelUri),
      name: 'Bad Name',
      replicas: { min: 0 },
      surprise: true,
    });
    expect(failure.type).toBe('InvalidDeploymentSpec');
    expect(failure.nonRetryable).toBe(true);
    for (const field of ['name:', 'replicas.min:', 'unknown field(s) "surprise"'])
      expect(failure.message).toContain(field);
    expect(failure.details).toEqual([{ attempt: 1 }]);
  });
});
