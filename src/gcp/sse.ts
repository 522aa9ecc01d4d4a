/** One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface ServerSentEvent {
  /** `event:` field; `message` when absent. */
  event: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  id?: string;
}

export class SseFormatError extends Error {
  override readonly name = 'SseFormatError';
}

/** Bound on one event (a line or the data of all its lines), so a peer cannot grow memory unbounded. */
const DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024;

/**
 * Parses an SSE byte stream. Handles events split across chunks at any byte (including inside a
 * UTF-8 sequence or between `\r` and `\n`), comment lines, multi-line data and every line ending.
 * An event still open when the stream ends is dropped, as the spec requires.
 */
export async function* parseServerSentEvents(
  chunks: AsyncIterable<Uint8Array>,
  options: { maxEventBytes?: number } = {},
): AsyncGenerator<ServerSentEvent> {
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  let data: string[] = [];
  let dataSize = 0;
  let event = '';
  let id: string | undefined;
  let first = true;

  const handleLine = (line: string): ServerSentEvent | undefined => {
    if (line === '') {
      const out =
        data.length > 0
          ? { event: event || 'message', data: data.join('\n'), ...(id ? { id } : {}) }
          : undefined;
      data = [];
      dataSize = 0;
      event = '';
      return out;
    }
    if (line.startsWith(':')) return undefined; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      dataSize += value.length;
      if (dataSize > maxEventBytes)
        throw new SseFormatError(`an event's data exceeds ${maxEventBytes} bytes`);
      data.push(value);
    } else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
    // `retry:` and unknown fields are ignored.
    return undefined;
  };

  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true });
    if (first && buffer.length > 0) {
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
      first = false;
    }
    let start = 0;
    for (;;) {
      const cr = buffer.indexOf('\r', start);
      const lf = buffer.indexOf('\n', start);
      if (cr === -1 && lf === -1) break;
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        // A lone `\r` at the end may be the first half of `\r\n`: wait for more.
        if (cr === buffer.length - 1) break;
        end = cr;
        next = buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      const parsed = handleLine(buffer.slice(start, end));
      start = next;
      if (parsed) yield parsed;
    }
    buffer = buffer.slice(start);
    if (buffer.length > maxEventBytes) throw new SseFormatError(`a line exceeds ${maxEventBytes} bytes`);
  }
  buffer += decoder.decode();
  // A trailing `\r` ends its line; anything after the last line ending is an unterminated event.
  if (buffer.endsWith('\r')) {
    const parsed = handleLine(buffer.slice(0, -1));
    if (parsed) yield parsed;
  }
}
