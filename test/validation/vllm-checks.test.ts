import { describe, expect, it } from 'vitest';
import { readModelDims } from '../../src/models';
import { derivedMaxModelLen } from '../../src/validation';
import {
  A100_40,
  A100_80,
  A100_80x2,
  A100_80x4,
  GPT_OSS,
  H100,
  H100_8,
  H200_8,
  L4,
  L4_2,
  L4_8,
  LLAMA_1B,
  LLAMA_3B,
  LLAMA_70B,
  LLAMA_8B,
  QWEN_7B,
  T4,
  V100,
  args,
  config,
  findings,
  pairs,
} from './serving-cases';

/** The vLLM arguments of the serving container against the model and GPUs: each rule, wrong then corrected. */

describe('--max-model-len against the model', () => {
  pairs({
    'beyond max_position_embeddings is refused': {
      wrong: { model: LLAMA_8B, machine: H100, deployment: args('--max-model-len=200000') },
      right: { model: LLAMA_8B, machine: H100, deployment: args('--max-model-len=131072') },
      expected: ['vllm.max-model-len-exceeds-model:error'],
      says: ['200000', 'at most 131072'],
    },
    'VLLM_ALLOW_LONG_MAX_MODEL_LEN lowers it to a warning': {
      wrong: {
        model: LLAMA_8B,
        machine: H200_8,
        deployment: {
          container: {
            args: ['--max-model-len', '200000', '--tensor-parallel-size', '8'],
            env: { VLLM_ALLOW_LONG_MAX_MODEL_LEN: '1' },
          },
        },
      },
      right: { model: LLAMA_8B, machine: H200_8, deployment: args('-tp', '8', '--max-model-len', '128K') },
      expected: ['vllm.max-model-len-exceeds-model:warning'],
    },
    'a YaRN-scaled config allows its scaled context': {
      wrong: { model: QWEN_7B, machine: H100, deployment: args('--max-model-len=65536') },
      right: {
        model: {
          ...QWEN_7B,
          dims: readModelDims({
            ...config('Qwen2.5-7B-Instruct.json'),
            rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 32768 },
          }),
        },
        machine: H100,
        deployment: args('--max-model-len=65536'),
      },
      expected: ['vllm.max-model-len-exceeds-model:error'],
      says: ["beyond the model's 32768 tokens"],
    },
  });

  it('derives the maximum as vLLM does (llama3 and Gemma-3 scaling already counted, YaRN from its original)', () => {
    expect(derivedMaxModelLen(LLAMA_8B.dims)?.tokens).toBe(131072);
    expect(derivedMaxModelLen(readModelDims(config('gemma-3-27b-it.json')))?.tokens).toBe(131072);
    expect(derivedMaxModelLen(readModelDims(config('DeepSeek-V3.json')))?.tokens).toBe(163840);
    const linear = readModelDims({
      ...config('Llama-2-7b-chat-hf.json'),
      rope_scaling: { type: 'linear', factor: 2 },
    });
    expect(derivedMaxModelLen(linear)?.tokens).toBe(8192);
  });
});

describe('--max-model-len against the KV cache', () => {
  pairs({
    'more context than one L4 caches after Llama-3.1-8B': {
      wrong: { model: LLAMA_8B, machine: L4, deployment: args('--max-model-len=131072') },
      right: { model: LLAMA_8B, machine: L4, deployment: args('--max-model-len=16384') },
      expected: ['vllm.max-model-len-exceeds-kv-cache:error'],
      says: ['16.0 GiB of KV cache', /--max-model-len=\d{5} or less/],
    },
    'without --max-model-len vLLM takes the model maximum': {
      wrong: {
        model: LLAMA_8B,
        machine: L4,
        deployment: args('--served-model-name=m', '--tensor-parallel-size=1'),
      },
      right: {
        model: LLAMA_8B,
        machine: L4,
        deployment: args('--tensor-parallel-size=1', '--max-model-len=8k'),
      },
      expected: ['vllm.max-model-len-exceeds-kv-cache:error'],
      says: ["Without --max-model-len vLLM serves the model's full 131072 tokens"],
    },
    '--kv-cache-dtype=fp8 and --gpu-memory-utilization make room': {
      wrong: { model: LLAMA_8B, machine: L4, deployment: args('--max-model-len=32768') },
      right: {
        model: LLAMA_8B,
        machine: L4,
        deployment: args('--max-model-len=32768', '--kv-cache-dtype=fp8', '--gpu-memory-utilization=0.95'),
      },
      expected: ['vllm.max-model-len-exceeds-kv-cache:error'],
      says: ['gpu-memory-utilization 0.9'],
    },
    'tensor parallelism shares the weights and the cache': {
      wrong: { model: LLAMA_70B, machine: A100_80x2, deployment: args('--max-model-len=131072', '-tp=2') },
      right: { model: LLAMA_70B, machine: A100_80x4, deployment: args('--max-model-len=131072', '-tp=4') },
      expected: ['vllm.max-model-len-exceeds-kv-cache:error'],
      says: ['split 2 ways'],
    },
    'a GPU partition holds only its share of the memory': {
      wrong: {
        model: LLAMA_3B,
        machine: { ...A100_80, gpuPartitionSize: '1g.10gb' },
        deployment: args('--max-model-len=131072'),
      },
      right: { model: LLAMA_3B, machine: A100_80, deployment: args('--max-model-len=131072') },
      expected: ['vllm.max-model-len-exceeds-kv-cache:error'],
      says: ['1g.10gb partition'],
    },
  });
});

describe('parallel sizes', () => {
  pairs({
    'more GPUs than the machine has': {
      wrong: {
        model: LLAMA_8B,
        machine: L4_2,
        deployment: args('--tensor-parallel-size=4', '--max-model-len=8192'),
      },
      right: {
        model: LLAMA_8B,
        machine: L4_2,
        deployment: args('--tensor-parallel-size=2', '--max-model-len=8192'),
      },
      expected: ['vllm.parallel-size:error'],
      says: ['asks for 4 GPUs', '--tensor-parallel-size=2'],
    },
    'fewer GPUs than the machine has (the default TP 1) leaves some idle': {
      wrong: { model: LLAMA_8B, machine: L4_2, deployment: args('--max-model-len=8192') },
      right: { model: LLAMA_8B, machine: L4_2, deployment: args('--max-model-len=8192', '-tp', '2') },
      expected: ['vllm.parallel-size:warning'],
      says: ['(the default) uses 1 of the 2 GPUs'],
    },
    'multi-host replicas count every host': {
      wrong: {
        model: LLAMA_70B,
        machine: { ...H100_8, multihostGpuNodeCount: 2 },
        deployment: args('--tensor-parallel-size=8', '--pipeline-parallel-size=4', '--max-model-len=8192'),
      },
      right: {
        model: LLAMA_70B,
        machine: { ...H100_8, multihostGpuNodeCount: 2 },
        deployment: args('--tensor-parallel-size=8', '--pipeline-parallel-size=2', '--max-model-len=8192'),
      },
      expected: ['vllm.parallel-size:error'],
      says: ['on 2 hosts (16 GPUs)', '--pipeline-parallel-size=2'],
    },
    "a tensor-parallel size the heads do not divide (Qwen2.5-7B's 28 heads)": {
      wrong: { model: QWEN_7B, machine: L4_8, deployment: args('--tensor-parallel-size=8') },
      right: {
        model: QWEN_7B,
        machine: L4_8,
        deployment: args('--tensor-parallel-size=4', '--pipeline-parallel-size=2'),
      },
      expected: ['vllm.tensor-parallel-heads:error'],
      says: ['28 attention heads', '1, 2, 4'],
    },
  });
});

describe('--max-num-batched-tokens', () => {
  pairs({
    'below the max model length without chunked prefill': {
      wrong: {
        model: LLAMA_8B,
        machine: L4,
        deployment: args('--max-model-len=8192', '--max-num-batched-tokens=2048'),
      },
      right: {
        model: LLAMA_8B,
        machine: L4,
        deployment: args('--max-model-len=8192', '--max-num-batched-tokens=2048', '--enable-chunked-prefill'),
      },
      expected: ['vllm.batched-tokens:warning'],
      says: ['--max-num-batched-tokens 2048', 'max model length 8192'],
    },
    'an error on the V0 engine': {
      wrong: {
        model: LLAMA_8B,
        machine: L4,
        deployment: {
          container: {
            args: ['--max-model-len=8192', '--max-num-batched-tokens=2048', '--no-enable-chunked-prefill'],
            env: { VLLM_USE_V1: '0' },
          },
        },
      },
      right: {
        model: LLAMA_8B,
        machine: L4,
        deployment: args('--max-model-len=8192', '--max-num-batched-tokens=8192'),
      },
      expected: ['vllm.batched-tokens:error'],
    },
  });
});

describe('--quantization', () => {
  pairs({
    'a pre-quantized format on 16-bit custom weights': {
      wrong: { model: LLAMA_8B, machine: L4, deployment: args('--quantization=awq', '--max-model-len=8192') },
      right: { model: LLAMA_8B, machine: L4, deployment: args('--quantization=fp8', '--max-model-len=8192') },
      expected: ['vllm.quantization:error'],
      says: ['already quantized with awq'],
    },
    'a method vLLM does not know': {
      wrong: { model: LLAMA_8B, machine: L4, deployment: args('-q', 'int3', '--max-model-len=8192') },
      right: { model: LLAMA_8B, machine: L4, deployment: args('-q', 'bitsandbytes', '--max-model-len=8192') },
      expected: ['vllm.quantization:error'],
      says: ['not a quantization method vLLM knows'],
    },
    'FP8 below compute capability 8.0 (T4)': {
      wrong: {
        model: LLAMA_8B,
        machine: T4,
        deployment: args('--quantization=fp8', '--dtype=float16', '--max-model-len=4096'),
      },
      right: {
        model: LLAMA_8B,
        machine: T4,
        deployment: args('--quantization=bitsandbytes', '--dtype=float16', '--max-model-len=4096'),
      },
      expected: ['vllm.quantization:error'],
      says: ['compute capability 8.0 or newer', '7.5'],
    },
    'FP8 on an A100 runs weight-only': {
      wrong: {
        model: LLAMA_8B,
        machine: A100_40,
        deployment: args('--quantization=fp8', '--max-model-len=8192'),
      },
      right: {
        model: LLAMA_8B,
        machine: H100,
        deployment: args('--quantization=fp8', '--max-model-len=8192'),
      },
      expected: ['vllm.quantization:warning'],
      says: ['weight-only'],
    },
    "a natively quantized release takes its own method (gpt-oss's MXFP4)": {
      wrong: {
        model: GPT_OSS,
        machine: H100,
        deployment: args('--quantization=fp8', '--max-model-len=8192'),
      },
      right: {
        model: GPT_OSS,
        machine: H100,
        deployment: args('--quantization=mxfp4', '--max-model-len=8192'),
      },
      expected: ['vllm.quantization:error'],
      says: ['does not match the checkpoint'],
    },
  });
});

describe('--dtype', () => {
  pairs({
    'bfloat16 on a T4': {
      wrong: { model: LLAMA_1B, machine: T4, deployment: args('--dtype=bfloat16', '--max-model-len=8192') },
      right: { model: LLAMA_1B, machine: T4, deployment: args('--dtype=float16', '--max-model-len=8192') },
      expected: ['vllm.dtype-unsupported:error'],
      says: ['compute capability 7.5', '--dtype=float16'],
    },
    'auto with bfloat16 weights on a V100 (no container override: the default is auto)': {
      wrong: { model: LLAMA_1B, machine: V100, deployment: {} },
      right: { model: LLAMA_1B, machine: V100, deployment: args('--dtype', 'half', '--max-model-len=8192') },
      expected: ['vllm.dtype-auto-bfloat16:warning'],
      says: ['compute capability 7.0'],
    },
    'bf16 is not a --dtype vLLM takes': {
      wrong: { model: LLAMA_1B, machine: L4, deployment: args('--dtype=bf16', '--max-model-len=8192') },
      right: { model: LLAMA_1B, machine: L4, deployment: args('--dtype=bfloat16', '--max-model-len=8192') },
      expected: ['vllm.invalid-argument:error'],
      says: ['bfloat16, not bf16'],
    },
  });

  it('reports every value vLLM cannot parse', () => {
    expect(
      findings({
        model: LLAMA_1B,
        machine: L4,
        deployment: args(
          '--max-model-len=lots',
          '--gpu-memory-utilization=1.5',
          '--tensor-parallel-size=0',
          '--dtype',
        ),
      }),
    ).toEqual(Array(4).fill('vllm.invalid-argument:error'));
  });
});
