import { cancellationSignal } from '@temporalio/activity';
import { z } from 'zod';
import {
  type CallOptions,
  GcpApiError,
  type PredictionTarget,
  type ServedBy,
  dedicatedTarget,
  errorFromStream,
  parseServerSentEvents,
  pscTarget,
} from '../gcp';
import { type SmokeTest, compileAnswerRegex, formatDuration } from '../spec';
import { type Attempted, type SmokeInput, type SmokeResult, smokeRequestFailure } from './contract';
import type { ActivityContext } from './deps';
import { bounded, currentAttempt, isCancellation, isTransientGcpError, toActivityFailure } from './failures';
import { beat, retryTransient } from './runtime';

/** Characters of each answer kept in the result. */
const PREVIEW_CHARS = 200;
/** Characters of an answer kept for the expectations (a runaway generation is cut here). */
const MAX_ANSWER_CHARS = 100_000;

interface Answer {
  text: string;
  promptTokens?: number;
  completionTokens?: number;
}

type AskOptions = CallOptions & { servedBy?: (served: ServedBy) => void };

/**
 * Runs each smoke test on the deployment's own host (dedicated DNS, or the PSC address) in its
 * mode. Unmet expectations (empty answer, regex, latency) and permanent request errors are
 * results with `passed: false`; transient transport errors are retried, then fail the attempt.
 */
export function runSmokeTestsActivity(ctx: ActivityContext) {
  return async function runSmokeTests(input: SmokeInput): Promise<Attempted<{ results: SmokeResult[] }>> {
    try {
      const target =
        input.target.kind === 'dedicated'
          ? dedicatedTarget(
              { name: input.endpoint, dedicatedEndpointDns: input.target.host },
              ctx.gcp.config.dedicatedDnsSuffixes,
            )
          : pscTarget(input.endpoint, input.target.ipAddress, { tlsServerName: input.target.tlsServerName });
      const results: SmokeResult[] = [];
      for (const test of input.tests) {
        beat({ running: test.name, done: results.length, of: input.tests.length });
        results.push(await retryTransient(ctx, () => runOne(ctx, target, test)));
      }
      return { results, attempt: currentAttempt() };
    } catch (err) {
      throw toActivityFailure(err, `smoke-testing ${input.endpoint}`);
    }
  };
}

async function runOne(ctx: ActivityContext, target: PredictionTarget, test: SmokeTest): Promise<SmokeResult> {
  const name = test.name ?? test.mode;
  const limit = test.expect.maxLatency;
  const timeout = limit !== undefined ? AbortSignal.timeout(limit) : undefined;
  const signal = timeout ? AbortSignal.any([cancellationSignal(), timeout]) : cancellationSignal();
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  // Behind a traffic split, which deployed model answered decides whose result this is.
  let deployedModelId: string | undefined;
  const servedBy = (served: ServedBy) => (deployedModelId = served.deployedModelId ?? deployedModelId);
  const attributed = () => (deployedModelId ? { deployedModelId } : {});
  let answer: Answer;
  try {
    answer = await ask(ctx, target, test, { signal, servedBy });
  } catch (err) {
    if (isCancellation(err) || cancellationSignal().aborted) throw err;
    const base = { name, mode: test.mode, passed: false, latencyMs: elapsed(), ...attributed() };
    if (timeout?.aborted) {
      return { ...base, failure: `no complete answer within maxLatency ${formatDuration(limit!)}` };
    }
    if (isTransientGcpError(err) || !(err instanceof GcpApiError)) throw err;
    const code = err.httpStatus !== undefined ? `${err.httpStatus} ${err.status}` : err.status;
    return {
      ...base,
      failure: bounded(smokeRequestFailure(code, `${err.googleMessage} — ${err.hint}`), 1_000),
    };
  }
  const latencyMs = elapsed();
  const failures: string[] = [];
  if (test.expect.nonEmpty && answer.text.trim() === '') failures.push('the answer is empty');
  if (test.expect.regex !== undefined) {
    const shown = `/${test.expect.regex}/${test.expect.ignoreCase ? 'i' : ''}`;
    let pattern: ReturnType<typeof compileAnswerRegex> | undefined;
    try {
      pattern = compileAnswerRegex(test.expect.regex, test.expect.ignoreCase);
    } catch (err) {
      // Specs are checked when parsed; this only meets input that skipped that check.
      failures.push(`${shown} is not a regular expression RE2 accepts: ${(err as Error).message}`);
    }
    if (pattern && !pattern.test(answer.text)) failures.push(`the answer does not match ${shown}`);
  }
  if (limit !== undefined && latencyMs > limit) {
    failures.push(`took ${latencyMs} ms, more than maxLatency ${formatDuration(limit)}`);
  }
  return {
    name,
    mode: test.mode,
    passed: failures.length === 0,
    latencyMs,
    ...(answer.promptTokens !== undefined ? { promptTokens: answer.promptTokens } : {}),
    ...(answer.completionTokens !== undefined ? { completionTokens: answer.completionTokens } : {}),
    answerPreview: answer.text.slice(0, PREVIEW_CHARS),
    ...(failures.length ? { failure: failures.join('; ') } : {}),
    ...attributed(),
  };
}

async function ask(
  ctx: ActivityContext,
  target: PredictionTarget,
  test: SmokeTest,
  options: AskOptions,
): Promise<Answer> {
  const prediction = ctx.gcp.prediction;
  const messages = [{ role: 'user', content: test.prompt }];
  switch (test.mode) {
    case 'chat': {
      const completion = await prediction.chatCompletions(
        target,
        { messages, max_tokens: test.maxTokens },
        options,
      );
      return {
        text: completion.choices[0]?.message.content ?? '',
        ...usage(completion.usage),
      };
    }
    case 'chat-stream': {
      let text = '';
      let counts: ReturnType<typeof usage> = {};
      const stream = prediction.chatCompletionsStream(
        target,
        { messages, max_tokens: test.maxTokens, stream_options: { include_usage: true } },
        options,
      );
      for await (const chunk of stream) {
        text = append(text, chunk.choices[0]?.delta.content ?? '');
        if (chunk.usage) counts = usage(chunk.usage);
      }
      return { text, ...counts };
    }
    case 'predict': {
      const response = await prediction.predict(
        target,
        // The Model Garden vLLM instance format (vertex-api.md §5.2); raw_response: only the generated text.
        { instances: [{ prompt: test.prompt, max_tokens: test.maxTokens, raw_response: true }] },
        options,
      );
      return predictionAnswer(response.predictions[0]);
    }
    case 'stream-raw-predict': {
      let raw = '';
      const stream = prediction.streamRawPredict(
        target,
        // The documented Model Garden body: one vLLM instance asking for a stream.
        { json: { instances: [{ prompt: test.prompt, max_tokens: test.maxTokens, stream: true }] } },
        options,
      );
      for await (const chunk of stream) raw = append(raw, chunk.toString('utf8'));
      return streamedAnswer(raw, `POST ${target.host} :streamRawPredict`);
    }
  }
}

function append(text: string, more: string): string {
  return text.length >= MAX_ANSWER_CHARS ? text : (text + more).slice(0, MAX_ANSWER_CHARS);
}

function usage(
  value: { prompt_tokens?: number; completion_tokens?: number } | null | undefined,
): Pick<Answer, 'promptTokens' | 'completionTokens'> {
  return {
    ...(value?.prompt_tokens !== undefined ? { promptTokens: value.prompt_tokens } : {}),
    ...(value?.completion_tokens !== undefined ? { completionTokens: value.completion_tokens } : {}),
  };
}

const ChatLike = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        message: z.looseObject({ content: z.string().nullish() }).optional(),
        delta: z.looseObject({ content: z.string().nullish() }).optional(),
        text: z.string().nullish(),
      }),
    )
    .optional(),
  usage: z
    .looseObject({ prompt_tokens: z.number().optional(), completion_tokens: z.number().optional() })
    .nullish(),
});

/** One prediction: generated text (the vLLM container echoes `Prompt:…Output:` without raw_response) or a chat completion. */
function predictionAnswer(prediction: unknown): Answer {
  if (typeof prediction === 'string') {
    const output = /\nOutput:\n([\s\S]*)$/.exec(prediction);
    return { text: (output ? output[1]! : prediction).slice(0, MAX_ANSWER_CHARS) };
  }
  const chat = ChatLike.safeParse(prediction);
  const choice = chat.success ? chat.data.choices?.[0] : undefined;
  if (chat.success && choice) {
    return { text: choice.message?.content ?? choice.text ?? '', ...usage(chat.data.usage) };
  }
  return { text: bounded(JSON.stringify(prediction) ?? '', MAX_ANSWER_CHARS) };
}

/** A streamed raw answer: SSE of completion or chat chunks (what vLLM sends), or plain text. */
async function streamedAnswer(raw: string, call: string): Promise<Answer> {
  if (!/^data:/m.test(raw)) return { text: raw };
  let text = '';
  let counts: ReturnType<typeof usage> = {};
  async function* body() {
    yield Buffer.from(`${raw}\n\n`);
  }
  for await (const event of parseServerSentEvents(body())) {
    const data = event.data.trim();
    if (data === '[DONE]') break;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      text = append(text, data);
      continue;
    }
    if (json && typeof json === 'object' && 'error' in json) throw errorFromStream(call, json.error);
    const chunk = ChatLike.safeParse(json);
    const choice = chunk.success ? chunk.data.choices?.[0] : undefined;
    text = append(text, choice?.delta?.content ?? choice?.text ?? '');
    if (chunk.success && chunk.data.usage) counts = usage(chunk.data.usage);
  }
  return { text, ...counts };
}
