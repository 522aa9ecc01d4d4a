import { detectLayout, type ExpectedTensor, expectedTensors, type TensorExpectation } from '../models';
import { QUANTIZED_DTYPES, isDtype } from '../safetensors/dtypes';
import { preview } from '../safetensors/header';
import type { ConfigAnalysis } from './config-checks';
import type { FindingCollector } from './report';
import type { WeightInventory } from './weights';

/**
 * Tensor names and shapes against config.json (hf-weights §3.4, §7.5, §7.6, §7.18) and quantization
 * signals in names and dtypes (§4.1). Needs only the headers.
 */

const EXAMPLES = 5;
const TRAINING_PREFIX_RE =
  /^(base_model\.model\.|module\.|_orig_mod\.)|(^|\.)lora_(A|B|embedding_A|embedding_B)(\.|$)/;
const QUANTIZED_NAME_RE =
  /\.(qweight|qzeros|g_idx|SCB|weight_format|absmax|quant_map|weight_scale|weight_scale_inv|input_scale|weight_zero_point|weight_packed|weight_shape|weight_global_scale|k_scale|v_scale|W_q)$|\.weight\.(absmax|quant_map|quant_state\..*)$|_blocks$|(?<!norm)\.scales$/;
/** Below this many elements an integer tensor is a buffer (position ids, masks), not a packed weight. */
const PACKED_WEIGHT_MIN_ELEMENTS = 65_536;

function list(names: readonly string[]): string {
  return `${names
    .slice(0, EXAMPLES)
    .map((n) => preview(n))
    .join(', ')}${names.length > EXAMPLES ? `, … (${names.length} in all)` : ''}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function checkTensors(
  inventory: WeightInventory,
  config: ConfigAnalysis,
  findings: FindingCollector,
): void {
  if (inventory.format !== 'safetensors' || inventory.tensors.size === 0) return;
  const names = [...inventory.tensors.keys()];

  const training = names.filter((n) => TRAINING_PREFIX_RE.test(n));
  if (training.length > 0) {
    findings.add(
      'tensors.training-prefix',
      `Tensor names carry adapter or training-wrapper prefixes (${list(training)}): this is an unmerged LoRA adapter or a raw ` +
        'DDP/torch.compile checkpoint. Merge the adapter (merge_and_unload) or unwrap the model, then save_pretrained.',
      { file: inventory.tensors.get(training[0]!)!.file },
    );
    return;
  }

  const { family, dims } = config;
  let expectation: TensorExpectation | undefined;
  if (family && dims) {
    try {
      expectation = expectedTensors(family, dims, { layout: detectLayout(family, names) });
    } catch {
      // Dimensions too inconsistent to enumerate tensors: config.json findings already explain why.
      expectation = undefined;
    }
  }
  const expected = new Map<string, ExpectedTensor>(expectation?.tensors.map((t) => [t.name, t]) ?? []);

  checkQuantizedTensors(inventory, expected, config, findings);
  if (!expectation || !dims) return;

  const prefix = expectation.layout.modelPrefix;
  const fileOf = (name: string): string => inventory.tensors.get(name)?.file ?? '';

  // Embeddings ↔ vocab_size (resized embeddings with a stale config are the classic case).
  const embedName = `${prefix}embed_tokens.weight`;
  const embed = inventory.tensors.get(embedName);
  let wrongBase = '';
  if (embed && embed.shape.length === 2) {
    const [rows, hidden] = embed.shape as [number, number];
    if (hidden !== dims.hiddenSize) {
      wrongBase = ` The embeddings are ${hidden} wide but config.json says hidden_size ${dims.hiddenSize}: the weights and config.json come from different models — upload the config.json of the model you fine-tuned.`;
    } else if (rows !== dims.vocabSize) {
      findings.add(
        'tensors.vocab-mismatch',
        `embed_tokens has ${rows} rows but config.vocab_size is ${dims.vocabSize}; update vocab_size (and lm_head) consistently ` +
          '(resize_token_embeddings, then save config, weights and tokenizer together).',
        { file: embed.file },
      );
    }
  }

  // Layer indices must be exactly 0 … L−1 (DeepSeek may add its MTP layers after them).
  const layerRe = new RegExp(`^${prefix.replace(/\./g, '\\.')}layers\\.(\\d+)\\.`);
  const layers = new Set<number>();
  for (const name of names) {
    const match = layerRe.exec(name);
    if (match) layers.add(Number(match[1]));
  }
  const presentLayers = layers.size;
  const maxLayer = presentLayers > 0 ? Math.max(...layers) : -1;
  const allowedCounts = new Set([dims.numLayers, dims.numLayers + dims.numMtpLayers]);
  const contiguous = maxLayer + 1 === presentLayers;
  let layerMismatch = false;
  if (inventory.complete && presentLayers > 0 && (!contiguous || !allowedCounts.has(maxLayer + 1))) {
    layerMismatch = true;
    const missing = Array.from({ length: maxLayer + 1 }, (_, i) => i).filter((i) => !layers.has(i));
    findings.add(
      'tensors.layer-count',
      `The checkpoint has ${presentLayers} decoder layers (indices up to ${maxLayer}${missing.length > 0 ? `, missing ${missing.slice(0, EXAMPLES).join(', ')}` : ''}) ` +
        `but config.json num_hidden_layers is ${dims.numLayers}.` +
        (wrongBase ||
          ' A shard may be missing or config.json may belong to another model size — upload matching weights and config.'),
      { file: 'config.json' },
    );
  }

  const missing: string[] = [];
  const mismatched: string[] = [];
  let lmHeadMissing = false;
  for (const tensor of expected.values()) {
    const actual = inventory.tensors.get(tensor.name);
    if (!actual) {
      if (!tensor.required || !inventory.complete) continue;
      const layer = layerRe.exec(tensor.name);
      if (layerMismatch && layer && Number(layer[1]) > maxLayer) continue;
      if (tensor.name === expectation.layout.lmHead) lmHeadMissing = true;
      else missing.push(tensor.name);
      continue;
    }
    if (tensor.name === embedName && wrongBase === '' && actual.shape[1] === dims.hiddenSize) continue; // vocab check above
    if (
      tensor.name === expectation.layout.lmHead &&
      actual.shape[0] !== dims.vocabSize &&
      actual.shape[1] === dims.hiddenSize
    ) {
      if (!findings.has('tensors.vocab-mismatch')) {
        findings.add(
          'tensors.vocab-mismatch',
          `${tensor.name} has ${actual.shape[0]} rows but config.vocab_size is ${dims.vocabSize}; update vocab_size and the embeddings consistently.`,
          { file: actual.file },
        );
      }
      continue;
    }
    if (!sameShape(actual.shape, tensor.shape)) {
      mismatched.push(
        `${preview(tensor.name)} is [${actual.shape.join(', ')}], expected [${tensor.shape.join(', ')}]`,
      );
    }
  }
  if (lmHeadMissing) {
    findings.add(
      'tensors.lm-head-missing',
      `tie_word_embeddings is false but the checkpoint has no ${expectation.layout.lmHead}; vLLM fails with "weights were not initialized ` +
        'from checkpoint". Save the model again with its output layer, or set tie_word_embeddings to true only if the model was trained tied.',
      { file: 'config.json' },
    );
  }
  if (missing.length > 0) {
    findings.add(
      'tensors.missing',
      `${missing.length} tensor(s) that ${family!.displayName} needs per config.json are absent: ${list(missing)}; ` +
        'a shard is missing or the export renamed them — re-export with save_pretrained.',
      { file: fileOf(missing[0]!) || undefined },
    );
  }
  if (mismatched.length > 0) {
    findings.add(
      'tensors.shape-mismatch',
      `${mismatched.length} tensor shape(s) disagree with config.json: ${mismatched.slice(0, 3).join('; ')}${mismatched.length > 3 ? '; …' : ''}.` +
        (wrongBase ||
          ' Check hidden_size, heads, head_dim, intermediate_size and experts against the model you fine-tuned.'),
      { file: 'config.json' },
    );
  } else if (wrongBase && !layerMismatch) {
    findings.add('tensors.shape-mismatch', wrongBase.trim(), { file: 'config.json' });
  }

  const auxiliary = expectation.auxiliaryPrefixes;
  const unexpected = names.filter(
    (n) =>
      !expected.has(n) &&
      !auxiliary.some((p) => n.startsWith(p)) &&
      !QUANTIZED_NAME_RE.test(n) &&
      !layerRe.test(n),
  );
  const unexpectedInLayers = names.filter(
    (n) => !expected.has(n) && layerRe.test(n) && !QUANTIZED_NAME_RE.test(n),
  );
  const extra = [...unexpected, ...(layerMismatch ? [] : unexpectedInLayers)];
  if (extra.length > 0) {
    findings.add(
      'tensors.unexpected',
      `${extra.length} tensor(s) that ${family!.displayName} does not use: ${list(extra)}; loaders ignore or reject them — ` +
        'check that the export is a plain *ForCausalLM model (no value heads, reward heads or renamed modules).',
      { file: fileOf(extra[0]!) || undefined },
    );
  }
}

function checkQuantizedTensors(
  inventory: WeightInventory,
  expected: Map<string, ExpectedTensor>,
  config: ConfigAnalysis,
  findings: FindingCollector,
): void {
  if (config.quantized) return; // config.quantized already says so, once
  const byName: string[] = [];
  const byDtype: string[] = [];
  // The native release formats store some tensors (e.g. DeepSeek's MTP projection) in their own dtype.
  const nativeDtype =
    config.nativeQuantization === 'fp8'
      ? 'F8_E4M3'
      : config.nativeQuantization === 'mxfp4'
        ? 'U8'
        : undefined;
  for (const tensor of inventory.tensors.values()) {
    const spec = expected.get(tensor.name);
    if (QUANTIZED_NAME_RE.test(tensor.name) && spec === undefined) byName.push(tensor.name);
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (
      isDtype(tensor.dtype) &&
      QUANTIZED_DTYPES.has(tensor.dtype) &&
      tensor.shape.length >= 2 &&
      elements >= PACKED_WEIGHT_MIN_ELEMENTS &&
      spec?.dtype !== tensor.dtype &&
      tensor.dtype !== nativeDtype
    ) {
      byDtype.push(`${tensor.name} (${tensor.dtype})`);
    }
  }
  if (byName.length === 0 && byDtype.length === 0) return;
  const evidence = [
    ...(byName.length > 0 ? [`tensors ${list(byName)}`] : []),
    ...(byDtype.length > 0 ? [`low-precision weights ${list(byDtype)}`] : []),
  ].join('; ');
  const first = byName[0] ?? byDtype[0]!.replace(/ \(.*\)$/, '');
  findings.add(
    'quantization.tensors',
    `Quantized checkpoint detected (${evidence}). Vertex custom weights require unquantized BF16/FP16 weights; upload the original-precision model.`,
    { file: inventory.tensors.get(first)?.file },
  );
}
