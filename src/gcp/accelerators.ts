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
