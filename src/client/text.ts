/** First line of an error's message: later lines may quote input (e.g. a config file's line). */
export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

/** `text` cut to at most `maxBytes` of UTF-8, with an ellipsis when cut. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = '';
  for (const char of text) {
    if (Buffer.byteLength(`${out}${char}…`) > maxBytes) break;
    out += char;
  }
  return `${out}…`;
}
