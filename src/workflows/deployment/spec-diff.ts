import type { DeploymentSpec } from '../../spec';

/** Most differing fields named in a refusal; the rest are counted. */
const MAX_LISTED = 8;
/** Longest value shown for one side of a difference. */
const MAX_VALUE_CHARS = 80;

export interface SpecDifference {
  path: string;
  current: unknown;
  requested: unknown;
}

/**
 * What a difference in a spec field means for a serving deployment:
 * - `fixed`: names the deployment or its endpoint (name, project, region, endpoint, access): only a
 *   new deployment can change it;
 * - `revision`: what is served and how (model, machine, validation, capacity, container, fast
 *   tryout, access logging, initial replicas, scale to zero): a new revision, by upgrade;
 * - `inPlace`: replicas, autoscaling and container logging, changed on the serving deployed model
 *   by `scale` (mutateDeployedModel);
 * - `settings`: how it is tested and upgraded (smoke, timeouts, strategy, gates, labels, windows,
 *   the inference timeout): recorded by the next upgrade.
 */
type DifferenceKind = 'fixed' | 'revision' | 'inPlace' | 'settings';

const KIND_OF_FIELD: Record<keyof DeploymentSpec, DifferenceKind> = {
  name: 'fixed',
  project: 'fixed',
  region: 'fixed',
  endpoint: 'fixed',
  access: 'fixed',
  model: 'revision',
  machine: 'revision',
  validation: 'revision',
  capacity: 'revision',
  container: 'revision',
  fastTryout: 'revision',
  replicas: 'inPlace',
  logging: 'inPlace',
  smoke: 'settings',
  timeouts: 'settings',
  rollbackWindow: 'settings',
  labels: 'settings',
  strategy: 'settings',
  gates: 'settings',
};

/** Nested fields whose kind differs from their section's. */
const KIND_OF_PATH: Record<string, DifferenceKind> = {
  'replicas.initial': 'revision',
  'replicas.scaleToZero': 'revision',
  'logging.access': 'revision',
  'endpoint.inferenceTimeout': 'settings',
};

/**
 * Fields added to the spec after deployments were running, with the value a recorded spec without
 * them means (`undefined`: any). A recorded spec that lacks one differs only from another value.
 */
const ADDED_LATER: Record<string, unknown> = {
  strategy: undefined,
  gates: undefined,
  capacity: { spot: false },
  logging: { container: true, access: false },
  fastTryout: false,
  'endpoint.dedicated': true,
};

function kindOf(difference: SpecDifference): DifferenceKind {
  const path = difference.path;
  const nested = Object.keys(KIND_OF_PATH).find((prefix) => path === prefix || path.startsWith(`${prefix}.`));
  if (nested) return KIND_OF_PATH[nested]!;
  const field = path.split(/[.[]/)[0] as keyof DeploymentSpec;
  return KIND_OF_FIELD[field] ?? 'fixed';
}

/** The fields (dotted paths) where `requested` differs from `current`, both parsed specs. */
export function specDifferences(current: DeploymentSpec, requested: DeploymentSpec): SpecDifference[] {
  const out: SpecDifference[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (isRecord(a) && isRecord(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const key of keys) {
        const child = path ? `${path}.${key}` : key;
        if (a[key] === undefined && child in ADDED_LATER) {
          const meant = ADDED_LATER[child];
          if (meant === undefined || JSON.stringify(meant) === JSON.stringify(b[key])) continue;
        }
        walk(a[key], b[key], child);
      }
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, current: a, requested: b });
  };
  walk(current, requested, '');
  return out;
}

/** The differences of each kind. */
export function classify(differences: SpecDifference[]): Record<DifferenceKind, SpecDifference[]> {
  const out: Record<DifferenceKind, SpecDifference[]> = {
    fixed: [],
    revision: [],
    inPlace: [],
    settings: [],
  };
  for (const difference of differences) out[kindOf(difference)].push(difference);
  return out;
}

/**
 * Why a spec is refused for this deployment, what differs, and which command changes it:
 * fixed fields → teardown, then deploy; only replicas, autoscaling, logging → `scale`; only settings → `upgrade`.
 */
export function differentSpecMessage(
  workflowId: string,
  stage: string,
  differences: SpecDifference[],
): string {
  const kinds = classify(differences);
  const name = workflowId.split('/').pop() ?? workflowId;
  const how =
    kinds.fixed.length > 0
      ? `${kinds.fixed.map((d) => d.path).join(', ')} cannot change on a deployment: to serve this spec instead, ` +
        `remove it with \`garden-deploy teardown ${workflowId}\`, then deploy again`
      : kinds.revision.length === 0 && kinds.settings.length === 0
        ? `change them in place with \`garden-deploy scale ${name}\` (--min, --max, --autoscaling, --container-logging)`
        : kinds.revision.length === 0
          ? `these settings take effect through \`garden-deploy upgrade ${name} -f <spec>\` (a deploy starts an upgrade ` +
            'only for another model, machine or validation)'
          : `roll out the new revision with \`garden-deploy upgrade ${name} -f <spec>\``;
  return (
    `deployment ${workflowId} already exists (stage ${stage}) with another spec, so this one was not applied; ` +
    `it differs in ${listDifferences(differences)}. Nothing was changed: ${how}.`
  );
}

/** `model.uri: "gs://a" → "gs://b"; …; and 3 more`. */
export function listDifferences(differences: SpecDifference[]): string {
  const listed = differences
    .slice(0, MAX_LISTED)
    .map((d) => `${d.path}: ${show(d.current)} → ${show(d.requested)}`)
    .join('; ');
  return `${listed}${differences.length > MAX_LISTED ? `; and ${differences.length - MAX_LISTED} more` : ''}`;
}

function show(value: unknown): string {
  const text = value === undefined ? 'unset' : JSON.stringify(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
