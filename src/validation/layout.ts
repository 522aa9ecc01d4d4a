import type { StoredObject } from '../storage';
import type { FindingCollector } from './report';

/**
 * Which files of a listed folder play which role (hf-weights §0 checks 1, 3, 4, 13; §7.1, 8, 9, 15),
 * and the folder-level findings: wrong prefix level, adapters, missing / mixed / stray weights.
 */

export interface FolderLayout {
  /** Objects directly under the prefix, by name. */
  root: Map<string, StoredObject>;
  /** Every listed object by relative path (index shard names may point into subfolders). */
  all: Map<string, StoredObject>;
  /** First-level subfolder names. */
  subfolders: string[];
  /** Root `*.safetensors` that are model weights (not adapters, not Mistral-native consolidated files). */
  safetensors: StoredObject[];
  safetensorsIndex?: StoredObject;
  /** Root PyTorch pickle weights (`pytorch_model*.bin`). */
  bins: StoredObject[];
  binIndex?: StoredObject;
  consolidated: StoredObject[];
  adapterFiles: StoredObject[];
  trainingArtifacts: StoredObject[];
  quantizationSideFiles: StoredObject[];
  /** Weight formats Vertex custom weights do not load (.pth, .pt, .ckpt, .h5, .msgpack, .gguf). */
  otherWeightFiles: StoredObject[];
}

const SAFETENSORS_INDEX = 'model.safetensors.index.json';
const BIN_INDEX = 'pytorch_model.bin.index.json';
const BIN_WEIGHT_RE = /^pytorch_model(-\d{5}-of-\d{5})?\.bin$/;
const CONSOLIDATED_RE = /^consolidated.*\.(safetensors|pth)$|^consolidated\.safetensors\.index\.json$/;
const ADAPTER_RE = /^adapter_(config\.json|model\.(safetensors|bin))$/;
const TRAINING_RE =
  /^(optimizer\.(pt|bin)|scheduler\.pt|scaler\.pt|rng_state.*\.pth|training_args\.bin|trainer_state\.json)$/;
const QUANT_SIDE_RE = /^(quantize_config\.json|quant_config\.json|hf_quant_config\.json)$|\.gguf$/;
const OTHER_WEIGHTS_RE = /\.(pth|pt|ckpt|h5|msgpack|gguf)$/;
/** Subfolders transformers itself writes next to the model files. */
const EXPECTED_SUBFOLDERS = new Set(['additional_chat_templates']);

export function classifyFolder(objects: readonly StoredObject[]): FolderLayout {
  const layout: FolderLayout = {
    root: new Map(),
    all: new Map(objects.map((o) => [o.name, o])),
    subfolders: [],
    safetensors: [],
    bins: [],
    consolidated: [],
    adapterFiles: [],
    trainingArtifacts: [],
    quantizationSideFiles: [],
    otherWeightFiles: [],
  };
  const subfolders = new Set<string>();
  for (const object of objects) {
    const slash = object.name.indexOf('/');
    if (slash !== -1) {
      subfolders.add(object.name.slice(0, slash));
      continue;
    }
    const name = object.name;
    layout.root.set(name, object);
    if (name === SAFETENSORS_INDEX) layout.safetensorsIndex = object;
    else if (name === BIN_INDEX) layout.binIndex = object;
    else if (ADAPTER_RE.test(name)) layout.adapterFiles.push(object);
    else if (CONSOLIDATED_RE.test(name)) layout.consolidated.push(object);
    else if (name.endsWith('.safetensors')) layout.safetensors.push(object);
    else if (BIN_WEIGHT_RE.test(name)) layout.bins.push(object);
    else if (TRAINING_RE.test(name)) layout.trainingArtifacts.push(object);
    if (QUANT_SIDE_RE.test(name)) layout.quantizationSideFiles.push(object);
    if (OTHER_WEIGHTS_RE.test(name) && !TRAINING_RE.test(name) && !CONSOLIDATED_RE.test(name)) {
      layout.otherWeightFiles.push(object);
    }
  }
  layout.subfolders = [...subfolders].sort();
  return layout;
}

export function hasFullWeights(layout: FolderLayout): boolean {
  return layout.safetensors.length > 0 || layout.bins.length > 0;
}

/**
 * Folder-level checks. Returns false when the folder is not a model folder at all (wrong prefix,
 * adapter only, no config): the file-level checks would only repeat the same news.
 */
export function checkLayout(layout: FolderLayout, uri: string, findings: FindingCollector): boolean {
  const adapter = layout.adapterFiles.length > 0;
  if (adapter && !hasFullWeights(layout)) {
    findings.add(
      'peft.adapter',
      'This folder contains a LoRA/PEFT adapter (adapter_config.json / adapter_model.*), not a full model. ' +
        'Merge the adapter into the base model (e.g. merge_and_unload, or save_pretrained_merged with Unsloth) and upload the merged weights.',
      { file: layout.adapterFiles[0]!.name },
    );
    return false;
  }
  if (!layout.root.has('config.json')) {
    const nested = [...layout.all.keys()]
      .filter((name) => name.endsWith('/config.json'))
      .sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
    if (nested.length > 0) {
      const folder = nested[0]!.slice(0, -'config.json'.length);
      findings.add(
        'layout.nested-folder',
        `config.json is not directly under ${uri}; found it under ${uri}${folder} — use that prefix` +
          (nested.length > 1 ? ` (other candidates: ${nested.slice(1, 4).join(', ')})` : ''),
        { file: nested[0] },
      );
    } else {
      const native = ['params.json', 'consolidated.00.pth', 'consolidated.safetensors'].filter((n) =>
        layout.root.has(n),
      );
      findings.add(
        'config.missing',
        `No config.json under ${uri}. ` +
          (native.length > 0
            ? `${native.join(' and ')} suggest a Meta/Mistral-native checkpoint; convert it to Hugging Face format (e.g. transformers' convert_*_weights_to_hf) and upload that folder.`
            : 'Upload the complete Hugging Face model folder written by save_pretrained (config.json, weights, tokenizer files).'),
        { file: 'config.json' },
      );
    }
    return false;
  }

  const strayFolders = layout.subfolders.filter((f) => !EXPECTED_SUBFOLDERS.has(f));
  if (strayFolders.length > 0) {
    findings.add(
      'layout.subfolder',
      `Subfolders next to the model files are copied and may confuse the importer: ${strayFolders
        .slice(0, 5)
        .map((f) => `${f}/`)
        .join(', ')}${strayFolders.length > 5 ? ` and ${strayFolders.length - 5} more` : ''}; ` +
        'remove them (e.g. original/ holds Meta-native weights, checkpoint-*/ training state, .cache/ download metadata).',
      { file: `${strayFolders[0]}/` },
    );
  }
  if (adapter) {
    findings.add(
      'peft.stray-adapter',
      `${layout.adapterFiles.map((f) => f.name).join(', ')} sit next to the full weights; remove them ` +
        '(without an index, vLLM loads every *.safetensors, adapter included).',
      { file: layout.adapterFiles[0]!.name },
    );
  }
  for (const file of layout.quantizationSideFiles) {
    findings.add(
      'quantization.side-file',
      `${file.name} is written by quantization tools (AutoGPTQ, AutoAWQ, ModelOpt, llama.cpp): quantized checkpoints ` +
        'cannot be imported as Vertex custom weights; upload the original-precision (BF16/FP16) model.',
      { file: file.name },
    );
  }
  if (layout.trainingArtifacts.length > 0) {
    findings.add(
      'layout.training-artifacts',
      `Training artifacts are ignored by vLLM but uploaded and copied: ${layout.trainingArtifacts
        .slice(0, 5)
        .map((f) => f.name)
        .join(', ')}; delete them to save time and storage.`,
      { file: layout.trainingArtifacts[0]!.name },
    );
  }
  if (!hasFullWeights(layout)) {
    const other = [...layout.consolidated, ...layout.otherWeightFiles].map((f) => f.name);
    findings.add(
      'weights.missing',
      `No weights found under ${uri}: expected model.safetensors, model-XXXXX-of-YYYYY.safetensors with ` +
        'model.safetensors.index.json, or pytorch_model*.bin' +
        (other.length > 0
          ? `; found only ${other.slice(0, 3).join(', ')}, which Vertex custom weights do not load — save the model with save_pretrained(safe_serialization=True).`
          : '; the upload may have been interrupted or the weights saved elsewhere.'),
    );
    return true;
  }
  if (layout.safetensors.length > 0 && layout.bins.length > 0) {
    findings.add(
      'weights.mixed-formats',
      'Both .bin and .safetensors weights are present; only safetensors will be used — delete the .bin files ' +
        `(${layout.bins.length} file(s)) to halve upload size.`,
      { file: layout.bins[0]!.name },
    );
  }
  if (layout.safetensors.length === 0) {
    findings.add(
      'weights.bin-only',
      'Only pickle .bin weights: they load slower, can execute code when unpickled, and their tensors cannot be ' +
        'checked before deploying; re-save with save_pretrained(safe_serialization=True) to get .safetensors.',
      { file: layout.bins[0]!.name },
    );
  }
  const hfSafetensors = layout.safetensors.length > 0;
  const consolidatedWeights = layout.consolidated.filter((f) => !f.name.endsWith('.json'));
  if (hfSafetensors && consolidatedWeights.length > 0) {
    findings.add(
      'weights.consolidated',
      `${consolidatedWeights.map((f) => f.name).join(', ')} (Mistral-native format) sit next to the Hugging Face shards; ` +
        'recent vLLM prefers consolidated*.safetensors and may serve those (often the original base weights) instead ' +
        'of your fine-tune. Remove consolidated*.safetensors (and its index, params.json) unless it contains your fine-tuned weights.',
      { file: consolidatedWeights[0]!.name },
    );
  }
  return true;
}
