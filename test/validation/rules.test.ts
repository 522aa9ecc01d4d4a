import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SampleModelOptions } from '../../src/sample-model';
import { openModelStore, StorageAccessError, type ModelStore } from '../../src/storage';
import {
  RULES,
  type RuleId,
  type Severity,
  type ValidateOptions,
  type ValidationReport,
  ValidationReportSchema,
  validateModel,
  validateStore,
} from '../../src/validation';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';
import { headerText, rawSafetensors } from '../safetensors/raw-file';
import {
  editJson,
  put,
  remove,
  removeTempFolders,
  rewriteShard,
  ruleSeverities,
  sampleFolder,
  shardTensors,
  upload,
} from './folders';

/**
 * One case per rule of the catalogue (the Record type makes a missing rule a compile error), each
 * a generated sample folder broken the way the rule describes, validated on a local directory and
 * through the real storage client against fake-gcs-server.
 */

type Backend = 'local' | 'gcs';

interface CaseContext {
  backend: Backend;
  storage: Storage;
  bucket: string;
}

interface RuleCase {
  /** Generator options of the starting folder (default: a valid 2-shard Llama). */
  sample?: Omit<SampleModelOptions, 'location'>;
  /** Breaks the folder. */
  mutate?: (dir: string) => Promise<void>;
  options?: ValidateOptions;
  /** Severity this case must produce when it differs from the rule's default. */
  severity?: Severity;
  /** Validates some other way than the folder at its location (bad URIs, failing stores). */
  run?: (location: string, ctx: CaseContext) => Promise<ValidationReport>;
}

const FIXTURES = path.join(__dirname, 'fixtures', 'real-configs');
const realConfig = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8')) as Record<string, unknown>;

const SINGLE = { shards: 1 } as const;
const SHARD_1 = 'model-00001-of-00002.safetensors';
const SHARD_2 = 'model-00002-of-00002.safetensors';
const INDEX = 'model.safetensors.index.json';

const L4_1 = { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 } as const;
const T4_1 = { type: 'n1-standard-8', acceleratorType: 'NVIDIA_TESLA_T4', acceleratorCount: 1 } as const;
/** Deployment settings whose serving container runs vLLM with these arguments. */
const vllmArgs = (...args: string[]): ValidateOptions => ({ deployment: { container: { args } } });

/** Replaces the single shard of a one-shard sample with raw bytes. */
const rawShard = (bytes: Buffer) => async (dir: string) => put(dir, 'model.safetensors', bytes);
const entry = (dtype: string, shape: string, offsets: string) =>
  `{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;

/** A store whose reads of `failing` (or listing, when null) fail with `kind`. */
function failingStore(
  store: ModelStore,
  failing: string | null,
  kind: 'not-found' | 'forbidden',
): ModelStore {
  const fail = () => Promise.reject(new StorageAccessError(kind, `simulated ${kind}`));
  return {
    uri: store.uri,
    list: (o) => (failing === null ? fail() : store.list(o)),
    readRange: (name, start, end) => (name === failing ? fail() : store.readRange(name, start, end)),
    readSmall: (name, max) => (name === failing ? fail() : store.readSmall(name, max)),
  };
}

function storeFor(location: string, ctx: CaseContext): ModelStore {
  return openModelStore(location, { storage: ctx.storage });
}

const CASES: Record<RuleId, RuleCase> = {
  'location.invalid-uri': {
    run: () => validateModel('gs://Not_A_Bucket!/model/', {}),
  },
  'location.not-found': {
    run: (location, ctx) =>
      ctx.backend === 'local'
        ? validateModel(path.join(location, 'no-such-dir'))
        : validateModel(`gs://${ctx.bucket}/no-such-prefix/`, {}, { storage: ctx.storage }),
  },
  'location.forbidden': {
    run: (location, ctx) => validateStore(failingStore(storeFor(location, ctx), null, 'forbidden')),
  },
  'location.too-many-objects': { options: { maxObjects: 3 } },
  'layout.nested-folder': { sample: { variant: 'nested-folder' } },
  'layout.subfolder': { mutate: (dir) => put(dir, 'original/params.json', '{}') },
  'layout.training-artifacts': { mutate: (dir) => put(dir, 'optimizer.pt', 'x') },
  'layout.unreadable-file': {
    run: (location, ctx) => validateStore(failingStore(storeFor(location, ctx), SHARD_2, 'not-found')),
  },

  'config.missing': { mutate: (dir) => remove(dir, 'config.json') },
  'config.too-large': {
    mutate: (dir) => put(dir, 'config.json', `{"pad": "${'x'.repeat(5 * 1024 * 1024)}"}`),
  },
  'config.invalid-json': {
    mutate: (dir) => put(dir, 'config.json', '{"architectures": ["LlamaForCausalLM"'),
  },
  'config.invalid': {
    mutate: (dir) =>
      editJson(dir, 'config.json', (c) => {
        c.num_attention_heads = 0;
      }),
  },
  'config.unsupported-architecture': { sample: { variant: 'unsupported-architecture' } },
  'config.family-mismatch': { options: { expectedFamily: 'qwen2' } },
  'config.quantized': { sample: { variant: 'quantized-config' } },
  'config.native-quantization': { mutate: (dir) => put(dir, 'config.json', realConfig('gpt-oss-120b.json')) },
  'config.rope-parameters': { sample: { variant: 'rope-parameters' } },
  'config.dtype-field': { sample: { variant: 'rope-parameters' } },
  'config.transformers-version': { sample: { variant: 'rope-parameters' } },
  'config.recent-architecture': { mutate: (dir) => put(dir, 'config.json', realConfig('DeepSeek-V3.json')) },
  'config.long-context': {
    mutate: (dir) =>
      editJson(dir, 'config.json', (c) => {
        c.max_position_embeddings = 1 << 30;
      }),
  },

  'peft.adapter': { sample: { variant: 'peft-adapter' } },
  'peft.stray-adapter': { mutate: (dir) => put(dir, 'adapter_config.json', { peft_type: 'LORA', r: 8 }) },

  'weights.missing': {
    mutate: async (dir) => {
      await Promise.all([remove(dir, SHARD_1), remove(dir, SHARD_2), remove(dir, INDEX)]);
    },
  },
  'weights.mixed-formats': { sample: { variant: 'bin-and-safetensors' } },
  'weights.bin-only': {
    sample: SINGLE,
    mutate: async (dir) => {
      await remove(dir, 'model.safetensors');
      await put(
        dir,
        'pytorch_model.bin',
        Buffer.concat([Buffer.from('PK\u0003\u0004', 'latin1'), Buffer.alloc(64)]),
      );
    },
  },
  'weights.bin-not-torch': {
    sample: SINGLE,
    mutate: async (dir) => {
      await remove(dir, 'model.safetensors');
      await put(dir, 'pytorch_model.bin', '<html>403 Forbidden</html>');
    },
  },
  'weights.consolidated': { sample: { variant: 'stray-consolidated' } },
  'weights.unindexed-shards': { mutate: (dir) => remove(dir, INDEX) },
  'weights.float32': { sample: { ...SINGLE, dtype: 'F32' } },
  'weights.duplicate-tensor': {
    mutate: async (dir) => {
      const [first] = await shardTensors(dir, SHARD_1);
      await rewriteShard(dir, SHARD_2, (tensors) => [...tensors, first!]);
    },
  },

  'safetensors.too-small': { sample: SINGLE, mutate: rawShard(Buffer.from([1, 2, 3])) },
  'safetensors.header-length-invalid': {
    sample: SINGLE,
    mutate: rawShard(rawSafetensors('', { declaredLength: 0n, dataBytes: 16 })),
  },
  'safetensors.header-too-large': {
    sample: SINGLE,
    mutate: rawShard(rawSafetensors('{}', { declaredLength: (1n << 64n) - 1n, dataBytes: 64 })),
  },
  'safetensors.header-large': {
    sample: SINGLE,
    mutate: rawShard(rawSafetensors(`{}${' '.repeat(25_000_010)}`, { pad: false })),
  },
  'safetensors.header-over-read-cap': { sample: SINGLE, options: { maxHeaderBytes: 64 } },
  'safetensors.truncated': { sample: { variant: 'truncated-shard' } },
  'safetensors.trailing-bytes': {
    sample: SINGLE,
    mutate: async (dir) => {
      const { text, dataBytes } = headerText([{ name: 'w', dtype: 'BF16', shape: [4], bytes: 8 }]);
      await put(dir, 'model.safetensors', rawSafetensors(text, { dataBytes: dataBytes + 5 }));
    },
  },
  'safetensors.invalid-utf8': {
    sample: SINGLE,
    mutate: rawShard(Buffer.from([4, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0xff, 0xfe, 0x7d])),
  },
  'safetensors.invalid-json': { sample: { variant: 'corrupt-header' } },
  'safetensors.leading-whitespace': {
    sample: SINGLE,
    mutate: rawShard(
      rawSafetensors(` {"__metadata__":{"format":"pt"},"w":${entry('U8', '[4]', '[0,4]')}}`, {
        dataBytes: 4,
      }),
    ),
  },
  'safetensors.duplicate-key': {
    sample: SINGLE,
    mutate: rawShard(
      rawSafetensors(`{"w":${entry('U8', '[4]', '[0,4]')},"w":${entry('U8', '[4]', '[0,4]')}}`, {
        dataBytes: 4,
      }),
    ),
  },
  'safetensors.not-object': { sample: SINGLE, mutate: rawShard(rawSafetensors('[1, 2, 3]')) },
  'safetensors.bad-entry': {
    sample: SINGLE,
    mutate: rawShard(rawSafetensors(`{"w":${entry('U8', '[-4]', '[0,4]')}}`, { dataBytes: 4 })),
  },
  'safetensors.unknown-dtype': {
    sample: SINGLE,
    mutate: rawShard(rawSafetensors(`{"w":${entry('Q2_K', '[4]', '[0,4]')}}`, { dataBytes: 4 })),
  },
  'safetensors.bad-metadata': {
    sample: SINGLE,
    mutate: rawShard(
      rawSafetensors(`{"__metadata__":{"format":{"nested":"pt"}},"w":${entry('U8', '[4]', '[0,4]')}}`, {
        dataBytes: 4,
      }),
    ),
  },
  'safetensors.metadata-format': {
    sample: SINGLE,
    mutate: rawShard(
      rawSafetensors(`{"__metadata__":{"format":"tf"},"w":${entry('U8', '[4]', '[0,4]')}}`, { dataBytes: 4 }),
    ),
  },
  'safetensors.offsets': {
    sample: SINGLE,
    mutate: rawShard(
      rawSafetensors(`{"a":${entry('U8', '[4]', '[0,4]')},"b":${entry('U8', '[4]', '[2,6]')}}`, {
        dataBytes: 6,
      }),
    ),
  },
  'safetensors.size-mismatch': {
    sample: SINGLE,
    mutate: rawShard(rawSafetensors(`{"w":${entry('BF16', '[4]', '[0,4]')}}`, { dataBytes: 4 })),
  },
  'safetensors.misaligned': {
    sample: SINGLE,
    mutate: rawShard(rawSafetensors(`{"w":${entry('F4', '[3]', '[0,2]')}}`, { dataBytes: 2 })),
  },
  'safetensors.empty': {
    sample: SINGLE,
    mutate: rawShard(rawSafetensors('{"__metadata__":{"format":"pt"}}')),
  },

  'index.invalid': { mutate: (dir) => put(dir, INDEX, '{"weight_map": []}') },
  'index.metadata-missing': {
    mutate: (dir) =>
      editJson(dir, INDEX, (index) => {
        delete index.metadata;
      }),
  },
  'index.unsafe-path': {
    mutate: (dir) =>
      editJson(dir, INDEX, (index) => {
        const map = index.weight_map as Record<string, string>;
        const name = Object.keys(map)[0]!;
        map[name] = '../elsewhere/model.safetensors';
      }),
  },
  'index.subfolder-shard': {
    mutate: async (dir) => {
      await put(dir, `shards/${SHARD_2}`, await readFile(path.join(dir, SHARD_2)));
      await remove(dir, SHARD_2);
      await editJson(dir, INDEX, (index) => {
        const map = index.weight_map as Record<string, string>;
        for (const [tensor, shard] of Object.entries(map))
          if (shard === SHARD_2) map[tensor] = `shards/${SHARD_2}`;
      });
    },
  },
  'index.missing-shard': { sample: { variant: 'missing-shard' } },
  'index.tensor-not-in-shard': { sample: { variant: 'index-missing-tensor' } },
  'index.unlisted-tensor': {
    mutate: (dir) =>
      editJson(dir, INDEX, (index) => {
        const map = index.weight_map as Record<string, string>;
        delete map[Object.keys(map).find((n) => map[n] === SHARD_2)!];
      }),
  },
  'index.total-size-mismatch': {
    mutate: (dir) =>
      editJson(dir, INDEX, (index) => {
        (index.metadata as Record<string, unknown>).total_size = 12345;
      }),
  },
  'index.unlisted-file': {
    mutate: async (dir) => {
      const { text, dataBytes } = headerText([{ name: 'w', dtype: 'BF16', shape: [4], bytes: 8 }]);
      await put(dir, 'model.safetensors', rawSafetensors(text, { dataBytes }));
    },
  },

  'tensors.training-prefix': {
    sample: SINGLE,
    mutate: (dir) =>
      rewriteShard(dir, 'model.safetensors', (ts) =>
        ts.map((t) => ({ ...t, name: `base_model.model.${t.name}` })),
      ),
  },
  'tensors.missing': {
    sample: SINGLE,
    mutate: (dir) =>
      rewriteShard(dir, 'model.safetensors', (ts) =>
        ts.filter((t) => !t.name.endsWith('layers.0.mlp.down_proj.weight')),
      ),
  },
  'tensors.lm-head-missing': { sample: { variant: 'missing-lm-head' } },
  'tensors.shape-mismatch': { sample: { variant: 'shape-mismatch' } },
  'tensors.vocab-mismatch': { sample: { variant: 'vocab-mismatch' } },
  'tensors.layer-count': {
    mutate: (dir) =>
      editJson(dir, 'config.json', (c) => {
        c.num_hidden_layers = 3;
      }),
  },
  'tensors.unexpected': {
    sample: SINGLE,
    mutate: (dir) =>
      rewriteShard(dir, 'model.safetensors', (ts) => [
        ...ts,
        { name: 'score.weight', dtype: 'BF16', shape: [2, 64] },
      ]),
  },

  'quantization.side-file': {
    mutate: (dir) => put(dir, 'quantize_config.json', { bits: 4, group_size: 128 }),
  },
  'quantization.tensors': {
    sample: SINGLE,
    mutate: (dir) =>
      rewriteShard(dir, 'model.safetensors', (ts) => [
        ...ts,
        { name: 'model.layers.0.mlp.down_proj.qweight', dtype: 'I32', shape: [16, 64] },
        { name: 'model.layers.0.mlp.down_proj.scales', dtype: 'F16', shape: [1, 64] },
      ]),
  },
  'quantization.dequantized-native': {
    mutate: (dir) => {
      const config = realConfig('gpt-oss-120b.json');
      delete config.quantization_config;
      return put(dir, 'config.json', config);
    },
  },

  'tokenizer.missing': { sample: { variant: 'missing-tokenizer' } },
  'tokenizer.config-missing': { mutate: (dir) => remove(dir, 'tokenizer_config.json') },
  'tokenizer.json-required': {
    sample: { family: 'qwen2' },
    mutate: async (dir) => {
      await remove(dir, 'tokenizer.json');
      await put(dir, 'tokenizer.model', Buffer.from([0x0a, 0x0b, 0x0a, 0x05, 0x3c, 0x75, 0x6e, 0x6b, 0x3e]));
    },
  },
  'tokenizer.tiktoken-model': { mutate: (dir) => put(dir, 'tokenizer.model', 'IQ== 0\nIg== 1\nIw== 2\n') },
  'tokenizer.invalid': { mutate: (dir) => put(dir, 'tokenizer_config.json', '{"chat_template": ') },
  'tokenizer.vocab-out-of-range': { sample: { variant: 'tokenizer-exceeds-vocab' } },
  'tokenizer.chat-template-missing': {
    sample: { variant: 'no-chat-template' },
    options: { requireChat: true },
    severity: 'error',
  },
  'tokenizer.chat-template-conflict': {
    mutate: (dir) => put(dir, 'chat_template.jinja', '{% for m in messages %}{{ m.content }}{% endfor %}'),
  },
  'generation-config.missing': { mutate: (dir) => remove(dir, 'generation_config.json') },
  'generation-config.invalid': { mutate: (dir) => put(dir, 'generation_config.json', 'eos=2') },
  'generation-config.token-out-of-range': {
    mutate: (dir) =>
      editJson(dir, 'generation_config.json', (g) => {
        g.eos_token_id = 10_000_000;
      }),
  },
  'generation-config.eos-mismatch': {
    mutate: (dir) =>
      editJson(dir, 'generation_config.json', (g) => {
        g.eos_token_id = [0];
      }),
  },
  'processor.missing': { mutate: (dir) => put(dir, 'config.json', realConfig('gemma-3-4b-it.json')) },

  'sizing.no-fit': {
    mutate: async (dir) => {
      const bf16 = realConfig('DeepSeek-V3.json');
      delete bf16.quantization_config;
      await put(dir, 'config.json', bf16);
      await Promise.all([remove(dir, SHARD_1), remove(dir, SHARD_2), remove(dir, INDEX)]);
    },
  },
  'sizing.context-clamped': { options: { contextLength: 100_000 } },
  'sizing.unavailable': { sample: { variant: 'unsupported-architecture' } },
  'machine.unknown': {
    options: { machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 } },
  },
  'machine.tensor-parallel': {
    options: { machine: { type: 'g2-standard-96', acceleratorType: 'NVIDIA_L4', acceleratorCount: 8 } },
  },
  'machine.insufficient-memory': {
    mutate: async (dir) => {
      await put(dir, 'config.json', realConfig('Llama-3.1-70B-Instruct.json'));
      await Promise.all([remove(dir, SHARD_1), remove(dir, SHARD_2), remove(dir, INDEX)]);
    },
    options: { machine: { type: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 } },
  },
  'machine.kernel-caveat': {
    mutate: (dir) => put(dir, 'config.json', realConfig('gpt-oss-120b.json')),
    options: {
      machine: { type: 'a2-ultragpu-1g', acceleratorType: 'NVIDIA_A100_80GB', acceleratorCount: 1 },
    },
  },
  'machine.multihost-unsupported': {
    options: { machine: { ...L4_1, multihostGpuNodeCount: 2 } },
  },
  'machine.gpu-partition-count': {
    options: {
      machine: {
        type: 'a2-ultragpu-2g',
        acceleratorType: 'NVIDIA_A100_80GB',
        acceleratorCount: 2,
        gpuPartitionSize: '1g.10gb',
      },
    },
  },

  'capacity.spot-reservation': {
    options: {
      deployment: {
        capacity: {
          spot: true,
          reservation: {
            type: 'SPECIFIC_RESERVATION',
            key: 'compute.googleapis.com/reservation-name',
            values: ['projects/p/zones/us-central1-a/reservations/r'],
          },
        },
      },
    },
  },
  'replicas.scale-to-zero-min': {
    options: { deployment: { replicas: { min: 1, max: 2, scaleToZero: {} } } },
  },
  'replicas.autoscaling-target': {
    options: {
      deployment: { replicas: { min: 1, max: 3, autoscaling: [{ metric: 'cpu/utilization', target: 250 }] } },
    },
  },
  'replicas.autoscaling-fixed': {
    options: {
      deployment: { replicas: { min: 2, max: 2, autoscaling: [{ metric: 'request_count', target: 100 }] } },
    },
  },

  'vllm.invalid-argument': { options: vllmArgs('--gpu-memory-utilization=1.5') },
  'vllm.max-model-len-exceeds-model': { options: vllmArgs('--max-model-len=8192') },
  'vllm.max-model-len-exceeds-kv-cache': {
    mutate: (dir) =>
      editJson(dir, 'config.json', (c) => {
        c.max_position_embeddings = 1 << 30;
      }),
    options: vllmArgs('--max-model-len=200m'),
  },
  'vllm.parallel-size': { options: vllmArgs('--tensor-parallel-size=2') },
  'vllm.tensor-parallel-heads': { options: vllmArgs('--tensor-parallel-size=3') },
  'vllm.batched-tokens': { options: vllmArgs('--max-model-len=4096', '--max-num-batched-tokens=1024') },
  'vllm.quantization': { options: vllmArgs('--quantization=awq') },
  'vllm.dtype-unsupported': { options: { machine: T4_1, ...vllmArgs('--dtype=bfloat16') } },
  'vllm.dtype-auto-bfloat16': { options: { machine: T4_1, deployment: {} } },
};

afterAll(async () => {
  await removeTempFolders();
  await closeTestEnv();
});

describe('rule catalogue coverage', () => {
  it('has a case for every rule', () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(RULES).sort());
  });
});

for (const backend of ['local', 'gcs'] as const) {
  describe.concurrent(`every rule fires on its broken folder (${backend})`, () => {
    let ctx: CaseContext;
    beforeAll(async () => {
      const { storage } = await getTestEnv();
      ctx = { backend, storage, bucket: await createTestBucket(storage, 'rules') };
    });

    for (const [rule, c] of Object.entries(CASES) as Array<[RuleId, RuleCase]>) {
      it(rule, async () => {
        const dir = await sampleFolder(c.sample);
        await c.mutate?.(dir);
        const location =
          backend === 'local' ? dir : await upload(ctx.storage, ctx.bucket, dir, rule.replace(/\./g, '-'));
        const report = c.run
          ? await c.run(location, ctx)
          : await validateModel(location, c.options ?? {}, { storage: ctx.storage });
        expect(() => ValidationReportSchema.parse(report)).not.toThrow();
        const severities = ruleSeverities(report);
        expect([...severities.keys()], `findings: ${JSON.stringify(report.findings, null, 1)}`).toContain(
          rule,
        );
        expect([...severities.get(rule)!]).toContain(c.severity ?? RULES[rule].severity);
        const finding = report.findings.find((f) => f.rule === rule)!;
        expect(finding.message.length).toBeGreaterThan(30);
        const unreadable = rule.startsWith('location.');
        expect(report.status).toBe(unreadable ? 'unreadable' : report.summary.errors > 0 ? 'errors' : 'ok');
      });
    }
  });
}
