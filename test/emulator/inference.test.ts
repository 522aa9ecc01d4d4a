import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkProtoJson } from '../../src/emulator';
import { closeTestEnv } from '../harness/env';
import {
  type TestEmulator,
  deployBody,
  deployReady,
  expectProtoRoundTrip,
  parseSse,
  startTestEmulator,
  uniqueProject,
  uploadSampleModel,
  waitForOperation,
} from './helpers';

let t: TestEmulator;
let project: string;
let endpointPath: string;
let host: string;
let deployedModelId: string;

beforeAll(async () => {
  t = await startTestEmulator();
  project = uniqueProject('infer');
  const { endpoint } = await deployReady(t.api, project, await uploadSampleModel(), {
    endpoint: 'chat',
    model: 'chat-model',
  });
  endpointPath = `/v1beta1/${endpoint.name}`;
  host = endpoint.dedicatedEndpointDns;
  deployedModelId = endpoint.deployedModels[0].id;
});
afterAll(async () => {
  await t?.emulator.close();
  await closeTestEnv();
});

const chat = { model: '', messages: [{ role: 'user', content: 'Say hello to the garden.' }], max_tokens: 64 };

describe('chat completions on the dedicated host', () => {
  it('answers deterministically with usage, and the stream carries the same text ending in [DONE]', async () => {
    const first = await t.api.post(`${endpointPath}/chat/completions`, chat, { host });
    expect(first.status, first.text).toBe(200);
    expect(first.headers['x-vertex-ai-endpoint-id']).toBe('chat');
    expect(first.headers['x-vertex-ai-deployed-model-id']).toBe(deployedModelId);
    const body = first.json;
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'tiny-llama',
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant' } }],
    });
    const text: string = body.choices[0].message.content;
    expect(text.length).toBeGreaterThan(0);
    expect(body.usage.completion_tokens).toBe(text.split(' ').length);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    const again = await t.api.post(`${endpointPath}/chat/completions`, chat, { host });
    expect(again.json.choices[0].message.content).toBe(text);

    const streamed = await t.api.post(
      `${endpointPath}/chat/completions`,
      { ...chat, stream: true, stream_options: { include_usage: true } },
      { host },
    );
    expect(streamed.status).toBe(200);
    expect(streamed.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = parseSse(streamed.text);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id)).toBe(true);
    const content = chunks
      .flatMap((c) => c.choices)
      .map((choice) => choice.delta?.content ?? '')
      .join('');
    expect(content).toBe(text);
    expect(chunks.flatMap((c) => c.choices).at(-1).finish_reason).toBe('stop');
    expect(chunks.at(-1).usage).toEqual(body.usage);
  });

  it('stops at max_tokens with finish_reason "length" and rejects malformed requests like vLLM', async () => {
    const short = await t.api.post(`${endpointPath}/chat/completions`, { ...chat, max_tokens: 3 }, { host });
    expect(short.json.choices[0].finish_reason).toBe('length');
    expect(short.json.usage.completion_tokens).toBe(3);
    const bad = await t.api.post(`${endpointPath}/chat/completions`, { messages: [] }, { host });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ object: 'error', type: 'BadRequestError', code: 400 });
    expect(bad.json.message).toContain('messages');
  });

  it('serves the /v1 path the Python SDK uses, and only prediction routes, on the dedicated host', async () => {
    const v1 = await t.api.post(`${endpointPath.replace('/v1beta1/', '/v1/')}/chat/completions`, chat, {
      host,
    });
    expect(v1.status).toBe(200);
    const management = await t.api.get(endpointPath, { host });
    expect(management.status).toBe(404);
    const otherHost = await t.api.post(`${endpointPath}/chat/completions`, chat, {
      host: host.replace(/^chat\./, 'other.'),
    });
    expect(otherHost.status).toBe(404);
    expect(otherHost.json.error.message).toContain('is not served at this host');
  });

  it('refuses the shared domain for a dedicated endpoint', async () => {
    const shared = await t.api.post(`${endpointPath}/chat/completions`, chat);
    expect(shared.status).toBe(400);
    expect(shared.json.error).toMatchObject({ status: 'FAILED_PRECONDITION' });
    expect(shared.json.error.message).toContain(host);
  });
});

describe(':predict, :rawPredict, :streamRawPredict', () => {
  it(':predict maps instances to predictions and names the deployed model', async () => {
    const body = {
      instances: [
        { prompt: 'What is Vertex?', max_tokens: 5 },
        { prompt: 'Hi', raw_response: true },
      ],
      parameters: { temperature: 0 },
    };
    expectProtoRoundTrip('google.cloud.aiplatform.v1beta1.PredictRequest', body);
    const res = await t.api.post(`${endpointPath}:predict`, body, { host });
    expect(res.status, res.text).toBe(200);
    const check = checkProtoJson('google.cloud.aiplatform.v1beta1.PredictResponse', res.json);
    expect(check.ok).toBe(true);
    expect(res.json).toMatchObject({
      deployedModelId,
      model: expect.stringMatching(/\/models\/chat-model$/),
      modelVersionId: '1',
      modelDisplayName: 'tiny-llama',
    });
    expect(res.json.predictions[0]).toMatch(/^Prompt:\nWhat is Vertex\?\nOutput:\n(\S+ ){4}\S+$/);
    expect(res.json.predictions[1]).not.toContain('Prompt:');
    const chatInstance = await t.api.post(
      `${endpointPath}:predict`,
      { instances: [{ '@requestFormat': 'chatCompletions', messages: chat.messages }] },
      { host },
    );
    expect(chatInstance.json.predictions[0].choices[0].message.role).toBe('assistant');
    const empty = await t.api.post(`${endpointPath}:predict`, { instances: [] }, { host });
    expect(empty.status).toBe(400);
    const unknownField = await t.api.post(
      `${endpointPath}:predict`,
      { instances: [{ prompt: 'x' }], instance: 1 },
      { host },
    );
    expect(unknownField.status).toBe(400);
    expect(unknownField.json.error.message).toContain('Unknown name "instance"');
  });

  it(':rawPredict returns the container body as-is', async () => {
    const raw = await t.api.post(`${endpointPath}:rawPredict`, chat, { host });
    expect(raw.status).toBe(200);
    expect(raw.headers['x-vertex-ai-deployed-model-id']).toBe(deployedModelId);
    expect(raw.json.object).toBe('chat.completion');
    const rawInstances = await t.api.post(
      `${endpointPath}:rawPredict`,
      { instances: [{ prompt: 'a' }] },
      { host },
    );
    expect(rawInstances.json.predictions).toHaveLength(1);
    expect(rawInstances.json.deployedModelId).toBeUndefined();
  });

  it(':streamRawPredict streams completion chunks ending [DONE] for the documented instances body', async () => {
    // The body of the Model Garden "Raw Predict" example, sampling fields included.
    const documented = {
      instances: [
        {
          prompt: 'How to tell the time by looking at the sky?',
          temperature: 0,
          top_p: 1,
          max_tokens: 4,
          ignore_eos: true,
          stream: true,
        },
      ],
    };
    const stream = await t.api.post(`${endpointPath}:streamRawPredict`, documented, { host });
    expect(stream.status, stream.text).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(stream.headers['x-vertex-ai-deployed-model-id']).toBe(deployedModelId);
    const events = parseSse(stream.text);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.every((c) => c.object === 'text_completion' && c.id === chunks[0].id)).toBe(true);
    const text = chunks.map((c) => c.choices[0].text).join('');
    expect(text.split(' ')).toHaveLength(4);
    expect(chunks.at(-1).choices[0].finish_reason).toBe('length');
    // Same prompt and limit as :predict with raw_response: the same words.
    const unary = await t.api.post(
      `${endpointPath}:predict`,
      { instances: [{ prompt: documented.instances[0]!.prompt, max_tokens: 4, raw_response: true }] },
      { host },
    );
    expect(text).toBe(unary.json.predictions[0]);
  });

  it(':streamRawPredict rejects every other body with a 400 naming the expected shape', async () => {
    const prompt = 'Once upon a time';
    const wrong: Array<[string, unknown, string]> = [
      ['top-level prompt (the old smoke body)', { prompt, max_tokens: 4, stream: true }, 'instances'],
      ['a chat completion', { ...chat, stream: true }, 'instances'],
      ['no stream: true', { instances: [{ prompt }] }, 'instances.0.stream'],
      ['stream: false', { instances: [{ prompt, stream: false }] }, 'instances.0.stream'],
      [
        'two instances',
        {
          instances: [
            { prompt, stream: true },
            { prompt, stream: true },
          ],
        },
        'one instance',
      ],
      ['no instance', { instances: [] }, 'one instance'],
      ['a non-string prompt', { instances: [{ prompt: 42, stream: true }] }, 'instances.0.prompt'],
      ['an unknown field', { instances: [{ prompt, stream: true, messages: [] }] }, 'messages'],
      [
        'parameters beside instances',
        { instances: [{ prompt, stream: true }], parameters: {} },
        'parameters',
      ],
    ];
    for (const [what, body, named] of wrong) {
      const res = await t.api.post(`${endpointPath}:streamRawPredict`, body, { host });
      expect(res.status, what).toBe(400);
      expect(res.json, what).toMatchObject({ object: 'error', type: 'BadRequestError', code: 400 });
      expect(res.json.message, what).toContain('{"instances": [{"prompt": "…", "stream": true');
      expect(res.json.message, what).toContain(named);
    }
  });
});

describe('before and without replicas', () => {
  it('fails with 503 UNAVAILABLE until a replica is available, and 400 without a deployed model', async () => {
    const slow = uniqueProject('slow');
    await t.admin.setTiming(slow, { replicaRampMs: 600_000 });
    const start = await t.api.post(
      `/v1beta1/projects/${slow}/locations/us-central1:deploy`,
      deployBody(await uploadSampleModel(), { endpoint: 'cold', model: 'cold' }),
    );
    const op = await waitForOperation(t.api, start.json.name);
    const endpoint = (await t.api.get(`/v1beta1/${op.response.endpoint}`)).json;
    expect(endpoint.deployedModels[0].status.availableReplicaCount).toBeUndefined();
    const cold = await t.api.post(`/v1beta1/${endpoint.name}/chat/completions`, chat, {
      host: endpoint.dedicatedEndpointDns,
    });
    expect(cold.status).toBe(503);
    expect(cold.json.error.status).toBe('UNAVAILABLE');
    expect(cold.json.error.message).toContain('0 of 2 replicas are available');

    const undeploy = await t.api.post(`/v1beta1/${endpoint.name}:undeployModel`, {
      deployedModelId: endpoint.deployedModels[0].id,
    });
    await waitForOperation(t.api, undeploy.json.name);
    const none = await t.api.post(
      `/v1beta1/${endpoint.name}:predict`,
      { instances: [{ prompt: 'x' }] },
      { host: endpoint.dedicatedEndpointDns },
    );
    expect(none.status).toBe(400);
    expect(none.json.error.message).toContain('does not have any deployed model');
  });

  it('a model without a chat template serves :predict but its chat completions fail as in vLLM', async () => {
    const p = uniqueProject('notpl');
    const { endpoint } = await deployReady(
      t.api,
      p,
      await uploadSampleModel({ variant: 'no-chat-template' }),
      { endpoint: 'base', model: 'base' },
    );
    const res = await t.api.post(`/v1beta1/${endpoint.name}/chat/completions`, chat, {
      host: endpoint.dedicatedEndpointDns,
    });
    expect(res.status).toBe(400);
    expect(res.json.message).toContain('default chat template is no longer allowed');
    const predict = await t.api.post(
      `/v1beta1/${endpoint.name}:predict`,
      { instances: [{ prompt: 'x' }] },
      { host: endpoint.dedicatedEndpointDns },
    );
    expect(predict.status).toBe(200);
  });

  it('an endpoint with the dedicated domain disabled answers on the shared domain', async () => {
    const p = uniqueProject('shared');
    const gcsUri = await uploadSampleModel();
    const { endpoint } = await deployReady(
      t.api,
      p,
      gcsUri,
      { endpoint: 'shared', model: 'shared' },
      { endpoint_config: { endpoint_user_id: 'shared', dedicated_endpoint_disabled: true } },
    );
    expect(endpoint.dedicatedEndpointDns).toBeUndefined();
    const res = await t.api.post(`/v1beta1/${endpoint.name}/chat/completions`, chat);
    expect(res.status).toBe(200);
  });
});
