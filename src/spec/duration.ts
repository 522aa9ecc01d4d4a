const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** `90s`, `30m`, `2h`, `1.5h`, `7d`, `250ms`. */
export const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds from `"90s"`, `"30m"`, `"2h"`, `"1.5h"`, `"7d"`, `"250ms"` or a number of milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = DURATION_RE.exec(value.trim());
  if (!match)
    throw new Error(`"${value}" is not a duration; use e.g. "90s", "30m", "2h" or a number of milliseconds`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}

/** Human form for messages: 5400000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1_000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
