import type { Storage } from '@google-cloud/storage';
import { z } from 'zod';
import { isFamilyId, type TokenizerKind } from '../models';
import { preview, SAFETENSORS_MAX_HEADER_BYTES } from '../safetensors/header';
import { MachineSpecSchema } from '../spec/deployment-spec';
import {
  InvalidModelUriError,
  type ModelStore,
  openModelStore,
  StorageAccessError,
  type StoredObject,
} from '../storage';
import { checkConfig, type ConfigAnalysis } from './config-checks';
import { countingStore, Limiter, type ReadStats } from './io';
import { checkLayout, classifyFolder } from './layout';
import {
  FindingCollector,
  MAX_REPORTED_NAME_CHARS,
  MAX_REPORTED_OBJECTS,
  type ModelSummary,
  REPORT_SCHEMA_VERSION,
  type Sizing,
  type ValidationReport,
} from './report';
import {
  addDeploymentFindings,
  checkMachinePlacement,
  DeploymentSettingsSchema,
  type ServingModel,
} from './serving-checks';
import { computeSizing, DEFAULT_CONTEXT_LENGTH } from './sizing';
import { parseVllmArgs } from './vllm-args';
import { checkTensors } from './tensor-checks';
import { checkTokenizer, type TokenizerSummary } from './tokenizer';
import { checkWeightPrecision, checkWeights, emptyInventory, type WeightInventory } from './weights';

/**
 * Pre-flight validation of a Hugging Face model folder on GCS or local disk: every check of
 * hf-weights.md §0 from one listing and small ranged reads, in parallel under one concurrency
 * bound. No Temporal here; the validate-weights activity wraps this and heartbeats from
 * `onProgress`.
 */

export const ValidateOptionsSchema = z.strictObject({
  /** A machine the deployment will use: checked to hold the model. */
  machine: MachineSpecSchema.optional(),
  /**
   * The deployment's container, capacity and replicas (as the spec parses them): cross-checked
   * against the model and the machine (`machine`, or else the recommended one).
   */
  deployment: DeploymentSettingsSchema.optional(),
  /** Tokens of KV cache the sizing must leave room for (clamped to max_position_embeddings). */
  contextLength: z.number().int().min(1).max(10_485_760).default(DEFAULT_CONTEXT_LENGTH),
  /** The deployment needs /chat/completions: a missing chat template is an error. */
  requireChat: z.boolean().default(false),
  /** The family the user picked; a different detected family is an error. */
  expectedFamily: z
    .string()
    .refine(isFamilyId, { message: 'not a supported family id (see src/models/families.ts)' })
    .optional(),
  /** Reads in flight at once. */
  concurrency: z.number().int().min(1).max(64).default(16),
  /** Largest safetensors header downloaded per file. */
  maxHeaderBytes: z.number().int().min(8).max(SAFETENSORS_MAX_HEADER_BYTES).optional(),
  maxFindingsPerRule: z.number().int().min(1).max(100).default(10),
  /** Accept gpt-oss MXFP4 / DeepSeek block-FP8 release formats as not quantized (hf-weights §4.2). */
  allowNativeQuantization: z.boolean().default(true),
  /** At most this many objects under the prefix (a bucket root is refused). */
  maxObjects: z.number().int().min(1).max(100_000).default(10_000),
});

export type ValidationPhase = 'listing' | 'config' | 'weights' | 'tokenizer' | 'sizing' | 'done';

export interface ValidationProgress {
  phase: ValidationPhase;
  /** Weight headers read so far, of `total` (phase `weights`). */
  done?: number;
  total?: number;
}

export type ValidateOptions = z.input<typeof ValidateOptionsSchema> & {
  signal?: AbortSignal;
  onProgress?: (progress: ValidationProgress) => void;
};

export class InvalidValidationOptionsError extends Error {
  override readonly name = 'InvalidValidationOptionsError';
}

/**
 * Validates the model folder at `location` (a `gs://bucket/prefix` URI, read through `storage`, or
 * a local directory). Problems with the model are findings; a location that cannot be listed at all
 * gives status `unreadable`. Transient storage errors are thrown, so a caller can retry.
 */
export async function validateModel(
  location: string,
  options: ValidateOptions = {},
  deps: { storage?: Storage } = {},
): Promise<ValidationReport> {
  let store: ModelStore;
  try {
    store = openModelStore(location, deps);
  } catch (err) {
    if (!(err instanceof InvalidModelUriError)) throw err;
    const findings = new FindingCollector();
    findings.add('location.invalid-uri', err.message);
    return unreadableReport(location, findings, Date.now());
  }
  return validateStore(store, options);
}

/** `validateModel` on an already opened store (tests and benchmarks wrap stores to count reads). */
export async function validateStore(
  store: ModelStore,
  options: ValidateOptions = {},
): Promise<ValidationReport> {
  const started = Date.now();
  const { signal, onProgress, ...rest } = options;
  const parsed = ValidateOptionsSchema.safeParse(rest);
  if (!parsed.success) {
    throw new InvalidValidationOptionsError(
      `invalid validation options: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`,
    );
  }
  const opts = parsed.data;
  const findings = new FindingCollector(opts.maxFindingsPerRule);
  const { store: counted, stats } = countingStore(store);
  const limiter = new Limiter(opts.concurrency);

  onProgress?.({ phase: 'listing' });
  signal?.throwIfAborted();
  let objects: StoredObject[];
  try {
    objects = await store.list({ maxObjects: opts.maxObjects });
  } catch (err) {
    if (!(err instanceof StorageAccessError) || err.kind === 'unavailable') throw err;
    const rule =
      err.kind === 'forbidden'
        ? 'location.forbidden'
        : err.kind === 'too-many-objects'
          ? 'location.too-many-objects'
          : 'location.not-found';
    findings.add(rule, locationMessage(err, store.uri));
    return unreadableReport(store.uri, findings, started);
  }
  if (objects.length === 0) {
    findings.add(
      'location.not-found',
      `${store.uri} holds no objects: check the bucket and path (gs:// prefixes are case-sensitive) and that the upload finished.`,
    );
    return unreadableReport(store.uri, findings, started, 0);
  }

  const layout = classifyFolder(objects);
  const isModelFolder = checkLayout(layout, store.uri, findings);
  let config: ConfigAnalysis = { quantized: false };
  let inventory: WeightInventory = emptyInventory();
  let tokenizer: TokenizerSummary | undefined;
  let sizing: Sizing | undefined;
  if (isModelFolder) {
    onProgress?.({ phase: 'config' });
    config = await limiter.run(() =>
      checkConfig(counted, layout, findings, {
        allowNativeQuantization: opts.allowNativeQuantization,
        ...(opts.expectedFamily ? { expectedFamily: opts.expectedFamily } : {}),
        ...(signal ? { signal } : {}),
      }),
    );
    const family = config.family;
    const tokenizerKind = tokenizerKindOf(config);
    [inventory, tokenizer] = await Promise.all([
      checkWeights(counted, layout, findings, {
        limiter,
        ...(opts.maxHeaderBytes === undefined ? {} : { maxHeaderBytes: opts.maxHeaderBytes }),
        ...(signal ? { signal } : {}),
        onHeader: (done, total) => onProgress?.({ phase: 'weights', done, total }),
      }),
      checkTokenizer(counted, layout, findings, {
        requiresTokenizerJson: tokenizerKind === 'bpe',
        multimodal: family?.multimodal ?? false,
        requireChat: opts.requireChat,
        limiter,
        ...(family ? { familyName: family.displayName } : {}),
        ...(config.dims ? { vocabSize: config.dims.vocabSize } : {}),
        ...(config.eosTokenIds ? { configEosTokenIds: config.eosTokenIds } : {}),
        ...(signal ? { signal } : {}),
      }),
    ]);
    checkTensors(inventory, config, findings);
    checkWeightPrecision(inventory, findings);
    onProgress?.({ phase: 'sizing' });
    sizing = computeSizing(
      config,
      inventory,
      {
        contextLength: opts.contextLength,
        machine: opts.machine,
        explicitTensorParallel:
          parseVllmArgs(opts.deployment?.container?.args ?? []).tensorParallelSize !== undefined,
      },
      findings,
    );
  }
  if (opts.deployment) {
    const machine = opts.machine ?? sizing?.recommended?.machine;
    const model = servingModel(config, sizing);
    addDeploymentFindings(
      { deployment: opts.deployment, ...(machine ? { machine } : {}), ...(model ? { model } : {}) },
      findings,
    );
  } else if (opts.machine) {
    checkMachinePlacement(opts.machine, findings);
  }
  onProgress?.({ phase: 'done' });

  const { findings: kept, omitted, summary } = findings.result();
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    location: store.uri,
    status: summary.errors > 0 ? 'errors' : 'ok',
    checkedAt: new Date(started).toISOString(),
    summary,
    findings: kept,
    omitted,
    model: modelSummary(config, inventory, tokenizer),
    ...(sizing ? { sizing } : {}),
    ...objectRecords(objects),
    stats: statsOf(objects.length, inventory.headersRead, stats, started),
  };
}

/**
 * The tokenizer a model of this family and size uses. Families that changed tokenizer (Llama-2 →
 * Llama-3, Mistral-7B → Nemo) are told apart by the matched Vertex model, else by vocabulary size:
 * their SentencePiece releases have ~32k tokens, their BPE (tiktoken-style) releases over 100k.
 */
function tokenizerKindOf(config: ConfigAnalysis): TokenizerKind | undefined {
  const family = config.family;
  if (!family) return undefined;
  if (family.tokenizers.length === 1) return family.tokenizers[0];
  if (config.matchedModel) return config.matchedModel.tokenizer;
  if (config.dims) return config.dims.vocabSize > 100_000 ? 'bpe' : 'sentencepiece';
  return undefined;
}

function locationMessage(err: StorageAccessError, uri: string): string {
  // The storage client's own text can span lines (one per retry); its first line is the reason.
  const reason = err.message.split('\n')[0]!.trim();
  switch (err.kind) {
    case 'forbidden':
      return `${reason}. The Vertex AI service agent (service-PROJECT_NUMBER@gcp-sa-aiplatform.iam.gserviceaccount.com) needs roles/storage.objectViewer on the bucket too.`;
    case 'too-many-objects':
      return reason;
    default:
      return `${uri} was not found (${reason}); check the bucket name and path (gs:// paths are case-sensitive) or the directory.`;
  }
}

function modelSummary(
  config: ConfigAnalysis,
  inventory: WeightInventory,
  tokenizer: TokenizerSummary | undefined,
): ModelSummary {
  const dominant = Object.entries(inventory.dtypeBytes).sort((a, b) => b[1] - a[1])[0]?.[0];
  const dims = config.dims;
  const summary: ModelSummary = {
    dtypeBytes: inventory.dtypeBytes,
    weightFormat: inventory.format,
    weightFiles: inventory.files.length,
    tensorCount: inventory.tensors.size,
  };
  if (config.family) {
    summary.family = config.family.id;
    summary.familyName = config.family.displayName;
  }
  if (config.architecture !== undefined) summary.architecture = config.architecture;
  if (config.modelType !== undefined) summary.modelType = config.modelType;
  if (config.sizeGuess !== undefined) summary.sizeGuess = config.sizeGuess;
  if (config.parameterCount !== undefined) summary.parameterCount = config.parameterCount;
  if (config.activeParameterCount !== undefined) summary.activeParameterCount = config.activeParameterCount;
  if (inventory.weightBytes > 0) summary.weightBytes = inventory.weightBytes;
  const dtype = dominant ?? dims?.dtype;
  if (dtype !== undefined) summary.dtype = dtype;
  if (dims) {
    summary.vocabSize = dims.vocabSize;
    if (dims.maxPositionEmbeddings !== undefined) summary.maxPositionEmbeddings = dims.maxPositionEmbeddings;
  }
  const quantization = modelQuantization(config);
  if (quantization) summary.quantization = quantization;
  if (tokenizer) summary.chatTemplate = tokenizer.chatTemplate;
  return summary;
}

/** What the serving cross-checks need of the model: its dims and the weight bytes sizing counted. */
function servingModel(config: ConfigAnalysis, sizing: Sizing | undefined): ServingModel | undefined {
  if (!config.dims || !sizing) return undefined;
  const quantization = modelQuantization(config);
  return {
    dims: config.dims,
    weightBytes: sizing.requirement.weightBytes,
    ...(quantization ? { quantization } : {}),
  };
}

function modelQuantization(config: ConfigAnalysis): ModelSummary['quantization'] {
  if (config.quantizationMethod === undefined && config.nativeQuantization === undefined) return undefined;
  return {
    ...(config.quantizationMethod !== undefined ? { method: config.quantizationMethod } : {}),
    native: config.nativeQuantization !== undefined,
  };
}

function objectRecords(
  objects: readonly StoredObject[],
): Pick<ValidationReport, 'objects' | 'objectsOmitted'> {
  // Root files first: they are what the importer reads; subfolder files follow if room remains.
  const sorted = [...objects].sort(
    (a, b) => Number(a.name.includes('/')) - Number(b.name.includes('/')) || a.name.localeCompare(b.name),
  );
  const records: ValidationReport['objects'] = [];
  let nameChars = 0;
  for (const o of sorted) {
    nameChars += o.name.length;
    // GCS names reach 1,024 bytes: bound the total too, or 2,000 of them would outgrow a Temporal payload.
    if (records.length >= MAX_REPORTED_OBJECTS || nameChars > MAX_REPORTED_NAME_CHARS) break;
    records.push({
      name: o.name,
      size: o.size,
      ...(o.generation === undefined ? {} : { generation: o.generation }),
    });
  }
  return { objects: records, objectsOmitted: sorted.length - records.length };
}

function statsOf(
  objectsListed: number,
  headersRead: number,
  reads: ReadStats,
  started: number,
): ValidationReport['stats'] {
  return { objectsListed, headersRead, bytesRead: reads.bytesRead, durationMs: Date.now() - started };
}

function unreadableReport(
  location: string,
  findings: FindingCollector,
  started: number,
  objectsListed = 0,
): ValidationReport {
  const { findings: kept, omitted, summary } = findings.result();
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    location: preview(location, 2000),
    status: 'unreadable',
    checkedAt: new Date(started).toISOString(),
    summary,
    findings: kept,
    omitted,
    model: { dtypeBytes: {}, weightFormat: 'none', weightFiles: 0, tensorCount: 0 },
    objects: [],
    objectsOmitted: 0,
    stats: { objectsListed, headersRead: 0, bytesRead: 0, durationMs: Date.now() - started },
  };
}
