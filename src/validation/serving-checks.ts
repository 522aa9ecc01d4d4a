import { z } from 'zod';
import type { DeploymentSpec, MachineSpec } from '../spec/deployment-spec';
import {
  AUTOSCALING_METRICS,
  CapacitySchema,
  PERCENT_METRICS,
  ContainerSchema,
  ScaleToZeroSchema,
} from '../spec/serving';
import { describeMachine, findMachineShape, MACHINE_TABLE } from './machines';
import { FindingCollector, type ValidationReport } from './report';
import { parseVllmArgs } from './vllm-args';
import { checkVllmArgs, type ServingModel } from './vllm-checks';

/**
 * Cross-checks of a deployment's serving settings that no Google client makes: the container's
 * vLLM arguments against the model and GPUs, capacity, replicas and autoscaling, multi-host and
 * GPU partitions. Pure: from already-known inputs to findings, so they run with or without storage.
 */

/**
 * The spec's `container`, `capacity` and `replicas` as the spec schema parses them, each keeping
 * only the fields checked here (so whole parsed spec sections can be passed). Replica counts and
 * autoscaling targets are taken as plain numbers: judging them is these checks' job, with a
 * finding and its fix rather than a refused option.
 */
export const DeploymentSettingsSchema = z.strictObject({
  container: z.object({ args: ContainerSchema.shape.args, env: ContainerSchema.shape.env }).optional(),
  capacity: z
    .object({ spot: CapacitySchema.shape.spot, reservation: CapacitySchema.shape.reservation })
    .optional(),
  replicas: z
    .object({
      min: z.number().int().nonnegative(),
      max: z.number().int().nonnegative(),
      autoscaling: z.array(z.object({ metric: z.enum(AUTOSCALING_METRICS), target: z.number() })).optional(),
      scaleToZero: ScaleToZeroSchema.optional(),
    })
    .optional(),
});
export type DeploymentSettings = z.output<typeof DeploymentSettingsSchema>;
export type DeploymentSettingsInput = z.input<typeof DeploymentSettingsSchema>;

/** The settings of a parsed spec the validator cross-checks (the workflow's and `validate --spec`'s). */
export function deploymentSettingsOf(
  spec: Pick<DeploymentSpec, 'container' | 'capacity' | 'replicas'>,
): DeploymentSettingsInput {
  return {
    ...(spec.container ? { container: spec.container } : {}),
    capacity: spec.capacity,
    replicas: spec.replicas,
  };
}

export interface DeploymentCheckInput {
  deployment: DeploymentSettings;
  /** The machine each replica runs on (explicit, or the recommended one). */
  machine?: MachineSpec;
  /** The model, when its config.json could be read. */
  model?: ServingModel;
}

export type { ServingModel } from './vllm-checks';

/**
 * The findings of the deployment settings, from known inputs. `deployment` is the parsed form
 * (`DeploymentSettingsSchema`); a machine outside the machine table skips the GPU-specific checks.
 */
export function checkDeploymentSettings(
  input: DeploymentCheckInput,
  options: { maxFindingsPerRule?: number } = {},
): Pick<ValidationReport, 'findings' | 'omitted' | 'summary'> {
  const findings = new FindingCollector(options.maxFindingsPerRule);
  addDeploymentFindings(input, findings);
  return findings.result();
}

/** `checkDeploymentSettings` into a report's collector (it reads what sizing found already). */
export function addDeploymentFindings(input: DeploymentCheckInput, findings: FindingCollector): void {
  const { deployment, machine, model } = input;
  checkCapacity(deployment, findings);
  checkReplicas(deployment, findings);
  if (machine) checkMachinePlacement(machine, findings);
  const container = deployment.container;
  const shape = machine && findMachineShape(machine);
  checkVllmArgs({
    args: parseVllmArgs(container?.args ?? []),
    env: container?.env ?? {},
    ...(model ? { model } : {}),
    ...(machine ? { machine } : {}),
    ...(shape ? { shape } : {}),
    findings,
  });
}

function checkCapacity({ capacity }: DeploymentSettings, findings: FindingCollector): void {
  if (capacity?.spot && capacity.reservation?.type === 'SPECIFIC_RESERVATION') {
    findings.add(
      'capacity.spot-reservation',
      `capacity.spot is true with a SPECIFIC_RESERVATION reservation (${(capacity.reservation.values ?? []).join(', ')}): ` +
        'Vertex refuses the deploy, because spot VMs cannot consume reservations. Drop capacity.spot to use the reservation, ' +
        'or drop capacity.reservation to run on spot capacity.',
    );
  }
}

function checkReplicas({ replicas }: DeploymentSettings, findings: FindingCollector): void {
  if (!replicas) return;
  if (replicas.scaleToZero && replicas.min > 0) {
    findings.add(
      'replicas.scale-to-zero-min',
      `replicas.scaleToZero is set with replicas.min ${replicas.min}: Vertex scales to zero only from minReplicaCount 0 ` +
        'and refuses the combination. Set replicas.min to 0 (replicas.initial for the replicas to start with), or drop scaleToZero.',
    );
  }
  const autoscaling = replicas.autoscaling ?? [];
  for (const { metric, target } of autoscaling) {
    const percent = PERCENT_METRICS.includes(metric);
    if (percent ? target >= 1 && target <= 100 : target >= 1) continue;
    findings.add(
      'replicas.autoscaling-target',
      percent
        ? `replicas.autoscaling target ${target} for ${metric} is not a percentage: Vertex takes 1–100 (default 60). Set a target between 1 and 100.`
        : `replicas.autoscaling target ${target} for ${metric} must be at least 1 request per replica per minute. Set a positive target.`,
    );
  }
  if (autoscaling.length > 0 && replicas.max === replicas.min) {
    findings.add(
      'replicas.autoscaling-fixed',
      `replicas.autoscaling is set but replicas.min and replicas.max are both ${replicas.min}: there is nothing to scale. ` +
        'Raise replicas.max (quota is charged for it), or drop autoscaling.',
    );
  }
}

/** Multi-host and GPU partition settings of the machine (also checked without deployment settings). */
export function checkMachinePlacement(machine: MachineSpec, findings: FindingCollector): void {
  if (machine.multihostGpuNodeCount !== undefined && !findMachineShape(machine)?.multihost) {
    const supported = MACHINE_TABLE.filter((s) => s.multihost).map(describeMachine);
    findings.add(
      'machine.multihost-unsupported',
      `machine.multihostGpuNodeCount ${machine.multihostGpuNodeCount} on ${describeMachine({ machine })}: multi-host ` +
        `replicas run on 8-GPU H100/H200/B200 machines only (${supported.join(', ')}; unconfirmed by Google for others). ` +
        'Use one of those, or drop multihostGpuNodeCount.',
    );
  }
  if (machine.gpuPartitionSize !== undefined && machine.acceleratorCount > 1) {
    findings.add(
      'machine.gpu-partition-count',
      `machine.gpuPartitionSize ${machine.gpuPartitionSize} with acceleratorCount ${machine.acceleratorCount}: a replica ` +
        'uses one partition of one GPU, so Vertex needs acceleratorCount 1. Set acceleratorCount to 1 (and a 1-GPU machine type), or drop gpuPartitionSize.',
    );
  }
}
