import { readFile, stat } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { type DeploymentSpec, DeploymentSpecSchema } from './deployment-spec';

export interface SpecIssue {
  /** Dotted path of the offending field, e.g. `smoke.tests[0].mode`. */
  path: string;
  message: string;
}

/** A spec that cannot be used, with every problem and the field it concerns. */
export class InvalidSpecError extends Error {
  override readonly name = 'InvalidSpecError';
  constructor(
    readonly issues: SpecIssue[],
    source?: string,
  ) {
    super(
      `invalid deployment spec${source ? ` ${source}` : ''}:\n` +
        issues.map((issue) => `  - ${issue.path || '(root)'}: ${issue.message}`).join('\n'),
    );
  }
}

const MAX_SPEC_BYTES = 256 * 1024;

export function parseDeploymentSpec(input: unknown, source?: string): DeploymentSpec {
  const result = DeploymentSpecSchema.safeParse(input);
  if (!result.success) throw new InvalidSpecError(specIssues(result.error), source);
  return result.data;
}

/** Reads a YAML or JSON spec file (JSON is YAML). */
export async function loadDeploymentSpecFile(file: string): Promise<DeploymentSpec> {
  return parseDeploymentSpec(await readDeploymentSpecDocument(file), file);
}

/** The spec file's document, not yet checked against the schema (e.g. to merge CLI flags over it first). */
export async function readDeploymentSpecDocument(file: string): Promise<unknown> {
  const { size } = await stat(file);
  if (size > MAX_SPEC_BYTES)
    throw new InvalidSpecError(
      [{ path: '', message: `file is ${size} bytes; a spec is at most ${MAX_SPEC_BYTES}` }],
      file,
    );
  return parseDeploymentSpecDocument(await readFile(file, 'utf8'), file);
}

/**
 * A spec's YAML or JSON text as a document, not yet checked against the schema (a file's, a storage
 * event's marker object); the caller bounds its size.
 */
export function parseDeploymentSpecDocument(text: string, source?: string): unknown {
  try {
    // uniqueKeys: a repeated key is a mistake, not an override; maxAliasCount bounds alias expansion.
    return parseYaml(text, { uniqueKeys: true, maxAliasCount: 50, prettyErrors: true });
  } catch (err) {
    throw new InvalidSpecError(
      [{ path: '', message: `not valid YAML/JSON: ${(err as Error).message}` }],
      source,
    );
  }
}

/** zod's issues as the spec's: a dotted path per field (`smoke.tests[0].mode`), unknown fields named. */
export function specIssues(error: z.ZodError): SpecIssue[] {
  return error.issues.map((issue) => {
    let message = issue.message;
    if (issue.code === 'unrecognized_keys')
      message = `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return { path: formatPath(issue.path), message };
  });
}

function formatPath(path: PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`))
    .join('');
}
