import { describe, expect, it } from 'vitest';
import { humanInt, parseVllmArgs } from '../../src/validation/vllm-args';

describe('parseVllmArgs', () => {
  it('reads --flag=value and --flag value, underscores, aliases, the last occurrence winning', () => {
    const args = parseVllmArgs([
      'python',
      '-m',
      'vllm.entrypoints.api_server',
      '--max_model_len',
      '8k',
      '-tp',
      '2',
      '--pipeline-parallel-size=2',
      '-q=FP8',
      '--gpu-memory-utilization',
      '0.85',
      '--kv-cache-dtype=fp8_e5m2',
      '--max-num-batched-tokens=4K',
      '--dtype',
      'float16',
      '--max-model-len=32K',
    ]);
    expect(args).toEqual({
      isVllm: true,
      maxModelLen: 32768,
      tensorParallelSize: 2,
      pipelineParallelSize: 2,
      quantization: 'fp8',
      gpuMemoryUtilization: 0.85,
      kvCacheDtype: 'fp8_e5m2',
      maxNumBatchedTokens: 4096,
      dtype: 'float16',
      problems: [],
    });
  });

  it('tells a vLLM command line from another server and reads the chunked-prefill switch', () => {
    expect(parseVllmArgs(['--port=8080', '--model-id=x']).isVllm).toBe(false);
    expect(parseVllmArgs(['vllm', 'serve', '/gcs/model']).isVllm).toBe(true);
    expect(parseVllmArgs(['--enable-chunked-prefill']).enableChunkedPrefill).toBe(true);
    expect(parseVllmArgs(['--enable-chunked-prefill', 'False']).enableChunkedPrefill).toBe(false);
    expect(parseVllmArgs(['--enable_chunked_prefill=true']).enableChunkedPrefill).toBe(true);
    expect(parseVllmArgs(['--no-enable-chunked-prefill', '--port=8080']).enableChunkedPrefill).toBe(false);
  });

  it('takes -1 and auto as vLLM’s auto-fit context', () => {
    expect(parseVllmArgs(['--max-model-len', '-1']).maxModelLen).toBe(-1);
    expect(parseVllmArgs(['--max-model-len=auto']).maxModelLen).toBe(-1);
  });

  it('lists values vLLM refuses instead of guessing', () => {
    const { problems } = parseVllmArgs([
      '--max-model-len=lots',
      '--tensor-parallel-size',
      '1.5',
      '--gpu-memory-utilization=0',
      '--dtype=bf16',
      '--enable-chunked-prefill=maybe',
      '--quantization',
    ]);
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).toMatch(/--dtype "bf16".*bfloat16, not bf16/);
    expect(problems.join('\n')).toContain('--quantization is given without a value');
  });
});

it('humanInt: decimal lowercase, binary uppercase suffixes', () => {
  expect(humanInt('8192')).toBe(8192);
  expect(humanInt('25.6k')).toBe(25_600);
  expect(humanInt('1m')).toBe(1_000_000);
  expect(humanInt('16K')).toBe(16_384);
  expect(humanInt('1.5K')).toBeUndefined();
  expect(humanInt('12x')).toBeUndefined();
});
