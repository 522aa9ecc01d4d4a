import {
  countParameters,
  detectFamily,
  type FamilyId,
  type ModelDims,
  type ModelFamily,
  ModelConfigError,
  readModelDims,
  type SupportedModel,
} from '../models';
import type { ModelStore } from '../storage';
import type { FolderLayout } from './layout';
import type { FindingCollector } from './report';
import { toIdList } from './tokenizer';
import { reportUnreadable } from './weights';

/**
 * config.json: bounded read, allow-listed family (hf-weights §3.1, via `src/models`), normalised
 * dimensions, quantization policy (§4.2) and version hazards (§7.16, §7.20).
 */

/** Real configs are a few KB; Llama-4's, the largest, is under 20 KB. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface ConfigAnalysis {
  family?: ModelFamily;
  architecture?: string;
  modelType?: string;
  dims?: ModelDims;
  /** quantization_config matches the family's native release format and the policy allows it. */
  nativeQuantization?: 'mxfp4' | 'fp8';
  /** A quantization the policy rejects was declared (reported as `config.quantized`). */
  quantized: boolean;
  quantizationMethod?: string;
  eosTokenIds?: number[];
  parameterCount?: number;
  activeParameterCount?: number;
  /** The Vertex-listed model these dimensions match, if any. */
  matchedModel?: SupportedModel;
  sizeGuess?: string;
}

export interface ConfigCheckOptions {
  expectedFamily?: FamilyId;
  allowNativeQuantization: boolean;
  signal?: AbortSignal;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function checkConfig(
  store: ModelStore,
  layout: FolderLayout,
  findings: FindingCollector,
  options: ConfigCheckOptions,
): Promise<ConfigAnalysis> {
  const analysis: ConfigAnalysis = { quantized: false };
  const object = layout.root.get('config.json');
  if (!object) return analysis; // reported by the layout check
  if (object.size > MAX_CONFIG_BYTES) {
    findings.add(
      'config.too-large',
      `config.json is ${object.size} bytes; real configs are a few KB — upload the config.json written by save_pretrained.`,
      { file: 'config.json' },
    );
    return analysis;
  }
  options.signal?.throwIfAborted();
  let config: unknown;
  try {
    config = JSON.parse((await store.readSmall('config.json', MAX_CONFIG_BYTES)).toString('utf8'));
  } catch (err) {
    if (!(err instanceof SyntaxError)) {
      reportUnreadable(err, 'config.json', findings);
      return analysis;
    }
    findings.add(
      'config.invalid-json',
      `config.json is not valid JSON (${err.message}); upload the config.json written by save_pretrained.`,
      { file: 'config.json' },
    );
    return analysis;
  }
  if (!isRecord(config)) {
    findings.add(
      'config.invalid',
      'config.json is not a JSON object; upload the config.json written by save_pretrained.',
      {
        file: 'config.json',
      },
    );
    return analysis;
  }

  const detection = detectFamily(config);
  if (!detection.ok) {
    if (detection.architecture !== undefined) analysis.architecture = detection.architecture;
    if (detection.modelType !== undefined) analysis.modelType = detection.modelType;
    findings.add(
      detection.reason === 'peft-adapter' ? 'peft.adapter' : 'config.unsupported-architecture',
      detection.message,
      {
        file: 'config.json',
      },
    );
    return analysis;
  }
  const family = detection.family;
  Object.assign(analysis, { family, architecture: detection.architecture, modelType: detection.modelType });
  if (options.expectedFamily !== undefined && options.expectedFamily !== family.id) {
    findings.add(
      'config.family-mismatch',
      `config.json declares ${detection.architecture} (${family.displayName}) but the deployment expects the "${options.expectedFamily}" family; ` +
        'upload the right model or change the expected family.',
      { file: 'config.json' },
    );
  }

  let dims: ModelDims;
  try {
    dims = readModelDims(config, family);
  } catch (err) {
    if (!(err instanceof ModelConfigError)) throw err;
    findings.add('config.invalid', err.message, { file: 'config.json' });
    return analysis;
  }
  analysis.dims = dims;
  const text = detection.textConfig;
  const eos = (
    isRecord(text) && text.eos_token_id !== undefined ? text.eos_token_id : config.eos_token_id
  ) as unknown;
  if (typeof eos === 'number' || (Array.isArray(eos) && eos.every((id) => typeof id === 'number'))) {
    analysis.eosTokenIds = toIdList(eos as number | number[]);
  }

  checkQuantizationConfig(family, dims, analysis, findings, options);
  checkVersionHazards(config, family, dims, findings);

  const parameters = countParameters(family, dims);
  analysis.parameterCount = parameters.total;
  analysis.activeParameterCount = parameters.active;
  const matched = matchSupportedModel(family, dims);
  if (matched) {
    analysis.matchedModel = matched;
    analysis.sizeGuess = `${matched.name}-like`;
  } else {
    analysis.sizeGuess = `≈${formatParameters(parameters.total)} ${family.displayName} (hidden ${dims.hiddenSize}, ${dims.numLayers} layers; no Vertex-listed size matches)`;
  }
  return analysis;
}

function checkQuantizationConfig(
  family: ModelFamily,
  dims: ModelDims,
  analysis: ConfigAnalysis,
  findings: FindingCollector,
  options: ConfigCheckOptions,
): void {
  const quantization = dims.quantization;
  const native = family.nativeQuantization;
  if (!quantization) {
    if (family.id === 'gpt-oss') {
      findings.add(
        'quantization.dequantized-native',
        'gpt-oss was released with MXFP4 experts; this checkpoint has no quantization_config (dequantized, e.g. a merged BF16 fine-tune). ' +
          "Serving BF16 gpt-oss depends on the container's vLLM version and needs ~3× the memory; re-quantize to MXFP4 if the deploy fails.",
        { file: 'config.json' },
      );
    }
    return;
  }
  const where =
    quantization.location === 'root'
      ? 'quantization_config'
      : quantization.location === 'text_config'
        ? 'text_config.quantization_config'
        : 'compression_config';
  if (quantization.method !== undefined) analysis.quantizationMethod = quantization.method;
  if (native && quantization.method === native.method) {
    const differences = Object.entries(native.expectedConfig)
      .filter(([key, expected]) => !sameValue(quantization.config[key], expected))
      .map(([key]) => key);
    if (differences.length === 0 && options.allowNativeQuantization) {
      analysis.nativeQuantization = native.method;
      findings.add(
        'config.native-quantization',
        `${where} declares ${native.description}; this is ${family.displayName}'s own release precision, accepted as not ` +
          'quantized by our policy (confirm with a real deploy: Vertex documents no exception).',
        { file: 'config.json' },
      );
      return;
    }
    analysis.quantized = true;
    findings.add(
      'config.quantized',
      differences.length > 0
        ? `${where} uses ${native.method} but differs from ${family.displayName}'s release format in ${differences.join(', ')}; ` +
            'only the unmodified release format is accepted — upload the original checkpoint layout.'
        : `${where} declares ${native.description}, and native quantized formats are disallowed for this validation; upload BF16 weights.`,
      { file: 'config.json' },
    );
    return;
  }
  analysis.quantized = true;
  findings.add(
    'config.quantized',
    `Quantized checkpoint detected (${where}.quant_method=${quantization.method ?? 'unknown'}). Vertex custom weights require ` +
      'unquantized BF16/FP16 weights; upload the original-precision model.',
    { file: 'config.json' },
  );
}

/** Equal JSON values; arrays compare as sets (module lists come in any order). */
function sameValue(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return false;
    const rest = [...actual];
    return expected.every((e) => {
      const i = rest.findIndex((a) => sameValue(a, e));
      return i !== -1 && rest.splice(i, 1).length === 1;
    });
  }
  return JSON.stringify(actual) === JSON.stringify(expected);
}

function checkVersionHazards(
  config: Record<string, unknown>,
  family: ModelFamily,
  dims: ModelDims,
  findings: FindingCollector,
): void {
  if (dims.ropeParameters && !dims.hasTopLevelRopeTheta) {
    findings.add(
      'config.rope-parameters',
      'config.json uses rope_parameters (transformers ≥ 5); add top-level rope_theta / rope_scaling for compatibility — ' +
        'older vLLM / transformers fall back to theta 10000 and produce silently wrong output.',
      { file: 'config.json' },
    );
  }
  if (config.dtype !== undefined && config.torch_dtype === undefined) {
    findings.add(
      'config.dtype-field',
      `config.json sets "dtype" (transformers ≥ 4.56) but not "torch_dtype"; older serving stacks ignore "dtype" — add "torch_dtype": ${JSON.stringify(config.dtype)}.`,
      { file: 'config.json' },
    );
  }
  const major = dims.transformersVersion ? Number.parseInt(dims.transformersVersion, 10) : NaN;
  if (major >= 5) {
    findings.add(
      'config.transformers-version',
      `config.json was written by transformers ${dims.transformersVersion}; serving images may pin 4.x and misread v5 configs — ` +
        'check the container version or re-save with transformers 4.x.',
      { file: 'config.json' },
    );
  }
  if (family.needsRecentServingStack) {
    findings.add(
      'config.recent-architecture',
      `${family.displayName} (model_type "${dims.modelType ?? family.modelType}") needs a recent serving image; older vLLM/transformers fail with "does not recognize this architecture".`,
      { file: 'config.json' },
    );
  }
}

/** The Vertex-listed model with exactly these dimensions (vocab aside: fine-tunes resize it). */
function matchSupportedModel(family: ModelFamily, dims: ModelDims): SupportedModel | undefined {
  const candidates = family.supportedModels.filter(
    (m) =>
      m.hiddenSize === dims.hiddenSize &&
      m.numLayers === dims.numLayers &&
      m.numAttentionHeads === dims.numAttentionHeads &&
      m.numKeyValueHeads === dims.numKeyValueHeads &&
      (m.numExperts === undefined || m.numExperts === dims.moe?.numExperts),
  );
  return candidates.find((m) => m.vocabSize === dims.vocabSize) ?? candidates[0];
}

/** 8.03e9 → "8.0B", 4.9e8 → "490M", small test models in K. */
export function formatParameters(parameters: number): string {
  if (parameters >= 1e9) return `${(parameters / 1e9).toFixed(1)}B`;
  if (parameters >= 1e6) return `${(parameters / 1e6).toFixed(0)}M`;
  return `${(parameters / 1e3).toFixed(0)}K`;
}
