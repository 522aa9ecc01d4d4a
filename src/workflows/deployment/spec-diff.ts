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

/** The fields (dotted paths) where `requested` differs from `current`, both parsed specs. */
export function specDifferences(current: DeploymentSpec, requested: DeploymentSpec): SpecDifference[] {
  const out: SpecDifference[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (isRecord(a) && isRecord(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const key of keys) walk(a[key], b[key], path ? `${path}.${key}` : key);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, current: a, requested: b });
  };
  walk(current, requested, '');
  return out;
}

/**
 * Why a start with another spec is refused, what differs, and which command changes it: only the
 * replicas → `scale`; anything else → (until upgrades exist) teardown, then deploy.
 */
export function differentSpecMessage(
  workflowId: string,
  stage: string,
  differences: SpecDifference[],
): string {
  const listed = differences
    .slice(0, MAX_LISTED)
    .map((d) => `${d.path}: ${show(d.current)} → ${show(d.requested)}`)
    .join('; ');
  const more = differences.length > MAX_LISTED ? `; and ${differences.length - MAX_LISTED} more` : '';
  const onlyReplicas = differences.every((d) => d.path.startsWith('replicas.'));
  const name = workflowId.split('/').pop() ?? workflowId;
  const how = onlyReplicas
    ? `change the replicas in place with \`garden-deploy scale ${name} --min N [--max M]\``
    : `to serve this spec instead, remove the deployment with \`garden-deploy teardown ${workflowId}\`, then deploy again`;
  return (
    `deployment ${workflowId} already exists (stage ${stage}) with another spec, so this one was not applied; ` +
    `it differs in ${listed}${more}. Nothing was changed: ${how}.`
  );
}

function show(value: unknown): string {
  const text = value === undefined ? 'unset' : JSON.stringify(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
