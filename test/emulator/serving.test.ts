import { describe, expect, it } from 'vitest';
import { SAMPLE_FAMILIES, type SampleVariant } from '../../src/sample-model';
import { deployBody, uniqueProject, uploadSampleModel, useTestEmulator, waitForOperation } from './helpers';

const t = useTestEmulator();

interface Case {
  variant: SampleVariant;
  /** `import`: refused before anything is created; `serving`: the container died, endpoint and model stay behind. */
  stage: 'import' | 'serving';
  code: number;
  message: RegExp;
}

const BROKEN: Case[] = [
  { variant: 'missing-tokenizer', stage: 'serving', code: 9, message: /OSError: Can't load tokenizer for/ },
  {
    variant: 'missing-shard',
    stage: 'serving',
    code: 9,
    message: /Following weights were not initialized from checkpoint: \{'model\.layers\.\d+\./,
  },
  {
    variant: 'index-missing-tensor',
    stage: 'serving',
    code: 9,
    message: /Following weights were not initialized from checkpoint/,
  },
  {
    variant: 'truncated-shard',
    stage: 'serving',
    code: 9,
    message:
      /Error while deserializing header: MetadataIncompleteBuffer \(model-\d{5}-of-\d{5}\.safetensors is truncated: expected \d+ bytes, object has \d+/,
  },
  {
    variant: 'corrupt-header',
    stage: 'serving',
    code: 9,
    message:
      /Error while deserializing header: InvalidHeader(Deserialization)? \(model-00001-of-\d{5}\.safetensors/,
  },
  {
    variant: 'shape-mismatch',
    stage: 'serving',
    code: 9,
    message:
      /Attempted to load weight \(torch\.Size\(\[\d+, \d+\]\)\) into parameter \(torch\.Size\(\[\d+, \d+\]\)\) for 'model\.layers\.0\.self_attn\.k_proj\.weight'/,
  },
  {
    variant: 'missing-lm-head',
    stage: 'serving',
    code: 9,
    message: /not initialized from checkpoint: \{'lm_head\.weight'\}/,
  },
  {
    variant: 'vocab-mismatch',
    stage: 'serving',
    code: 9,
    message: /Attempted to load weight .* for 'model\.embed_tokens\.weight'/,
  },
  {
    variant: 'quantized-config',
    stage: 'import',
    code: 3,
    message: /quantized models are not supported .*quant_method 'gptq'/,
  },
  {
    variant: 'unsupported-architecture',
    stage: 'import',
    code: 3,
    message:
      /architectures \['FalconForCausalLM'\].*not supported for custom weights\. Supported architectures: \[.*'LlamaForCausalLM'/,
  },
  {
    variant: 'nested-folder',
    stage: 'import',
    code: 3,
    message: /does not appear to have a file named config\.json/,
  },
  {
    variant: 'peft-adapter',
    stage: 'import',
    code: 3,
    message: /does not appear to have a file named config\.json/,
  },
];

describe('the serving stack reads the weights like vLLM', () => {
  it.each(BROKEN)('$variant → failed LRO ($stage stage)', async ({ variant, stage, code, message }) => {
    const gcsUri = await uploadSampleModel({ variant, shards: 2 });
    const project = uniqueProject();
    const start = await t.api.post(
      `/v1beta1/projects/${project}/locations/us-central1:deploy`,
      deployBody(gcsUri, { endpoint: 'broken', model: 'broken' }),
    );
    expect(start.status, start.text).toBe(200);
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.response).toBeUndefined();
    expect(op.error.code).toBe(code);
    expect(op.error.message).toMatch(message);
    expect(op.error.message).toContain(stage === 'import' ? gcsUri : 'Model server exited unexpectedly');
    const resources = await t.admin.resources(project);
    // As on Vertex, a failed deploy leaves what it created: the caller cleans up.
    expect(resources.endpoints.length).toBe(stage === 'import' ? 0 : 1);
    expect(resources.models.length).toBe(stage === 'import' ? 0 : 1);
    if (stage === 'serving') expect(resources.endpoints[0]!.deployedModels).toBeUndefined();
  });

  it.each(['bin-and-safetensors', 'rope-parameters', 'no-chat-template', 'stray-consolidated'] as const)(
    '%s deploys: the real serving stack accepts it too',
    async (variant) => {
      const gcsUri = await uploadSampleModel({ variant });
      const project = uniqueProject();
      const start = await t.api.post(
        `/v1beta1/projects/${project}/locations/us-central1:deploy`,
        deployBody(gcsUri, { endpoint: 'ok', model: 'ok' }),
      );
      const op = await waitForOperation(t.api, start.json.name);
      expect(op.error).toBeUndefined();
      expect(op.response.endpoint).toMatch(/\/endpoints\/ok$/);
    },
  );

  it('fails the LRO when the prefix holds nothing, naming the prefix', async () => {
    const gcsUri = await uploadSampleModel({});
    const empty = gcsUri.replace(/model\/$/, 'nothing-here/');
    const start = await t.api.post(
      `/v1beta1/projects/${uniqueProject()}/locations/us-central1:deploy`,
      deployBody(empty),
    );
    const op = await waitForOperation(t.api, start.json.name);
    expect(op.error.code).toBe(3);
    expect(op.error.message).toContain(`${empty}: no files were found under this prefix`);
  });

  it.each(SAMPLE_FAMILIES)(
    'a valid %s sample deploys (its tensor layout is what the family serves)',
    async (family) => {
      const gcsUri = await uploadSampleModel({ family, shards: family === 'qwen3' ? 3 : 1 });
      const start = await t.api.post(
        `/v1beta1/projects/${uniqueProject()}/locations/us-central1:deploy`,
        deployBody(gcsUri),
      );
      const op = await waitForOperation(t.api, start.json.name);
      expect(op.error, JSON.stringify(op.error)).toBeUndefined();
    },
  );
});
