import { z } from 'zod';
import type { ModelStore, StoredObject } from '../storage';
import { type Limiter, mapLimited } from './io';
import type { FolderLayout } from './layout';
import type { FindingCollector } from './report';
import { reportUnreadable } from './weights';

/**
 * Tokenizer files, chat template, generation config and multimodal processor files
 * (hf-weights §5, §7.2, §7.10, §7.11).
 */

const MAX_TOKENIZER_CONFIG_BYTES = 16 * 1024 * 1024;
/** Gemma-3's tokenizer.json is ~33 MB, the largest among supported families. */
const MAX_TOKENIZER_JSON_BYTES = 64 * 1024 * 1024;
const MAX_SMALL_JSON_BYTES = 1024 * 1024;
const TIKTOKEN_LINE_RE = /^[A-Za-z0-9+/]+=* \d+\r?\n/;

export interface TokenizerCheckInput {
  /** `vocab_size` from config.json, when readable. */
  vocabSize?: number;
  /** `eos_token_id` of config.json (a number or a list). */
  configEosTokenIds?: number[];
  /** Whether this family needs the BPE `tokenizer.json` (Llama-3/4, Qwen, DeepSeek, Phi-4, gpt-oss, Nemo). */
  requiresTokenizerJson: boolean;
  /** Multimodal architecture: vLLM builds its image processor at startup. */
  multimodal: boolean;
  familyName?: string;
  requireChat: boolean;
  limiter: Limiter;
  signal?: AbortSignal;
}

export interface TokenizerSummary {
  chatTemplate: boolean;
}

const tokenIdList = z.union([z.number().int(), z.array(z.number().int()).max(1000)]).nullish();
const GenerationConfigSchema = z.looseObject({
  eos_token_id: tokenIdList,
  bos_token_id: tokenIdList,
  pad_token_id: tokenIdList,
});
const TokenizerConfigSchema = z.looseObject({
  chat_template: z
    .union([z.string(), z.array(z.looseObject({ name: z.string().optional(), template: z.string() }))])
    .nullish(),
  added_tokens_decoder: z.record(z.string(), z.unknown()).nullish(),
});
const TokenizerJsonSchema = z.looseObject({
  model: z
    .looseObject({ vocab: z.union([z.record(z.string(), z.number()), z.array(z.unknown())]).nullish() })
    .nullish(),
  added_tokens: z.array(z.looseObject({ id: z.number().int() })).nullish(),
});

export function toIdList(value: number | number[] | null | undefined): number[] {
  if (value === null || value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export async function checkTokenizer(
  store: ModelStore,
  layout: FolderLayout,
  findings: FindingCollector,
  input: TokenizerCheckInput,
): Promise<TokenizerSummary> {
  const file = (name: string): StoredObject | undefined => layout.root.get(name);
  const tokenizerJson = file('tokenizer.json');
  const tokenizerModel = file('tokenizer.model');
  const tokenizerConfig = file('tokenizer_config.json');
  const chatJinja = file('chat_template.jinja');
  const generationConfig = file('generation_config.json');

  if (!tokenizerJson && !tokenizerModel) {
    findings.add(
      'tokenizer.missing',
      'No tokenizer files found (tokenizer.json or tokenizer.model). Copy tokenizer.json / tokenizer.model and ' +
        'tokenizer_config.json from the base model (or save your tokenizer with save_pretrained).',
      { file: 'tokenizer.json' },
    );
  } else if (!tokenizerJson && input.requiresTokenizerJson) {
    findings.add(
      'tokenizer.json-required',
      `${input.familyName ?? 'This family'} uses a BPE tokenizer that needs tokenizer.json; tokenizer.model alone cannot load it — ` +
        'copy tokenizer.json from the base model.',
      { file: 'tokenizer.json' },
    );
  }
  if (!tokenizerConfig && (tokenizerJson || tokenizerModel)) {
    findings.add(
      'tokenizer.config-missing',
      'tokenizer_config.json is missing (special tokens, chat template and tokenizer class live there); copy it from the base model or save the tokenizer with save_pretrained.',
      { file: 'tokenizer_config.json' },
    );
  }
  if (input.multimodal && !file('preprocessor_config.json')) {
    findings.add(
      'processor.missing',
      'Multimodal architecture but no preprocessor_config.json: vLLM builds the image processor at startup and fails; ' +
        'copy preprocessor_config.json (and processor_config.json if the base model has one) from the base model, ' +
        'or export a text-only *ForCausalLM model on purpose.',
      { file: 'preprocessor_config.json' },
    );
  }

  const read = async (object: StoredObject | undefined, maxBytes: number): Promise<Buffer | undefined> => {
    if (!object) return undefined;
    input.signal?.throwIfAborted();
    if (object.size > maxBytes) return undefined;
    try {
      return await store.readSmall(object.name, maxBytes);
    } catch (err) {
      reportUnreadable(err, object.name, findings);
      return undefined;
    }
  };
  const readPrefix = async (object: StoredObject | undefined, bytes: number): Promise<Buffer | undefined> => {
    if (!object || object.size === 0) return undefined;
    try {
      return await store.readRange(object.name, 0, Math.min(bytes, object.size));
    } catch (err) {
      reportUnreadable(err, object.name, findings);
      return undefined;
    }
  };
  const [configBytes, jinjaBytes, generationBytes, modelPrefix, tokenizerBytes] = await mapLimited(
    [
      () => read(tokenizerConfig, MAX_TOKENIZER_CONFIG_BYTES),
      () => read(chatJinja, MAX_SMALL_JSON_BYTES),
      () => read(generationConfig, MAX_SMALL_JSON_BYTES),
      () => readPrefix(tokenizerModel, 64),
      () =>
        input.vocabSize === undefined
          ? Promise.resolve(undefined)
          : read(tokenizerJson, MAX_TOKENIZER_JSON_BYTES),
    ],
    input.limiter,
    (task) => task(),
    input.signal,
  );

  if (modelPrefix && TIKTOKEN_LINE_RE.test(modelPrefix.toString('latin1'))) {
    findings.add(
      'tokenizer.tiktoken-model',
      "tokenizer.model is a tiktoken rank file (as in Llama-3's original/ folder), not a SentencePiece model; " +
        'delete it — Llama-3-style models load tokenizer.json.',
      { file: 'tokenizer.model' },
    );
  }

  const tokenizerConfigJson = parseJson(
    configBytes,
    TokenizerConfigSchema,
    'tokenizer_config.json',
    findings,
    'tokenizer.invalid',
  );
  if (tokenizerConfig && tokenizerConfig.size > MAX_TOKENIZER_CONFIG_BYTES) {
    findings.add(
      'tokenizer.invalid',
      `tokenizer_config.json is ${tokenizerConfig.size} bytes, more than any real one; re-save the tokenizer.`,
      {
        file: 'tokenizer_config.json',
      },
    );
  }

  // Chat template: inline, chat_template.jinja, chat_template.json, additional_chat_templates/*.jinja.
  const inline = tokenizerConfigJson?.chat_template;
  const inlineText = typeof inline === 'string' ? inline : undefined;
  const hasInline =
    typeof inline === 'string' ? inline.trim() !== '' : Array.isArray(inline) && inline.length > 0;
  const hasTemplate =
    hasInline ||
    chatJinja !== undefined ||
    file('chat_template.json') !== undefined ||
    [...layout.all.keys()].some((n) => n.startsWith('additional_chat_templates/') && n.endsWith('.jinja'));
  if (!hasTemplate) {
    findings.add(
      'tokenizer.chat-template-missing',
      'No chat template: /chat/completions will return 400; add chat_template to tokenizer_config.json or a chat_template.jinja ' +
        "(base models ship none — copy the instruct model's template if you fine-tuned for chat).",
      { file: 'tokenizer_config.json', severity: input.requireChat ? 'error' : 'warning' },
    );
  }
  if (
    inlineText !== undefined &&
    jinjaBytes !== undefined &&
    inlineText.trim() !== jinjaBytes.toString('utf8').trim()
  ) {
    findings.add(
      'tokenizer.chat-template-conflict',
      "tokenizer_config.json's chat_template differs from chat_template.jinja; transformers ≥ 4.47 uses the .jinja file, older versions the inline one — keep only one.",
      { file: 'chat_template.jinja' },
    );
  }

  // Token ids must index into the embedding matrix.
  if (input.vocabSize !== undefined) {
    const vocabSize = input.vocabSize;
    let maxId = -1;
    let source = '';
    for (const id of Object.keys(tokenizerConfigJson?.added_tokens_decoder ?? {})) {
      if (/^\d+$/.test(id) && Number(id) > maxId) [maxId, source] = [Number(id), 'tokenizer_config.json'];
    }
    const tokenizerJsonParsed = parseJson(
      tokenizerBytes,
      TokenizerJsonSchema,
      'tokenizer.json',
      findings,
      'tokenizer.invalid',
    );
    if (tokenizerJsonParsed) {
      const vocab = tokenizerJsonParsed.model?.vocab;
      // A loop, not Math.max(...ids): vocabularies of 262k entries overflow the argument stack.
      let jsonMax = Array.isArray(vocab) ? vocab.length - 1 : -1;
      if (vocab && !Array.isArray(vocab))
        for (const id of Object.values(vocab)) jsonMax = Math.max(jsonMax, id);
      for (const token of tokenizerJsonParsed.added_tokens ?? []) jsonMax = Math.max(jsonMax, token.id);
      if (jsonMax > maxId) [maxId, source] = [jsonMax, 'tokenizer.json'];
    }
    if (maxId >= vocabSize) {
      findings.add(
        'tokenizer.vocab-out-of-range',
        `${source} has token id ${maxId} but config.json vocab_size is ${vocabSize}: ids ≥ vocab_size crash at runtime (CUDA index errors). ` +
          'After adding tokens, resize the embeddings (resize_token_embeddings) and save config, weights and tokenizer together.',
        { file: source },
      );
    }
  }

  // generation_config.json
  if (!generationConfig) {
    findings.add(
      'generation-config.missing',
      "No generation_config.json: vLLM falls back to its own sampling defaults and only config.json's eos_token_id, so " +
        'chat models may run past their end-of-turn token; copy generation_config.json from the base model.',
      { file: 'generation_config.json' },
    );
  } else {
    const generation = parseJson(
      generationBytes,
      GenerationConfigSchema,
      'generation_config.json',
      findings,
      'generation-config.invalid',
    );
    if (generation) {
      if (input.vocabSize !== undefined) {
        const bad = (['eos_token_id', 'bos_token_id', 'pad_token_id'] as const).flatMap((key) =>
          toIdList(generation[key])
            .filter((id) => id < 0 || id >= input.vocabSize!)
            .map((id) => `${key} ${id}`),
        );
        if (bad.length > 0) {
          findings.add(
            'generation-config.token-out-of-range',
            `generation_config.json has ${bad.slice(0, 4).join(', ')}, outside the vocabulary (vocab_size ${input.vocabSize}); fix the ids or copy the file from the base model.`,
            { file: 'generation_config.json' },
          );
        }
      }
      const generationEos = new Set(toIdList(generation.eos_token_id));
      const configEos = input.configEosTokenIds ?? [];
      if (generationEos.size > 0 && configEos.length > 0 && !configEos.every((id) => generationEos.has(id))) {
        findings.add(
          'generation-config.eos-mismatch',
          `config.json eos_token_id [${configEos.join(', ')}] is not among generation_config.json eos_token_id [${[...generationEos].join(', ')}]; ` +
            'generation may not stop where the tokenizer ends a turn — make them agree.',
          { file: 'generation_config.json' },
        );
      }
    }
  }
  return { chatTemplate: hasTemplate };
}

function parseJson<S extends z.ZodType>(
  bytes: Buffer | undefined,
  schema: S,
  file: string,
  findings: FindingCollector,
  rule: 'tokenizer.invalid' | 'generation-config.invalid',
): z.infer<S> | undefined {
  if (!bytes) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    findings.add(
      rule,
      `${file} is not valid JSON; copy it from the base model or re-save with save_pretrained.`,
      { file },
    );
    return undefined;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    findings.add(
      rule,
      `${file} has an unexpected structure (${issue ? `${issue.path.join('.') || 'root'}: ${issue.message}` : 'invalid'}); copy it from the base model.`,
      { file },
    );
    return undefined;
  }
  return parsed.data;
}
