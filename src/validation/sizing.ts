import {
  expectedTensors,
  expectedWeightBytes,
  kvCacheBytesForSequence,
  type ModelDims,
  validTensorParallelSizes,
} from '../models';
import type { MachineSpec } from '../spec/deployment-spec';
import type { ConfigAnalysis } from './config-checks';
import {
  checkMachine,
  describeMachine,
  formatBytes,
  MACHINE_TABLE,
  recommendMachine,
  type SizingRequirement,
} from './machines';
import type { FindingCollector, Sizing } from './report';
import type { WeightInventory } from './weights';

/**
 * Weight bytes + KV budget for the target context → recommended Vertex machine, and the check of
 * a machine the caller chose (hf-weights §6, §7.12, §7.13).
 */

export const DEFAULT_CONTEXT_LENGTH = 8_192;

/** vLLM casts F32/F64 checkpoints to 16-bit on load, so GPU memory counts them at 2 bytes per element. */
const LOADED_BYTES_PER_ELEMENT_CAP = 2;

export interface SizingOptions {
  contextLength?: number;
  machine?: MachineSpec;
  /**
   * The serving container sets `--tensor-parallel-size` itself: the chosen machine's GPU count is
   * then not the tensor parallelism, and the vLLM checks judge the given one against the heads.
   */
  explicitTensorParallel?: boolean;
}

export function computeSizing(
  config: ConfigAnalysis,
  inventory: WeightInventory,
  options: SizingOptions,
  findings: FindingCollector,
): Sizing | undefined {
  const { family, dims } = config;
  if (!family || !dims) {
    findings.add(
      'sizing.unavailable',
      'No machine recommendation: config.json could not be read as a supported model.',
      {
        file: 'config.json',
      },
    );
    return undefined;
  }

  const { weightBytes, source } = loadedWeightBytes(config, inventory);
  const requested = options.contextLength ?? DEFAULT_CONTEXT_LENGTH;
  let contextTokens = requested;
  if (dims.maxPositionEmbeddings !== undefined && requested > dims.maxPositionEmbeddings) {
    contextTokens = dims.maxPositionEmbeddings;
    findings.add(
      'sizing.context-clamped',
      `The target context of ${requested} tokens exceeds the model's max_position_embeddings (${dims.maxPositionEmbeddings}); sized for ${contextTokens}.`,
      { file: 'config.json' },
    );
  }
  const requirement: SizingRequirement = {
    weightBytes,
    kvBytesPerToken: kvCacheBytesForSequence(dims, contextTokens) / Math.max(1, contextTokens),
    contextTokens,
    tensorParallelSizes: validTensorParallelSizes(dims),
    kvShardLimit: kvShardLimit(dims),
    ...(dims.maxPositionEmbeddings === undefined
      ? {}
      : { maxPositionEmbeddings: dims.maxPositionEmbeddings }),
    ...(config.nativeQuantization ? { nativeQuantization: config.nativeQuantization } : {}),
  };
  const { recommended, alternatives } = recommendMachine(requirement);
  const sizing: Sizing = { requirement, weightBytesSource: source, alternatives };
  const tpNote = `${family.displayName} can use ${requirement.tensorParallelSizes.join(', ')} GPUs per replica (${dims.numAttentionHeads} attention heads, ${dims.numKeyValueHeads} KV heads)`;

  if (recommended) {
    sizing.recommended = recommended;
    if (
      dims.maxPositionEmbeddings !== undefined &&
      dims.maxPositionEmbeddings > recommended.maxContextTokens
    ) {
      findings.add(
        'config.long-context',
        `max_position_embeddings is ${dims.maxPositionEmbeddings} but ${describeMachine(recommended)} can cache about ` +
          `${recommended.maxContextTokens} tokens; vLLM derives max_model_len from max_position_embeddings and fails at startup ` +
          `("larger than the maximum number of tokens that can be stored in KV cache") unless max_model_len ≤ ${recommended.maxContextTokens}.`,
        { file: 'config.json' },
      );
    }
  } else {
    const largest = MACHINE_TABLE.filter((s) => !s.memoryUnconfirmed).reduce((a, b) =>
      a.gpuMemoryBytes * a.machine.acceleratorCount >= b.gpuMemoryBytes * b.machine.acceleratorCount ? a : b,
    );
    findings.add(
      'sizing.no-fit',
      `No single Vertex machine holds ${formatBytes(weightBytes)} of weights plus the KV cache for ${contextTokens} tokens ` +
        `(largest: ${describeMachine(largest)}, ${formatBytes(largest.gpuMemoryBytes * largest.machine.acceleratorCount)}); ${tpNote}. ` +
        (config.nativeQuantization === undefined && family.nativeQuantization
          ? `Upload ${family.displayName} in its native ${family.nativeQuantization.method.toUpperCase()} release format instead.`
          : 'Reduce the context length or deploy a smaller model.'),
      { file: 'config.json' },
    );
  }

  if (options.machine)
    checkChosenMachine(
      options.machine,
      requirement,
      sizing,
      tpNote,
      findings,
      options.explicitTensorParallel,
    );
  if (config.nativeQuantization) {
    const chosenHopper = options.machine
      ? MACHINE_TABLE.find((s) => s.machine.acceleratorType === options.machine!.acceleratorType)
          ?.generation === 'hopper'
      : true;
    findings.add(
      'machine.kernel-caveat',
      `${config.nativeQuantization === 'mxfp4' ? 'MXFP4' : 'Block-FP8'} kernels target Hopper GPUs (H100/H200)` +
        (chosenHopper
          ? '; the recommendation uses them.'
          : `; on ${options.machine!.acceleratorType} support depends on the serving image's vLLM version (fallback or weight-only paths) — prefer H100/H200.`),
      { file: 'config.json' },
    );
  }
  return sizing;
}

/** How many ways tensor parallelism splits the KV cache: MLA's latent cache is replicated on every rank; KV heads split at most K ways. */
export function kvShardLimit(dims: ModelDims): number {
  return dims.mla ? 1 : dims.numKeyValueHeads;
}

function checkChosenMachine(
  machine: MachineSpec,
  requirement: SizingRequirement,
  sizing: Sizing,
  tpNote: string,
  findings: FindingCollector,
  explicitTensorParallel = false,
): void {
  const check = checkMachine(requirement, machine);
  const suggestion = sizing.recommended ? ` Recommended: ${describeMachine(sizing.recommended)}.` : '';
  if (!check.known) {
    findings.add('machine.unknown', `${check.message}.${suggestion}`);
    return;
  }
  sizing.chosen = check.fit;
  const name = describeMachine(check.fit);
  if (!check.fit.tensorParallelValid && !explicitTensorParallel) {
    findings.add(
      'machine.tensor-parallel',
      `${name} runs the model with tensor parallelism ${machine.acceleratorCount}, which the model's heads do not divide; ${tpNote}.${suggestion}`,
    );
    return;
  }
  // With the parallelism set by the container's args, memory alone decides here.
  const fits = explicitTensorParallel
    ? check.fit.perGpuRequiredBytes <= check.fit.perGpuUsableBytes
    : check.fit.fits;
  if (!fits) {
    const weightsFit = check.fit.maxContextTokens > 0;
    findings.add(
      'machine.insufficient-memory',
      `${name} cannot hold the model: each GPU needs ${formatBytes(check.fit.perGpuRequiredBytes)} ` +
        `(weights ${formatBytes(requirement.weightBytes)} split ${machine.acceleratorCount * (machine.multihostGpuNodeCount ?? 1)} ways, KV cache for ${requirement.contextTokens} tokens, runtime overhead) ` +
        `but vLLM may use ${formatBytes(check.fit.perGpuUsableBytes)}.` +
        (weightsFit ? ` It fits a context of at most ${check.fit.maxContextTokens} tokens.` : '') +
        suggestion,
    );
  }
}

/** Bytes the weights take on the GPUs, and where the number came from. */
function loadedWeightBytes(
  config: ConfigAnalysis,
  inventory: WeightInventory,
): { weightBytes: number; source: Sizing['weightBytesSource'] } {
  if (inventory.format === 'safetensors' && inventory.weightBytes > 0) {
    let bytes = 0;
    for (const tensor of inventory.tensors.values()) {
      const size = tensor.end - tensor.begin;
      const elementBits = tensor.bits ?? 16;
      bytes +=
        elementBits > 8 * LOADED_BYTES_PER_ELEMENT_CAP
          ? (size * 8 * LOADED_BYTES_PER_ELEMENT_CAP) / elementBits
          : size;
    }
    return { weightBytes: Math.round(bytes), source: 'headers' };
  }
  if (inventory.format === 'bin' && inventory.weightBytes > 0) {
    return { weightBytes: inventory.weightBytes, source: 'file-sizes' };
  }
  // Native formats fix their packed tensors' dtypes; everything else is counted as BF16.
  const expected = expectedTensors(config.family!, config.dims!);
  return { weightBytes: expectedWeightBytes(expected.tensors, 'BF16'), source: 'config' };
}
