import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createGcpClient,
  containerLogLines,
  readServingQuota,
  InvalidRequestError,
  SERVING_GPU_QUOTAS,
  servingQuotaOf,
  type GcpClient,
} from '../../src/gcp';
import { type TestServer, countingTokenSource, googleError, sendJson, startTestServer } from './test-server';

let server: TestServer;
let gcp: GcpClient;

beforeEach(async () => {
  server = await startTestServer();
  gcp = createGcpClient(
    { cloudQuotasBaseUrl: server.url, monitoringBaseUrl: server.url, loggingBaseUrl: server.url },
    { tokenSource: countingTokenSource() },
  );
});
afterEach(() => server.close());

const L4 = SERVING_GPU_QUOTAS.NVIDIA_L4!;

describe('readServingQuota: the serving GPU quota as gcloud reads it', () => {
  it('takes the region’s limit from Cloud Quotas and the newest usage point from Monitoring', async () => {
    server.handler = (req, res) => {
      if (req.url.startsWith('/v1/'))
        return sendJson(res, 200, {
          quotaId: L4.quotaId,
          metric: L4.metric,
          dimensionsInfos: [
            {
              dimensions: { region: 'europe-west4' },
              details: { value: '16' },
              applicableLocations: ['europe-west4'],
            },
            {
              dimensions: { region: 'us-central1' },
              details: { value: '2' },
              applicableLocations: ['us-central1'],
            },
            { dimensions: {}, details: { value: '8' } },
          ],
        });
      sendJson(res, 200, {
        timeSeries: [
          {
            metric: {
              type: 'serviceruntime.googleapis.com/quota/allocation/usage',
              labels: { quota_metric: L4.metric },
            },
            resource: { type: 'consumer_quota', labels: { project_id: 'tenant-project' } },
            points: [
              { interval: { endTime: '2026-12-07T10:01:00Z' }, value: { int64Value: '1' } },
              { interval: { endTime: '2026-12-07T10:00:00Z' }, value: { int64Value: '2' } },
            ],
          },
        ],
      });
    };
    const reading = await readServingQuota(
      { quotas: gcp.quotas, monitoring: gcp.monitoring },
      { project: 'tenant-project', region: 'us-central1', acceleratorType: 'NVIDIA_L4' },
    );
    expect(reading).toEqual({ quota: L4, limit: 2, usage: 1 });
    const quotaCall = server.requests.find((r) => r.url.startsWith('/v1/'))!;
    expect(quotaCall.method).toBe('GET');
    expect(quotaCall.url).toBe(
      `/v1/projects/tenant-project/locations/global/services/aiplatform.googleapis.com/quotaInfos/${L4.quotaId}`,
    );
    expect(quotaCall.headers.authorization).toMatch(/^Bearer /);
    const usageCall = new URL(server.requests.find((r) => r.url.startsWith('/v3/'))!.url, server.url);
    expect(usageCall.pathname).toBe('/v3/projects/tenant-project/timeSeries');
    const filter = usageCall.searchParams.get('filter')!;
    expect(filter).toContain('metric.type="serviceruntime.googleapis.com/quota/allocation/usage"');
    expect(filter).toContain(`metric.label.quota_metric="${L4.metric}"`);
    expect(filter).toContain('resource.label.location="us-central1"');
    expect(usageCall.searchParams.get('aggregation.perSeriesAligner')).toBe('ALIGN_NEXT_OLDER');
  });

  it('a region without its own entry gets the default limit; no usage series is 0 used', async () => {
    server.handler = (req, res) =>
      req.url.startsWith('/v1/')
        ? sendJson(res, 200, { dimensionsInfos: [{ dimensions: {}, details: { value: 4 } }] })
        : sendJson(res, 200, {});
    const reading = await readServingQuota(
      { quotas: gcp.quotas, monitoring: gcp.monitoring },
      { project: 'tenant-project', region: 'asia-east1', acceleratorType: 'NVIDIA_L4' },
    );
    expect(reading).toMatchObject({ limit: 4, usage: 0 });
  });

  it('spot VMs are charged to the preemptible quota (assumed metric name, marked unconfirmed)', () => {
    expect(servingQuotaOf('NVIDIA_L4', { spot: true })).toEqual({
      quotaId: 'CustomModelServingPreemptibleL4GPUsPerProjectPerRegion',
      metric: 'aiplatform.googleapis.com/custom_model_serving_preemptible_nvidia_l4_gpus',
      unconfirmed: true,
    });
    expect(servingQuotaOf('NVIDIA_L4')).toBe(L4);
    expect(servingQuotaOf('NVIDIA_TESLA_K80')).toBeUndefined();
  });

  it('a denied read is an error naming the service and status', async () => {
    server.handler = (_req, res) =>
      sendJson(res, 403, googleError(403, 'PERMISSION_DENIED', 'Permission cloudquotas.quotas.get denied'));
    await expect(
      readServingQuota(
        { quotas: gcp.quotas, monitoring: gcp.monitoring },
        { project: 'tenant-project', region: 'us-central1', acceleratorType: 'NVIDIA_L4' },
      ),
    ).rejects.toMatchObject({ status: 'PERMISSION_DENIED' });
  });
});

describe('containerLogLines: what the serving container wrote', () => {
  it('reads the endpoint’s prediction_container log newest first across pages, returns it oldest first', async () => {
    const pages = [
      { entries: [], nextPageToken: 'searching' },
      {
        entries: [
          {
            timestamp: '2026-12-07T10:00:03Z',
            severity: 'ERROR',
            jsonPayload: { message: 'CUDA out of memory' },
          },
          { timestamp: '2026-12-07T10:00:02Z', textPayload: 'Loading weights' },
        ],
      },
    ];
    server.handler = (_req, res) => sendJson(res, 200, pages.shift());
    const lines = await containerLogLines(gcp.logging, {
      project: 'tenant-project',
      region: 'us-central1',
      endpointId: '1234567890',
      deployedModelId: 'gd-r1',
      since: new Date('2026-12-07T09:59:00Z'),
    });
    expect(lines.map((l) => l.message)).toEqual(['Loading weights', 'CUDA out of memory']);
    expect(lines[1]).toMatchObject({ severity: 'ERROR' });
    expect(server.requests).toHaveLength(2);
    const first = JSON.parse(server.requests[0]!.body.toString());
    expect(server.requests[0]!.url).toBe('/v2/entries:list');
    expect(first).toMatchObject({ resourceNames: ['projects/tenant-project'], orderBy: 'timestamp desc' });
    expect(first.filter).toContain(
      'logName="projects/tenant-project/logs/aiplatform.googleapis.com%2Fprediction_container"',
    );
    expect(first.filter).toContain('resource.labels.endpoint_id="1234567890"');
    expect(first.filter).toContain('labels.deployed_model_id="gd-r1"');
    expect(first.filter).toContain('timestamp>="2026-12-07T09:59:00.000Z"');
    expect(JSON.parse(server.requests[1]!.body.toString()).pageToken).toBe('searching');
  });

  it('refuses an id that could change the filter, before any request', async () => {
    await expect(
      containerLogLines(gcp.logging, {
        project: 'tenant-project',
        region: 'us-central1',
        endpointId: '1" OR logName:"x',
        since: new Date(),
      }),
    ).rejects.toBeInstanceOf(InvalidRequestError);
    expect(server.requests).toHaveLength(0);
  });
});
