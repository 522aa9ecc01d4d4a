import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GcpApiError,
  canonicalCodeName,
  computeOperationError,
  createGcpClient,
  errorFromOperation,
  parseRetryAfterMs,
} from '../../src/gcp';
import { type TestServer, countingTokenSource, googleError, sendJson, startTestServer } from './test-server';

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';
const QUOTA_METRIC = 'aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

function gcp() {
  return createGcpClient(
    { vertexBaseUrl: server.url, computeBaseUrl: server.url },
    { tokenSource: countingTokenSource() },
  );
}

async function errorFor(
  httpStatus: number,
  body: unknown,
  headers: Record<string, string> = {},
  call: (c: ReturnType<typeof gcp>) => Promise<unknown> = (c) => c.vertex.getEndpoint(ENDPOINT),
): Promise<GcpApiError> {
  server.handler = (_req, res) => {
    if (typeof body !== 'string') return sendJson(res, httpStatus, body, headers);
    res.writeHead(httpStatus, { 'content-type': 'text/html', ...headers });
    res.end(body);
  };
  const err = await call(gcp()).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GcpApiError);
  return err as GcpApiError;
}

describe('synchronous error mapping (vertex-api.md §7)', () => {
  // [http, canonical, classification, hint fragment]
  const table: Array<[number, string, 'retryable' | 'permanent', RegExp]> = [
    [400, 'INVALID_ARGUMENT', 'permanent', /Fix the request/],
    [400, 'FAILED_PRECONDITION', 'permanent', /not in a state|Precondition/],
    [400, 'OUT_OF_RANGE', 'permanent', /Fix the request/],
    [403, 'PERMISSION_DENIED', 'permanent', /Grant the calling identity/],
    [404, 'NOT_FOUND', 'permanent', /Check the project, region and resource ID/],
    [409, 'ALREADY_EXISTS', 'permanent', /already exists: adopt it/],
    [409, 'ABORTED', 'retryable', /re-read the resource/],
    [429, 'RESOURCE_EXHAUSTED', 'retryable', /Rate limited/],
    [499, 'CANCELLED', 'permanent', /cancelled/],
    [500, 'UNKNOWN', 'retryable', /Transient/],
    [500, 'INTERNAL', 'retryable', /Transient/],
    [500, 'DATA_LOSS', 'retryable', /Transient/],
    [501, 'UNIMPLEMENTED', 'permanent', /not available/],
    [503, 'UNAVAILABLE', 'retryable', /Transient/],
    [504, 'DEADLINE_EXCEEDED', 'retryable', /timed out the call/],
  ];
  it.each(table)('%i %s → %s', async (httpStatus, status, classification, hint) => {
    const err = await errorFor(httpStatus, googleError(httpStatus, status, `server says ${status}`));
    expect(err).toMatchObject({ name: 'GcpApiError', source: 'http', httpStatus, status, classification });
    expect(err.retryable).toBe(classification === 'retryable');
    expect(err.googleMessage).toBe(`server says ${status}`);
    expect(err.hint).toMatch(hint);
    expect(err.message).toContain(`GET ${server.url}/v1beta1/${ENDPOINT}`);
    expect(err.message).toContain(`server says ${status}`);
  });

  it('401 (after the refresh) → permanent UNAUTHENTICATED', async () => {
    const err = await errorFor(401, googleError(401, 'UNAUTHENTICATED', 'bad token'));
    expect(err).toMatchObject({ status: 'UNAUTHENTICATED', classification: 'permanent' });
  });

  it('GPU quota on :deploy (sync 429 with QuotaFailure) is permanent and names the metric', async () => {
    const err = await errorFor(
      429,
      googleError(
        429,
        'RESOURCE_EXHAUSTED',
        `The following quota metrics exceed quota limits: ${QUOTA_METRIC}`,
        [
          {
            '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
            violations: [
              {
                subject: 'projects/123',
                quotaMetric: QUOTA_METRIC,
                quotaId: 'CustomModelServingL4GPUsPerProjectPerRegion',
              },
            ],
          },
        ],
      ),
      {},
      (c) =>
        c.vertex.deploy({
          project: 'my-project',
          location: 'us-central1',
          gcsUri: 'gs://bucket/model',
        }),
    );
    expect(err).toMatchObject({ status: 'RESOURCE_EXHAUSTED', classification: 'permanent' });
    expect(err.hint).toContain(QUOTA_METRIC);
    expect(err.hint).toContain('CustomModelServingL4GPUsPerProjectPerRegion');
    expect(err.hint).toContain('lower maxReplicaCount × acceleratorCount');
    expect(err.details.quotaViolations[0]?.quotaMetric).toBe(QUOTA_METRIC);
  });

  it('a synchronous Compute allocation quota is permanent, names the quota and says nothing of GPUs', async () => {
    const message = "Quota 'FORWARDING_RULES' exceeded. Limit: 15.0 in region us-central1.";
    const err = await errorFor(
      403,
      {
        error: { code: 403, message, errors: [{ domain: 'usageLimits', reason: 'quotaExceeded', message }] },
      },
      {},
      (c) =>
        c.compute.insertForwardingRule({
          project: 'consumer-project',
          region: 'us-central1',
          name: 'fr',
          target: 'projects/producer/regions/us-central1/serviceAttachments/sa',
          network: 'vpc',
          ipAddress: '10.0.0.5',
          requestId: '8f7f4c1e-0b5c-4a35-9a57-2f0f4c1e0b5c',
        }),
    );
    expect(err).toMatchObject({ status: 'RESOURCE_EXHAUSTED', classification: 'permanent' });
    expect(err.hint).toBe(
      'Quota exhausted: request an increase of quota FORWARDING_RULES (limit 15) for the project (and region) ' +
        'it applies to (Google Cloud console → IAM & Admin → Quotas), or delete unused resources it counts; ' +
        'retrying cannot succeed until there is room.',
    );
  });

  it('a non-GPU quota named only in ErrorInfo gets its metric and limit in the hint', async () => {
    const err = await errorFor(
      429,
      googleError(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded.', [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'QUOTA_EXCEEDED',
          domain: 'googleapis.com',
          metadata: {
            quota_metric: 'compute.googleapis.com/forwarding_rules',
            quota_limit: 'FORWARDING-RULES-per-project',
            quota_limit_value: '15',
          },
        },
        {
          '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
          violations: [{ subject: 'projects/123', quotaValue: '15' }],
        },
      ]),
    );
    expect(err.hint).toContain(
      'request an increase of quota metric compute.googleapis.com/forwarding_rules ' +
        '(quota ID FORWARDING-RULES-per-project, limit 15)',
    );
    expect(err.hint).not.toMatch(/GPU|accelerator|replica/i);
    expect(err.details.quotaViolations[0]?.quotaValue).toBe(15);
  });

  it('a serving CPU quota talks about replicas and machines, not accelerators', () => {
    const err = errorFromOperation(
      'projects/1/locations/us-central1/operations/7',
      {
        code: 8,
        message:
          'The following quota metrics exceed quota limits: aiplatform.googleapis.com/custom_model_serving_cpus',
      },
      'aiplatform.googleapis.com',
    );
    expect(err.hint).toContain('quota metric aiplatform.googleapis.com/custom_model_serving_cpus');
    expect(err.hint).toContain('lower maxReplicaCount or pick a smaller machine type');
    expect(err.hint).not.toMatch(/GPU|accelerator/i);
  });

  it('GPU stockout is permanent with a capacity hint', async () => {
    const err = await errorFor(
      429,
      googleError(
        429,
        'RESOURCE_EXHAUSTED',
        'The zone does not have enough resources available to fulfill the request.',
      ),
    );
    expect(err.classification).toBe('permanent');
    expect(err.hint).toMatch(/another region or machine type/);
  });

  it('Retry-After in seconds sets retryAfterMs', async () => {
    const err = await errorFor(429, googleError(429, 'RESOURCE_EXHAUSTED', 'Too many requests'), {
      'retry-after': '7',
    });
    expect(err.retryAfterMs).toBe(7000);
    expect(err.classification).toBe('retryable');
  });

  it('Retry-After as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfterMs('garbage', now)).toBeUndefined();
  });

  it('RetryInfo.retryDelay sets retryAfterMs when no header is sent', async () => {
    const err = await errorFor(
      503,
      googleError(503, 'UNAVAILABLE', 'try later', [
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '2.5s' },
      ]),
    );
    expect(err.retryAfterMs).toBe(2500);
  });

  it('a disabled API gets an "enable the API" hint with the project', async () => {
    const err = await errorFor(
      403,
      googleError(
        403,
        'PERMISSION_DENIED',
        'Vertex AI API has not been used in project 123 before or it is disabled.',
        [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'SERVICE_DISABLED',
            domain: 'googleapis.com',
            metadata: { service: 'aiplatform.googleapis.com', consumer: 'projects/123' },
          },
        ],
      ),
    );
    expect(err.hint).toBe(
      'Enable the API: gcloud services enable aiplatform.googleapis.com --project 123, then retry.',
    );
    expect(err.details.errorInfo?.reason).toBe('SERVICE_DISABLED');
  });

  it('a missing IAM permission names it', async () => {
    const err = await errorFor(
      403,
      googleError(403, 'PERMISSION_DENIED', "Permission 'aiplatform.endpoints.get' denied on resource"),
    );
    expect(err.hint).toContain('permission aiplatform.endpoints.get');
    expect(err.hint).toContain('roles/aiplatform.user');
  });

  it('a missing Compute permission names it too (Compute words it "Required \'x\' permission")', async () => {
    const message =
      "Required 'compute.forwardingRules.delete' permission for 'projects/consumer-project/regions/us-central1/forwardingRules/fr'";
    const err = await errorFor(
      403,
      { error: { code: 403, message, errors: [{ domain: 'global', reason: 'forbidden', message }] } },
      {},
      (c) =>
        c.compute.deleteForwardingRule({ project: 'consumer-project', region: 'us-central1', name: 'fr' }),
    );
    expect(err).toMatchObject({ status: 'PERMISSION_DENIED', classification: 'permanent' });
    expect(err.hint).toContain('permission compute.forwardingRules.delete');
    expect(err.hint).toContain('roles/compute.networkAdmin');
  });

  it('BadRequest field violations are parsed and named in the hint', async () => {
    const err = await errorFor(
      400,
      googleError(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
        {
          '@type': 'type.googleapis.com/google.rpc.BadRequest',
          fieldViolations: [
            { field: 'deploy_config.dedicated_resources.min_replica_count', description: 'must be >= 1' },
          ],
        },
      ]),
    );
    expect(err.details.fieldViolations).toEqual([
      { field: 'deploy_config.dedicated_resources.min_replica_count', description: 'must be >= 1' },
    ]);
    expect(err.hint).toContain('deploy_config.dedicated_resources.min_replica_count: must be >= 1');
  });

  it('deleting an endpoint that still has models tells the user to undeploy first', async () => {
    const err = await errorFor(
      400,
      googleError(400, 'FAILED_PRECONDITION', 'Endpoint has deployed models; undeploy them first.'),
    );
    expect(err.hint).toMatch(/undeploy every deployed model first/);
  });

  it('a bodyless proxy 502 maps by HTTP status and stays retryable', async () => {
    const err = await errorFor(502, '<html>Bad Gateway</html>');
    expect(err).toMatchObject({ status: 'UNAVAILABLE', httpStatus: 502, classification: 'retryable' });
    expect(err.googleMessage).toContain('Bad Gateway');
  });

  it("Compute's older envelope maps errors[].reason", async () => {
    const err = await errorFor(
      409,
      {
        error: {
          code: 409,
          message: "The resource 'projects/p/regions/us-central1/addresses/a' already exists",
          errors: [{ domain: 'global', reason: 'alreadyExists', message: 'already exists' }],
        },
      },
      {},
      (c) => c.compute.getAddress({ project: 'my-project', region: 'us-central1', name: 'a' }),
    );
    expect(err.status).toBe('ALREADY_EXISTS');
  });
});

describe('long-running operation errors', () => {
  it('maps numeric canonical codes', () => {
    expect(canonicalCodeName(3)).toBe('INVALID_ARGUMENT');
    expect(canonicalCodeName(8)).toBe('RESOURCE_EXHAUSTED');
    expect(canonicalCodeName(14)).toBe('UNAVAILABLE');
    expect(canonicalCodeName(16)).toBe('UNAUTHENTICATED');
    expect(canonicalCodeName(99)).toBe('UNKNOWN');
  });

  it('RESOURCE_EXHAUSTED in an operation is permanent with the quota metric from the message', () => {
    const err = errorFromOperation(
      'projects/1/locations/us-central1/operations/9',
      { code: 8, message: `Quota exceeded for ${QUOTA_METRIC}` },
      'aiplatform.googleapis.com',
    );
    expect(err).toMatchObject({
      source: 'operation',
      status: 'RESOURCE_EXHAUSTED',
      classification: 'permanent',
    });
    expect(err.httpStatus).toBeUndefined();
    expect(err.hint).toContain(QUOTA_METRIC);
    expect(err.message).toContain('operation projects/1/locations/us-central1/operations/9');
  });

  it('UNAVAILABLE in an operation is retryable, FAILED_PRECONDITION is not', () => {
    expect(errorFromOperation('projects/1/locations/l/operations/1', { code: 14 }, 'x').classification).toBe(
      'retryable',
    );
    expect(
      errorFromOperation('projects/1/locations/l/operations/1', { code: 9, message: 'bad state' }, 'x')
        .classification,
    ).toBe('permanent');
  });

  it('a model server that exited points at its own log lines, not at pending operations', () => {
    const err = errorFromOperation(
      'projects/1/locations/l/operations/1',
      {
        code: 9,
        message: 'Model server exited unexpectedly. Model server logs can be found at https://console…',
      },
      'x',
    );
    expect(err.hint).toMatch(/its own log lines say why/);
    expect(err.hint).not.toMatch(/pending operations/);
  });
});

describe('Compute operation errors', () => {
  it('status DONE with error.errors[] is a failure; DONE without is success; RUNNING is neither', () => {
    const failed = computeOperationError({
      name: 'operation-1',
      status: 'DONE',
      httpErrorStatusCode: 403,
      error: { errors: [{ code: 'QUOTA_EXCEEDED', message: "Quota 'INTERNAL_ADDRESSES' exceeded." }] },
    });
    expect(failed).toBeInstanceOf(GcpApiError);
    expect(failed).toMatchObject({
      source: 'compute-operation',
      status: 'RESOURCE_EXHAUSTED',
      httpStatus: 403,
      classification: 'permanent',
    });
    expect(failed?.googleMessage).toContain("QUOTA_EXCEEDED: Quota 'INTERNAL_ADDRESSES' exceeded.");
    expect(failed?.hint).toContain('request an increase of quota INTERNAL_ADDRESSES ');
    expect(failed?.hint).not.toMatch(/GPU|accelerator|replica/i);
    expect(computeOperationError({ name: 'operation-2', status: 'DONE' })).toBeUndefined();
    expect(
      computeOperationError({ name: 'operation-3', status: 'RUNNING', error: { errors: [{ code: 'X' }] } }),
    ).toBeUndefined();
  });

  it("names the quota from Compute's errorDetails[].quotaInfo", () => {
    const err = computeOperationError({
      name: 'operation-5',
      status: 'DONE',
      httpErrorStatusCode: 403,
      error: {
        errors: [
          {
            code: 'QUOTA_EXCEEDED',
            message: "Quota 'FORWARDING_RULES' exceeded. Limit: 15.0 in region us-central1.",
            errorDetails: [
              {
                quotaInfo: {
                  metricName: 'compute.googleapis.com/forwarding_rules',
                  limitName: 'FORWARDING-RULES-per-project-region',
                  dimensions: { region: 'us-central1' },
                  limit: 15,
                },
              },
            ],
          },
        ],
      },
    });
    expect(err).toMatchObject({ status: 'RESOURCE_EXHAUSTED', classification: 'permanent' });
    expect(err?.details.quotaViolations).toEqual([
      {
        quotaMetric: 'compute.googleapis.com/forwarding_rules',
        quotaId: 'FORWARDING-RULES-per-project-region',
        quotaDimensions: { region: 'us-central1' },
        quotaValue: 15,
      },
    ]);
    expect(err?.hint).toContain(
      'request an increase of quota metric compute.googleapis.com/forwarding_rules ' +
        '(quota ID FORWARDING-RULES-per-project-region, limit 15)',
    );
    expect(err?.hint).not.toMatch(/GPU|accelerator|replica/i);
  });

  it('maps an unknown code by httpErrorStatusCode', () => {
    const err = computeOperationError({
      name: 'operation-4',
      status: 'DONE',
      httpErrorStatusCode: 503,
      error: { errors: [{ code: 'SOMETHING_NEW', message: 'hiccup' }] },
    });
    expect(err).toMatchObject({ status: 'UNAVAILABLE', classification: 'retryable' });
  });
});
