import { z } from 'zod';
import { type AcceleratorType, type ServingQuota, servingQuotaOf } from './accelerators';
import type { GcpClientConfig } from './config';
import { type CallOptions, type HttpTransport, sendJsonCall } from './http';
import { parseInput } from './input';
import type { MonitoringClient } from './monitoring';
import { PROJECT_RE } from './names';
import { Int64 } from './schemas';

const SERVICE = 'cloudquotas.googleapis.com';
const AIPLATFORM = 'aiplatform.googleapis.com';

/** QuotaInfo (google/api/cloudquotas/v1/resources.proto), the fields the check reads. */
const QuotaInfoSchema = z.looseObject({
  name: z.string().optional(),
  quotaId: z.string().optional(),
  metric: z.string().optional(),
  dimensionsInfos: z
    .array(
      z.looseObject({
        dimensions: z.record(z.string(), z.string()).default({}),
        details: z.looseObject({ value: Int64.optional() }).optional(),
        applicableLocations: z.array(z.string()).default([]),
      }),
    )
    .max(10_000)
    .default([]),
});
export type QuotaInfo = z.infer<typeof QuotaInfoSchema>;

const GetQuotaInfoSchema = z.strictObject({
  project: z.string().regex(PROJECT_RE, 'must be a project ID or number'),
  service: z
    .string()
    .regex(/^[a-z0-9.-]+\.googleapis\.com$/, 'must be a service like aiplatform.googleapis.com'),
  quotaId: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,128}$/, 'must be a quota id like CustomModelServingL4GPUsPerProjectPerRegion'),
});

/** Cloud Quotas v1 reads, over the same ADC transport as every other call. */
export class CloudQuotasClient {
  constructor(
    private readonly transport: HttpTransport,
    private readonly config: GcpClientConfig,
  ) {}

  /** `GET v1/projects/{p}/locations/global/services/{service}/quotaInfos/{quotaId}` (gcloud's form). */
  async getQuotaInfo(
    input: z.input<typeof GetQuotaInfoSchema>,
    options: CallOptions = {},
  ): Promise<QuotaInfo> {
    const i = parseInput(GetQuotaInfoSchema, input, 'quota info request');
    const url = new URL(
      `${this.config.cloudQuotasBaseUrl.replace(/\/+$/, '')}/v1/projects/${encodeURIComponent(i.project)}` +
        `/locations/global/services/${i.service}/quotaInfos/${i.quotaId}`,
    );
    return sendJsonCall(
      this.transport,
      this.config,
      { service: SERVICE, method: 'GET', url, options },
      QuotaInfoSchema,
    );
  }
}

/**
 * The limit in effect in `region`, as gcloud reads it: the entry for that region, else one that
 * applies to every region not otherwise configured; 0 when neither exists.
 */
function regionalLimit(info: QuotaInfo, region: string): number {
  const entries = info.dimensionsInfos;
  const exact = entries.find((e) => e.dimensions.region === region || e.applicableLocations[0] === region);
  const fallback = entries.find(
    (e) => e.dimensions.region === undefined && e.applicableLocations.length === 0,
  );
  return (exact ?? fallback)?.details?.value ?? 0;
}

/** What the serving GPU quota of a deployment looks like in one region. */
export interface ServingQuotaReading {
  quota: ServingQuota;
  /** The limit in effect (Cloud Quotas). */
  limit: number;
  /** GPUs already allocated (Monitoring `serviceruntime.googleapis.com/quota/allocation/usage`). */
  usage: number;
}

const USAGE_METRIC = 'serviceruntime.googleapis.com/quota/allocation/usage';
/** gcloud reads 25 hours back: "Need to go back at least 24 hours to reliably get a data point". */
const USAGE_LOOKBACK_MS = 25 * 3_600_000;

/**
 * The limit and current usage of the serving quota an accelerator is charged to, the way gcloud's
 * `ai model-garden models deploy` reads them (lifecycle-apis.md §4.2); undefined for an
 * accelerator without a known serving quota.
 */
export async function readServingQuota(
  clients: { quotas: CloudQuotasClient; monitoring: MonitoringClient },
  request: { project: string; region: string; acceleratorType: AcceleratorType; spot?: boolean; now?: Date },
  options: CallOptions = {},
): Promise<ServingQuotaReading | undefined> {
  const quota = servingQuotaOf(request.acceleratorType, { spot: request.spot ?? false });
  if (!quota) return undefined;
  const endTime = request.now ?? new Date();
  const [info, series] = await Promise.all([
    clients.quotas.getQuotaInfo(
      { project: request.project, service: AIPLATFORM, quotaId: quota.quotaId },
      options,
    ),
    clients.monitoring.listTimeSeries(
      {
        project: request.project,
        filter:
          `metric.type="${USAGE_METRIC}" AND resource.type="consumer_quota" AND ` +
          `metric.label.quota_metric="${quota.metric}" AND resource.label.project_id="${request.project}" AND ` +
          `resource.label.location="${request.region}" AND resource.label.service="${AIPLATFORM}"`,
        interval: { startTime: new Date(endTime.getTime() - USAGE_LOOKBACK_MS), endTime },
        aggregation: { alignmentSeconds: 60, perSeriesAligner: 'ALIGN_NEXT_OLDER' },
      },
      options,
    ),
  ]);
  // The newest point of the first series, as gcloud takes it (points come newest first).
  const newest = series.timeSeries[0]?.points[0]?.value;
  return {
    quota,
    limit: regionalLimit(info, request.region),
    usage: newest?.int64Value ?? newest?.doubleValue ?? 0,
  };
}
