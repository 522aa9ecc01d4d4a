import { z } from 'zod';
import { InvalidRequestError, parseInput } from './input';

/**
 * Google Cloud resource labels (shared rules of Vertex AI and Compute Engine): at most 64, keys
 * start with a lowercase letter, keys and values ≤63 of `[a-z0-9_-]`. Google also allows
 * international lowercase letters; this client sticks to ASCII so filters need no escaping.
 */
export const LABEL_KEY_RE = /^[a-z][a-z0-9_-]{0,62}$/;
export const LABEL_VALUE_RE = /^[a-z0-9_-]{0,63}$/;

export const LabelsSchema = z.record(z.string(), z.string()).superRefine((labels, ctx) => {
  const entries = Object.entries(labels);
  if (entries.length > 64)
    ctx.addIssue({ code: 'custom', message: `${entries.length} labels; at most 64 are allowed` });
  for (const [key, value] of entries) {
    if (!LABEL_KEY_RE.test(key)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: 'label keys start with a lowercase letter, then ≤62 of [a-z0-9_-]',
      });
    }
    if (!LABEL_VALUE_RE.test(value)) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'label values are ≤63 of [a-z0-9_-]' });
    }
  }
});

export type Labels = z.infer<typeof LabelsSchema>;

/** AIP-160 filter matching every given label exactly, e.g. `labels.owner="garden-deploy" AND labels.deployment="x"`. */
export function labelsFilter(labels: Labels): string {
  const entries = Object.entries(parseInput(LabelsSchema, labels, 'labels'));
  if (entries.length === 0) throw new InvalidRequestError('a label filter needs at least one label');
  return entries.map(([key, value]) => `labels.${key}="${value}"`).join(' AND ');
}

/** True when `actual` carries every label of `expected` with the same value. */
export function hasLabels(actual: Readonly<Record<string, string>> | undefined, expected: Labels): boolean {
  return Object.entries(expected).every(([key, value]) => actual?.[key] === value);
}
