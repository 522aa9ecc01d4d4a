import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AcceleratorType } from '../../src/spec/deployment-spec';
import { type ValidationReport, validateModel } from '../../src/validation';

/**
 * Real released config.json files (see fixtures/real-configs/README.md for their sources): each is
 * validated as the only file of a folder, so family detection, size guess and the machine come
 * from config.json alone (weights estimated from the parameter count).
 */

const FIXTURES = path.join(__dirname, 'fixtures', 'real-configs');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function validateConfig(fixture: string): Promise<ValidationReport> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'real-config-'));
  dirs.push(dir);
  await copyFile(path.join(FIXTURES, fixture), path.join(dir, 'config.json'));
  return validateModel(dir);
}

const rules = (report: ValidationReport) => report.findings.map((f) => f.rule);

interface Expectation {
  family: string;
  sizeGuess: RegExp;
  /** Billions of parameters the config implies (±3 %). */
  billions: number;
  gpus: number;
  accelerators: readonly AcceleratorType[];
  /** Largest GPU count the heads allow. */
  maxTensorParallel?: number;
}

const L4: readonly AcceleratorType[] = ['NVIDIA_L4'];
const CLASS_80GB: readonly AcceleratorType[] = ['NVIDIA_A100_80GB', 'NVIDIA_H100_80GB'];

const SUPPORTED: Record<string, Expectation> = {
  'Llama-2-7b-chat-hf.json': {
    family: 'llama',
    sizeGuess: /^Llama-2-7B-like$/,
    billions: 6.74,
    gpus: 1,
    accelerators: L4,
  },
  'Llama-3.1-8B.json': {
    family: 'llama',
    sizeGuess: /^Llama-3\.1-8B-like$/,
    billions: 8.03,
    gpus: 1,
    accelerators: L4,
  },
  'Llama-3.1-70B-Instruct.json': {
    family: 'llama',
    sizeGuess: /^Llama-3\.1-70B-like$/,
    billions: 70.6,
    gpus: 4,
    accelerators: CLASS_80GB,
  },
  'Llama-3.2-1B-Instruct.json': {
    family: 'llama',
    sizeGuess: /^Llama-3\.2-1B-like$/,
    billions: 1.24,
    gpus: 1,
    accelerators: L4,
  },
  'Llama-3.2-3B.json': {
    family: 'llama',
    sizeGuess: /^Llama-3\.2-3B-like$/,
    billions: 3.21,
    gpus: 1,
    accelerators: L4,
  },
  'gemma-3-4b-it.json': {
    family: 'gemma3',
    sizeGuess: /^Gemma-3-4B \/ MedGemma-4B-like$/,
    billions: 3.88,
    gpus: 1,
    accelerators: L4,
  },
  'gemma-3-27b-it.json': {
    family: 'gemma3',
    sizeGuess: /^Gemma-3-27B-like$/,
    billions: 27.0,
    gpus: 1,
    accelerators: CLASS_80GB,
  },
  // Text-only Gemma 3 (Gemma3ForCausalLM, model_type gemma3_text), the architecture of MedGemma-27B-text.
  'gemma-3-1b-it.json': {
    family: 'gemma3-text',
    sizeGuess: /^Gemma-3-1B-like$/,
    billions: 1.0,
    gpus: 1,
    accelerators: L4,
  },
  'Qwen2.5-0.5B-finetune-f32.json': {
    family: 'qwen2',
    sizeGuess: /^Qwen2\.5-0\.5B-like$/,
    billions: 0.49,
    gpus: 1,
    accelerators: L4,
    maxTensorParallel: 2,
  },
  'Qwen2-1.5B-Instruct.json': {
    family: 'qwen2',
    sizeGuess: /^Qwen2-1\.5B \/ Qwen2\.5-1\.5B-like$/,
    billions: 1.54,
    gpus: 1,
    accelerators: L4,
    maxTensorParallel: 4,
  },
  'Qwen2.5-7B-Instruct.json': {
    family: 'qwen2',
    sizeGuess: /^Qwen2\.5-7B-like$/,
    billions: 7.62,
    gpus: 1,
    accelerators: L4,
    maxTensorParallel: 4,
  },
  'Qwen2.5-32B-Instruct.json': {
    family: 'qwen2',
    sizeGuess: /^Qwen2\.5-32B-like$/,
    billions: 32.8,
    gpus: 1,
    accelerators: CLASS_80GB,
  },
  'Qwen3-8B.json': {
    family: 'qwen3',
    sizeGuess: /^Qwen3-8B-like$/,
    billions: 8.19,
    gpus: 1,
    accelerators: L4,
  },
  'Qwen3-30B-A3B.json': {
    family: 'qwen3-moe',
    sizeGuess: /^≈30\.5B Qwen3 MoE/,
    billions: 30.5,
    gpus: 1,
    accelerators: CLASS_80GB,
  },
  'DeepSeek-V3.json': {
    family: 'deepseek-v3',
    sizeGuess: /^DeepSeek-V3 \/ R1 \/ V3\.1-like$/,
    billions: 671,
    gpus: 8,
    accelerators: ['NVIDIA_H200_141GB'],
  },
  'phi-4.json': {
    family: 'phi3',
    sizeGuess: /^Phi-4-reasoning-like$/,
    billions: 14.7,
    gpus: 1,
    accelerators: ['NVIDIA_TESLA_A100'],
    maxTensorParallel: 2,
  },
  'gpt-oss-120b.json': {
    family: 'gpt-oss',
    sizeGuess: /^gpt-oss-120b-like$/,
    billions: 116.8,
    gpus: 1,
    accelerators: ['NVIDIA_H100_80GB'],
  },
  'gpt-oss-20b-dequantized.json': {
    family: 'gpt-oss',
    sizeGuess: /^gpt-oss-20b-like$/,
    billions: 20.9,
    gpus: 1,
    accelerators: CLASS_80GB,
  },
  'Mistral-7B-v0.1.json': {
    family: 'mistral',
    sizeGuess: /^Mistral-7B-v0\.1-like$/,
    billions: 7.24,
    gpus: 1,
    accelerators: L4,
  },
  // head_dim 128 is given explicitly (5120 / 32 heads would be 160): a derived head_dim would count ~15B.
  'Mistral-Nemo-Instruct-2407.json': {
    family: 'mistral',
    sizeGuess: /^Mistral-Nemo-Base-2407-like$/,
    billions: 12.2,
    gpus: 1,
    accelerators: ['NVIDIA_TESLA_A100'],
  },
  'Mixtral-8x7B-v0.1.json': {
    family: 'mixtral',
    sizeGuess: /^Mixtral-8x7B-v0\.1-like$/,
    billions: 46.7,
    gpus: 2,
    accelerators: CLASS_80GB,
  },
  'gemma-2-9b-it.json': {
    family: 'gemma2',
    sizeGuess: /^Gemma-2-9B-like$/,
    billions: 9.24,
    gpus: 1,
    accelerators: ['NVIDIA_TESLA_A100'],
  },
  // head_dim 128 is given explicitly (4608 / 32 heads would be 144, the query_pre_attn_scalar).
  'gemma-2-27b-it.json': {
    family: 'gemma2',
    sizeGuess: /^Gemma-2-27B-like$/,
    billions: 27.2,
    gpus: 1,
    accelerators: CLASS_80GB,
  },
  // Text weights only (the ~0.9B vision tower is not counted from config.json).
  'Llama-4-Scout-17B-16E-Instruct.json': {
    family: 'llama4',
    sizeGuess: /^Llama-4-Scout-17B-16E-like$/,
    billions: 107.8,
    gpus: 4,
    accelerators: CLASS_80GB,
  },
  'Qwen3-Next-80B-A3B-Thinking.json': {
    family: 'qwen3-next',
    sizeGuess: /^Qwen3-Next-80B-A3B-like$/,
    billions: 79.7,
    gpus: 4,
    accelerators: CLASS_80GB,
  },
};

describe('real configs of supported families', () => {
  for (const [fixture, expected] of Object.entries(SUPPORTED)) {
    it(`${fixture}: ${expected.family}, ${expected.gpus}× ${expected.accelerators.join('/')}`, async () => {
      const report = await validateConfig(fixture);
      expect(rules(report)).not.toContain('config.unsupported-architecture');
      expect(rules(report)).not.toContain('config.invalid');
      expect(report.model.family).toBe(expected.family);
      expect(report.model.sizeGuess).toMatch(expected.sizeGuess);
      expect(report.model.parameterCount! / 1e9).toBeGreaterThan(expected.billions * 0.97);
      expect(report.model.parameterCount! / 1e9).toBeLessThan(expected.billions * 1.03);
      const sizing = report.sizing!;
      expect(sizing.weightBytesSource).toBe('config');
      expect(sizing.recommended?.machine.acceleratorCount).toBe(expected.gpus);
      expect(expected.accelerators).toContain(sizing.recommended?.machine.acceleratorType);
      if (expected.maxTensorParallel !== undefined) {
        expect(Math.max(...sizing.requirement.tensorParallelSizes)).toBe(expected.maxTensorParallel);
        for (const fit of sizing.alternatives) {
          expect(fit.machine.acceleratorCount).toBeLessThanOrEqual(expected.maxTensorParallel);
        }
      }
    });
  }

  it('DeepSeek-V3 and gpt-oss-120b are their native release formats (info), with the Hopper caveat', async () => {
    for (const fixture of ['DeepSeek-V3.json', 'gpt-oss-120b.json']) {
      const report = await validateConfig(fixture);
      expect(rules(report)).toContain('config.native-quantization');
      expect(rules(report)).toContain('machine.kernel-caveat');
      expect(rules(report)).not.toContain('config.quantized');
    }
  });

  it('a dequantized gpt-oss fine-tune is warned about', async () => {
    expect(rules(await validateConfig('gpt-oss-20b-dequantized.json'))).toContain(
      'quantization.dequantized-native',
    );
  });

  it('Llama 4 and Qwen3-Next are flagged as needing a recent serving image; Mixtral and Gemma 2 are not', async () => {
    for (const fixture of ['Llama-4-Scout-17B-16E-Instruct.json', 'Qwen3-Next-80B-A3B-Thinking.json']) {
      expect(rules(await validateConfig(fixture))).toContain('config.recent-architecture');
    }
    for (const fixture of ['Mixtral-8x7B-v0.1.json', 'gemma-2-9b-it.json', 'gemma-2-27b-it.json']) {
      expect(rules(await validateConfig(fixture))).not.toContain('config.recent-architecture');
    }
  });

  it('an explicit head_dim is used for the count: Gemma-2-27B is 27.23B, Gemma-3-1B its published 999,885,952', async () => {
    // 4608 hidden / 32 heads would derive head_dim 144 (its query_pre_attn_scalar) and count ~27.55B.
    const gemma2 = (await validateConfig('gemma-2-27b-it.json')).model.parameterCount!;
    expect(gemma2 / 1e9).toBeGreaterThan(27.2);
    expect(gemma2 / 1e9).toBeLessThan(27.3);
    // head_dim 256 with 4 heads on a 1152-wide model (keras-hub's gemma3_instruct_1b preset: 999885952).
    expect((await validateConfig('gemma-3-1b-it.json')).model.parameterCount).toBe(999_885_952);
  });

  it('the multimodal Llama 4 root needs its image processor config', async () => {
    expect(rules(await validateConfig('Llama-4-Scout-17B-16E-Instruct.json'))).toContain('processor.missing');
    expect(rules(await validateConfig('Mixtral-8x7B-v0.1.json'))).not.toContain('processor.missing');
  });
});

describe('tokenizer expectations follow the release', () => {
  it('Llama-3, Mistral-Nemo and Qwen2 need tokenizer.json; Llama-2 and Mistral-7B load their SentencePiece tokenizer.model', async () => {
    const sentencePieceOnly = async (fixture: string) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'real-config-'));
      dirs.push(dir);
      await copyFile(path.join(FIXTURES, fixture), path.join(dir, 'config.json'));
      await writeFile(path.join(dir, 'tokenizer.model'), Buffer.from([0x0a, 0x0b, 0x0a, 0x05]));
      await writeFile(path.join(dir, 'tokenizer_config.json'), '{}');
      return rules(await validateModel(dir));
    };
    expect(await sentencePieceOnly('Llama-3.1-8B.json')).toContain('tokenizer.json-required');
    expect(await sentencePieceOnly('Llama-2-7b-chat-hf.json')).not.toContain('tokenizer.json-required');
    // Mistral-7B-v0.1 shipped SentencePiece; Mistral-Nemo ships the BPE (Tekken) tokenizer.json.
    expect(await sentencePieceOnly('Mistral-7B-v0.1.json')).not.toContain('tokenizer.json-required');
    expect(await sentencePieceOnly('Mistral-Nemo-Instruct-2407.json')).toContain('tokenizer.json-required');
    // Qwen2 ships a byte-level BPE tokenizer (vocab.json/merges.txt/tokenizer.json), never tokenizer.model.
    expect(await sentencePieceOnly('Qwen2-1.5B-Instruct.json')).toContain('tokenizer.json-required');
  });
});

describe('real configs Vertex does not accept', () => {
  it('GPT-2 is an unsupported architecture, named in the message', async () => {
    const report = await validateConfig('gpt2.json');
    const finding = report.findings.find((f) => f.rule === 'config.unsupported-architecture');
    expect(finding?.message).toContain('GPT2LMHeadModel');
    expect(report.sizing).toBeUndefined();
  });

  it('a BERT classifier is refused as a classification head', async () => {
    const finding = (await validateConfig('bert-base-uncased-classifier.json')).findings.find(
      (f) => f.rule === 'config.unsupported-architecture',
    );
    expect(finding?.message).toMatch(/BertForSequenceClassification.*classification head/);
  });

  it('an 8-bit bitsandbytes CodeLlama is a quantized checkpoint', async () => {
    const finding = (await validateConfig('CodeLlama-7b-bnb-8bit.json')).findings.find(
      (f) => f.rule === 'config.quantized',
    );
    expect(finding?.message).toContain('quant_method=bitsandbytes');
  });
});
