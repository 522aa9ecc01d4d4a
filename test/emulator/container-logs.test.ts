import { describe, expect, it } from 'vitest';
import { getTestEnv } from '../harness/env';
import {
  L4_MACHINE,
  deployReady,
  pollUntil,
  uniqueProject,
  uploadSampleModel,
  useTestEmulator,
  waitForOperation,
} from './helpers';

/** The vLLM serving container's lines in Cloud Logging, for each way its start goes. */

interface Entry {
  severity: string;
  labels: Record<string, string>;
  resource: { labels: Record<string, string> };
  jsonPayload: { message: string };
}

const T4_MACHINE = { machineType: 'n1-standard-8', acceleratorType: 'NVIDIA_TESLA_T4', acceleratorCount: 1 };
const V100_MACHINE = {
  machineType: 'n1-standard-8',
  acceleratorType: 'NVIDIA_TESLA_V100',
  acceleratorCount: 1,
};
const IMAGE =
  'us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:20250601_0916_RC01';
const LAST = 'Last error in the model server log: ';

/** A tiny BF16 Llama (max_position_embeddings 4096). */
const t = useTestEmulator({ model: { family: 'llama', shards: 1 } });

/** The lines of an endpoint (and one deployed model, when given), oldest first. */
async function lines(project: string, endpointId: string, deployedModelId?: string): Promise<Entry[]> {
  const filter = [
    'resource.type="aiplatform.googleapis.com/Endpoint"',
    `resource.labels.endpoint_id="${endpointId}"`,
    ...(deployedModelId ? [`labels.deployed_model_id="${deployedModelId}"`] : []),
  ].join(' AND ');
  const res = await t.api.post('/v2/entries:list', {
    resourceNames: [`projects/${project}`],
    filter,
    pageSize: 1000,
  });
  expect(res.status, res.text).toBe(200);
  return res.json.entries ?? [];
}

const messages = (entries: Entry[]) => entries.map((e) => e.jsonPayload.message);

interface Start {
  machine?: Record<string, unknown>;
  args?: string[];
  env?: { name: string; value: string }[];
  ports?: { containerPort: number }[];
  gcsUri?: string;
  fault?: 'oom' | 'never-ready';
  replicas?: number;
}

/** A `:deploy` of one endpoint ("serving"), waited for; its operation and lines. */
async function deploy(start: Start) {
  const project = uniqueProject('container');
  if (start.fault)
    await t.admin.addFaultRules([{ route: 'vertex.deploy', project, sequence: [start.fault] }]);
  const containerSpec =
    start.args || start.env || start.ports
      ? { imageUri: IMAGE, args: start.args, env: start.env, ports: start.ports }
      : undefined;
  const res = await t.api.post(`/v1beta1/projects/${project}/locations/us-central1:deploy`, {
    customModel: { gcsUri: start.gcsUri ?? t.model },
    modelConfig: { modelUserId: 'served', ...(containerSpec ? { containerSpec } : {}) },
    endpointConfig: { endpointUserId: 'serving' },
    deployConfig: {
      dedicatedResources: {
        machineSpec: start.machine ?? L4_MACHINE,
        minReplicaCount: start.replicas ?? 1,
      },
    },
  });
  expect(res.status, res.text).toBe(200);
  const op = await waitForOperation(t.api, res.json.name);
  return { project, op, entries: await lines(project, 'serving') };
}

/** The server's last error, as the failed operation quotes it and as the log's last line says it. */
function expectFailedWith(
  op: { error?: { code: number; message: string } },
  entries: Entry[],
  last: string | RegExp,
) {
  expect(op.error?.code).toBe(9);
  const quoted = op.error!.message.slice(op.error!.message.indexOf(LAST) + LAST.length);
  if (typeof last === 'string') expect(quoted).toBe(last);
  else expect(quoted).toMatch(last);
  expect(op.error!.message).toContain('Model server exited unexpectedly.');
  expect(entries.at(-1)).toMatchObject({ severity: 'ERROR', jsonPayload: { message: quoted } });
  // Every line of the attempt names the deployed model it would have been.
  expect(new Set(entries.map((e) => e.labels.deployed_model_id)).size).toBe(1);
  expect(entries[0]!.labels.deployed_model_id).toMatch(/^\d{1,19}$/);
  return quoted;
}

describe('a model folder the server cannot load', () => {
  it.each([
    ['missing-tokenizer', /^OSError: Can't load tokenizer/, false],
    ['truncated-shard', /^safetensors_rust\.SafetensorError: Error while deserializing header/, true],
    ['shape-mismatch', /^AssertionError: Attempted to load weight/, true],
    ['missing-shard', /^ValueError: Following weights were not initialized from checkpoint/, true],
  ] as const)(
    '%s: the start-up lines, then a Python traceback ending in the error',
    async (variant, last, loading) => {
      const gcsUri = await uploadSampleModel({ variant, shards: 2 });
      const { op, entries } = await deploy({ gcsUri, replicas: 2 });
      expectFailedWith(op, entries, last);
      const text = messages(entries);
      expect(text.some((m) => m.includes('vLLM API server version'))).toBe(true);
      expect(text).toContain('Traceback (most recent call last):');
      // The tokenizer is read before the model is loaded.
      expect(text.some((m) => m.includes('Starting to load model'))).toBe(loading);
      // Both replicas tried.
      expect(new Set(entries.map((e) => e.labels.replica_id)).size).toBe(2);
    },
  );
});

describe('out of GPU memory', () => {
  it('the oom fault: the operation fails quoting torch.OutOfMemoryError, the logs carry the traceback', async () => {
    const { op, entries } = await deploy({ fault: 'oom' });
    const last = expectFailedWith(
      op,
      entries,
      /^torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate [\d.]+ GiB\. GPU 0 has a total capacity of 22\.50 GiB of which [\d.]+ MiB is free\./,
    );
    const text = messages(entries);
    expect(text.indexOf('Traceback (most recent call last):')).toBeLessThan(text.indexOf(last));
  });

  it('a model larger than the GPUs fails there; on GPUs it fits, the server goes on to its weights', async () => {
    // The tiny folder's config.json made to describe a 70B Llama: the server sizes the model from it.
    const gcsUri = await uploadSampleModel({ family: 'llama', shards: 1 });
    const [, bucket, prefix] = /^gs:\/\/([^/]+)\/(.*)$/.exec(gcsUri)!;
    const file = (await getTestEnv()).storage.bucket(bucket!).file(`${prefix}config.json`);
    const config = JSON.parse((await file.download())[0].toString('utf8'));
    Object.assign(config, {
      hidden_size: 8192,
      intermediate_size: 28672,
      num_hidden_layers: 80,
      num_attention_heads: 64,
      num_key_value_heads: 8,
      vocab_size: 128256,
    });
    await file.save(JSON.stringify(config));

    const small = await deploy({ gcsUri });
    expectFailedWith(small.op, small.entries, /^torch\.OutOfMemoryError: CUDA out of memory\./);
    const large = await deploy({
      gcsUri,
      machine: { machineType: 'a3-ultragpu-8g', acceleratorType: 'NVIDIA_H200_141GB', acceleratorCount: 8 },
    });
    expectFailedWith(large.op, large.entries, /^AssertionError: Attempted to load weight/);
  });
});

describe('container args vLLM refuses', () => {
  it.each([
    [
      'an unknown flag',
      L4_MACHINE,
      ['--foo=1', '--max-model-len=2048'],
      'vllm serve: error: unrecognized arguments: --foo=1',
    ],
    [
      '--max-model-len beyond the model',
      L4_MACHINE,
      ['--max-model-len', '8192'],
      "ValueError: User-specified max_model_len (8192) is greater than the derived max_model_len (max_position_embeddings=4096 or model_max_length=None in model's config.json). This may lead to incorrect model outputs or CUDA errors. To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
    ],
    [
      '--tensor-parallel-size beyond the GPUs',
      L4_MACHINE,
      ['--tensor-parallel-size=2'],
      'ValueError: The number of required GPUs exceeds the total number of available GPUs in the placement group.',
    ],
    [
      '-tp beyond the GPUs',
      { machineType: 'g2-standard-24', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 },
      ['-tp', '4'],
      'ValueError: The number of required GPUs exceeds the total number of available GPUs in the placement group.',
    ],
    [
      '--dtype bfloat16 on a T4',
      T4_MACHINE,
      ['--dtype', 'bfloat16'],
      'ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU has compute capability 7.5. You can use float16 instead by explicitly setting the `dtype` flag in CLI, for example: --dtype=half.',
    ],
    [
      'BF16 weights with --dtype auto on a V100',
      V100_MACHINE,
      ['--max-model-len=2048'],
      'ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla V100-SXM2-16GB GPU has compute capability 7.0. You can use float16 instead by explicitly setting the `dtype` flag in CLI, for example: --dtype=half.',
    ],
    [
      'a dtype vLLM does not know',
      L4_MACHINE,
      ['--dtype=bf16'],
      "vllm serve: error: argument --dtype: invalid choice: 'bf16' (choose from 'auto', 'half', 'float16', 'bfloat16', 'float', 'float32')",
    ],
  ])('%s: the deploy fails with the line vLLM prints', async (_what, machine, args, last) => {
    const { op, entries } = await deploy({ machine, args });
    expectFailedWith(op, entries, last);
  });

  it('the same model starts with flags that fit: --dtype=half on a T4, a longer context when allowed', async () => {
    const half = await deploy({ machine: T4_MACHINE, args: ['--dtype=half', '--max-model-len=4096'] });
    expect(half.op.error).toBeUndefined();
    expect(messages(half.entries).some((m) => m.includes('dtype=torch.float16, max_seq_len=4096'))).toBe(
      true,
    );
    const longer = await deploy({
      args: ['--max_model_len=8192'],
      env: [{ name: 'VLLM_ALLOW_LONG_MAX_MODEL_LEN', value: '1' }],
    });
    expect(longer.op.error).toBeUndefined();
    expect(
      longer.entries.some(
        (e) => e.severity === 'WARNING' && e.jsonPayload.message.includes('max_model_len (8192)'),
      ),
    ).toBe(true);
  });
});

describe('replicas that never become ready', () => {
  it('a server on another port than the container’s: the deploy succeeds, health checks on 8080 fail, again and again', async () => {
    const { project, op, entries } = await deploy({ args: ['--port=9000'] });
    expect(op.error).toBeUndefined();
    expect(messages(entries)).toContain(
      'INFO:     Uvicorn running on http://0.0.0.0:9000 (Press CTRL+C to quit)',
    );
    // The container restarts and says so each time.
    const later = await pollUntil('restarts', async () => {
      const now = await lines(project, 'serving');
      return messages(now).filter((m) => m.includes('Uvicorn running on http://0.0.0.0:9000')).length >= 3
        ? now
        : undefined;
    });
    const probes = later.filter((e) => e.jsonPayload.message.startsWith('Readiness probe failed'));
    expect(probes.length).toBeGreaterThanOrEqual(3);
    expect(probes[0]!.jsonPayload.message).toMatch(
      /:8080\/ping": dial tcp [\d.]+:8080: connect: connection refused$/,
    );
    const endpoint = (await t.api.get(`/v1beta1/${op.response.endpoint}`)).json;
    expect(endpoint.deployedModels[0].status.availableReplicaCount).toBeUndefined();
    expect(later.every((e) => e.labels.deployed_model_id === endpoint.deployedModels[0].id)).toBe(true);
  });

  it('a server on the port the container declares becomes ready', async () => {
    const project = uniqueProject('own-port');
    const { endpoint } = await deployReady(
      t.api,
      project,
      t.model,
      { endpoint: 'port', model: 'port' },
      {
        model_config: {
          model_user_id: 'port',
          container_spec: { image_uri: IMAGE, args: ['--port', '9000'], ports: [{ container_port: 9000 }] },
        },
      },
    );
    expect(endpoint.deployedModels[0].status.availableReplicaCount).toBe(2);
  });

  it('the never-ready fault: the health route times out, again and again', async () => {
    const { project, op } = await deploy({ fault: 'never-ready' });
    expect(op.error).toBeUndefined();
    const later = await pollUntil('restarts', async () => {
      const now = await lines(project, 'serving');
      return now.filter((e) => e.jsonPayload.message.startsWith('Readiness probe failed')).length >= 6
        ? now
        : undefined;
    });
    expect(messages(later)).toContain(
      'INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)',
    );
    expect(later.find((e) => e.severity === 'WARNING')!.jsonPayload.message).toMatch(
      /:8080\/ping": context deadline exceeded/,
    );
  });
});

describe('endpoints.deployModel', () => {
  it('logs its attempt under the deployed model id it asked for, a failed one included', async () => {
    const project = uniqueProject('dm-logs');
    const { endpoint, operation } = await deployReady(t.api, project, t.model, {
      endpoint: 'home',
      model: 'm',
    });
    const body = (id: string) => ({
      deployedModel: {
        id,
        model: operation.response.model,
        dedicatedResources: { machineSpec: L4_MACHINE, minReplicaCount: 1 },
      },
    });
    const ok = await waitForOperation(
      t.api,
      (await t.api.post(`/v1beta1/${endpoint.name}:deployModel`, body('8'))).json.name,
    );
    expect(ok.error).toBeUndefined();
    expect(messages(await lines(project, 'home', '8'))).toContain(
      'INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)',
    );

    await t.admin.addFaultRules([{ route: 'vertex.endpoints.deployModel', project, sequence: ['oom'] }]);
    const failed = await waitForOperation(
      t.api,
      (await t.api.post(`/v1beta1/${endpoint.name}:deployModel`, body('7'))).json.name,
    );
    const seven = await lines(project, 'home', '7');
    expect(seven.every((e) => e.resource.labels.endpoint_id === 'home')).toBe(true);
    expectFailedWith(failed, seven, /^torch\.OutOfMemoryError: CUDA out of memory\./);
  });
});
