/**
 * A small but well-formed tokenizer for sample models, trained with BPE on a short built-in text:
 * byte-level BPE like Llama-3/Qwen/Phi-4 (`tokenizer.json` only), or SentencePiece-style BPE with
 * byte fallback like Llama-2/Mistral/Gemma (`tokenizer.json` plus a protobuf `tokenizer.model`).
 */
import { type TokenizerKind } from '../models';

const CORPUS = `
Teams fine-tune open-weight language models and deploy them with custom weights to Vertex AI.
The deployment validates the weights in the bucket, deploys the model to an endpoint, waits for
the replicas, sends a test prompt, and connects the private service. When a step fails the
workflow retries it or rolls the deployment back, so nothing is left running. The tokenizer,
the configuration and the weights must agree: the vocabulary size, the hidden size, the number
of layers and the heads of every attention layer. Hello world! 0123456789 +-*/=<>()[]{}.,;:'"?
`;

const MERGES = 160;

export const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface SampleTokenizer {
  kind: TokenizerKind;
  /** Number of ids: every id in the vocabulary and added tokens is below it. */
  size: number;
  bosTokenId: number;
  eosTokenId: number;
  /** `<|im_end|>`: the chat template's end of turn, a second stop id. */
  endOfTurnTokenId: number;
  padTokenId: number;
  /** File name → contents: tokenizer.json, tokenizer_config.json, special_tokens_map.json (+ tokenizer.model). */
  files: Record<string, Buffer>;
}

interface SpecialTokens {
  bos: string;
  eos: string;
  pad: string;
  unk?: string;
}

/** GPT-2's reversible byte → printable character map used by byte-level BPE. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  }
  return map;
}

/** Greedy BPE training: repeatedly merge the most frequent adjacent pair (ties: first seen). */
function trainMerges(words: string[][], count: number): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  for (let m = 0; m < count; m++) {
    const pairs = new Map<string, { pair: [string, string]; n: number }>();
    for (const word of words) {
      for (let i = 0; i + 1 < word.length; i++) {
        const key = `${word[i]}\u0000${word[i + 1]}`;
        const entry = pairs.get(key);
        if (entry) entry.n++;
        else pairs.set(key, { pair: [word[i]!, word[i + 1]!], n: 1 });
      }
    }
    let best: { pair: [string, string]; n: number } | undefined;
    for (const entry of pairs.values()) if (!best || entry.n > best.n) best = entry;
    if (!best || best.n < 2) break;
    const [a, b] = best.pair;
    merges.push([a, b]);
    for (const word of words) {
      for (let i = 0; i + 1 < word.length; i++) {
        if (word[i] === a && word[i + 1] === b) word.splice(i, 2, a + b);
      }
    }
  }
  return merges;
}

function addedToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function json(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}

export interface TokenizerOptions {
  chatTemplate: boolean;
  modelMaxLength: number;
}

export function buildSampleTokenizer(kind: TokenizerKind, options: TokenizerOptions): SampleTokenizer {
  return kind === 'bpe' ? byteLevelTokenizer(options) : sentencePieceTokenizer(options);
}

function byteLevelTokenizer(options: TokenizerOptions): SampleTokenizer {
  const byteChars = bytesToUnicode();
  const vocab = new Map<string, number>();
  for (const ch of byteChars) vocab.set(ch, vocab.size);
  const pieces = CORPUS.match(/ ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+/g) ?? [];
  const words = pieces.map((p) => [...Buffer.from(p, 'utf8')].map((b) => byteChars[b]!));
  const merges = trainMerges(words, MERGES);
  for (const [a, b] of merges) if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
  const special: SpecialTokens = { bos: '<|begin_of_text|>', eos: '<|end_of_text|>', pad: '<|pad|>' };
  const added = [special.bos, special.eos, '<|im_start|>', '<|im_end|>', special.pad];
  const addedIds = new Map(added.map((t, i) => [t, vocab.size + i] as const));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map((t) => addedToken(addedIds.get(t)!, t)),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return finish('bpe', vocab.size + added.length, addedIds, special, tokenizerJson, undefined, options);
}

function sentencePieceTokenizer(options: TokenizerOptions): SampleTokenizer {
  const special: SpecialTokens = { unk: '<unk>', bos: '<s>', eos: '</s>', pad: '<pad>' };
  const vocab = new Map<string, number>([
    ['<unk>', 0],
    ['<s>', 1],
    ['</s>', 2],
  ]);
  for (let b = 0; b < 256; b++) vocab.set(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, vocab.size);
  const words = CORPUS.split(/\s+/)
    .filter(Boolean)
    .map((w) => [...`\u2581${w}`]);
  for (const ch of new Set(words.flat())) vocab.set(ch, vocab.size);
  const merges = trainMerges(words, MERGES);
  for (const [a, b] of merges) if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
  const added = ['<|im_start|>', '<|im_end|>', special.pad];
  const addedIds = new Map<string, number>([
    ['<unk>', 0],
    ['<s>', 1],
    ['</s>', 2],
    ...added.map((t, i) => [t, vocab.size + i] as const),
  ]);
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...addedIds].map(([t, id]) => addedToken(id, t)),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '\u2581' },
        { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const pieces: Array<{ piece: string; type: number }> = [...vocab.keys()].map((piece, id) => ({
    piece,
    type: id === 0 ? SP_UNKNOWN : id < 3 ? SP_CONTROL : id < 259 ? SP_BYTE : SP_NORMAL,
  }));
  for (const t of added) pieces.push({ piece: t, type: SP_USER_DEFINED });
  const model = sentencePieceModelProto(pieces);
  return finish('sentencepiece', vocab.size + added.length, addedIds, special, tokenizerJson, model, options);
}

function finish(
  kind: TokenizerKind,
  size: number,
  addedIds: ReadonlyMap<string, number>,
  special: SpecialTokens,
  tokenizerJson: unknown,
  sentencePieceModel: Buffer | undefined,
  options: TokenizerOptions,
): SampleTokenizer {
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: kind === 'sentencepiece',
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(
      [...addedIds].map(([content, id]) => {
        const { id: _id, ...rest } = addedToken(id, content);
        return [String(id), rest];
      }),
    ),
    bos_token: special.bos,
    eos_token: special.eos,
    pad_token: special.pad,
    ...(special.unk ? { unk_token: special.unk } : {}),
    ...(options.chatTemplate ? { chat_template: CHAT_TEMPLATE } : {}),
    clean_up_tokenization_spaces: false,
    model_max_length: options.modelMaxLength,
    tokenizer_class: kind === 'sentencepiece' ? 'LlamaTokenizerFast' : 'PreTrainedTokenizerFast',
  };
  const tokenMap = (content: string) => ({
    content,
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
  });
  const specialTokensMap = {
    bos_token: tokenMap(special.bos),
    eos_token: tokenMap(special.eos),
    pad_token: tokenMap(special.pad),
    ...(special.unk ? { unk_token: tokenMap(special.unk) } : {}),
  };
  const files: Record<string, Buffer> = {
    'tokenizer.json': json(tokenizerJson),
    'tokenizer_config.json': json(tokenizerConfig),
    'special_tokens_map.json': json(specialTokensMap),
  };
  if (sentencePieceModel) files['tokenizer.model'] = sentencePieceModel;
  return {
    kind,
    size,
    bosTokenId: addedIds.get(special.bos)!,
    eosTokenId: addedIds.get(special.eos)!,
    endOfTurnTokenId: addedIds.get('<|im_end|>')!,
    padTokenId: addedIds.get(special.pad)!,
    files,
  };
}

// sentencepiece_model.proto: SentencePiece.Type values.
const SP_NORMAL = 1;
const SP_UNKNOWN = 2;
const SP_CONTROL = 3;
const SP_USER_DEFINED = 4;
const SP_BYTE = 6;

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function field(number: number, wireType: 0 | 2 | 5, payload: Buffer | number): Buffer {
  const tag = varint((number << 3) | wireType);
  if (wireType === 0) return Buffer.concat([tag, varint(payload as number)]);
  if (wireType === 5) {
    const f = Buffer.alloc(4);
    f.writeFloatLE(payload as number, 0);
    return Buffer.concat([tag, f]);
  }
  const bytes = payload as Buffer;
  return Buffer.concat([tag, varint(bytes.length), bytes]);
}

/**
 * A `ModelProto` (sentencepiece_model.proto): pieces (1) with score and type, a BPE trainer spec
 * (2) with byte fallback and the unk/bos/eos ids, and a normalizer spec (3) that escapes spaces.
 */
function sentencePieceModelProto(pieces: ReadonlyArray<{ piece: string; type: number }>): Buffer {
  const parts = pieces.map(({ piece, type }, id) =>
    field(
      1,
      2,
      Buffer.concat([
        field(1, 2, Buffer.from(piece, 'utf8')),
        field(2, 5, type === SP_NORMAL ? -id : 0),
        field(3, 0, type),
      ]),
    ),
  );
  const trainerSpec = Buffer.concat([
    field(3, 0, 2), // model_type: BPE
    field(4, 0, pieces.length), // vocab_size
    field(35, 0, 1), // byte_fallback
    field(40, 0, 0), // unk_id
    field(41, 0, 1), // bos_id
    field(42, 0, 2), // eos_id
  ]);
  const normalizerSpec = Buffer.concat([
    field(1, 2, Buffer.from('identity')),
    field(3, 0, 1), // add_dummy_prefix
    field(4, 0, 0), // remove_extra_whitespaces
    field(5, 0, 1), // escape_whitespaces
  ]);
  return Buffer.concat([...parts, field(2, 2, trainerSpec), field(3, 2, normalizerSpec)]);
}
