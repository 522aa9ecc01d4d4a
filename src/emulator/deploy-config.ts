import { badRequest } from './errors';
import { DEFAULT_MACHINE_SPEC, type MachineSpecJson, checkMachineSpec } from './machines';
import { durationMs, protoFieldName } from './protos';

/**
 * The serving side of a deployment request, as `:deploy` (deploy_config.dedicated_resources,
 * model_config.container_spec) and `endpoints.deployModel` (deployed_model.dedicated_resources)
 * take it: the rules machine_resources.proto and model.proto document, each refusal naming its
 * field. Bodies arrive as canonical proto3 JSON (checked against the protos before this).
 */

type Message = Record<string, unknown>;

export const AUTOSCALING_METRIC_PREFIX = 'aiplatform.googleapis.com/prediction/online/';
/** The metrics autoscaling follows; the first two are percentages. */
const AUTOSCALING_METRICS = ['accelerator/duty_cycle', 'cpu/utilization', 'request_count'].map(
  (m) => `${AUTOSCALING_METRIC_PREFIX}${m}`,
);
const PERCENT_METRICS = AUTOSCALING_METRICS.slice(0, 2);
const DEFAULT_AUTOSCALING_TARGET = 60;
const SCALE_TO_ZERO_MIN_MS = 300_000;
const SCALE_TO_ZERO_MAX_MS = 28_800_000;
const FLEX_START_MAX_MS = 7 * 86_400_000;
const DEPLOYMENT_TIMEOUT_MAX_MS = 7_200_000;

export interface CheckedResources {
  /** Canonical `DedicatedResources` JSON as requested, server defaults filled, zero values left out. */
  resources: Message;
  /** Replicas the deployment starts with: min_replica_count, or with scale to zero the initial count. */
  initialReplicas: number;
}

const count = (value: unknown): number => (typeof value === 'number' ? value : 0);

/** proto3 JSON leaves default values out. */
function withoutDefaults(message: Message): Message {
  return Object.fromEntries(
    Object.entries(message).filter(([, v]) => v !== 0 && v !== false && v !== '' && v !== undefined),
  );
}

/**
 * Checks `DedicatedResources` at `field` (`deploy_config.dedicated_resources` or
 * `deployed_model.dedicated_resources`). `:deploy` fills in a default machine spec, and one
 * replica when no dedicated_resources is given at all (Model Garden chooses them); `deployModel`
 * requires both. (proto3 cannot tell a 0 from an absent min_replica_count.)
 */
export function checkDedicatedResources(
  given: Message | undefined,
  field: string,
  options: { defaults: boolean },
): CheckedResources {
  const refuse = (name: string, description: string) =>
    badRequest([{ field: `${field}.${name}`, description }]);
  const defaultReplicas = given === undefined && options.defaults;
  given ??= {};
  if (given.machineSpec === undefined && !options.defaults) {
    throw refuse(
      'machine_spec',
      `${field}.machine_spec is required (e.g. g2-standard-12 with 1 x NVIDIA_L4).`,
    );
  }
  const machineSpec = (given.machineSpec ?? { ...DEFAULT_MACHINE_SPEC }) as MachineSpecJson;
  checkMachineSpec(machineSpec, `${field}.machine_spec`);

  const scaleToZero = given.scaleToZeroSpec as Message | undefined;
  const min = defaultReplicas ? 1 : count(given.minReplicaCount);
  for (const name of ['minReplicaCount', 'maxReplicaCount', 'requiredReplicaCount', 'initialReplicaCount']) {
    if (count(given[name]) < 0) {
      const proto = protoFieldName(name);
      throw refuse(proto, `${field}.${proto} must not be negative (got ${String(given[name])}).`);
    }
  }
  if (min < 1 && !scaleToZero) {
    throw refuse(
      'min_replica_count',
      `${field}.min_replica_count must be at least 1 (got ${min}); 0 needs scale_to_zero_spec.`,
    );
  }
  if (min > 0 && scaleToZero) {
    throw refuse(
      'scale_to_zero_spec',
      `${field}.scale_to_zero_spec needs min_replica_count 0 (got ${min}): set it to 0 or drop scale_to_zero_spec.`,
    );
  }
  // As Vertex does, an unset max_replica_count means min_replica_count (at least 1).
  const max = count(given.maxReplicaCount) || Math.max(min, 1);
  if (max < min) {
    throw refuse(
      'max_replica_count',
      `${field}.max_replica_count (${max}) must not be less than min_replica_count (${min}).`,
    );
  }
  const required = count(given.requiredReplicaCount);
  if (required > (min > 0 ? min : max)) {
    throw refuse(
      'required_replica_count',
      min > 0
        ? `${field}.required_replica_count (${required}) must not exceed min_replica_count (${min}).`
        : `${field}.required_replica_count (${required}) must not exceed max_replica_count (${max}).`,
    );
  }
  const initial = count(given.initialReplicaCount);
  if (initial > 0 && min > 0) {
    throw refuse(
      'initial_replica_count',
      `${field}.initial_replica_count applies only with min_replica_count 0 (scale to zero); leave it out with min_replica_count ${min}.`,
    );
  }
  if (initial > max) {
    throw refuse(
      'initial_replica_count',
      `${field}.initial_replica_count (${initial}) must not exceed max_replica_count (${max}).`,
    );
  }
  if (scaleToZero) {
    for (const [name, proto] of [
      ['minScaleupPeriod', 'min_scaleup_period'],
      ['idleScaledownPeriod', 'idle_scaledown_period'],
    ] as const) {
      const period = scaleToZero[name];
      if (typeof period !== 'string') continue;
      const ms = durationMs(period);
      if (ms < SCALE_TO_ZERO_MIN_MS || ms > SCALE_TO_ZERO_MAX_MS) {
        throw refuse(
          `scale_to_zero_spec.${proto}`,
          `${field}.scale_to_zero_spec.${proto} must be between 300s and 28800s (8 hours); got ${period}.`,
        );
      }
    }
  }
  const flexStart = given.flexStart as Message | undefined;
  if (typeof flexStart?.maxRuntimeDuration === 'string') {
    const ms = durationMs(flexStart.maxRuntimeDuration);
    if (ms <= 0 || ms > FLEX_START_MAX_MS) {
      throw refuse(
        'flex_start.max_runtime_duration',
        `${field}.flex_start.max_runtime_duration must be positive and at most 7 days (604800s); got ${flexStart.maxRuntimeDuration}.`,
      );
    }
  }
  const autoscaling = checkAutoscaling(given.autoscalingMetricSpecs as Message[] | undefined, field);

  const resources = withoutDefaults({
    ...given,
    machineSpec,
    minReplicaCount: min,
    maxReplicaCount: max,
    ...(autoscaling ? { autoscalingMetricSpecs: autoscaling } : {}),
  });
  return { resources, initialReplicas: min > 0 ? min : initial || 1 };
}

function checkAutoscaling(specs: Message[] | undefined, field: string): Message[] | undefined {
  if (!specs || specs.length === 0) return undefined;
  const seen = new Set<string>();
  return specs.map((spec, i) => {
    const at = `${field}.autoscaling_metric_specs[${i}]`;
    const refuse = (description: string) => badRequest([{ field: at, description }]);
    const name = typeof spec.metricName === 'string' ? spec.metricName : '';
    if (!AUTOSCALING_METRICS.includes(name)) {
      throw refuse(
        `${at}.metric_name "${name}" is not supported; use one of ${AUTOSCALING_METRICS.join(', ')}.`,
      );
    }
    if (seen.has(name)) throw refuse(`${at}.metric_name ${name} is given twice; give each metric once.`);
    seen.add(name);
    const target = count(spec.target) || DEFAULT_AUTOSCALING_TARGET;
    if (target < 1 || (PERCENT_METRICS.includes(name) && target > 100)) {
      throw refuse(
        `${at}.target ${target} is out of range: ${PERCENT_METRICS.includes(name) ? 'a percentage from 1 to 100' : 'at least 1'} (default ${DEFAULT_AUTOSCALING_TARGET}).`,
      );
    }
    return { ...spec, target };
  });
}

const ENV_NAME_RE = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const PROBE_ACTIONS = ['exec', 'httpGet', 'grpc', 'tcpSocket'] as const;

/**
 * Checks `ModelContainerSpec` (model.proto) at `field`; returns it as given (canonical JSON), which
 * the created Model then reports.
 */
export function checkContainerSpec(spec: Message, field = 'model_config.container_spec'): Message {
  const refuse = (name: string, description: string) =>
    badRequest([{ field: `${field}.${name}`, description }]);
  if (typeof spec.imageUri !== 'string' || spec.imageUri === '') {
    throw refuse('image_uri', `${field}.image_uri is required when container_spec is set.`);
  }
  const env = (spec.env as Message[] | undefined) ?? [];
  const names = new Set<string>();
  env.forEach((variable, i) => {
    const name = typeof variable.name === 'string' ? variable.name : '';
    if (!ENV_NAME_RE.test(name)) {
      throw refuse(
        `env[${i}].name`,
        `${field}.env[${i}].name "${name}" is not a valid environment variable name (letters, digits, '_', '-', '.'; not starting with a digit).`,
      );
    }
    if (names.has(name))
      throw refuse(`env[${i}].name`, `${field}.env has "${name}" twice; give each name once.`);
    names.add(name);
  });
  const ports = (spec.ports as Message[] | undefined) ?? [];
  if (ports.length > 1) {
    throw refuse(
      'ports',
      `${field}.ports has ${ports.length} ports; Vertex sends traffic and health checks to the first one only, so give one.`,
    );
  }
  ports.forEach((port, i) => checkPort(port.containerPort, `${field}.ports[${i}].container_port`));
  for (const [name, proto] of [
    ['predictRoute', 'predict_route'],
    ['healthRoute', 'health_route'],
  ] as const) {
    const route = spec[name];
    if (typeof route === 'string' && route !== '' && !route.startsWith('/')) {
      throw refuse(proto, `${field}.${proto} "${route}" must be a path starting with "/".`);
    }
  }
  if (
    spec.invokeRoutePrefix !== undefined &&
    spec.invokeRoutePrefix !== '' &&
    spec.invokeRoutePrefix !== '/*'
  ) {
    throw refuse('invoke_route_prefix', `${field}.invoke_route_prefix may only be "/*".`);
  }
  for (const [name, proto] of [
    ['startupProbe', 'startup_probe'],
    ['healthProbe', 'health_probe'],
    ['livenessProbe', 'liveness_probe'],
  ] as const) {
    if (spec[name] !== undefined) checkProbe(spec[name] as Message, `${field}.${proto}`);
  }
  if (typeof spec.sharedMemorySizeMb === 'string' && BigInt(spec.sharedMemorySizeMb) < 0n) {
    throw refuse(
      'shared_memory_size_mb',
      `${field}.shared_memory_size_mb must not be negative (got ${spec.sharedMemorySizeMb}).`,
    );
  }
  if (typeof spec.deploymentTimeout === 'string') {
    const ms = durationMs(spec.deploymentTimeout);
    if (ms <= 0 || ms > DEPLOYMENT_TIMEOUT_MAX_MS) {
      throw refuse(
        'deployment_timeout',
        `${field}.deployment_timeout must be positive and at most 2 hours (7200s); got ${spec.deploymentTimeout}.`,
      );
    }
  }
  return spec;
}

function checkPort(value: unknown, at: string): void {
  const port = count(value);
  if (port < 1 || port > 65_535) {
    throw badRequest([{ field: at, description: `${at} must be a port from 1 to 65535 (got ${port}).` }]);
  }
}

function checkProbe(probe: Message, at: string): void {
  const actions = PROBE_ACTIONS.filter((a) => probe[a] !== undefined);
  if (actions.length !== 1) {
    throw badRequest([
      {
        field: at,
        description: `${at} needs exactly one of exec, http_get, grpc or tcp_socket (how to probe the container).`,
      },
    ]);
  }
  for (const name of [
    'periodSeconds',
    'timeoutSeconds',
    'failureThreshold',
    'successThreshold',
    'initialDelaySeconds',
  ]) {
    if (count(probe[name]) < 0) {
      const proto = protoFieldName(name);
      throw badRequest([
        {
          field: `${at}.${proto}`,
          description: `${at}.${proto} must not be negative (got ${String(probe[name])}).`,
        },
      ]);
    }
  }
  const target = (probe.httpGet ?? probe.tcpSocket ?? probe.grpc) as Message | undefined;
  if (target?.port !== undefined && target.port !== 0) checkPort(target.port, `${at}.${actions[0]}.port`);
}
