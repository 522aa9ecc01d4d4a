import { z } from 'zod';
import type { RawSeries } from './aggregation';
import type { EmulatorCore } from './core';
import { ApiError, type RpcStatus, badRequest } from './errors';
import { type RequestContext, type Route, managementRoute, sendJson } from './http';
import { checkQuery } from './query';
import type { RegionQuota, VertexOperationRecord } from './state';
import { paginate } from './paging';

/**
 * Serving GPU quota, per project and region: a limit per quota (one per accelerator, and a
 * preemptible one per accelerator that spot VMs are charged to; default 16, or what the admin API
 * set) and a usage, charged by what is deployed or being deployed there plus an extra usage the
 * admin API sets. It is read the way gcloud's Model Garden quota check reads it (lifecycle-apis.md
 * §4): the limit from Cloud Quotas v1 `quotaInfos`, the usage from Monitoring's
 * `serviceruntime.googleapis.com/quota/allocation/usage` (monitoring.ts), and a deployment that would
 * exceed it fails RESOURCE_EXHAUSTED after being accepted, as Vertex's does.
 */

const AIPLATFORM_SERVICE = 'aiplatform.googleapis.com';
export const DEFAULT_GPU_QUOTA = 16;
/** Always among a project's QuotaInfo regions (gcloud's default region). */
const HOME_REGION = 'us-central1';
const CLOUDQUOTAS = 'google.api.cloudquotas.v1';

interface ServingQuota {
  quotaId: string;
  metric: string;
  /** For display names: `Nvidia L4`. */
  label: string;
}

const quota = (id: string, metric: string, label: string): ServingQuota => ({
  quotaId: `CustomModelServing${id}PerProjectPerRegion`,
  metric: `${AIPLATFORM_SERVICE}/custom_model_serving_${metric}`,
  label,
});

/**
 * gcloud's accelerator → quota id and metric maps (lifecycle-apis.md §4.2); the H100 Mega, H200,
 * B200 and GB200 ids are vertex-api.md's, their metrics assumed by analogy (README).
 */
const ON_DEMAND: Readonly<Record<string, ServingQuota>> = {
  NVIDIA_TESLA_P4: quota('P4GPUs', 'nvidia_p4_gpus', 'Nvidia P4'),
  NVIDIA_TESLA_T4: quota('T4GPUs', 'nvidia_t4_gpus', 'Nvidia T4'),
  NVIDIA_TESLA_V100: quota('V100GPUs', 'nvidia_v100_gpus', 'Nvidia V100'),
  NVIDIA_TESLA_P100: quota('P100GPUs', 'nvidia_p100_gpus', 'Nvidia P100'),
  NVIDIA_L4: quota('L4GPUs', 'nvidia_l4_gpus', 'Nvidia L4'),
  NVIDIA_TESLA_A100: quota('A100GPUs', 'nvidia_a100_gpus', 'Nvidia A100'),
  NVIDIA_A100_80GB: quota('A10080GBGPUs', 'nvidia_a100_80gb_gpus', 'Nvidia A100 80GB'),
  NVIDIA_H100_80GB: quota('H100GPUs', 'nvidia_h100_gpus', 'Nvidia H100'),
  NVIDIA_H100_MEGA_80GB: quota('H100MEGAGPUs', 'nvidia_h100_mega_gpus', 'Nvidia H100 Mega'),
  NVIDIA_H200_141GB: quota('H200GPUs', 'nvidia_h200_gpus', 'Nvidia H200'),
  NVIDIA_B200: quota('B200GPUs', 'nvidia_b200_gpus', 'Nvidia B200'),
  NVIDIA_GB200: quota('GB200GPUs', 'nvidia_gb200_gpus', 'Nvidia GB200'),
  NVIDIA_RTX_PRO_6000: quota('RTXPRO6000GPUs', 'nvidia_rtx_pro_6000_gpus', 'Nvidia RTX PRO 6000'),
  TPU_V5_LITEPOD: quota('V5ETPU', 'tpu_v5e', 'TPU v5e'),
};
const ACCELERATORS = Object.keys(ON_DEMAND) as [string, ...string[]];

/** The key of the preemptible quota of an accelerator: what spot VMs are charged to. */
const SPOT = 'spot:';

/**
 * Every serving quota by key: the accelerator type (on-demand), or `spot:` + the type — the
 * `CustomModelServingPreemptible…PerProjectPerRegion` quota (vertex-api.md; metric by analogy).
 * Not shared with the client's table (src/gcp/accelerators.ts), on purpose: a wrong id there must fail here.
 */
export const SERVING_QUOTAS: Readonly<Record<string, ServingQuota>> = {
  ...ON_DEMAND,
  ...Object.fromEntries(
    Object.entries(ON_DEMAND).map(([accelerator, q]) => [
      `${SPOT}${accelerator}`,
      {
        quotaId: q.quotaId.replace(/^CustomModelServing/, 'CustomModelServingPreemptible'),
        metric: q.metric.replace('/custom_model_serving_', '/custom_model_serving_preemptible_'),
        label: `preemptible ${q.label}`,
      },
    ]),
  ),
};
const QUOTA_KEYS = Object.keys(SERVING_QUOTAS);

/** The quota a deployment's accelerators are charged to (L4's when it names none). */
function quotaKeyOf(resources: Record<string, unknown>): string {
  const accelerator = (resources.machineSpec as { acceleratorType?: string } | undefined)?.acceleratorType;
  const known = accelerator && ON_DEMAND[accelerator] ? accelerator : 'NVIDIA_L4';
  return resources.spot === true ? `${SPOT}${known}` : known;
}

// ---------------------------------------------------------------------------------------------
// Charges and usage

/**
 * GPUs a deployment is charged, and to which quota: maxReplicaCount × acceleratorCount ×
 * max(1, multihostGpuNodeCount).
 */
function chargeOf(resources: Record<string, unknown>): { key: string; gpus: number } | undefined {
  const spec = (resources.machineSpec ?? {}) as {
    acceleratorType?: string;
    acceleratorCount?: number;
    multihostGpuNodeCount?: number;
  };
  if (!spec.acceleratorType || !ON_DEMAND[spec.acceleratorType]) return undefined;
  const max = Number(resources.maxReplicaCount ?? resources.minReplicaCount ?? 0);
  const gpus = max * (spec.acceleratorCount ?? 0) * Math.max(1, spec.multihostGpuNodeCount ?? 0);
  return gpus > 0 ? { key: quotaKeyOf(resources), gpus } : undefined;
}

interface Charge {
  /** The quota's key (`SERVING_QUOTAS`). */
  key: string;
  gpus: number;
  /** From when it counts (Monitoring's usage series steps there). */
  since: number;
}

/** What is deployed or being deployed in one region: deployed models and running deploys (not those refused for quota). */
function charges(core: EmulatorCore, project: string, region: string): Charge[] {
  const found: Charge[] = [];
  const add = (resources: Record<string, unknown>, since: number) => {
    const charge = chargeOf(resources);
    if (charge) found.push({ ...charge, since });
  };
  for (const endpoint of Object.values(core.state.endpoints)) {
    if (endpoint.project !== project || endpoint.location !== region) continue;
    for (const deployed of endpoint.deployedModels) add(deployed.dedicatedResources, deployed.createTime);
  }
  for (const op of Object.values(core.state.operations)) {
    if (op.done || op.project !== project || op.location !== region) continue;
    const work = op.deploy ?? op.deployModel;
    if (work && work.fault !== 'quotaExhausted') add(work.dedicatedResources, op.createTime);
  }
  return found;
}

function regionSettings(core: EmulatorCore, project: string, region: string): RegionQuota {
  return core.state.projects[project]?.quota?.[region] ?? {};
}

/** A quota's limit in a region, from the region's settings (`regionSettings`). */
function quotaLimit(settings: RegionQuota, key: string): number {
  return settings.limits?.[key] ?? DEFAULT_GPU_QUOTA;
}

/** Usage now: what the region's deployments charge (`charges`) plus the admin's extra usage. */
function quotaUsage(charged: Charge[], settings: RegionQuota, key: string): number {
  const gpus = charged.filter((c) => c.key === key).reduce((sum, c) => sum + c.gpus, 0);
  return gpus + (settings.usage?.[key] ?? 0);
}

/** Whether deploying `resources` would take the region's usage of its accelerator over the limit. */
export function exceedsQuota(
  core: EmulatorCore,
  project: string,
  region: string,
  resources: Record<string, unknown>,
): boolean {
  const charge = chargeOf(resources);
  if (!charge) return false;
  const settings = regionSettings(core, project, region);
  return (
    quotaUsage(charges(core, project, region), settings, charge.key) + charge.gpus >
    quotaLimit(settings, charge.key)
  );
}

/** The Operation `error` of a deployment refused for quota (also the `quota` fault's). */
export function quotaError(op: VertexOperationRecord, resources: Record<string, unknown>): RpcStatus {
  const { metric } = SERVING_QUOTAS[quotaKeyOf(resources)]!;
  return {
    code: 8,
    message:
      `The following quota metrics exceed quota limits: ${metric}. ` +
      `Request a quota increase for ${metric} in region ${op.location}, or deploy with fewer or different accelerators.`,
    details: [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'RESOURCE_EXHAUSTED',
        domain: AIPLATFORM_SERVICE,
        metadata: { quota_metric: metric, consumer: `projects/${op.project}`, location: op.location },
      },
    ],
  };
}

/** Regions a project has a quota entry for: us-central1, those the admin set, those it deployed in. */
function regionsOf(core: EmulatorCore, project: string): string[] {
  const regions = new Set([HOME_REGION, ...Object.keys(core.state.projects[project]?.quota ?? {})]);
  const { endpoints, models, operations } = core.state;
  for (const item of [...Object.values(endpoints), ...Object.values(models), ...Object.values(operations)])
    if (item.project === project && item.location !== 'global') regions.add(item.location);
  return [...regions].sort();
}

// ---------------------------------------------------------------------------------------------
// Admin API: PUT / GET /_emulator/projects/{project}/quota

const Counts = z
  .partialRecord(z.enum(ACCELERATORS), z.number().int().min(0).max(1_000_000))
  .transform((counts) => counts as Record<string, number>);

const Quotas = {
  /** Limits by accelerator type (others keep theirs). */
  limits: Counts.optional(),
  /** Extra usage by accelerator type, on top of what deployments charge. */
  usage: Counts.optional(),
};

export const QuotaSettingSchema = z
  .object({
    region: z.string().regex(/^[a-z]+(?:-[a-z]+\d*)+$/, 'region must be a region such as us-central1'),
    ...Quotas,
    /** The preemptible quotas spot VMs are charged to. */
    spot: z.object(Quotas).strict().optional(),
  })
  .strict();
export type QuotaSetting = z.output<typeof QuotaSettingSchema>;
export type QuotaSettingInput = z.input<typeof QuotaSettingSchema>;

interface QuotaCounts {
  /** By accelerator type. */
  limits: Record<string, number>;
  usage: Record<string, number>;
}

/** A region's effective limits and usage (charged + extra) of every accelerator, on demand and spot. */
export interface QuotaView extends QuotaCounts {
  region: string;
  spot: QuotaCounts;
}

export function quotaView(core: EmulatorCore, project: string, region: string): QuotaView {
  const settings = regionSettings(core, project, region);
  const charged = charges(core, project, region);
  const counts = (prefix: string): QuotaCounts => ({
    limits: Object.fromEntries(ACCELERATORS.map((a) => [a, quotaLimit(settings, prefix + a)])),
    usage: Object.fromEntries(ACCELERATORS.map((a) => [a, quotaUsage(charged, settings, prefix + a)])),
  });
  return { region, ...counts(''), spot: counts(SPOT) };
}

/** Merges a setting into the project's quota; returns the region's effective quota. */
export function setQuota(core: EmulatorCore, project: string, setting: QuotaSetting, now: number): QuotaView {
  const record = (core.state.projects[project] ??= {});
  const region = ((record.quota ??= {})[setting.region] ??= {});
  const keyed = (counts: Record<string, number> | undefined, prefix: string) =>
    Object.fromEntries(Object.entries(counts ?? {}).map(([a, n]) => [prefix + a, n]));
  const limits = { ...keyed(setting.limits, ''), ...keyed(setting.spot?.limits, SPOT) };
  const usage = { ...keyed(setting.usage, ''), ...keyed(setting.spot?.usage, SPOT) };
  if (Object.keys(limits).length > 0) region.limits = { ...region.limits, ...limits };
  if (Object.keys(usage).length > 0) {
    region.usage = { ...region.usage, ...usage };
    region.usageSetAt = now;
  }
  core.markDirty();
  return quotaView(core, project, setting.region);
}

// ---------------------------------------------------------------------------------------------
// Monitoring: serviceruntime.googleapis.com/quota/allocation/usage on consumer_quota

/**
 * The usage series of each accelerator with a charge (or an admin usage) in each region, over
 * [start, end]: a point where each charge began, and the value at min(end, now). Usage that
 * went away has no history (the emulator keeps none): the series simply shows today's items.
 */
export function quotaUsageSeries(
  core: EmulatorCore,
  project: string,
  start: number,
  end: number,
  now: number,
): RawSeries[] {
  const projectId = core.state.projects[project]?.id ?? project;
  const last = Math.min(end, now);
  const series: RawSeries[] = [];
  for (const region of regionsOf(core, project)) {
    const settings = regionSettings(core, project, region);
    const steps = charges(core, project, region);
    for (const [key, gpus] of Object.entries(settings.usage ?? {}))
      steps.push({ key, gpus, since: settings.usageSetAt ?? 0 });
    for (const key of new Set(steps.map((s) => s.key))) {
      const mine = steps.filter((s) => s.key === key);
      const at = (t: number) => mine.filter((s) => s.since <= t).reduce((sum, s) => sum + s.gpus, 0);
      const times = new Set([...mine.map((s) => s.since).filter((t) => t > start && t < last), last]);
      series.push({
        metric: { quota_metric: SERVING_QUOTAS[key]!.metric },
        resource: { project_id: projectId, location: region, service: AIPLATFORM_SERVICE },
        points: [...times].sort((a, b) => a - b).map((time) => ({ time, value: at(time) })),
      });
    }
  }
  return series;
}

// ---------------------------------------------------------------------------------------------
// Cloud Quotas v1: quotaInfos.get / quotaInfos.list

/** The project's quota regions (`regionsOf`) with their settings: what every QuotaInfo of a request reads. */
function regionQuotas(core: EmulatorCore, project: string): { region: string; settings: RegionQuota }[] {
  return regionsOf(core, project).map((region) => ({
    region,
    settings: regionSettings(core, project, region),
  }));
}

function quotaInfoJson(
  project: string,
  key: string,
  regions: { region: string; settings: RegionQuota }[],
): Record<string, unknown> {
  const { quotaId, metric, label } = SERVING_QUOTAS[key]!;
  return {
    name: `projects/${project}/locations/global/services/${AIPLATFORM_SERVICE}/quotaInfos/${quotaId}`,
    quotaId,
    metric,
    service: AIPLATFORM_SERVICE,
    isPrecise: true,
    containerType: 'PROJECT',
    dimensions: ['region'],
    metricDisplayName: `Custom model serving ${label}${label.startsWith('TPU') ? '' : ' GPUs'}`,
    quotaDisplayName: `Custom model serving ${label}${label.startsWith('TPU') ? '' : ' GPUs'} per region`,
    metricUnit: '1',
    quotaIncreaseEligibility: { isEligible: true },
    dimensionsInfos: regions.map(({ region, settings }) => {
      const limit = quotaLimit(settings, key);
      return {
        dimensions: { region },
        // int64 as a string; proto3 JSON leaves a 0 out.
        details: limit > 0 ? { value: String(limit) } : {},
        applicableLocations: [region],
      };
    }),
  };
}

/** The path's location must be `global` and the service one the emulator has quotas for. */
function checkParent(location: string, service: string): void {
  if (location !== 'global') {
    throw badRequest([
      {
        field: 'name',
        description: `The ID component following "locations/" must be "global" (got "${location}").`,
      },
    ]);
  }
  if (service !== AIPLATFORM_SERVICE) {
    throw new ApiError(
      'NOT_FOUND',
      `Service ${service} has no quotas in the emulator; it serves the quotas of ${AIPLATFORM_SERVICE}.`,
    );
  }
}

function getQuotaInfo(core: EmulatorCore, ctx: RequestContext): void {
  checkQuery(ctx.url, `${CLOUDQUOTAS}.GetQuotaInfoRequest`, ['name']);
  const [projectParam, location, service, quotaId] = ctx.params as [string, string, string, string];
  checkParent(location, service);
  const project = core.resolveProject(projectParam).number;
  const key = QUOTA_KEYS.find((k) => SERVING_QUOTAS[k]!.quotaId === quotaId);
  if (!key) {
    throw new ApiError(
      'NOT_FOUND',
      `QuotaInfo projects/${projectParam}/locations/global/services/${service}/quotaInfos/${quotaId} not found; ` +
        `the serving GPU quotas are ${QUOTA_KEYS.map((k) => SERVING_QUOTAS[k]!.quotaId).join(', ')}.`,
    );
  }
  sendJson(ctx.res, 200, quotaInfoJson(project, key, regionQuotas(core, project)));
}

function listQuotaInfos(core: EmulatorCore, ctx: RequestContext): void {
  const query = checkQuery(ctx.url, `${CLOUDQUOTAS}.ListQuotaInfosRequest`, ['parent']);
  const [projectParam, location, service] = ctx.params as [string, string, string];
  checkParent(location, service);
  const project = core.resolveProject(projectParam).number;
  const all = [...QUOTA_KEYS].sort((a, b) =>
    SERVING_QUOTAS[a]!.quotaId.localeCompare(SERVING_QUOTAS[b]!.quotaId),
  );
  const { page, nextPageToken } = paginate(all, query);
  const regions = regionQuotas(core, project);
  sendJson(ctx.res, 200, {
    ...(page.length ? { quotaInfos: page.map((a) => quotaInfoJson(project, a, regions)) } : {}),
    ...(nextPageToken ? { nextPageToken } : {}),
  });
}

export function cloudQuotasRoutes(core: EmulatorCore): Route[] {
  const route = managementRoute(core, 'cloudquotas', (params) => params[0]);
  const parent = '/v1/projects/([^/]+)/locations/([^/]+)/services/([^/]+)/quotaInfos';
  return [
    route('cloudquotas.quotaInfos.get', 'GET', `${parent}/([^/]+)`, 'cloudquotas.quotas.get', getQuotaInfo),
    route('cloudquotas.quotaInfos.list', 'GET', parent, 'cloudquotas.quotas.get', listQuotaInfos),
  ];
}
