import { setTimeout as delay } from 'node:timers/promises';
import {
  type ModelDims,
  type ModelFamily,
  SUPPORTED_ARCHITECTURES,
  countParameters,
  detectFamily,
  detectLayout,
  expectedTensors,
  readModelDims,
} from '../models';
import {
  type HeaderProblemCode,
  SAFETENSORS_MAX_HEADER_BYTES,
  readSafetensorsHeader,
} from '../safetensors/header';
import { type ModelStore, StorageAccessError, type StoredObject } from '../storage';
import type { RpcStatus } from './errors';
import type { ModelFacts, ServedModel, ServingInspection } from './state';

/**
 * What Google's side does with a custom-weights folder, modelled on the two programs involved:
 * Model Garden's importer (reads config.json, refuses unknown architectures and quantized
 * checkpoints before creating anything) and the vLLM serving container (loads the tokenizer, picks
 * weight files like `DefaultModelLoader`, parses safetensors headers like `safetensors_rust`, and
 * fails on unexpected, missing or mis-shaped tensors). It knows nothing of our pre-flight validator
 * (`src/validation`), so a gap there shows up here as a late failure, as it would on Vertex.
 */

export interface InspectContext {
  gcsUri: string;
  projectNumber: string;
  endpointId: string;
  location: string;
}

const MAX_JSON_FILE_BYTES = 64 * 1024 * 1024;
const LIST_ATTEMPTS = 3;
/** vLLM never loads these even when they match a weight pattern. */
const IGNORED_WEIGHT_FILES = new Set([
  'training_args.bin',
  'optimizer.bin',
  'optimizer.pt',
  'scheduler.pt',
  'scaler.pt',
]);
const QUANTIZER_SIDE_FILES = ['quantize_config.json', 'quant_config.json', 'hf_quant_config.json'];
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer.model'];

/** safetensors_rust error variant for each header problem the shared reader reports. */
const SAFETENSORS_VARIANTS: Partial<Record<HeaderProblemCode, string>> = {
  'too-small': 'HeaderTooSmall',
  'header-length-invalid': 'InvalidHeaderDeserialization',
  'header-too-large': 'HeaderTooLarge',
  'header-over-read-cap': 'HeaderTooLarge',
  'trailing-bytes': 'MetadataIncompleteBuffer',
  'invalid-utf8': 'InvalidHeader',
  'invalid-json': 'InvalidHeaderDeserialization',
  'not-object': 'InvalidHeaderDeserialization',
  'bad-entry': 'InvalidHeaderDeserialization',
  'unknown-dtype': 'InvalidHeaderDeserialization',
  'bad-metadata': 'InvalidHeaderDeserialization',
  offsets: 'InvalidOffset',
  'size-mismatch': 'TensorInvalidInfo',
  misaligned: 'MisalignedSlice',
};

class Failure extends Error {
  /** config.json's facts, once read (a serving-stage failure comes after them). */
  facts?: ModelFacts;

  constructor(
    readonly stage: 'import' | 'serving',
    readonly status: RpcStatus,
    /** For serving failures: the server's last log line, and what it was loading. */
    readonly serverLog?: { line: string; phase: 'tokenizer' | 'weights' },
  ) {
    super(status.message);
  }
}

export async function inspectModelFolder(store: ModelStore, ctx: InspectContext): Promise<ServingInspection> {
  try {
    return { ok: true, served: await inspect(store, ctx) };
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    if (err.stage === 'import') return { ok: false, stage: 'import', error: err.status };
    return {
      ok: false,
      stage: 'serving',
      error: err.status,
      ...(err.serverLog ? { logLine: err.serverLog.line, phase: err.serverLog.phase } : {}),
      ...(err.facts ? { facts: err.facts } : {}),
    };
  }
}

function importFailure(ctx: InspectContext, why: string): Failure {
  return new Failure('import', {
    code: 3,
    message: `Failed to import custom model from ${ctx.gcsUri}: ${why}`,
  });
}

/** How Vertex reports a serving container that died at startup, with the log line that explains it. */
export function serverExitedStatus(
  ctx: Pick<InspectContext, 'projectNumber' | 'endpointId' | 'location'>,
  logLine: string,
): RpcStatus {
  const logs =
    `https://console.cloud.google.com/logs/viewer?project=${ctx.projectNumber}` +
    `&resource=aiplatform.googleapis.com%2FEndpoint&advancedFilter=resource.labels.endpoint_id%3D%22${ctx.endpointId}%22` +
    `%20resource.labels.location%3D%22${ctx.location}%22`;
  return {
    code: 9,
    message:
      `Model server exited unexpectedly. Model server logs can be found at ${logs}. ` +
      `Last error in the model server log: ${logLine}`,
  };
}

function serverFailure(
  ctx: InspectContext,
  logLine: string,
  phase: 'tokenizer' | 'weights' = 'weights',
): Failure {
  return new Failure('serving', serverExitedStatus(ctx, logLine), { line: logLine, phase });
}

/** vLLM's names of the float dtypes `--dtype auto` takes from config.json. */
const VLLM_DTYPES: Record<string, string> = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' };

function factsOf(architecture: string, family: ModelFamily, dims: ModelDims): ModelFacts {
  let parameters: number | undefined;
  try {
    parameters = countParameters(family, dims).total;
  } catch {
    parameters = undefined; // a layout the arithmetic does not know: the memory check uses the headers
  }
  const dtype = dims.dtype ? VLLM_DTYPES[dims.dtype] : undefined;
  return {
    architecture,
    ...(dims.maxPositionEmbeddings ? { maxModelLen: dims.maxPositionEmbeddings } : {}),
    ...(parameters ? { parameters } : {}),
    ...(dtype ? { dtype } : {}),
    numLayers: dims.numLayers,
  };
}

async function listFolder(store: ModelStore, ctx: InspectContext): Promise<StoredObject[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.list();
    } catch (err) {
      if (!(err instanceof StorageAccessError)) throw err;
      if (err.kind === 'unavailable' && attempt < LIST_ATTEMPTS) {
        await delay(200 * attempt);
        continue;
      }
      const agent = `service-${ctx.projectNumber}@gcp-sa-aiplatform.iam.gserviceaccount.com`;
      switch (err.kind) {
        case 'forbidden':
          throw new Failure('import', {
            code: 9,
            message: `Service account ${agent} does not have [storage.objects.get, storage.objects.list] IAM permission(s) to the directory ${ctx.gcsUri}. Grant roles/storage.objectViewer on the bucket to ${agent}.`,
          });
        case 'not-found':
          throw importFailure(ctx, `the bucket does not exist or ${agent} cannot see it.`);
        case 'too-many-objects':
          throw importFailure(ctx, `${err.message}.`);
        default:
          throw new Failure('import', {
            code: 14,
            message: `Failed to read ${ctx.gcsUri}: ${err.message}. Retry the deployment.`,
          });
      }
    }
  }
}

async function readJson(store: ModelStore, name: string): Promise<unknown> {
  const bytes = await store.readSmall(name, MAX_JSON_FILE_BYTES);
  return JSON.parse(bytes.toString('utf8'));
}

async function inspect(store: ModelStore, ctx: InspectContext): Promise<ServedModel> {
  const objects = await listFolder(store, ctx);
  if (objects.length === 0) {
    throw importFailure(
      ctx,
      'no files were found under this prefix. Upload the model folder (config.json, weights, tokenizer) there.',
    );
  }
  // Loaders read the folder itself, not subfolders.
  const files = new Map(objects.filter((o) => !o.name.includes('/')).map((o) => [o.name, o]));

  // --- Model Garden importer: config.json decides the base architecture.
  if (!files.has('config.json')) {
    throw importFailure(ctx, `${ctx.gcsUri} does not appear to have a file named config.json.`);
  }
  let config: unknown;
  try {
    config = await readJson(store, 'config.json');
  } catch (err) {
    throw importFailure(ctx, `config.json is not a valid JSON file (${(err as Error).message}).`);
  }
  const detection = detectFamily(config);
  if (!detection.ok) {
    const declared = detection.architecture
      ? `architectures ['${detection.architecture}']${detection.modelType ? ` (model_type '${detection.modelType}')` : ''}`
      : 'no architectures';
    throw importFailure(
      ctx,
      `config.json declares ${declared}, which is not supported for custom weights. ` +
        `Supported architectures: [${SUPPORTED_ARCHITECTURES.map((a) => `'${a}'`).join(', ')}].`,
    );
  }
  const family = detection.family;
  let dims: ModelDims;
  try {
    dims = readModelDims(config, family);
  } catch (err) {
    throw importFailure(ctx, (err as Error).message);
  }
  const sideFile = QUANTIZER_SIDE_FILES.find((f) => files.has(f));
  const quantMethod = dims.quantization
    ? (dims.quantization.method ?? 'unknown')
    : sideFile
      ? sideFile
      : undefined;
  if (
    quantMethod !== undefined &&
    !(dims.quantization && family.nativeQuantization?.method === dims.quantization.method)
  ) {
    throw importFailure(
      ctx,
      `quantized models are not supported for custom weights (found ${dims.quantization ? `quantization_config with quant_method '${quantMethod}'` : sideFile}). Upload the unquantized BF16/FP16 weights.`,
    );
  }

  // --- vLLM serving container: tokenizer first, then weights.
  const facts = factsOf(detection.architecture, family, dims);
  try {
    return {
      ...facts,
      family: family.id,
      ...(await loadModel(store, files, ctx, detection.architecture, family, dims)),
    };
  } catch (err) {
    if (err instanceof Failure) err.facts = facts;
    throw err;
  }
}

async function loadModel(
  store: ModelStore,
  files: Map<string, StoredObject>,
  ctx: InspectContext,
  architecture: string,
  family: ModelFamily,
  dims: ModelDims,
): Promise<{ chatTemplate: boolean; weightBytes?: number }> {
  const tokenizerConfig = await readTokenizerConfig(store, files, ctx);
  const hasSlowBpe = files.has('vocab.json') && files.has('merges.txt');
  if (!TOKENIZER_FILES.some((f) => files.has(f)) && !hasSlowBpe) {
    throw serverFailure(
      ctx,
      `OSError: Can't load tokenizer for '/tmp/model'. If you were trying to load it from 'https://huggingface.co/models', ` +
        `make sure you don't have a local directory with the same name. Otherwise, make sure '/tmp/model' is the correct path ` +
        `to a directory containing all relevant files for a ${architecture.replace(/For\w+$/, '')}TokenizerFast tokenizer.`,
      'tokenizer',
    );
  }
  const chatTemplate =
    typeof tokenizerConfig?.chat_template === 'string' ||
    Array.isArray(tokenizerConfig?.chat_template) ||
    files.has('chat_template.jinja') ||
    files.has('chat_template.json');

  const weightFiles = await selectWeightFiles(store, files, ctx);
  if (weightFiles.format !== 'safetensors') return { chatTemplate };
  const { tensors, bytes } = await readAllHeaders(store, weightFiles.files, ctx);
  // Mistral-format (consolidated) checkpoints use other names; vLLM remaps them, we only check headers.
  if (!weightFiles.mistral) checkTensors(family, dims, tensors, architecture, ctx);
  return { chatTemplate, weightBytes: bytes };
}

async function readTokenizerConfig(
  store: ModelStore,
  files: Map<string, StoredObject>,
  ctx: InspectContext,
): Promise<Record<string, unknown> | undefined> {
  if (!files.has('tokenizer_config.json')) return undefined;
  try {
    const parsed = await readJson(store, 'tokenizer_config.json');
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch (err) {
    throw serverFailure(
      ctx,
      `json.decoder.JSONDecodeError in tokenizer_config.json: ${(err as Error).message}`,
      'tokenizer',
    );
  }
}

interface WeightSelection {
  format: 'safetensors' | 'pickle';
  files: StoredObject[];
  mistral: boolean;
}

/** `DefaultModelLoader._prepare_weights`: consolidated (Mistral) first, then the first pattern that matches. */
async function selectWeightFiles(
  store: ModelStore,
  files: Map<string, StoredObject>,
  ctx: InspectContext,
): Promise<WeightSelection> {
  const names = [...files.keys()];
  const consolidated = names.filter((n) => /^consolidated.*\.safetensors$/.test(n));
  if (consolidated.length > 0) {
    return { format: 'safetensors', files: consolidated.map((n) => files.get(n)!), mistral: true };
  }
  for (const extension of ['.safetensors', '.bin', '.pt']) {
    const matched = names.filter((n) => n.endsWith(extension) && !IGNORED_WEIGHT_FILES.has(n));
    if (matched.length === 0) continue;
    if (extension !== '.safetensors')
      return { format: 'pickle', files: matched.map((n) => files.get(n)!), mistral: false };
    // With an index, files it does not list are dropped (filter_duplicate_safetensors_files).
    const indexName = 'model.safetensors.index.json';
    if (!files.has(indexName))
      return { format: 'safetensors', files: matched.map((n) => files.get(n)!), mistral: false };
    let index: unknown;
    try {
      index = await readJson(store, indexName);
    } catch (err) {
      throw serverFailure(ctx, `json.decoder.JSONDecodeError in ${indexName}: ${(err as Error).message}`);
    }
    const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
    if (typeof weightMap !== 'object' || weightMap === null) {
      throw serverFailure(ctx, `KeyError: 'weight_map' (reading ${indexName})`);
    }
    const listed = new Set(Object.values(weightMap).filter((v): v is string => typeof v === 'string'));
    const kept = matched.filter((n) => listed.has(n));
    if (kept.length > 0)
      return { format: 'safetensors', files: kept.map((n) => files.get(n)!), mistral: false };
  }
  throw serverFailure(ctx, `RuntimeError: Cannot find any model weights with \`${ctx.gcsUri}\``);
}

interface LoadedTensor {
  shape: number[];
  file: string;
}

async function readAllHeaders(
  store: ModelStore,
  files: StoredObject[],
  ctx: InspectContext,
): Promise<{ tensors: Map<string, LoadedTensor>; bytes: number }> {
  const tensors = new Map<string, LoadedTensor>();
  let bytes = 0;
  for (const file of files) {
    const result = await readSafetensorsHeader(store, file, { maxHeaderBytes: SAFETENSORS_MAX_HEADER_BYTES });
    for (const problem of result.problems) {
      const variant =
        problem.code === 'truncated'
          ? result.header
            ? 'MetadataIncompleteBuffer'
            : 'InvalidHeaderLength'
          : SAFETENSORS_VARIANTS[problem.code];
      if (variant === undefined) continue; // stricter-than-loader findings (duplicate keys, metadata format)
      throw serverFailure(
        ctx,
        `safetensors_rust.SafetensorError: Error while deserializing header: ${variant} (${problem.message})`,
      );
    }
    for (const tensor of result.header?.tensors ?? [])
      tensors.set(tensor.name, { shape: tensor.shape, file: file.name });
    bytes += result.header?.dataBytes ?? 0;
  }
  return { tensors, bytes };
}

const MAX_NAMES_IN_MESSAGE = 10;

/** vLLM's `load_weights`: every stored tensor must map to a parameter of the same shape, and every parameter must be loaded. */
function checkTensors(
  family: ModelFamily,
  dims: ModelDims,
  stored: Map<string, LoadedTensor>,
  architecture: string,
  ctx: InspectContext,
): void {
  const expectation = expectedTensors(family, dims, { layout: detectLayout(family, stored.keys()) });
  const expected = new Map(expectation.tensors.map((t) => [t.name, t]));
  for (const [name, tensor] of stored) {
    const want = expected.get(name);
    if (!want) {
      if (expectation.auxiliaryPrefixes.some((prefix) => name.startsWith(prefix))) continue;
      throw serverFailure(
        ctx,
        `ValueError: There is no module or parameter named '${name}' in ${architecture} (${tensor.file})`,
      );
    }
    if (want.shape.length !== tensor.shape.length || want.shape.some((d, i) => d !== tensor.shape[i])) {
      throw serverFailure(
        ctx,
        `AssertionError: Attempted to load weight (torch.Size([${tensor.shape.join(', ')}])) into parameter ` +
          `(torch.Size([${want.shape.join(', ')}])) for '${name}' (${tensor.file})`,
      );
    }
  }
  const missing = expectation.tensors
    .filter((t) => t.required && !t.mtp && !stored.has(t.name))
    .map((t) => `'${t.name}'`);
  if (missing.length > 0) {
    const shown = missing.slice(0, MAX_NAMES_IN_MESSAGE).join(', ');
    const more =
      missing.length > MAX_NAMES_IN_MESSAGE ? `, ... (${missing.length - MAX_NAMES_IN_MESSAGE} more)` : '';
    throw serverFailure(
      ctx,
      `ValueError: Following weights were not initialized from checkpoint: {${shown}${more}}`,
    );
  }
}
