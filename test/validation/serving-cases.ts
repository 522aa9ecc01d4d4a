import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { readModelDims } from '../../src/models';
import type { MachineSpec } from '../../src/spec/deployment-spec';
import {
  checkDeploymentSettings,
  type DeploymentCheckInput,
  type DeploymentSettings,
  type ServingModel,
} from '../../src/validation';

/**
 * Cases for the deployment cross-checks: real released configs (their dims through readModelDims)
 * as models, rows of the machine table as machines, and pairs of a deliberately wrong input that
 * yields exactly the expected findings with the corrected input that yields none.
 */

const FIXTURES = path.join(__dirname, 'fixtures', 'real-configs');
export const config = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8')) as Record<string, unknown>;
const model = (name: string, weightBytes: number, extra: Partial<ServingModel> = {}): ServingModel => ({
  dims: readModelDims(config(name)),
  weightBytes,
  ...extra,
});

export const LLAMA_8B = model('Llama-3.1-8B.json', 16.06e9);
export const LLAMA_1B = model('Llama-3.2-1B-Instruct.json', 2.47e9);
export const LLAMA_3B = model('Llama-3.2-3B.json', 6.43e9);
export const LLAMA_70B = model('Llama-3.1-70B-Instruct.json', 141.1e9);
export const QWEN_7B = model('Qwen2.5-7B-Instruct.json', 15.23e9);
export const GPT_OSS = model('gpt-oss-120b.json', 65.3e9, {
  quantization: { method: 'mxfp4', native: true },
});

const machine = (type: string, acceleratorType: MachineSpec['acceleratorType'], acceleratorCount: number) =>
  ({ type, acceleratorType, acceleratorCount }) satisfies MachineSpec;
export const L4 = machine('g2-standard-12', 'NVIDIA_L4', 1);
export const L4_2 = machine('g2-standard-24', 'NVIDIA_L4', 2);
export const L4_8 = machine('g2-standard-96', 'NVIDIA_L4', 8);
export const T4 = machine('n1-standard-8', 'NVIDIA_TESLA_T4', 1);
export const V100 = machine('n1-standard-8', 'NVIDIA_TESLA_V100', 1);
export const A100_40 = machine('a2-highgpu-1g', 'NVIDIA_TESLA_A100', 1);
export const A100_80 = machine('a2-ultragpu-1g', 'NVIDIA_A100_80GB', 1);
export const A100_80x2 = machine('a2-ultragpu-2g', 'NVIDIA_A100_80GB', 2);
export const A100_80x4 = machine('a2-ultragpu-4g', 'NVIDIA_A100_80GB', 4);
export const H100 = machine('a3-highgpu-1g', 'NVIDIA_H100_80GB', 1);
export const H100_8 = machine('a3-highgpu-8g', 'NVIDIA_H100_80GB', 8);
export const H200_8 = machine('a3-ultragpu-8g', 'NVIDIA_H200_141GB', 8);

export const args = (...list: string[]): DeploymentSettings => ({ container: { args: list } });

/** The findings as `rule:severity`, sorted. */
export function findings(input: DeploymentCheckInput): string[] {
  return checkDeploymentSettings(input)
    .findings.map((f) => `${f.rule}:${f.severity}`)
    .sort();
}
export function messages(input: DeploymentCheckInput): string {
  return checkDeploymentSettings(input)
    .findings.map((f) => f.message)
    .join('\n');
}

export interface Pair {
  wrong: DeploymentCheckInput;
  right: DeploymentCheckInput;
  /** `rule:severity` of every finding the wrong input gives. */
  expected: string[];
  /** Numbers and fixes the messages must name. */
  says?: Array<string | RegExp>;
}

export function pairs(cases: Record<string, Pair>): void {
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      expect(findings(c.wrong)).toEqual([...c.expected].sort());
      for (const text of c.says ?? []) expect(messages(c.wrong)).toMatch(text);
      expect(findings(c.right)).toEqual([]);
    });
  }
}
