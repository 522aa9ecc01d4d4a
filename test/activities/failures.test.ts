import { type ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { describe, expect, it } from 'vitest';
import { cleanupFailure, toActivityFailure } from '../../src/activities/failures';
import { GcpApiError, InvalidRequestError, errorFromOperation, errorFromResponse } from '../../src/gcp';
import { StorageAccessError } from '../../src/storage';
import { inActivity } from './env';

/** How activity failures look to the workflow: retryable or not, typed, with Google's words and the attempt. */

function mapped(err: unknown, attempt = 3): Promise<ApplicationFailure> {
  return inActivity({ attempt }).exec(
    async () => toActivityFailure(err, 'deploying x') as ApplicationFailure,
  );
}

const response = (httpStatus: number, body: unknown, retryAfterHeader?: string) =>
  errorFromResponse({
    call: 'POST https://us-central1-aiplatform.googleapis.com/v1beta1/projects/p/locations/us-central1:deploy',
    service: 'aiplatform.googleapis.com',
    httpStatus,
    body: Buffer.from(JSON.stringify(body)),
    ...(retryAfterHeader ? { retryAfterHeader } : {}),
  });

describe('activity failure mapping', () => {
  it('429 rate limit → retryable, next retry after Retry-After', async () => {
    const failure = await mapped(
      response(
        429,
        {
          error: {
            code: 429,
            status: 'RESOURCE_EXHAUSTED',
            message: 'Quota exceeded for requests per minute',
          },
        },
        '7',
      ),
    );
    expect(failure).toMatchObject({ nonRetryable: false, type: 'GcpTransientError', nextRetryDelay: 7_000 });
    expect(failure.message).toContain('Quota exceeded for requests per minute');
    expect(failure.details).toEqual([{ attempt: 3 }]);
  });

  it('503 → retryable without a fixed delay (the retry policy backs off)', async () => {
    const failure = await mapped(
      response(503, { error: { code: 503, status: 'UNAVAILABLE', message: 'down' } }),
    );
    expect(failure).toMatchObject({ nonRetryable: false, nextRetryDelay: undefined });
  });

  it('400 / 403 / 404 → GcpPermanentError with Google’s message and the hint', async () => {
    const invalid = await mapped(
      response(400, {
        error: {
          code: 400,
          status: 'INVALID_ARGUMENT',
          message: 'bad field',
          details: [
            {
              '@type': 'type.googleapis.com/google.rpc.BadRequest',
              fieldViolations: [{ field: 'deploy_config', description: 'nope' }],
            },
          ],
        },
      }),
    );
    expect(invalid).toMatchObject({ nonRetryable: true, type: 'GcpPermanentError' });
    expect(invalid.message).toMatch(
      /^deploying x: POST .*:deploy failed \(400 INVALID_ARGUMENT\): bad field — Fix the request fields: deploy_config: nope/,
    );
    const denied = await mapped(
      response(403, {
        error: {
          code: 403,
          status: 'PERMISSION_DENIED',
          message: "Permission 'aiplatform.endpoints.deploy' denied",
        },
      }),
    );
    expect(denied).toMatchObject({ nonRetryable: true, type: 'GcpPermanentError' });
    expect(denied.message).toContain('aiplatform.endpoints.deploy');
  });

  it('GPU quota exhausted → QuotaExhausted naming the quota to raise', async () => {
    const failure = await mapped(
      errorFromOperation(
        'projects/p/locations/us-central1/operations/1',
        {
          code: 8,
          message:
            'The following quota metrics exceed quota limits: aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus',
        },
        'aiplatform.googleapis.com',
      ),
    );
    expect(failure).toMatchObject({ nonRetryable: true, type: 'QuotaExhausted' });
    expect(failure.message).toMatch(
      /request an increase of quota metric aiplatform\.googleapis\.com\/custom_model_serving_nvidia_l4_gpus/,
    );
  });

  it('bad input to the client is permanent; storage outages and unknown errors retry; cancellation passes through', async () => {
    expect(
      await mapped(new InvalidRequestError('invalid deploy request: gcsUri: must be gs://')),
    ).toMatchObject({
      nonRetryable: true,
      type: 'GcpPermanentError',
    });
    expect(await mapped(new StorageAccessError('unavailable', 'GCS answered 503'))).toMatchObject({
      nonRetryable: false,
      type: 'StorageUnavailable',
    });
    expect(await mapped(new TypeError('boom'))).toMatchObject({ nonRetryable: false, type: 'TypeError' });
    const cancelled = new CancelledFailure('CANCELLED');
    expect(await inActivity().exec(async () => toActivityFailure(cancelled, 'x'))).toBe(cancelled);
  });

  it('compensations of 0.1 deployments never fail permanently and say what blocks them', async () => {
    const blocked = new GcpApiError({
      source: 'http',
      call: 'DELETE https://x/v1beta1/projects/p/locations/l/endpoints/e',
      status: 'FAILED_PRECONDITION',
      httpStatus: 400,
      googleMessage: 'Endpoint has deployed models',
      classification: 'permanent',
      hint: 'undeploy every deployed model first',
    });
    const failure = await inActivity({ attempt: 5 }).exec(
      async () => cleanupFailure(blocked, 'delete endpoint e', false) as ApplicationFailure,
    );
    expect(failure).toMatchObject({ nonRetryable: false, type: 'CleanupBlocked' });
    expect(failure.message).toMatch(
      /^cannot delete endpoint e yet, retrying until it succeeds: .*Endpoint has deployed models/,
    );
    expect(failure.details).toEqual([{ attempt: 5 }]);
  });

  it('budgeted compensations stop retrying on what only an operator can fix, and retry the rest', async () => {
    const error = (status: 'PERMISSION_DENIED' | 'UNAVAILABLE', httpStatus: number) =>
      new GcpApiError({
        source: 'http',
        call: 'DELETE https://compute/projects/c/regions/r/forwardingRules/fr',
        status,
        httpStatus,
        googleMessage: "Required 'compute.forwardingRules.delete' permission",
        classification: status === 'UNAVAILABLE' ? 'retryable' : 'permanent',
        hint: 'grant the permission',
      });
    const denied = await inActivity({ attempt: 1 }).exec(
      async () =>
        cleanupFailure(
          error('PERMISSION_DENIED', 403),
          'delete forwarding rule fr',
          true,
        ) as ApplicationFailure,
    );
    expect(denied).toMatchObject({ nonRetryable: true, type: 'CleanupBlocked' });
    expect(denied.message).toMatch(/^cannot delete forwarding rule fr: .*compute\.forwardingRules\.delete/);
    const flaky = await inActivity({ attempt: 2 }).exec(
      async () =>
        cleanupFailure(error('UNAVAILABLE', 503), 'delete forwarding rule fr', true) as ApplicationFailure,
    );
    expect(flaky).toMatchObject({ nonRetryable: false, type: 'CleanupBlocked' });
  });
});
