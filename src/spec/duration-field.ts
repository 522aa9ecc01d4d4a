import { z } from 'zod';
import { DURATION_RE, formatDuration, parseDuration } from './duration';

/** A zod duration field: accepts the string forms or milliseconds, yields milliseconds, bounded. */
export function durationField(options: { min?: number; max: number }) {
  return z
    .union([z.number().int().nonnegative(), z.string().regex(DURATION_RE, 'expected a duration like "30m"')])
    .transform((value) => parseDuration(value))
    .refine((ms) => ms >= (options.min ?? 0), `must be at least ${formatDuration(options.min ?? 0)}`)
    .refine((ms) => ms <= options.max, `must be at most ${formatDuration(options.max)}`);
}
