import { z } from 'zod';
import { ACCELERATOR_TYPES } from './accelerators';

/**
 * The serving resources of a deployed model as `:deploy` and `deployModel` take them
 * (machine_resources.proto DedicatedResources/MachineSpec, model.proto ModelContainerSpec), and
 * their proto3 JSON. Durations are given in milliseconds and sent as `"Ns"`.
 */

/** A replica's machine (MachineSpec); the accelerator type and count go together. */
export const MachineInputSchema = z
  .strictObject({
    machineType: z
      .string()
      .regex(/^[a-z0-9]+(?:-[a-z0-9]+)+$/, 'must be a machine type such as g2-standard-12'),
    acceleratorType: z.enum(ACCELERATOR_TYPES).optional(),
    acceleratorCount: z.number().int().min(1).max(16).optional(),
    gpuPartitionSize: z.string().min(1).max(32).optional(),
    multihostGpuNodeCount: z.number().int().min(1).max(64).optional(),
    reservationAffinity: z
      .strictObject({
        reservationAffinityType: z.enum(['NO_RESERVATION', 'ANY_RESERVATION', 'SPECIFIC_RESERVATION']),
        key: z.string().min(1).max(256).optional(),
        values: z.array(z.string().min(1).max(512)).max(64).optional(),
      })
      .optional(),
  })
  .refine((m) => (m.acceleratorType === undefined) === (m.acceleratorCount === undefined), {
    error: 'acceleratorType and acceleratorCount must be given together',
  });

export const ReplicaCount = z.number().int().min(1).max(1000);

/** The `.refine` arguments of a request with replica counts: max (when given) at least min. */
export const MAX_AT_LEAST_MIN = [
  (i: { minReplicaCount: number; maxReplicaCount?: number | undefined }) =>
    i.maxReplicaCount === undefined || i.maxReplicaCount >= i.minReplicaCount,
  { error: 'maxReplicaCount must be ≥ minReplicaCount', path: ['maxReplicaCount'] as PropertyKey[] },
] as const;
const Millis = z
  .number()
  .int()
  .min(1)
  .max(30 * 86_400_000);

/** DedicatedResources besides the machine: replicas, autoscaling, capacity. */
export const ScalingInputShape = {
  /** 0 only with `scaleToZero`. */
  minReplicaCount: z.number().int().min(0).max(1000),
  /** Defaults to minReplicaCount; GPU quota is charged for this many replicas. */
  maxReplicaCount: ReplicaCount.optional(),
  requiredReplicaCount: ReplicaCount.optional(),
  initialReplicaCount: ReplicaCount.optional(),
  autoscalingMetricSpecs: z
    .array(z.strictObject({ metricName: z.string().min(1).max(256), target: z.number().int().min(1) }))
    .max(8)
    .optional(),
  spot: z.boolean().optional(),
  flexStart: z.strictObject({ maxRuntimeMs: Millis }).optional(),
  scaleToZero: z
    .strictObject({ minScaleupPeriodMs: Millis.optional(), idleScaledownPeriodMs: Millis.optional() })
    .optional(),
};

const ProbeInputSchema = z.looseObject({});

/** ModelContainerSpec, as the spec overrides it. */
export const ContainerInputSchema = z.strictObject({
  imageUri: z.string().min(1).max(1_024),
  command: z.array(z.string()).max(64).optional(),
  args: z.array(z.string()).max(256).optional(),
  env: z
    .array(z.strictObject({ name: z.string().min(1).max(128), value: z.string() }))
    .max(128)
    .optional(),
  ports: z.array(z.number().int().min(1).max(65_535)).max(1).optional(),
  predictRoute: z.string().max(1_024).optional(),
  healthRoute: z.string().max(1_024).optional(),
  startupProbe: ProbeInputSchema.optional(),
  healthProbe: ProbeInputSchema.optional(),
  sharedMemorySizeMb: z.number().int().min(1).optional(),
  deploymentTimeoutMs: Millis.optional(),
});
export type ContainerInput = z.infer<typeof ContainerInputSchema>;

type Scaling = z.output<z.ZodObject<typeof ScalingInputShape>>;

/** `dedicatedResources` JSON from the machine and scaling inputs. */
export function dedicatedResourcesJson(
  machine: z.output<typeof MachineInputSchema> | undefined,
  i: Scaling,
): Record<string, unknown> {
  return compact({
    machineSpec: machine && compact({ ...machine }),
    // proto3 JSON leaves a 0 out (scale to zero): the canonical form, as Google's own clients send it.
    minReplicaCount: i.minReplicaCount || undefined,
    maxReplicaCount: i.maxReplicaCount ?? Math.max(i.minReplicaCount, 1),
    requiredReplicaCount: i.requiredReplicaCount,
    initialReplicaCount: i.initialReplicaCount,
    autoscalingMetricSpecs: i.autoscalingMetricSpecs,
    spot: i.spot || undefined,
    flexStart: i.flexStart && { maxRuntimeDuration: seconds(i.flexStart.maxRuntimeMs) },
    scaleToZeroSpec:
      i.scaleToZero &&
      compact({
        minScaleupPeriod: i.scaleToZero.minScaleupPeriodMs && seconds(i.scaleToZero.minScaleupPeriodMs),
        idleScaledownPeriod:
          i.scaleToZero.idleScaledownPeriodMs && seconds(i.scaleToZero.idleScaledownPeriodMs),
      }),
  });
}

/** `containerSpec` JSON (ModelContainerSpec). */
export function containerSpecJson(c: ContainerInput): Record<string, unknown> {
  return compact({
    imageUri: c.imageUri,
    command: c.command,
    args: c.args,
    env: c.env,
    ports: c.ports?.map((containerPort) => ({ containerPort })),
    predictRoute: c.predictRoute,
    healthRoute: c.healthRoute,
    startupProbe: c.startupProbe,
    healthProbe: c.healthProbe,
    // int64: a decimal string in proto3 JSON.
    sharedMemorySizeMb: c.sharedMemorySizeMb === undefined ? undefined : String(c.sharedMemorySizeMb),
    deploymentTimeout: c.deploymentTimeoutMs && seconds(c.deploymentTimeoutMs),
  });
}

/** A google.protobuf.Duration in JSON. */
export function seconds(ms: number): string {
  return `${ms / 1000}s`;
}

export function compact<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
