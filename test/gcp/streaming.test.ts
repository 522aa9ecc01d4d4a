import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ChatCompletionChunk,
  GcpApiError,
  InvalidRequestError,
  type PredictionTarget,
  chatCompletionChunks,
  createGcpClient,
  parseServerSentEvents,
} from '../../src/gcp';
import { type TestServer, countingTokenSource, startTestServer } from './test-server';

const ENDPOINT = 'projects/my-project/locations/us-central1/endpoints/ep-1';
const TARGET: PredictionTarget = {
  endpoint: ENDPOINT,
  host: 'ep-1.us-central1-123.prediction.vertexai.goog',
  via: 'dedicated',
};

async function* chunksOf(...parts: Array<string | Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part) : part;
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

function chunk(content: string): string {
  return JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] });
}

describe('parseServerSentEvents', () => {
  const stream = `: keep-alive\n\ndata: ${chunk('Hel')}\n\nevent: note\ndata: line one\ndata: line two\nid: 7\n\ndata:${chunk('lo')}\r\n\r\ndata: [DONE]\n\n`;

  it('parses events, comments, multi-line data, event/id fields and every line ending', async () => {
    const events = await collect(parseServerSentEvents(chunksOf(stream)));
    // The last event ID sticks to later events, as the SSE spec says.
    expect(events).toEqual([
      { event: 'message', data: chunk('Hel') },
      { event: 'note', data: 'line one\nline two', id: '7' },
      { event: 'message', data: chunk('lo'), id: '7' },
      { event: 'message', data: '[DONE]', id: '7' },
    ]);
  });

  it('gives the same events however the bytes are split (including inside UTF-8 and CRLF)', async () => {
    const text = `data: {"x":"héllo ✓"}\r\n\r\n${stream}`;
    const bytes = Buffer.from(text);
    const expected = await collect(parseServerSentEvents(chunksOf(bytes)));
    for (let cut = 1; cut < bytes.length; cut++) {
      const split = await collect(
        parseServerSentEvents(chunksOf(bytes.subarray(0, cut), bytes.subarray(cut))),
      );
      expect(split).toEqual(expected);
    }
    const oneByOne = await collect(
      parseServerSentEvents(chunksOf(...[...bytes].map((b) => Uint8Array.of(b)))),
    );
    expect(oneByOne).toEqual(expected);
    expect(expected[0]?.data).toBe('{"x":"héllo ✓"}');
  });

  it('drops an event left open when the stream ends', async () => {
    expect(await collect(parseServerSentEvents(chunksOf('data: a\n\ndata: b')))).toEqual([
      { event: 'message', data: 'a' },
    ]);
  });

  it('refuses an event bigger than the bound', async () => {
    await expect(
      collect(parseServerSentEvents(chunksOf(`data: ${'x'.repeat(2000)}\n\n`), { maxEventBytes: 1000 })),
    ).rejects.toThrow(/exceeds 1000 bytes/);
  });
});

describe('chatCompletionChunks', () => {
  const call = 'POST test';

  it('stops at [DONE] without reading further', async () => {
    let readAfterDone = false;
    async function* events() {
      yield { event: 'message', data: chunk('a') };
      yield { event: 'message', data: '[DONE]' };
      readAfterDone = true;
      yield { event: 'message', data: chunk('never') };
    }
    const chunks = await collect(chatCompletionChunks(events(), call));
    expect(chunks.map((c) => c.choices[0]?.delta.content)).toEqual(['a']);
    expect(readAfterDone).toBe(false);
  });

  it('surfaces an in-band error object as GcpApiError', async () => {
    async function* events() {
      yield { event: 'message', data: chunk('partial') };
      yield {
        event: 'message',
        data: JSON.stringify({
          error: { object: 'error', message: 'CUDA out of memory', type: 'InternalServerError', code: 500 },
        }),
      };
    }
    const seen: ChatCompletionChunk[] = [];
    const err = await (async () => {
      for await (const c of chatCompletionChunks(events(), call)) seen.push(c);
    })().catch((e: unknown) => e);
    expect(seen).toHaveLength(1);
    expect(err).toBeInstanceOf(GcpApiError);
    expect(err).toMatchObject({ source: 'stream', status: 'INTERNAL', classification: 'retryable' });
    expect((err as GcpApiError).googleMessage).toBe('CUDA out of memory');
  });

  it('surfaces a Vertex-style error (array-wrapped google.rpc.Status)', async () => {
    async function* events() {
      yield {
        event: 'message',
        data: JSON.stringify([
          { error: { code: 400, message: 'max_tokens too large', status: 'INVALID_ARGUMENT' } },
        ]),
      };
    }
    await expect(collect(chatCompletionChunks(events(), call))).rejects.toMatchObject({
      status: 'INVALID_ARGUMENT',
      classification: 'permanent',
    });
  });

  it('a stream that ends without [DONE] is a retryable failure', async () => {
    async function* events() {
      yield { event: 'message', data: chunk('cut') };
    }
    await expect(collect(chatCompletionChunks(events(), call))).rejects.toMatchObject({
      source: 'stream',
      classification: 'retryable',
      googleMessage: 'the stream ended before data: [DONE]',
    });
  });
});

describe('streaming over HTTP', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    await server.close();
  });

  const client = (overrides: Parameters<typeof createGcpClient>[0] = {}) =>
    createGcpClient({ predictionBaseUrl: server.url, ...overrides }, { tokenSource: countingTokenSource() });

  it('chatCompletionsStream sends stream:true and yields chunks written in awkward pieces', async () => {
    const body = `data: ${chunk('Hel')}\n\n: ping\n\ndata: ${chunk('lo')}\n\ndata: [DONE]\n\n`;
    server.handler = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < body.length; i += 7) {
        res.write(body.slice(i, i + 7));
        await new Promise((r) => setImmediate(r));
      }
      res.end();
    };
    const chunks = await collect(
      client().prediction.chatCompletionsStream(TARGET, {
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 8,
      }),
    );
    expect(chunks.map((c) => c.choices[0]?.delta.content).join('')).toBe('Hello');
    const sent = JSON.parse(server.requests[0]!.body.toString()) as Record<string, unknown>;
    expect(sent).toEqual({
      model: '',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 8,
      stream: true,
    });
    expect(server.requests[0]!.headers.host).toBe(TARGET.host);
    expect(server.requests[0]!.headers.accept).toBe('text/event-stream');
  });

  it('an HTTP error before the stream starts is thrown on first iteration', async () => {
    server.handler = (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: { code: 503, status: 'UNAVAILABLE', message: 'Took too long to respond when processing' },
        }),
      );
    };
    await expect(
      collect(
        client().prediction.chatCompletionsStream(TARGET, { messages: [{ role: 'user', content: 'x' }] }),
      ),
    ).rejects.toMatchObject({ status: 'UNAVAILABLE', httpStatus: 503, classification: 'retryable' });
  });

  it('a stream that goes silent longer than the timeout fails as DEADLINE_EXCEEDED', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${chunk('a')}\n\n`); // then nothing
    };
    await expect(
      collect(
        client({ predictionTimeoutMs: 300 }).prediction.chatCompletionsStream(TARGET, {
          messages: [{ role: 'user', content: 'x' }],
        }),
      ),
    ).rejects.toMatchObject({ status: 'DEADLINE_EXCEEDED', source: 'timeout' });
  });

  it('aborting mid-stream stops iteration with the signal reason and closes the connection', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${chunk('a')}\n\n`);
    };
    const controller = new AbortController();
    const reason = new Error('cancelled by workflow');
    const seen: string[] = [];
    const err = await (async () => {
      for await (const c of client().prediction.chatCompletionsStream(
        TARGET,
        { messages: [{ role: 'user', content: 'x' }] },
        { signal: controller.signal },
      )) {
        seen.push(c.choices[0]?.delta.content ?? '');
        controller.abort(reason);
      }
    })().catch((e: unknown) => e);
    expect(err).toBe(reason);
    expect(seen).toEqual(['a']);
    await expect.poll(() => server.closedEarly).toBe(1);
  });

  it('maxStreamBytes bounds a stream that never ends', async () => {
    server.handler = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < 100 && !res.destroyed; i++) {
        res.write(`data: ${chunk('x'.repeat(100))}\n\n`);
        await new Promise((r) => setImmediate(r));
      }
    };
    await expect(
      collect(
        client({ maxStreamBytes: 2000 }).prediction.chatCompletionsStream(TARGET, {
          messages: [{ role: 'user', content: 'x' }],
        }),
      ),
    ).rejects.toMatchObject({ status: 'OUT_OF_RANGE' });
  });

  it('streamRawPredict yields the raw bytes, which parse as SSE', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${chunk('raw')}\n\n`);
      res.end('data: [DONE]\n\n');
    };
    const gcp = client();
    const raw = gcp.prediction.streamRawPredict(TARGET, {
      json: { messages: [{ role: 'user', content: 'x' }], stream: true },
    });
    const chunks = await collect(chatCompletionChunks(parseServerSentEvents(raw), 'streamRawPredict'));
    expect(chunks[0]?.choices[0]?.delta.content).toBe('raw');
    expect(server.requests[0]!.url).toBe(`/v1beta1/${ENDPOINT}:streamRawPredict`);
  });

  it('rawPredict passes bytes and content type through and reports the serving IDs', async () => {
    server.handler = (req, res) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'x-vertex-ai-endpoint-id': 'ep-1',
        'x-vertex-ai-deployed-model-id': '555',
      });
      res.end(`echo:${req.body.toString()}`);
    };
    const result = await client().prediction.rawPredict(TARGET, { data: 'hello', contentType: 'text/plain' });
    expect(result).toMatchObject({
      status: 200,
      contentType: 'text/plain',
      endpointId: 'ep-1',
      deployedModelId: '555',
    });
    expect(result.body.toString()).toBe('echo:hello');
    expect(server.requests[0]!.headers['content-type']).toBe('text/plain');
  });

  it('rejects a chat request with stream set or no messages before sending', async () => {
    const gcp = client();
    await expect(
      gcp.prediction.chatCompletions(TARGET, {
        messages: [{ role: 'user', content: 'x' }],
        stream: true,
      } as never),
    ).rejects.toThrow(InvalidRequestError);
    await expect(gcp.prediction.chatCompletions(TARGET, { messages: [] })).rejects.toThrow(
      /at least one message/,
    );
    expect(server.requests).toHaveLength(0);
  });
});
