/**
 * The vLLM engine arguments the serving cross-checks read, taken from a container's `args` the way
 * vLLM's FlexibleArgumentParser takes them: `--flag=value` or `--flag value`, `_` or `-` inside
 * long names, the short aliases `-tp`/`-pp`/`-dp`/`-q`, the last occurrence winning. A value vLLM
 * would refuse becomes a problem to report, never a guess.
 */

/** `--dtype` choices (vLLM's ModelDType); `bf16` is not one of them. */
export const VLLM_DTYPES = ['auto', 'half', 'float16', 'bfloat16', 'float', 'float32'] as const;
export type VllmDtype = (typeof VLLM_DTYPES)[number];

/** `--max-model-len -1` / `auto`: newer vLLM sizes the context to the memory it finds. */
export const AUTO_MAX_MODEL_LEN = -1;

export interface VllmArgs {
  /** The command line is vLLM's (it names vllm or sets a flag below), so unset flags take vLLM's defaults. */
  isVllm: boolean;
  /** Tokens, or {@link AUTO_MAX_MODEL_LEN}. */
  maxModelLen?: number;
  tensorParallelSize?: number;
  pipelineParallelSize?: number;
  dataParallelSize?: number;
  gpuMemoryUtilization?: number;
  kvCacheDtype?: string;
  maxNumBatchedTokens?: number;
  enableChunkedPrefill?: boolean;
  quantization?: string;
  dtype?: VllmDtype;
  /** Values vLLM refuses, each naming the flag and why. */
  problems: string[];
}

type ValueFlag =
  | '--max-model-len'
  | '--tensor-parallel-size'
  | '--pipeline-parallel-size'
  | '--data-parallel-size'
  | '--gpu-memory-utilization'
  | '--kv-cache-dtype'
  | '--max-num-batched-tokens'
  | '--quantization'
  | '--dtype';

const VALUE_FLAGS: readonly ValueFlag[] = [
  '--max-model-len',
  '--tensor-parallel-size',
  '--pipeline-parallel-size',
  '--data-parallel-size',
  '--gpu-memory-utilization',
  '--kv-cache-dtype',
  '--max-num-batched-tokens',
  '--quantization',
  '--dtype',
];
const ALIASES: Record<string, ValueFlag> = {
  '-tp': '--tensor-parallel-size',
  '-pp': '--pipeline-parallel-size',
  '-dp': '--data-parallel-size',
  '-q': '--quantization',
};
const CHUNKED_PREFILL = '--enable-chunked-prefill';
const NO_CHUNKED_PREFILL = '--no-enable-chunked-prefill';
const NEGATIVE_NUMBER = /^-\d/;
const BOOLEAN_WORD = /^(true|false|1|0|yes|no)$/i;

export function parseVllmArgs(args: readonly string[]): VllmArgs {
  const result: VllmArgs = { isVllm: args.some((a) => /vllm/i.test(a)), problems: [] };
  for (let i = 0; i < args.length; i++) {
    const token = args[i]!;
    if (!token.startsWith('-') || NEGATIVE_NUMBER.test(token)) continue;
    const eq = token.indexOf('=');
    const written = eq === -1 ? token : token.slice(0, eq);
    let inline = eq === -1 ? undefined : token.slice(eq + 1);
    const name = canonicalName(written);
    if (name === CHUNKED_PREFILL || name === NO_CHUNKED_PREFILL) {
      result.isVllm = true;
      // Older vLLM took `--enable-chunked-prefill False`; newer ones a bare switch.
      if (inline === undefined && BOOLEAN_WORD.test(args[i + 1] ?? '')) inline = args[++i];
      const on = inline === undefined || /^(true|1|yes)$/i.test(inline);
      if (inline !== undefined && !BOOLEAN_WORD.test(inline)) {
        result.problems.push(`${written}=${inline}: expected true or false`);
        continue;
      }
      result.enableChunkedPrefill = name === CHUNKED_PREFILL ? on : !on;
      continue;
    }
    if (!isValueFlag(name)) continue;
    result.isVllm = true;
    let value = inline;
    const next = args[i + 1];
    if (value === undefined && next !== undefined && (!next.startsWith('-') || NEGATIVE_NUMBER.test(next))) {
      value = next;
      i++;
    }
    if (value === undefined) {
      result.problems.push(`${written} is given without a value`);
      continue;
    }
    apply(name, written, value.trim(), result);
  }
  return result;
}

function canonicalName(written: string): string {
  const alias = ALIASES[written];
  if (alias) return alias;
  // FlexibleArgumentParser accepts --max_model_len for --max-model-len.
  return written.startsWith('--') ? `--${written.slice(2).replace(/_/g, '-')}` : written;
}

function isValueFlag(name: string): name is ValueFlag {
  return (VALUE_FLAGS as readonly string[]).includes(name);
}

function apply(name: ValueFlag, written: string, value: string, result: VllmArgs): void {
  const refuse = (expected: string): void => {
    result.problems.push(`${written} "${value}": ${expected}`);
  };
  switch (name) {
    case '--max-model-len': {
      if (value === 'auto' || value === String(AUTO_MAX_MODEL_LEN)) {
        result.maxModelLen = AUTO_MAX_MODEL_LEN;
        return;
      }
      const tokens = humanInt(value);
      if (tokens === undefined || tokens < 1) return refuse('expected a token count such as 8192 or 32k');
      result.maxModelLen = tokens;
      return;
    }
    case '--max-num-batched-tokens': {
      const tokens = humanInt(value);
      if (tokens === undefined || tokens < 1) return refuse('expected a token count such as 8192 or 8k');
      result.maxNumBatchedTokens = tokens;
      return;
    }
    case '--tensor-parallel-size':
    case '--pipeline-parallel-size':
    case '--data-parallel-size': {
      const count = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!(count >= 1)) return refuse('expected a whole number of GPUs, at least 1');
      const key =
        name === '--tensor-parallel-size'
          ? 'tensorParallelSize'
          : name === '--pipeline-parallel-size'
            ? 'pipelineParallelSize'
            : 'dataParallelSize';
      result[key] = count;
      return;
    }
    case '--gpu-memory-utilization': {
      const fraction = /^\d*\.?\d+$/.test(value) ? Number(value) : NaN;
      if (!(fraction > 0 && fraction <= 1))
        return refuse('expected a fraction of GPU memory in (0, 1], e.g. 0.9');
      result.gpuMemoryUtilization = fraction;
      return;
    }
    case '--dtype': {
      const dtype = VLLM_DTYPES.find((d) => d === value);
      if (!dtype) {
        return refuse(
          `vLLM's --dtype takes ${VLLM_DTYPES.join(', ')}${value.toLowerCase() === 'bf16' ? ' (bfloat16, not bf16)' : ''}`,
        );
      }
      result.dtype = dtype;
      return;
    }
    case '--kv-cache-dtype':
      result.kvCacheDtype = value.toLowerCase();
      return;
    case '--quantization':
      result.quantization = value.toLowerCase();
      return;
  }
}

const DECIMAL_SUFFIX: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9 };
const BINARY_SUFFIX: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

/**
 * vLLM's human_readable_int: `8192`, `32k` (×1000, decimals allowed), `32K` (×1024). Other
 * spellings differ between vLLM versions and are not read.
 */
export function humanInt(value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([kmgKMG]?)$/.exec(value);
  if (!match) return undefined;
  const [, number, suffix] = match as unknown as [string, string, string];
  if (suffix === '') return number.includes('.') ? undefined : Number(number);
  if (DECIMAL_SUFFIX[suffix] !== undefined) return Math.floor(Number(number) * DECIMAL_SUFFIX[suffix]);
  return number.includes('.') ? undefined : Number(number) * BINARY_SUFFIX[suffix]!;
}
