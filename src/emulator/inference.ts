import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { ApiError, badRequest } from './errors';
import {
  INFERENCE_BODY_LIMIT,
  type RequestContext,
  type Route,
  parseJsonBody,
  readBody,
  sendJson,
  startEventStream,
} from './http';
import { V1BETA1, checkProtoJson } from './protos';
import type { Serving } from './traffic';

/**
 * The dedicated (or PSC) prediction host of an endpoint: OpenAI-compatible chat completions as
 * served by the vLLM container, `:predict`, `:rawPredict` and `:streamRawPredict`. Answers are
 * deterministic functions of the prompt, with token counts (one token per word). Which deployed
 * model answers is decided before the handler runs (traffic.ts, in dispatch).
 */

const VOCABULARY = (
  'the model answers from its fine tuned weights on vertex with a short deterministic reply about ' +
  'gardens deployments tokens replicas endpoints prompts and careful engineering practice today'
).split(' ');
const NATURAL_MIN_WORDS = 8;

interface Generation {
  text: string;
  words: string[];
  promptTokens: number;
  completionTokens: number;
  finishReason: 'stop' | 'length';
}

function countTokens(text: string): number {
  return (text.match(/\S+/g) ?? []).length;
}

/** Same prompt and limit → same words; stops early (`length`) when `maxTokens` cuts it. */
export function generate(
  prompt: string,
  maxTokens: number | undefined,
  promptTokens = countTokens(prompt),
): Generation {
  const digest = createHash('sha256').update(prompt).digest();
  const natural = NATURAL_MIN_WORDS + (digest[0]! % 9);
  const count = Math.min(natural, maxTokens ?? natural);
  const words = Array.from(
    { length: count },
    (_, i) => VOCABULARY[digest[(i + 1) % digest.length]! % VOCABULARY.length]!,
  );
  if (words.length > 0 && count === natural) words[words.length - 1] += '.';
  return {
    text: words.join(' '),
    words,
    promptTokens,
    completionTokens: count,
    finishReason: count < natural ? 'length' : 'stop',
  };
}

const ContentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const ChatMessage = z.looseObject({
  role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']),
  content: z.union([z.string().max(1_000_000), z.array(ContentPart).max(1000), z.null()]).optional(),
});
/** vLLM accepts (and ignores) OpenAI parameters it does not use, so unknown keys pass. */
const ChatRequest = z.looseObject({
  model: z.string().max(1000).optional(),
  messages: z.array(ChatMessage).min(1).max(10_000),
  max_tokens: z.number().int().min(1).max(1_000_000).nullish(),
  max_completion_tokens: z.number().int().min(1).max(1_000_000).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
});
type ChatRequest = z.infer<typeof ChatRequest>;

/** An in-band error after the stream has started (HTTP status is already 200). */
const STREAM_ERROR = JSON.stringify({
  error: {
    object: 'error',
    message: 'Internal server error while generating (injected fault).',
    type: 'InternalServerError',
    param: null,
    code: 500,
  },
});

/** vLLM's OpenAI-server error body. */
function vllmError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, {
    object: 'error',
    message,
    type: status === 400 ? 'BadRequestError' : 'InternalServerError',
    param: null,
    code: status,
  });
}

function flattenMessages(messages: ChatRequest['messages']): string {
  return messages
    .map(
      (m) =>
        `${m.role}: ${typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text ?? '').join(' ')}`,
    )
    .join('\n');
}

/** Who serves this call: dispatch routed it by the traffic split before the fault decision. */
function routedTo(ctx: RequestContext): Serving {
  if (!ctx.serving)
    throw new Error(`inference route ${ctx.url.pathname} was dispatched without a routing decision`);
  return ctx.serving;
}

async function readJsonBody(ctx: RequestContext): Promise<unknown> {
  return parseJsonBody(await readBody(ctx.req, INFERENCE_BODY_LIMIT));
}

function completionId(prefix: string, seed: string): string {
  return `${prefix}-${createHash('sha256').update(seed).digest('hex').slice(0, 24)}`;
}

/** The container's chat completion (unary JSON or SSE), including vLLM's own 400s. */
function chatCompletion(ctx: RequestContext, target: Serving, body: unknown, forceStream: boolean): void {
  const parsed = ChatRequest.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return vllmError(ctx.res, 400, `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  const request = parsed.data;
  if (!target.deployed.served.chatTemplate) {
    return vllmError(
      ctx.res,
      400,
      'As of transformers v4.44, default chat template is no longer allowed, so you must provide a chat template if the tokenizer does not define one.',
    );
  }
  const prompt = flattenMessages(request.messages);
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  const model = request.model || target.deployed.displayName;
  const created = Math.floor(ctx.now / 1000);
  const id = completionId('chatcmpl', `${prompt}#${maxTokens}`);
  const n = request.n ?? 1;
  const generations = Array.from({ length: n }, (_, i) =>
    generate(
      i === 0 ? prompt : `${prompt}#${i}`,
      maxTokens ?? undefined,
      countTokens(prompt) + 4 * request.messages.length,
    ),
  );
  const usage = {
    prompt_tokens: generations[0]!.promptTokens,
    completion_tokens: generations.reduce((sum, g) => sum + g.completionTokens, 0),
    total_tokens: generations[0]!.promptTokens + generations.reduce((sum, g) => sum + g.completionTokens, 0),
  };
  if (!request.stream && !forceStream) {
    return sendJson(ctx.res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: generations.map((g, index) => ({
        index,
        message: { role: 'assistant', content: g.text },
        logprobs: null,
        finish_reason: g.finishReason,
      })),
      usage,
    });
  }
  const send = startEventStream(ctx.res);
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    send(JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra }));
  generations.forEach((_, index) =>
    chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
  );
  const longest = Math.max(...generations.map((g) => g.words.length));
  for (let w = 0; w < longest; w++) {
    generations.forEach((g, index) => {
      if (w < g.words.length)
        chunk([
          {
            index,
            delta: { content: (w === 0 ? '' : ' ') + g.words[w] },
            logprobs: null,
            finish_reason: null,
          },
        ]);
    });
    if (w === 0 && ctx.fault.type === 'streamError') {
      send(STREAM_ERROR);
      send('[DONE]');
      ctx.res.end();
      return;
    }
  }
  generations.forEach((g, index) =>
    chunk([{ index, delta: {}, logprobs: null, finish_reason: g.finishReason }]),
  );
  if (request.stream_options?.include_usage) chunk([], { usage });
  send('[DONE]');
  ctx.res.end();
}

async function chatCompletions(ctx: RequestContext): Promise<void> {
  const target = routedTo(ctx);
  chatCompletion(ctx, target, await readJsonBody(ctx), false);
}

/** One `:predict` instance as the Model Garden vLLM container answers it. */
function predictInstance(
  instance: unknown,
  parameters: Record<string, unknown>,
  index: number,
  target: Serving,
  now: number,
): unknown {
  const fields =
    instance && typeof instance === 'object' && !Array.isArray(instance)
      ? (instance as Record<string, unknown>)
      : undefined;
  if (fields?.['@requestFormat'] === 'chatCompletions' && Array.isArray(fields.messages)) {
    const parsed = ChatRequest.safeParse(fields);
    if (!parsed.success)
      throw badRequest([
        {
          field: `instances[${index}]`,
          description: `instances[${index}]: ${parsed.error.issues[0]!.message}`,
        },
      ]);
    if (!target.deployed.served.chatTemplate) {
      throw new ApiError(
        'FAILED_PRECONDITION',
        `instances[${index}] uses chatCompletions but the model has no chat template; send a "prompt" instead.`,
      );
    }
    const prompt = flattenMessages(parsed.data.messages);
    const g = generate(prompt, parsed.data.max_tokens ?? undefined);
    return {
      id: completionId('chatcmpl', prompt),
      object: 'chat.completion',
      created: Math.floor(now / 1000),
      model: target.deployed.displayName,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: g.text },
          logprobs: null,
          finish_reason: g.finishReason,
        },
      ],
      usage: {
        prompt_tokens: g.promptTokens,
        completion_tokens: g.completionTokens,
        total_tokens: g.promptTokens + g.completionTokens,
      },
    };
  }
  if (typeof fields?.prompt !== 'string') {
    throw badRequest([
      {
        field: `instances[${index}]`,
        description: `instances[${index}] needs a "prompt" string (or "@requestFormat": "chatCompletions" with "messages").`,
      },
    ]);
  }
  const maxTokens = fields.max_tokens ?? parameters.max_tokens;
  const g = generate(fields.prompt, typeof maxTokens === 'number' && maxTokens > 0 ? maxTokens : undefined);
  return (fields.raw_response ?? parameters.raw_response) === true
    ? g.text
    : `Prompt:\n${fields.prompt}\nOutput:\n${g.text}`;
}

async function predict(ctx: RequestContext): Promise<void> {
  const target = routedTo(ctx);
  const result = checkProtoJson(`${V1BETA1}.PredictRequest`, await readJsonBody(ctx));
  if (!result.ok) throw badRequest(result.violations);
  const instances = (result.value.instances as unknown[] | undefined) ?? [];
  if (instances.length === 0)
    throw badRequest([{ field: 'instances', description: 'instances must contain at least one instance.' }]);
  const parameters = (result.value.parameters as Record<string, unknown> | undefined) ?? {};
  sendJson(ctx.res, 200, {
    predictions: instances.map((instance, i) => predictInstance(instance, parameters, i, target, ctx.now)),
    deployedModelId: target.deployed.id,
    model: target.deployed.model,
    modelVersionId: '1',
    modelDisplayName: target.deployed.displayName,
  });
}

/** `:rawPredict` hands the body to the container's predict route and returns its answer as-is. */
async function rawPredict(ctx: RequestContext): Promise<void> {
  const target = routedTo(ctx);
  const body = await readJsonBody(ctx);
  const fields =
    body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  if (Array.isArray(fields.messages)) return chatCompletion(ctx, target, body, false);
  if (Array.isArray(fields.instances)) {
    const parameters = (fields.parameters as Record<string, unknown> | undefined) ?? {};
    return sendJson(ctx.res, 200, {
      predictions: fields.instances.map((instance, i) =>
        predictInstance(instance, parameters, i, target, ctx.now),
      ),
    });
  }
  if (typeof fields.prompt === 'string') {
    return sendJson(ctx.res, 200, { predictions: [predictInstance(fields, {}, 0, target, ctx.now)] });
  }
  vllmError(
    ctx.res,
    400,
    'The request body must be a chat completion ("messages"), a Vertex predict body ("instances") or a "prompt".',
  );
}

/**
 * The documented Model Garden `:streamRawPredict` body: one vLLM instance with a prompt, asking for
 * a stream, plus vLLM sampling fields. Strict, so a client sending another shape finds out here
 * rather than against Google.
 */
const StreamRawPredictRequest = z.strictObject({
  instances: z
    .array(
      z.strictObject({
        prompt: z.string().max(1_000_000),
        stream: z.literal(true, { error: 'must be true' }),
        max_tokens: z.number().int().min(1).max(1_000_000).optional(),
        min_tokens: z.number().int().min(0).max(1_000_000).optional(),
        temperature: z.number().min(0).max(2).optional(),
        top_p: z.number().gt(0).max(1).optional(),
        top_k: z.number().int().min(-1).optional(),
        min_p: z.number().min(0).max(1).optional(),
        ignore_eos: z.boolean().optional(),
        seed: z.number().int().optional(),
        presence_penalty: z.number().min(-2).max(2).optional(),
        frequency_penalty: z.number().min(-2).max(2).optional(),
        repetition_penalty: z.number().gt(0).max(2).optional(),
        stop: z.union([z.string(), z.array(z.string()).max(16)]).optional(),
      }),
    )
    .length(1, 'give exactly one instance'),
});
const STREAM_RAW_PREDICT_SHAPE =
  '{"instances": [{"prompt": "…", "stream": true, and optionally max_tokens, temperature, top_p, top_k, ' +
  'min_p, ignore_eos, seed, stop, …}]}';

/** `:streamRawPredict` relays the container's completion chunks for the one instance's prompt. */
async function streamRawPredict(ctx: RequestContext): Promise<void> {
  const target = routedTo(ctx);
  const parsed = StreamRawPredictRequest.safeParse(await readJsonBody(ctx));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return vllmError(
      ctx.res,
      400,
      `The request body must be ${STREAM_RAW_PREDICT_SHAPE}; ${issue.path.join('.') || 'body'}: ${issue.message}.`,
    );
  }
  const instance = parsed.data.instances[0]!;
  const prompt = instance.prompt;
  const g = generate(prompt, instance.max_tokens);
  const id = completionId('cmpl', prompt);
  const created = Math.floor(ctx.now / 1000);
  const send = startEventStream(ctx.res);
  for (const [i, word] of g.words.entries()) {
    const last = i === g.words.length - 1;
    send(
      JSON.stringify({
        id,
        object: 'text_completion',
        created,
        model: target.deployed.displayName,
        choices: [
          {
            index: 0,
            text: (i === 0 ? '' : ' ') + word,
            logprobs: null,
            finish_reason: last ? g.finishReason : null,
          },
        ],
      }),
    );
    if (ctx.fault.type === 'streamError') {
      send(STREAM_ERROR);
      break;
    }
  }
  send('[DONE]');
  ctx.res.end();
}

const E = '/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/endpoints/([^/:]+)';

export function inferenceRoutes(): Route[] {
  const route = (
    id: string,
    pattern: string,
    permission: string,
    handler: (ctx: RequestContext) => Promise<void>,
  ): Route => ({
    id,
    method: 'POST',
    pattern: new RegExp(`^${pattern}$`),
    api: 'inference',
    project: (params) => params[1],
    permission,
    handler,
  });
  return [
    route(
      'inference.chatCompletions',
      `${E}/chat/completions`,
      'aiplatform.endpoints.predict',
      chatCompletions,
    ),
    route('inference.predict', `${E}:predict`, 'aiplatform.endpoints.predict', predict),
    route('inference.rawPredict', `${E}:rawPredict`, 'aiplatform.endpoints.predict', rawPredict),
    route(
      'inference.streamRawPredict',
      `${E}:streamRawPredict`,
      'aiplatform.endpoints.predict',
      streamRawPredict,
    ),
  ];
}
