/** AcceleratorType enum values (accelerator_type.proto, v1beta1) other than UNSPECIFIED; K80 is deprecated there. */
export const ACCELERATOR_TYPES = [
  'NVIDIA_TESLA_K80',
  'NVIDIA_TESLA_P100',
  'NVIDIA_TESLA_V100',
  'NVIDIA_TESLA_P4',
  'NVIDIA_TESLA_T4',
  'NVIDIA_TESLA_A100',
  'NVIDIA_A100_80GB',
  'NVIDIA_L4',
  'NVIDIA_H100_80GB',
  'NVIDIA_H100_MEGA_80GB',
  'NVIDIA_H200_141GB',
  'NVIDIA_B200',
  'NVIDIA_GB200',
  'NVIDIA_RTX_PRO_6000',
  'TPU_V2',
  'TPU_V3',
  'TPU_V4_POD',
  'TPU_V5_LITEPOD',
] as const;
export type AcceleratorType = (typeof ACCELERATOR_TYPES)[number];

/** The accelerators a deployment may ask for: all but the end-of-life (deprecated) K80. */
export const DEPLOYABLE_ACCELERATOR_TYPES = ACCELERATOR_TYPES.filter(
  (type): type is Exclude<AcceleratorType, 'NVIDIA_TESLA_K80'> => type !== 'NVIDIA_TESLA_K80',
);

/** A serving accelerator's quota: its Cloud Quotas id and its metric (lifecycle-apis.md §4.2). */
export interface ServingQuota {
  quotaId: string;
  metric: string;
  /** No public source names it: the analogous name, assumed. */
  unconfirmed?: true;
}

const quota = (id: string, metric: string, unconfirmed = false): ServingQuota => ({
  quotaId: `CustomModelServing${id}PerProjectPerRegion`,
  metric: `aiplatform.googleapis.com/custom_model_serving_${metric}`,
  ...(unconfirmed ? { unconfirmed: true as const } : {}),
});

/**
 * The per-project, per-region quota each serving accelerator is charged to (`maxReplicaCount ×
 * acceleratorCount`), as gcloud's quota check maps them; the H100 Mega, H200, B200 and GB200 ids
 * follow the same pattern without a source.
 */
export const SERVING_GPU_QUOTAS: Partial<Record<AcceleratorType, ServingQuota>> = {
  NVIDIA_TESLA_P4: quota('P4GPUs', 'nvidia_p4_gpus'),
  NVIDIA_TESLA_T4: quota('T4GPUs', 'nvidia_t4_gpus'),
  NVIDIA_L4: quota('L4GPUs', 'nvidia_l4_gpus'),
  NVIDIA_TESLA_V100: quota('V100GPUs', 'nvidia_v100_gpus'),
  NVIDIA_TESLA_P100: quota('P100GPUs', 'nvidia_p100_gpus'),
  NVIDIA_TESLA_A100: quota('A100GPUs', 'nvidia_a100_gpus'),
  NVIDIA_A100_80GB: quota('A10080GBGPUs', 'nvidia_a100_80gb_gpus'),
  NVIDIA_H100_80GB: quota('H100GPUs', 'nvidia_h100_gpus'),
  // vertex-api.md lists the id (H100MEGAGPUs); the metric is by analogy.
  NVIDIA_H100_MEGA_80GB: quota('H100MEGAGPUs', 'nvidia_h100_mega_gpus', true),
  NVIDIA_H200_141GB: quota('H200GPUs', 'nvidia_h200_gpus', true),
  NVIDIA_B200: quota('B200GPUs', 'nvidia_b200_gpus', true),
  NVIDIA_GB200: quota('GB200GPUs', 'nvidia_gb200_gpus', true),
  NVIDIA_RTX_PRO_6000: quota('RTXPRO6000GPUs', 'nvidia_rtx_pro_6000_gpus'),
  TPU_V5_LITEPOD: quota('V5ETPU', 'tpu_v5e'),
};

/**
 * The quota a deployment's accelerators are charged to: spot VMs have their own
 * (`CustomModelServingPreemptible…PerProjectPerRegion`, vertex-api.md; the metric name is assumed by
 * analogy), on-demand ones the table's.
 */
export function servingQuotaOf(
  acceleratorType: AcceleratorType,
  options: { spot?: boolean } = {},
): ServingQuota | undefined {
  const onDemand = SERVING_GPU_QUOTAS[acceleratorType];
  if (!onDemand || !options.spot) return onDemand;
  return {
    quotaId: onDemand.quotaId.replace(/^CustomModelServing/, 'CustomModelServingPreemptible'),
    metric: onDemand.metric.replace('/custom_model_serving_', '/custom_model_serving_preemptible_'),
    unconfirmed: true,
  };
}
