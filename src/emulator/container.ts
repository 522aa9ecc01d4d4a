import { createHash } from 'node:crypto';
import type { RpcStatus } from './errors';
import { ENDPOINT_RESOURCE, type NewLogEntry, PREDICTION_CONTAINER_LOG, type Severity } from './logging';
import { GPUS, type MachineSpecJson } from './machines';
import { serverExitedStatus } from './serving';
import type { DeployFault, ModelFacts, ServedModel, ServingInspection, StuckContainer } from './state';

/**
 * The vLLM serving container of one deployed model: whether one attempt to start it comes up, dies
 * or never gets ready, and the lines it prints on the way (written to Cloud Logging, logging.ts).
 * It starts the way vLLM does: argument parsing (the flags in `VLLM_FLAGS`), the engine config
 * (`--max-model-len`), the tokenizer, GPU placement (`--tensor-parallel-size`), the dtype the GPU
 * supports, the model's memory, the weights (what serving.ts found in the folder), then the HTTP
 * server on its port, which Vertex health-checks on the container's first port.
 */

/** vLLM's flags (the `vllm serve` arguments garden-deploy's users are likely to pass) and their types. */
const VLLM_FLAGS: Record<string, 'int' | 'float' | 'string' | 'switch' | readonly string[]> = {
  model: 'string',
  host: 'string',
  port: 'int',
  'max-model-len': 'int',
  'tensor-parallel-size': 'int',
  'pipeline-parallel-size': 'int',
  'data-parallel-size': 'int',
  dtype: ['auto', 'half', 'float16', 'bfloat16', 'float', 'float32'],
  'gpu-memory-utilization': 'float',
  'max-num-seqs': 'int',
  'max-num-batched-tokens': 'int',
  'enable-chunked-prefill': 'switch',
  quantization: 'string',
  'kv-cache-dtype': ['auto', 'fp8', 'fp8_e4m3', 'fp8_e5m2'],
  'trust-remote-code': 'switch',
  'enforce-eager': 'switch',
  'swap-space': 'float',
  'disable-log-stats': 'switch',
  'disable-log-requests': 'switch',
  'served-model-name': 'string',
  'enable-prefix-caching': 'switch',
  'max-lora-rank': 'int',
  'enable-lora': 'switch',
  'max-loras': 'int',
  seed: 'int',
  tokenizer: 'string',
  'tokenizer-mode': ['auto', 'slow', 'mistral', 'custom'],
  revision: 'string',
  'download-dir': 'string',
  'load-format': 'string',
  'chat-template': 'string',
  'block-size': 'int',
  'cpu-offload-gb': 'float',
  'max-seq-len-to-capture': 'int',
  'distributed-executor-backend': ['ray', 'mp', 'uni', 'external_launcher'],
  'disable-custom-all-reduce': 'switch',
  'enable-auto-tool-choice': 'switch',
  'tool-call-parser': 'string',
  'reasoning-parser': 'string',
  'limit-mm-per-prompt': 'string',
  'generation-config': 'string',
  'uvicorn-log-level': ['debug', 'info', 'warning', 'error', 'critical', 'trace'],
  'api-key': 'string',
};

/** vLLM's short spellings. */
const ALIASES: Record<string, string> = {
  tp: 'tensor-parallel-size',
  pp: 'pipeline-parallel-size',
  dp: 'data-parallel-size',
  q: 'quantization',
};

const PORT = 8080;
const HEALTH_ROUTE = '/ping';
const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
const DEFAULT_GPU_MEMORY_UTILIZATION = 0.9;
const VLLM_VERSION = '0.9.2';
const SITE = '/usr/local/lib/python3.12/dist-packages';
/** Replicas whose lines are written (each prints the same); restarts are logged for the first. */
const LOGGED_REPLICAS = 4;
/** At most this many restarts are logged at once, however long nobody looked. */
const RESTART_BACKLOG = 20;

type Message = Record<string, unknown>;

export interface ServingAttempt {
  /** Project number. */
  project: string;
  location: string;
  endpointId: string;
  deployedModelId: string;
  /** When the container starts, and when Vertex decides (the operation's end). */
  start: number;
  end: number;
  replicas: number;
  machineSpec: MachineSpecJson;
  /** The Model's container spec (absent: Model Garden's default vLLM container). */
  containerSpec?: Message;
  /** What serving.ts found in the model folder (past the import stage). */
  inspection: Exclude<ServingInspection, { stage: 'import' }>;
  fault?: DeployFault;
}

export type AttemptOutcome =
  | { kind: 'ready'; served: ServedModel }
  | { kind: 'failed'; error: RpcStatus }
  | { kind: 'stuck'; served: ServedModel; stuck: StuckContainer };

// ---------------------------------------------------------------------------------------------
// Arguments

interface ParsedArgs {
  values: Map<string, string>;
  switches: Set<string>;
  /** argparse's complaint (`vllm serve: error: …`), if any. */
  error?: string;
}

/** `vllm serve`'s argparse: `--flag=value` and `--flag value`, `_` spelled `-` and the short `-tp`/`-pp`/`-dp`/`-q`, as vLLM allows. */
function parseVllmArgs(args: readonly string[]): ParsedArgs {
  const values = new Map<string, string>();
  const switches = new Set<string>();
  const unknown: string[] = [];
  const fail = (error: string): ParsedArgs => ({ values, switches, error });
  // The image's own entry point may be repeated in args: `python -m …` or `vllm serve`.
  let i =
    /^python3?$/.test(args[0] ?? '') && args[1] === '-m'
      ? 3
      : args[0] === 'vllm' && args[1] === 'serve'
        ? 2
        : 0;
  const first = i;
  for (; i < args.length; i++) {
    const token = args[i]!;
    const option = /^(--?)([^=]*)(?:=(.*))?$/s.exec(token);
    if (!option || /^-\d/.test(token) || (option[1] === '-' && !ALIASES[option[2]!])) {
      // One positional, the model tag; anything else argparse does not know.
      if (!option && i === first && !values.has('model')) values.set('model', token);
      else unknown.push(token);
      continue;
    }
    const [, dashes, rawName, inline] = option as unknown as [string, string, string, string | undefined];
    const name = dashes === '-' ? ALIASES[rawName]! : rawName.replace(/_/g, '-');
    const kind =
      VLLM_FLAGS[name] ??
      (name.startsWith('no-') && VLLM_FLAGS[name.slice(3)] === 'switch' ? 'switch' : undefined);
    // A value is the next token unless that is an option (negative numbers are values).
    const next = args[i + 1];
    const nextIsValue = next !== undefined && !/^-(?!\d)/.test(next);
    if (kind === undefined) {
      unknown.push(token);
      if (inline === undefined && nextIsValue) unknown.push(args[++i]!);
      continue;
    }
    if (kind === 'switch') {
      if (inline !== undefined) return fail(`argument --${name}: ignored explicit argument '${inline}'`);
      switches.add(name);
      continue;
    }
    const value = inline ?? (nextIsValue ? args[++i] : undefined);
    if (value === undefined) return fail(`argument --${name}: expected one argument`);
    if (kind === 'int' && !/^-?\d+$/.test(value))
      return fail(`argument --${name}: invalid int value: '${value}'`);
    if (kind === 'float' && !Number.isFinite(Number(value)))
      return fail(`argument --${name}: invalid float value: '${value}'`);
    if (Array.isArray(kind) && !kind.includes(value)) {
      return fail(
        `argument --${name}: invalid choice: '${value}' (choose from ${kind.map((c) => `'${c}'`).join(', ')})`,
      );
    }
    values.set(name, value);
  }
  return unknown.length > 0 ? fail(`unrecognized arguments: ${unknown.join(' ')}`) : { values, switches };
}

// ---------------------------------------------------------------------------------------------
// Lines

/** One line of one replica; `end` lines are printed when the attempt ends (the failure), the rest before. */
type Line =
  | { kind: 'vllm'; level: 'INFO' | 'WARNING' | 'ERROR'; source: string; text: string; end?: boolean }
  | { kind: 'raw'; severity: Severity; text: string; end?: boolean };

const info = (source: string, text: string): Line => ({ kind: 'vllm', level: 'INFO', source, text });
/** vLLM's engine process giving up (before the traceback of what killed it). */
const ENGINE_CORE_FAILED: Line = {
  kind: 'vllm',
  level: 'ERROR',
  source: 'core.py:586',
  text: 'EngineCore failed to start.',
};
/** stderr arrives in Cloud Logging as ERROR, whatever it says. */
const stderr = (text: string, end = true): Line => ({ kind: 'raw', severity: 'ERROR', text, end });

const ENTRY_FRAMES = [
  '  File "/usr/local/bin/vllm", line 8, in <module>',
  '    sys.exit(main())',
  `  File "${SITE}/vllm/entrypoints/cli/main.py", line 54, in main`,
  '    args.dispatch_function(args)',
  `  File "${SITE}/vllm/entrypoints/cli/serve.py", line 52, in cmd`,
  '    uvloop.run(run_server(args))',
  `  File "${SITE}/vllm/entrypoints/openai/api_server.py", line 1451, in run_server_worker`,
  '    async with build_async_engine_client(args, client_config) as engine_client:',
];

type Phase = 'config' | 'tokenizer' | 'placement' | 'dtype' | 'oom' | 'weights';

/** Where each kind of start failure is raised in vLLM (and below it). */
const PHASE_FRAMES: Record<Phase, string[]> = {
  config: [
    `  File "${SITE}/vllm/engine/arg_utils.py", line 1004, in create_engine_config`,
    '    model_config = self.create_model_config()',
    `  File "${SITE}/vllm/config.py", line 585, in __post_init__`,
    '    self.max_model_len = _get_and_verify_max_len(',
    `  File "${SITE}/vllm/config.py", line 3433, in _get_and_verify_max_len`,
    '    raise ValueError(',
  ],
  tokenizer: [
    `  File "${SITE}/vllm/transformers_utils/tokenizer.py", line 217, in get_tokenizer`,
    '    tokenizer = AutoTokenizer.from_pretrained(',
    `  File "${SITE}/transformers/models/auto/tokenization_auto.py", line 1032, in from_pretrained`,
    '    return tokenizer_class.from_pretrained(pretrained_model_name_or_path, *inputs, **kwargs)',
    `  File "${SITE}/transformers/tokenization_utils_base.py", line 2046, in from_pretrained`,
    '    raise EnvironmentError(',
  ],
  placement: [
    `  File "${SITE}/vllm/executor/ray_utils.py", line 338, in initialize_ray_cluster`,
    '    raise ValueError(',
  ],
  dtype: [
    `  File "${SITE}/vllm/v1/worker/gpu_worker.py", line 148, in init_device`,
    '    _check_if_gpu_supports_dtype(self.model_config.dtype)',
    `  File "${SITE}/vllm/v1/worker/gpu_worker.py", line 681, in _check_if_gpu_supports_dtype`,
    '    raise ValueError(',
  ],
  oom: [
    `  File "${SITE}/vllm/v1/worker/gpu_model_runner.py", line 1774, in load_model`,
    '    self.model = model_loader.load_model(',
    `  File "${SITE}/vllm/model_executor/model_loader/base_loader.py", line 38, in load_model`,
    '    model = initialize_model(vllm_config=vllm_config,',
    `  File "${SITE}/torch/utils/_device.py", line 104, in __torch_function__`,
    '    return func(*args, **kwargs)',
  ],
  weights: [
    `  File "${SITE}/vllm/model_executor/model_loader/base_loader.py", line 41, in load_model`,
    '    self.load_weights(model, model_config)',
    `  File "${SITE}/vllm/model_executor/model_loader/default_loader.py", line 269, in load_weights`,
    '    loaded_weights = model.load_weights(',
  ],
};

/** The last line of a server that died on the model folder: the one its error quotes. */
function lastLineOf(inspection: Extract<ServingInspection, { ok: false; stage: 'serving' }>): string {
  return inspection.logLine ?? inspection.error.message;
}

function traceback(phase: Phase, error: string): Line[] {
  return ['Traceback (most recent call last):', ...ENTRY_FRAMES, ...PHASE_FRAMES[phase], error].map((l) =>
    stderr(l),
  );
}

/** PyTorch's size format (`448.00 MiB`, `2.50 GiB`). */
function size(bytes: number): string {
  return bytes >= GIB ? `${(bytes / GIB).toFixed(2)} GiB` : `${(bytes / MIB).toFixed(2)} MiB`;
}

const DTYPE_BYTES: Record<string, number> = { bfloat16: 2, float16: 2, float32: 4 };

/** The dtype the server runs in: `--dtype`, or with `auto` config.json's (FP32 checkpoints run in FP16). */
function servingDtype(flag: string | undefined, facts: ModelFacts | undefined): string {
  if (flag === 'half' || flag === 'float16') return 'float16';
  if (flag === 'float' || flag === 'float32') return 'float32';
  if (flag === 'bfloat16') return 'bfloat16';
  return facts?.dtype === 'bfloat16' ? 'bfloat16' : 'float16';
}

function hash(...parts: (string | number)[]): Buffer {
  return createHash('sha256').update(parts.join('#')).digest();
}

/** `predictor-resource-pool-<n>-<hash>`: stable per deployed model and replica. */
function replicaId(deployedModelId: string, replica: number): string {
  const pool = (
    100_000_000_000_000_000n +
    (hash('pool', deployedModelId).readBigUInt64BE(0) % 899_999_999_999_999_999n)
  ).toString();
  const pod = hash('pod', deployedModelId, replica);
  const suffix = Array.from(pod.subarray(8, 13), (b) => 'bcdfghjklmnpqrstvwxz2456789'[b % 27]).join('');
  return `predictor-resource-pool-${pool}-${pod.toString('hex').slice(0, 10)}-${suffix}`;
}

/** The replica's address in the serving cluster (as health-check lines name it). */
function podAddress(deployedModelId: string, replica: number): string {
  const h = hash('ip', deployedModelId, replica);
  return `10.${h[0]! % 64}.${h[1]}.${2 + (h[2]! % 250)}`;
}

// ---------------------------------------------------------------------------------------------
// One attempt

interface Script {
  lines: Line[];
  outcome: AttemptOutcome;
}

function attemptScript(a: ServingAttempt): Script {
  const { inspection, machineSpec } = a;
  const spec = a.containerSpec ?? {};
  const args = (spec.args as string[] | undefined) ?? [];
  const env = new Map(
    ((spec.env as Message[] | undefined) ?? []).map((e) => [String(e.name), String(e.value ?? '')]),
  );
  const facts: ModelFacts | undefined = inspection.ok ? inspection.served : inspection.facts;
  const failed = (lines: Line[], lastLine: string): Script => ({
    lines,
    outcome: {
      kind: 'failed',
      error: serverExitedStatus(
        { projectNumber: a.project, endpointId: a.endpointId, location: a.location },
        lastLine,
      ),
    },
  });

  const parsed = parseVllmArgs(args);
  if (parsed.error) {
    const usage = stderr('usage: vllm serve [model_tag] [options]');
    const last = `vllm serve: error: ${parsed.error}`;
    return failed([usage, stderr(last)], last);
  }
  const int = (name: string) => (parsed.values.has(name) ? Number(parsed.values.get(name)) : undefined);
  // vLLM prints the flags it was given as a Python dict.
  const nonDefault = [
    ['model', `'${parsed.values.get('model') ?? '/tmp/model'}'`],
    ...[...parsed.values]
      .filter(([k]) => k !== 'model')
      .map(([k, v]) => [k, VLLM_FLAGS[k] === 'int' || VLLM_FLAGS[k] === 'float' ? v : `'${v}'`]),
    ...[...parsed.switches].map((k) => [k, 'True']),
  ].map(([k, v]) => `'${k!.replace(/-/g, '_')}': ${v}`);
  const lines: Line[] = [
    info('__init__.py:244', 'Automatically detected platform cuda.'),
    info('api_server.py:1395', `vLLM API server version ${VLLM_VERSION}`),
    info('cli_args.py:325', `non-default args: {${nonDefault.join(', ')}}`),
  ];
  /** The server dies in `phase` with `last` (after vLLM's EngineCore error, when the engine had started). */
  const crash = (phase: Phase, last: string, engineCore = false): Script =>
    failed([...lines, ...(engineCore ? [ENGINE_CORE_FAILED] : []), ...traceback(phase, last)], last);

  // Engine config: the context length.
  const maxLen = int('max-model-len');
  const derived = facts?.maxModelLen;
  let maxModelLen = derived;
  if (maxLen !== undefined && derived !== undefined && maxLen > derived) {
    const reason = `User-specified max_model_len (${maxLen}) is greater than the derived max_model_len (max_position_embeddings=${derived} or model_max_length=None in model's config.json).`;
    if (env.get('VLLM_ALLOW_LONG_MAX_MODEL_LEN') !== '1') {
      const last = `ValueError: ${reason} This may lead to incorrect model outputs or CUDA errors. To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1`;
      return crash('config', last);
    }
    lines.push({
      kind: 'vllm',
      level: 'WARNING',
      source: 'config.py:3428',
      text: `${reason} Make sure the value is correct and within the model context size.`,
    });
  }
  if (maxLen !== undefined) maxModelLen = maxLen;
  const dtype = servingDtype(parsed.values.get('dtype'), facts);
  lines.push(
    info(
      'config.py:841',
      "This model supports multiple tasks: {'generate', 'embed'}. Defaulting to 'generate'.",
    ),
    ...(maxModelLen ? [info('config.py:1472', `Using max model len ${maxModelLen}`)] : []),
  );

  // Tokenizer.
  if (!inspection.ok && inspection.phase === 'tokenizer') return crash('tokenizer', lastLineOf(inspection));

  // GPU placement.
  const gpusPerHost = machineSpec.acceleratorCount ?? 0;
  const hosts = Math.max(1, machineSpec.multihostGpuNodeCount ?? 0);
  const tp = int('tensor-parallel-size') ?? Math.max(1, gpusPerHost);
  const pp = int('pipeline-parallel-size') ?? hosts;
  // Each data-parallel rank is a whole copy of the model on its own GPUs.
  const dp = int('data-parallel-size') ?? 1;
  lines.push(
    info(
      'core.py:455',
      `Initializing a V1 LLM engine (v${VLLM_VERSION}) with config: model='/tmp/model', dtype=torch.${dtype}, max_seq_len=${maxModelLen ?? 'None'}, tensor_parallel_size=${tp}, pipeline_parallel_size=${pp}`,
    ),
  );
  if (tp * pp * dp > gpusPerHost * hosts) {
    const last =
      'ValueError: The number of required GPUs exceeds the total number of available GPUs in the placement group.';
    return crash('placement', last);
  }

  // The GPU: dtype support, then memory.
  const gpu = machineSpec.acceleratorType ? GPUS[machineSpec.acceleratorType] : undefined;
  if (gpu && dtype === 'bfloat16' && gpu.computeCapability < 8) {
    const last =
      `ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your ${gpu.name} GPU has compute capability ${gpu.computeCapability.toFixed(1)}. ` +
      'You can use float16 instead by explicitly setting the `dtype` flag in CLI, for example: --dtype=half.';
    return crash('dtype', last);
  }
  lines.push(info('gpu_model_runner.py:1770', 'Starting to load model /tmp/model...'));
  const served = inspection.ok ? inspection.served : undefined;
  const modelBytes = facts?.parameters ? facts.parameters * DTYPE_BYTES[dtype]! : (served?.weightBytes ?? 0);
  const perGpu = modelBytes / (tp * pp);
  if (gpu) {
    const partition = /(\d+)gb$/.exec(machineSpec.gpuPartitionSize ?? '');
    const capacity = (partition ? Number(partition[1]) : gpu.memoryGiB) * GIB;
    const utilization = Number(parsed.values.get('gpu-memory-utilization') ?? DEFAULT_GPU_MEMORY_UTILIZATION);
    if (a.fault === 'outOfMemory' || perGpu > utilization * capacity) {
      // It fails allocating one more layer once the memory is nearly gone.
      const tried = Math.max(
        perGpu / Math.max(1, facts?.numLayers ?? 32),
        a.fault === 'outOfMemory' ? GIB : 64 * MIB,
      );
      const free = Math.min(tried * 0.4, 0.02 * capacity);
      const inUse = capacity - free;
      const last =
        `torch.OutOfMemoryError: CUDA out of memory. Tried to allocate ${size(tried)}. GPU 0 has a total capacity of ${size(capacity)} of which ${size(free)} is free. ` +
        `Including non-PyTorch memory, this process has ${size(inUse)} memory in use. Of the allocated memory ${size(inUse - 0.5 * GIB)} is allocated by PyTorch, ` +
        `and ${size(24 * MIB)} is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  ` +
        'See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)';
      return crash('oom', last, true);
    }
  }

  // The weights.
  if (!inspection.ok) return crash('weights', lastLineOf(inspection), true);
  const listenPort = int('port') ?? PORT;
  const probePort = Number(((spec.ports as Message[] | undefined) ?? [])[0]?.containerPort ?? PORT);
  const healthRoute =
    typeof spec.healthRoute === 'string' && spec.healthRoute !== '' ? spec.healthRoute : HEALTH_ROUTE;
  lines.push(
    info('default_loader.py:272', `Loading weights took ${(1 + modelBytes / (2 * GIB)).toFixed(2)} seconds`),
    info(
      'gpu_model_runner.py:1801',
      `Model loading took ${size(perGpu)} and ${(2 + modelBytes / (2 * GIB)).toFixed(2)} seconds`,
    ),
    info('api_server.py:1457', `Starting vLLM API server 0 on http://0.0.0.0:${listenPort}`),
    stderr('INFO:     Started server process [1]', false),
    stderr('INFO:     Waiting for application startup.', false),
    stderr('INFO:     Application startup complete.', false),
    stderr(`INFO:     Uvicorn running on http://0.0.0.0:${listenPort} (Press CTRL+C to quit)`, false),
  );
  const servedNow: ServedModel = { ...inspection.served, ...(maxModelLen ? { maxModelLen } : {}) };
  const cause =
    listenPort !== probePort ? 'wrongPort' : a.fault === 'replicasNeverReady' ? 'healthTimeout' : undefined;
  if (!cause) return { lines, outcome: { kind: 'ready', served: servedNow } };
  return {
    lines: [...lines, ...probeFailures(cause, a.deployedModelId, probePort, healthRoute)],
    outcome: {
      kind: 'stuck',
      served: servedNow,
      stuck: { cause, listenPort, probePort, healthRoute, since: a.end, logged: 0 },
    },
  };
}

/** Vertex's health checks of a server that never answers them (Kubernetes' wording). */
function probeFailures(
  cause: StuckContainer['cause'],
  deployedModelId: string,
  probePort: number,
  healthRoute: string,
): Line[] {
  const ip = podAddress(deployedModelId, 0);
  const why =
    cause === 'wrongPort'
      ? `dial tcp ${ip}:${probePort}: connect: connection refused`
      : 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)';
  const line: Line = {
    kind: 'raw',
    severity: 'WARNING',
    text: `Readiness probe failed: Get "http://${ip}:${probePort}${healthRoute}": ${why}`,
    end: true,
  };
  return [line, line, line];
}

/** vLLM's logger format: `INFO 12-07 17:49:56 [api_server.py:1395] …`. */
function vllmStamp(time: number): string {
  const iso = new Date(time).toISOString();
  return `${iso.slice(5, 10)} ${iso.slice(11, 19)}`;
}

/** The lines of `replicas` replicas over [start, end]: the ones before the end spread out, the rest at the end. */
function render(
  a: Pick<ServingAttempt, 'project' | 'location' | 'endpointId' | 'deployedModelId'>,
  lines: Line[],
  replicas: number[],
  start: number,
  end: number,
): NewLogEntry[] {
  const early = lines.filter((l) => !l.end).length;
  const span = Math.max(0, end - start - 1);
  const entries: NewLogEntry[] = [];
  for (const replica of replicas) {
    const id = replicaId(a.deployedModelId, replica);
    let k = 0;
    for (const line of lines) {
      const time = Math.min(
        end,
        (line.end ? end : start + Math.floor((span * k++) / Math.max(1, early))) + replica,
      );
      entries.push({
        project: a.project,
        logId: PREDICTION_CONTAINER_LOG,
        resource: {
          type: ENDPOINT_RESOURCE,
          labels: { endpoint_id: a.endpointId, location: a.location, resource_container: a.project },
        },
        labels: { deployed_model_id: a.deployedModelId, replica_id: id },
        message:
          line.kind === 'vllm' ? `${line.level} ${vllmStamp(time)} [${line.source}] ${line.text}` : line.text,
        severity: line.kind === 'vllm' ? line.level : line.severity,
        time,
      });
    }
  }
  return entries;
}

/** Runs one attempt: its outcome, and the lines its replicas printed (to write to the log store). */
export function serveAttempt(a: ServingAttempt): { outcome: AttemptOutcome; lines: NewLogEntry[] } {
  const { lines, outcome } = attemptScript(a);
  const replicas = Array.from({ length: Math.max(1, Math.min(a.replicas, LOGGED_REPLICAS)) }, (_, i) => i);
  return { outcome, lines: render(a, lines, replicas, a.start, a.end) };
}

/**
 * The restarts of a container that never gets ready: every `restartMs` after it first came up it
 * starts again, printing its startup and failing its health checks again. Logs the restarts due by
 * `now` (the first replica's) and counts them in `stuck.logged`.
 */
export function restartLines(
  a: Omit<ServingAttempt, 'start' | 'end' | 'replicas' | 'fault'>,
  stuck: StuckContainer,
  restartMs: number,
  now: number,
): NewLogEntry[] {
  if (restartMs <= 0) return [];
  const due = Math.floor((now - stuck.since) / restartMs);
  const from = Math.max(stuck.logged, due - RESTART_BACKLOG);
  const entries: NewLogEntry[] = [];
  if (due > from) {
    // Every restart prints the same lines (they do not depend on when it starts): build them once.
    const { lines } = attemptScript({
      ...a,
      start: stuck.since,
      end: stuck.since + restartMs,
      replicas: 1,
      ...(stuck.cause === 'healthTimeout' ? { fault: 'replicasNeverReady' as const } : {}),
    });
    for (let k = from + 1; k <= due; k++) {
      const start = stuck.since + (k - 1) * restartMs;
      entries.push(...render(a, lines, [0], start, start + restartMs));
    }
  }
  stuck.logged = Math.max(stuck.logged, due);
  return entries;
}
