import type { z } from 'zod';

/** Bad input to a client call, detected before anything is sent: nothing was changed. */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
}

/** Parses `value` with `schema`, turning zod issues into one message naming each bad field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 10)
    .map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`);
  throw new InvalidRequestError(`invalid ${what}: ${issues.join('; ')}`);
}
