import { redactSecrets } from '../gcp/redact';

/**
 * Why a serving container did not start (or stopped answering), from its own last lines: the
 * root cause behind "Model server exited unexpectedly" and "replicas never became available". Pure:
 * the diagnose activity reads the lines from Cloud Logging and attaches what this returns.
 */

export const START_FAILURE_CLASSES = [
  'out-of-gpu-memory',
  'unsupported-architecture',
  'missing-weight-file',
  'corrupt-weight-file',
  'tokenizer-error',
  'invalid-argument',
  'cuda-error',
  'port-or-health-mismatch',
  'unknown',
] as const;
export type StartFailureClass = (typeof START_FAILURE_CLASSES)[number];

export interface RootCause {
  class: StartFailureClass;
  /** One line: what happened, and what to change. */
  explanation: string;
  /** The line that decided it. */
  evidence?: string;
  /** The container's last lines, oldest first, secrets redacted. */
  lines: string[];
}

interface Rule {
  class: Exclude<StartFailureClass, 'unknown'>;
  pattern: RegExp;
  explanation: string;
}

/** First match wins, most specific first; each explanation says what to change. */
const RULES: readonly Rule[] = [
  {
    class: 'out-of-gpu-memory',
    pattern:
      /CUDA out of memory|OutOfMemoryError|No available memory for the cache blocks|larger than the maximum number of tokens that can be stored in KV cache/i,
    explanation:
      'the model (or its KV cache) does not fit the GPUs: pick a machine with more GPU memory (`machine: auto` sizes it), ' +
      'lower `--max-model-len`, or raise `--tensor-parallel-size` with more accelerators',
  },
  {
    class: 'invalid-argument',
    pattern:
      /unrecognized arguments|error: argument --|User-specified max_model_len|number of required GPUs exceeds|Bfloat16 is only supported|max_num_batched_tokens .*smaller than max_model_len|ValueError: Unknown quantization|is not divisible by tensor parallel/i,
    explanation:
      'the serving container refused an argument or setting: fix `container.args` (`garden-deploy validate --spec` ' +
      'checks them against the model and the machine)',
  },
  {
    class: 'unsupported-architecture',
    pattern:
      /Model architectures? \[.*\] (?:are|is) not supported|not supported for now|Unrecognized model in|does not recognize this architecture/i,
    explanation:
      'the serving image does not know this model architecture: use a base model Model Garden lists for custom weights, ' +
      'or a newer serving image (`container.image`)',
  },
  {
    class: 'tokenizer-error',
    pattern: /Can't load tokenizer|tokenizer_config\.json|TokenizerFast|tokenizer\.model|sentencepiece/i,
    explanation:
      'the tokenizer could not be loaded: upload tokenizer.json (or tokenizer.model) and tokenizer_config.json with the weights',
  },
  {
    class: 'corrupt-weight-file',
    pattern:
      /SafetensorError|HeaderTooLarge|InvalidHeader|MetadataIncompleteBuffer|Attempted to load weight|size mismatch|There is no module or parameter named/i,
    explanation:
      'a weight file is corrupt or does not match the model config: re-upload the shards (`garden-deploy validate` reads every header)',
  },
  {
    class: 'missing-weight-file',
    pattern:
      /Cannot find any model weights|No such file or directory|were not initialized from checkpoint|FileNotFoundError|does not appear to have a file named/i,
    explanation:
      'a weight or config file is missing: upload every shard the index names (`garden-deploy validate` lists what is missing)',
  },
  {
    class: 'cuda-error',
    pattern:
      /CUDA error|CUDA driver|NCCL error|no kernel image is available|cudaErrorUnsupportedPtxVersion|driver version is insufficient/i,
    explanation:
      'a CUDA or driver error: the serving image does not match the GPU or driver; try another serving image or machine family',
  },
  {
    class: 'port-or-health-mismatch',
    pattern:
      /Uvicorn running on http:\/\/[^:]+:(?!8080\b)\d+|health check (?:failed|timed out)|readiness probe failed|connection refused/i,
    explanation:
      'the server listens on another port or answers another health route than Vertex checks: make `container.ports` and ' +
      '`--port`, and `container.healthRoute` and the server’s route, agree',
  },
];

/** Lines kept with a root cause. */
const MAX_LINES = 20;
const MAX_LINE_CHARS = 500;

export function classifyContainerLogs(messages: readonly string[]): RootCause {
  const lines = messages.slice(-MAX_LINES).map((line) => redactLine(line));
  // The last matching line decides: the final error, not an earlier warning.
  for (let i = messages.length - 1; i >= 0; i--) {
    const rule = RULES.find((r) => r.pattern.test(messages[i]!));
    if (rule)
      return { class: rule.class, explanation: rule.explanation, evidence: redactLine(messages[i]!), lines };
  }
  return {
    class: 'unknown',
    explanation:
      lines.length === 0
        ? 'the serving container wrote no lines (is container logging on? `logging.container`, roles/logging.viewer)'
        : 'no known failure in the container’s last lines: read them below',
    lines,
  };
}

/** A line as attached: bounded, with tokens and secrets removed. */
function redactLine(line: string): string {
  return redactSecrets(line).slice(0, MAX_LINE_CHARS);
}
