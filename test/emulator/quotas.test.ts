import { describe, expect, it } from 'vitest';
import { DEFAULT_GPU_QUOTA, SERVING_QUOTAS, projectNumberFor } from '../../src/emulator';
import {
  L4_MACHINE,
  deployBody,
  deployReady,
  expectValidProto,
  uniqueProject,
  useTestEmulator,
  waitForOperation,
} from './helpers';

/** Serving GPU quota: its limit (Cloud Quotas), its usage (Monitoring), and deployments refused for it. */

const QUOTAS = 'google.api.cloudquotas.v1';
const SERVICE = 'aiplatform.googleapis.com';
const L4_QUOTA = 'CustomModelServingL4GPUsPerProjectPerRegion';
const L4_METRIC = 'aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus';

const t = useTestEmulator({ model: { family: 'llama', shards: 1 } });

const quotaInfo = (project: string, id = L4_QUOTA, service = SERVICE) =>
  t.api.get(`/v1/projects/${project}/locations/global/services/${service}/quotaInfos/${id}`);

/** gcloud's usage query (lifecycle-apis.md §4.2), verbatim. */
async function gcloudUsage(project: string, region: string, metric = L4_METRIC) {
  const now = Date.now();
  const query = new URLSearchParams({
    filter:
      `metric.type="serviceruntime.googleapis.com/quota/allocation/usage" AND resource.type="consumer_quota" AND ` +
      `metric.label.quota_metric="${metric}" AND resource.label.project_id="${project}" AND ` +
      `resource.label.location="${region}" AND resource.label.service="aiplatform.googleapis.com"`,
    'aggregation.alignmentPeriod': '60s',
    'aggregation.perSeriesAligner': 'ALIGN_NEXT_OLDER',
    view: 'FULL',
    'interval.startTime': new Date(now - 25 * 3600_000).toISOString(),
    'interval.endTime': new Date(now).toISOString(),
  });
  const res = await t.api.get(`/v3/projects/${project}/timeSeries?${query}`);
  expect(res.status, res.text).toBe(200);
  expectValidProto('google.monitoring.v3.ListTimeSeriesResponse', res.json);
  return res.json;
}

/** What gcloud reads: the newest point of the first series, 0 without one. */
const usageOf = (body: { timeSeries?: { points: { value: { int64Value: string } }[] }[] }) =>
  Number(body.timeSeries?.[0]?.points[0]?.value.int64Value ?? 0);

describe('the admin API', () => {
  it('sets limits and extra usage per region, merging, and reports them with what deployments charge', async () => {
    const project = uniqueProject('quota-admin');
    const initial = await t.admin.quota(project, 'us-central1');
    expect(initial.limits.NVIDIA_L4).toBe(DEFAULT_GPU_QUOTA);
    expect(initial.usage.NVIDIA_L4).toBe(0);
    await t.admin.setQuota(project, {
      region: 'us-central1',
      limits: { NVIDIA_L4: 6 },
      usage: { NVIDIA_L4: 1 },
    });
    const merged = await t.admin.setQuota(project, { region: 'us-central1', limits: { NVIDIA_TESLA_T4: 2 } });
    expect(merged).toMatchObject({
      region: 'us-central1',
      limits: { NVIDIA_L4: 6, NVIDIA_TESLA_T4: 2, NVIDIA_H100_80GB: DEFAULT_GPU_QUOTA },
      usage: { NVIDIA_L4: 1, NVIDIA_TESLA_T4: 0 },
    });
    // A deployment of 2 replicas × 1 L4 charges 2 GPUs on top of the extra 1.
    await deployReady(t.api, project, t.model, { endpoint: 'charged', model: 'charged' });
    expect((await t.admin.quota(project, 'us-central1')).usage.NVIDIA_L4).toBe(3);
    expect((await t.admin.quota(project, 'europe-west4')).limits.NVIDIA_L4).toBe(DEFAULT_GPU_QUOTA);
    await expect(
      t.admin.setQuota(project, { region: 'us-central1', limits: { NVIDIA_L5: 1 } as never }),
    ).rejects.toThrow(/invalid quota/);
    await t.admin.reset(project);
    expect((await t.admin.quota(project, 'us-central1')).limits.NVIDIA_L4).toBe(DEFAULT_GPU_QUOTA);
  });
});

describe('Cloud Quotas quotaInfos', () => {
  it('serves each serving GPU quota as gcloud reads it: one entry per region with its limit', async () => {
    const project = uniqueProject('quota-info');
    await t.admin.setQuota(project, { region: 'europe-west4', limits: { NVIDIA_L4: 8 } });
    const res = await quotaInfo(project);
    expect(res.status, res.text).toBe(200);
    expectValidProto(`${QUOTAS}.QuotaInfo`, res.json);
    expect(res.json).toEqual({
      name: `projects/${projectNumberFor(project)}/locations/global/services/${SERVICE}/quotaInfos/${L4_QUOTA}`,
      quotaId: L4_QUOTA,
      metric: L4_METRIC,
      service: SERVICE,
      isPrecise: true,
      containerType: 'PROJECT',
      dimensions: ['region'],
      metricDisplayName: 'Custom model serving Nvidia L4 GPUs',
      quotaDisplayName: 'Custom model serving Nvidia L4 GPUs per region',
      metricUnit: '1',
      quotaIncreaseEligibility: { isEligible: true },
      dimensionsInfos: [
        {
          dimensions: { region: 'europe-west4' },
          details: { value: '8' },
          applicableLocations: ['europe-west4'],
        },
        {
          dimensions: { region: 'us-central1' },
          details: { value: '16' },
          applicableLocations: ['us-central1'],
        },
      ],
    });
    // A region it deploys in gets its entry too.
    const start = await t.api.post(
      `/v1beta1/projects/${project}/locations/asia-east1:deploy`,
      deployBody(t.model),
    );
    await waitForOperation(t.api, start.json.name);
    const regions = (await quotaInfo(project)).json.dimensionsInfos.map(
      (d: { applicableLocations: string[] }) => d.applicableLocations[0],
    );
    expect(regions).toEqual(['asia-east1', 'europe-west4', 'us-central1']);

    const ids: string[] = [];
    let pageToken = '';
    do {
      const page = await t.api.get(
        `/v1/projects/${project}/locations/global/services/${SERVICE}/quotaInfos?pageSize=5${pageToken ? `&pageToken=${pageToken}` : ''}`,
      );
      expect(page.status, page.text).toBe(200);
      expectValidProto(`${QUOTAS}.ListQuotaInfosResponse`, page.json);
      ids.push(...page.json.quotaInfos.map((q: { quotaId: string }) => q.quotaId));
      pageToken = page.json.nextPageToken ?? '';
    } while (pageToken);
    expect(ids.sort()).toEqual(
      Object.values(SERVING_QUOTAS)
        .map((q) => q.quotaId)
        .sort(),
    );
    expect(ids).toContain('CustomModelServingH100GPUsPerProjectPerRegion');
    expect((await t.admin.stats(project)).calls['cloudquotas.quotaInfos.get']).toBe(2);
  });

  it('refuses another service, location or quota id, and a 403 rule on cloudquotas.* denies it', async () => {
    const project = uniqueProject('quota-refused');
    const otherService = await quotaInfo(project, L4_QUOTA, 'compute.googleapis.com');
    expect(otherService.status).toBe(404);
    expect(otherService.json.error.status).toBe('NOT_FOUND');
    const unknown = await quotaInfo(project, 'CustomModelServingL5GPUsPerProjectPerRegion');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.message).toContain(L4_QUOTA);
    const regional = await t.api.get(
      `/v1/projects/${project}/locations/us-central1/services/${SERVICE}/quotaInfos/${L4_QUOTA}`,
    );
    expect(regional.status).toBe(400);
    expect(regional.json.error.message).toContain('must be "global"');
    const unknownParameter = await t.api.get(
      `/v1/projects/${project}/locations/global/services/${SERVICE}/quotaInfos/${L4_QUOTA}?view=FULL`,
    );
    expect(unknownParameter.status).toBe(400);
    expect(unknownParameter.json.error.message).toContain('Unknown name "view"');

    await t.admin.addFaultRules([{ route: 'cloudquotas.*', project, action: '403' }]);
    const denied = await quotaInfo(project);
    expect(denied.status).toBe(403);
    expect(denied.json.error).toMatchObject({
      status: 'PERMISSION_DENIED',
      details: [
        {
          reason: 'IAM_PERMISSION_DENIED',
          domain: 'cloudquotas.googleapis.com',
          metadata: { permission: 'cloudquotas.quotas.get' },
        },
      ],
    });
    expect((await quotaInfo(project, L4_QUOTA)).status).toBe(403);
    expect(
      (
        await t.api.get(
          `/v1/projects/${project}/locations/global/services/${SERVICE}/quotaInfos/${L4_QUOTA}`,
          { auth: false },
        )
      ).status,
    ).toBe(401);
  });
});

describe('usage and the limit', () => {
  it("answers gcloud's usage query with what is deployed plus the extra usage, newest point first", async () => {
    const project = uniqueProject('quota-usage');
    expect(usageOf(await gcloudUsage(project, 'us-central1'))).toBe(0);
    await deployReady(t.api, project, t.model, { endpoint: 'u1', model: 'u1' });
    const body = await gcloudUsage(project, 'us-central1');
    expect(body.timeSeries).toHaveLength(1);
    const [series] = body.timeSeries;
    expect(series).toMatchObject({
      metric: {
        type: 'serviceruntime.googleapis.com/quota/allocation/usage',
        labels: { quota_metric: L4_METRIC },
      },
      resource: {
        type: 'consumer_quota',
        labels: { project_id: project, location: 'us-central1', service: SERVICE },
      },
      metricKind: 'GAUGE',
      valueType: 'INT64',
    });
    expect(usageOf(body)).toBe(2);
    const ends = series.points.map((p: { interval: { endTime: string } }) => Date.parse(p.interval.endTime));
    expect(ends).toEqual([...ends].sort((a, b) => b - a));
    expect(series.points[0].interval.startTime).toBe(series.points[0].interval.endTime);

    await t.admin.setQuota(project, { region: 'us-central1', usage: { NVIDIA_L4: 5 } });
    expect(usageOf(await gcloudUsage(project, 'us-central1'))).toBe(7);
    // Other regions and metrics have no series, as for a project that never used them.
    expect(await gcloudUsage(project, 'europe-west4')).toEqual({});
    expect(
      await gcloudUsage(
        project,
        'us-central1',
        'aiplatform.googleapis.com/custom_model_serving_nvidia_t4_gpus',
      ),
    ).toEqual({});

    const interpolated = await t.api.get(
      `/v3/projects/${project}/timeSeries?${new URLSearchParams({
        filter: 'metric.type="serviceruntime.googleapis.com/quota/allocation/usage"',
        'aggregation.alignmentPeriod': '60s',
        'aggregation.perSeriesAligner': 'ALIGN_INTERPOLATE',
        'interval.startTime': new Date(Date.now() - 3600_000).toISOString(),
        'interval.endTime': new Date().toISOString(),
      })}`,
    );
    expect(interpolated.status, interpolated.text).toBe(200);
    expect(usageOf(interpolated.json)).toBe(7);
    const delta = await t.api.get(
      `/v3/projects/${project}/timeSeries?${new URLSearchParams({
        filter: 'metric.type="serviceruntime.googleapis.com/quota/allocation/usage"',
        'aggregation.alignmentPeriod': '60s',
        'aggregation.perSeriesAligner': 'ALIGN_DELTA',
        'interval.endTime': new Date().toISOString(),
      })}`,
    );
    expect(delta.status).toBe(400);
    expect(delta.json.error.message).toContain('not valid for a GAUGE INT64 metric');
  });

  it('accepts a deploy beyond the limit, then fails its operation RESOURCE_EXHAUSTED on the same metric', async () => {
    const project = uniqueProject('quota-limit');
    await t.admin.setQuota(project, { region: 'us-central1', limits: { NVIDIA_L4: 3 } });
    await deployReady(t.api, project, t.model, { endpoint: 'fits', model: 'fits' });
    const start = await t.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(t.model, { endpoint: 'over', model: 'over' }),
    );
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expectValidProto('google.longrunning.Operation', op);
    expect(op.error).toMatchObject({
      code: 8,
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'RESOURCE_EXHAUSTED',
          metadata: { quota_metric: L4_METRIC, location: 'us-central1' },
        },
      ],
    });
    expect(op.error.message).toContain(L4_METRIC);
    const quota = (await quotaInfo(project)).json;
    expect(quota.metric).toBe(op.error.details[0].metadata.quota_metric);
    // The refused deployment charges nothing.
    expect((await t.admin.quota(project, 'us-central1')).usage.NVIDIA_L4).toBe(2);
    const over = (await t.admin.resources(project)).endpoints.find((e) => e.name.endsWith('/over'));
    expect(over?.deployedModels).toBeUndefined();

    // endpoints.deployModel is charged the same way: 1 more L4 fits, 2 do not.
    const endpoint = `projects/${projectNumberFor(project)}/locations/us-central1/endpoints/fits`;
    const fits = (await t.api.get(`/v1beta1/${endpoint}`)).json;
    const deployModel = (max: number) =>
      t.api.post(`/v1beta1/${endpoint}:deployModel`, {
        deployedModel: {
          model: fits.deployedModels[0].model,
          dedicatedResources: { machineSpec: L4_MACHINE, minReplicaCount: 1, maxReplicaCount: max },
        },
      });
    const refused = await waitForOperation(t.api, (await deployModel(2)).json.name);
    expect(refused.error).toMatchObject({ code: 8 });
    const accepted = await waitForOperation(t.api, (await deployModel(1)).json.name);
    expect(accepted.error).toBeUndefined();
    expect((await t.admin.quota(project, 'us-central1')).usage.NVIDIA_L4).toBe(3);
  });

  it('charges spot VMs to the preemptible quota of their accelerator', async () => {
    const project = uniqueProject('quota-spot');
    const preemptible = 'aiplatform.googleapis.com/custom_model_serving_preemptible_nvidia_l4_gpus';
    await t.admin.setQuota(project, { region: 'us-central1', spot: { limits: { NVIDIA_L4: 2 } } });
    const spot = async (max: number) => {
      const start = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, {
        customModel: { gcsUri: t.model },
        deployConfig: {
          dedicatedResources: {
            machineSpec: L4_MACHINE,
            minReplicaCount: 1,
            maxReplicaCount: max,
            spot: true,
          },
        },
      });
      expect(start.status, start.text).toBe(200);
      return waitForOperation(t.api, start.json.name);
    };
    expect((await spot(2)).error).toBeUndefined();
    const view = await t.admin.quota(project, 'us-central1');
    expect(view.spot).toMatchObject({ limits: { NVIDIA_L4: 2 }, usage: { NVIDIA_L4: 2 } });
    expect(view.usage.NVIDIA_L4).toBe(0);
    const info = await quotaInfo(project, 'CustomModelServingPreemptibleL4GPUsPerProjectPerRegion');
    expectValidProto(`${QUOTAS}.QuotaInfo`, info.json);
    expect(info.json).toMatchObject({
      metric: preemptible,
      quotaDisplayName: 'Custom model serving preemptible Nvidia L4 GPUs per region',
      dimensionsInfos: [{ dimensions: { region: 'us-central1' }, details: { value: '2' } }],
    });
    expect(usageOf(await gcloudUsage(project, 'us-central1', preemptible))).toBe(2);
    expect(usageOf(await gcloudUsage(project, 'us-central1'))).toBe(0);
    const over = await spot(1);
    expect(over.error).toMatchObject({ code: 8, details: [{ metadata: { quota_metric: preemptible } }] });
    // On-demand L4s have a quota of their own.
    await deployReady(t.api, project, t.model, { endpoint: 'on-demand', model: 'on-demand' });
  });

  it('charges running deployments, multi-host replicas and other accelerators by their own quota', async () => {
    const project = uniqueProject('quota-charge');
    await t.admin.setTiming(project, { deployMs: 60_000 });
    const start = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, {
      customModel: { gcsUri: t.model },
      deployConfig: {
        dedicatedResources: {
          machineSpec: {
            machineType: 'a3-highgpu-8g',
            acceleratorType: 'NVIDIA_H100_80GB',
            acceleratorCount: 8,
            multihostGpuNodeCount: 2,
          },
          minReplicaCount: 1,
        },
      },
    });
    expect(start.status, start.text).toBe(200);
    // While it runs it is charged: 1 replica × 8 GPUs × 2 hosts, the whole default limit.
    const running = await t.admin.quota(project, 'us-central1');
    expect(running.usage).toMatchObject({ NVIDIA_H100_80GB: 16, NVIDIA_L4: 0 });
    expect(
      usageOf(
        await gcloudUsage(
          project,
          'us-central1',
          'aiplatform.googleapis.com/custom_model_serving_nvidia_h100_gpus',
        ),
      ),
    ).toBe(16);
    await t.api.post(`/v1beta1/${start.json.name}:cancel`);
    expect((await t.admin.quota(project, 'us-central1')).usage.NVIDIA_H100_80GB).toBe(0);
  });
});
