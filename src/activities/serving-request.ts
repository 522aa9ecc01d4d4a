import type { ContainerInput, DeployInput } from '../gcp';
import type { DeploymentSpec, MachineSpec } from '../spec';

/**
 * A deployment spec's serving settings as the Vertex client takes them, for `:deploy` and
 * `deployModel` alike: the machine (with its reservation, GPU partition, hosts), replicas and
 * autoscaling, capacity, and the container override. One mapping, so both deploys send the same.
 */

type ServingSpec = Pick<DeploymentSpec, 'replicas' | 'capacity' | 'container'> & { machine: MachineSpec };

/** Where autoscaling metrics live (vertex-api.md §1.2). */
const AUTOSCALING_METRIC_PREFIX = 'aiplatform.googleapis.com/prediction/online/';

export function machineInput(
  machine: MachineSpec,
  capacity?: DeploymentSpec['capacity'],
): NonNullable<DeployInput['machine']> {
  const reservation = capacity?.reservation;
  return {
    machineType: machine.type,
    acceleratorType: machine.acceleratorType,
    acceleratorCount: machine.acceleratorCount,
    ...(machine.gpuPartitionSize ? { gpuPartitionSize: machine.gpuPartitionSize } : {}),
    ...(machine.multihostGpuNodeCount ? { multihostGpuNodeCount: machine.multihostGpuNodeCount } : {}),
    ...(reservation
      ? {
          reservationAffinity: {
            reservationAffinityType: reservation.type,
            ...(reservation.key ? { key: reservation.key } : {}),
            ...(reservation.values ? { values: reservation.values } : {}),
          },
        }
      : {}),
  };
}

/** Replicas, autoscaling and capacity (DedicatedResources besides the machine). */
export function scalingInput(spec: ServingSpec) {
  const { replicas, capacity } = spec;
  return {
    minReplicaCount: replicas.min,
    maxReplicaCount: replicas.max,
    ...(replicas.required !== undefined ? { requiredReplicaCount: replicas.required } : {}),
    ...(replicas.initial !== undefined ? { initialReplicaCount: replicas.initial } : {}),
    ...(replicas.autoscaling ? { autoscalingMetricSpecs: autoscalingInput(replicas.autoscaling) } : {}),
    ...(capacity?.spot ? { spot: true } : {}),
    ...(capacity?.flexStart ? { flexStart: { maxRuntimeMs: capacity.flexStart.maxRuntime } } : {}),
    ...(replicas.scaleToZero
      ? {
          scaleToZero: {
            ...(replicas.scaleToZero.minScaleupPeriod
              ? { minScaleupPeriodMs: replicas.scaleToZero.minScaleupPeriod }
              : {}),
            ...(replicas.scaleToZero.idleScaledownPeriod
              ? { idleScaledownPeriodMs: replicas.scaleToZero.idleScaledownPeriod }
              : {}),
          },
        }
      : {}),
  };
}

export function autoscalingInput(autoscaling: NonNullable<DeploymentSpec['replicas']['autoscaling']>) {
  return autoscaling.map((a) => ({
    metricName: `${AUTOSCALING_METRIC_PREFIX}${a.metric}`,
    target: a.target,
  }));
}

/** The container override (ModelContainerSpec); env as name/value pairs. */
function containerInput(container: NonNullable<DeploymentSpec['container']>): ContainerInput {
  return {
    imageUri: container.image,
    ...(container.command ? { command: container.command } : {}),
    ...(container.args ? { args: container.args } : {}),
    ...(container.env
      ? { env: Object.entries(container.env).map(([name, value]) => ({ name, value })) }
      : {}),
    ...(container.ports ? { ports: container.ports } : {}),
    ...(container.predictRoute ? { predictRoute: container.predictRoute } : {}),
    ...(container.healthRoute ? { healthRoute: container.healthRoute } : {}),
    ...(container.startupProbe ? { startupProbe: container.startupProbe } : {}),
    ...(container.healthProbe ? { healthProbe: container.healthProbe } : {}),
    ...(container.sharedMemorySizeMb ? { sharedMemorySizeMb: container.sharedMemorySizeMb } : {}),
    ...(container.deploymentTimeout ? { deploymentTimeoutMs: container.deploymentTimeout } : {}),
  };
}

/** Everything of the spec that goes into the deployed model's resources and container. */
export function servingInput(spec: ServingSpec) {
  return {
    machine: machineInput(spec.machine, spec.capacity),
    ...scalingInput(spec),
    ...(spec.container ? { container: containerInput(spec.container) } : {}),
  };
}
