import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, expect } from 'vitest';
import {
  EmulatorAdminClient,
  type EmulatorOptions,
  type RunningEmulator,
  checkProtoJson,
  parseProtoJson,
  roundTripProtoJson,
  startEmulator,
} from '../../src/emulator';
import { type SampleModelOptions, generateSampleModel } from '../../src/sample-model';
import { closeTestEnv, createTestBucket, getTestEnv } from '../harness/env';
import { eventually } from '../harness/eventually';

/** Timings small enough for a fast suite; each test still observes every intermediate state it asserts. */
export const FAST_TIMING = {
  deployMs: 200,
  importMs: 40,
  replicaRampMs: 200,
  undeployMs: 40,
  mutateMs: 40,
  deployModelMs: 100,
  deleteMs: 40,
  computeOperationMs: 40,
  pscAcceptMs: 60,
  restartMs: 100,
};

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
  json: any;
}

/** HTTP over node:http so tests can set `Host:` like the real client does for prediction hosts. */
export class Api {
  constructor(
    readonly baseUrl: string,
    public token?: string,
  ) {}

  async request(
    method: string,
    path: string,
    options: {
      body?: unknown;
      rawBody?: string;
      host?: string;
      headers?: Record<string, string>;
      auth?: boolean;
    } = {},
  ): Promise<ApiResponse> {
    const url = new URL(path, this.baseUrl);
    const payload =
      options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const headers: Record<string, string> = { ...options.headers };
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    if (this.token && options.auth !== false) headers.authorization = `Bearer ${this.token}`;
    if (options.host) headers.host = options.host;
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  get(path: string, options?: Parameters<Api['request']>[2]): Promise<ApiResponse> {
    return this.request('GET', path, options);
  }

  post(path: string, body?: unknown, options?: Parameters<Api['request']>[2]): Promise<ApiResponse> {
    return this.request('POST', path, { ...options, body });
  }

  delete(path: string, options?: Parameters<Api['request']>[2]): Promise<ApiResponse> {
    return this.request('DELETE', path, options);
  }
}

export interface TestEmulator {
  emulator: RunningEmulator;
  admin: EmulatorAdminClient;
  api: Api;
}

/** An emulator of this test file's own (free port, fast timings), reading GCS from the harness's fake-gcs-server. */
export async function startTestEmulator(options: EmulatorOptions = {}): Promise<TestEmulator> {
  const { gcsEndpoint } = await getTestEnv();
  const emulator = await startEmulator({
    port: 0,
    gcsEndpoint,
    ...options,
    timing: { ...FAST_TIMING, ...options.timing },
  });
  const admin = new EmulatorAdminClient(emulator.url);
  return { emulator, admin, api: new Api(emulator.url, await admin.issueToken()) };
}

export interface UseTestEmulatorOptions {
  emulator?: EmulatorOptions;
  /** Uploads one sample model (this variant) next to starting the emulator: `model` is its URI. */
  model?: Omit<SampleModelOptions, 'location'>;
}

/**
 * The test file's emulator (and sample model, when asked for): started before its tests, closed
 * with the harness after them. The object is filled in once `beforeAll` has run.
 */
export function useTestEmulator(
  options: UseTestEmulatorOptions & { model: Omit<SampleModelOptions, 'location'> },
): TestEmulator & { model: string };
export function useTestEmulator(options?: UseTestEmulatorOptions): TestEmulator;
export function useTestEmulator(options: UseTestEmulatorOptions = {}): TestEmulator & { model?: string } {
  const used = {} as TestEmulator & { model?: string };
  beforeAll(async () => {
    const [started, model] = await Promise.all([
      startTestEmulator(options.emulator),
      options.model ? uploadSampleModel(options.model) : undefined,
    ]);
    Object.assign(used, started, model === undefined ? {} : { model });
  });
  afterAll(async () => {
    await used.emulator?.close();
    await closeTestEnv();
  });
  return used;
}

/** A valid, unique project id. */
export function uniqueProject(label = 'proj'): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

/** `eventually` at the emulator's pace: its states change within tens of milliseconds. */
export function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  return eventually(what, probe, { timeoutMs, intervalMs: 20 });
}

/** Polls a Vertex operation until `done`. */
export async function waitForOperation(api: Api, name: string): Promise<ApiResponse['json']> {
  return pollUntil(`operation ${name}`, async () => {
    const res = await api.get(`/v1beta1/${name}`);
    expect(res.status).toBe(200);
    return res.json.done ? res.json : undefined;
  });
}

/** Writes a sample model (variant) into a fresh bucket and returns the model folder's gs:// URI. */
export async function uploadSampleModel(options: Omit<SampleModelOptions, 'location'> = {}): Promise<string> {
  const { storage } = await getTestEnv();
  const bucket = await createTestBucket(storage, 'emu');
  const result = await generateSampleModel({ location: `gs://${bucket}/model/`, ...options }, { storage });
  return result.uri;
}

/** A `:deploy` body as Google's samples write it (snake_case), checked against the official types. */
export function deployBody(
  gcsUri: string,
  ids: { endpoint?: string; model?: string } = {},
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const body = {
    custom_model: { gcs_uri: gcsUri },
    model_config: { ...(ids.model ? { model_user_id: ids.model } : {}), model_display_name: 'tiny-llama' },
    endpoint_config: {
      ...(ids.endpoint ? { endpoint_user_id: ids.endpoint } : {}),
      endpoint_display_name: 'tiny-llama-endpoint',
    },
    deploy_config: {
      dedicated_resources: {
        machine_spec: { machine_type: 'g2-standard-12', accelerator_type: 'NVIDIA_L4', accelerator_count: 1 },
        min_replica_count: 2,
        max_replica_count: 2,
      },
    },
    ...extra,
  };
  expectProtoRoundTrip('google.cloud.aiplatform.v1beta1.DeployRequest', body);
  return body;
}

/**
 * Proves a body only uses fields the official proto types carry: its canonical proto3 JSON
 * survives encoding to the binary message and back unchanged.
 */
export function expectProtoRoundTrip(typeName: string, body: unknown): void {
  expect(roundTripProtoJson(typeName, body)).toEqual(parseProtoJson(typeName, body));
}

/** Splits a server-sent-events body into its `data:` payloads, checking the framing. */
export function parseSse(text: string): string[] {
  const events = text.split('\n\n').filter((e) => e !== '');
  return events.map((event) => {
    expect(event.startsWith('data: ')).toBe(true);
    return event.slice('data: '.length);
  });
}

/** Deploys and waits until every requested replica is available; returns the endpoint name and DNS. */
export async function deployReady(
  api: Api,
  project: string,
  gcsUri: string,
  ids: { endpoint: string; model: string },
  extra: Record<string, unknown> = {},
): Promise<{ endpoint: ApiResponse['json']; operation: ApiResponse['json'] }> {
  const start = await api.post(
    `/v1beta1/projects/${project}/locations/us-central1:deploy`,
    deployBody(gcsUri, ids, extra),
  );
  expect(start.status, start.text).toBe(200);
  const operation = await waitForOperation(api, start.json.name);
  expect(operation.error, JSON.stringify(operation.error)).toBeUndefined();
  const endpoint = await pollUntil('replicas', async () => {
    const res = await api.get(`/v1beta1/${operation.response.endpoint}`);
    const model = res.json.deployedModels?.[0];
    return model?.status?.availableReplicaCount === model?.dedicatedResources?.minReplicaCount
      ? res.json
      : undefined;
  });
  return { endpoint, operation };
}

export const V1BETA1 = 'google.cloud.aiplatform.v1beta1';
export const L4_MACHINE = {
  machineType: 'g2-standard-12',
  acceleratorType: 'NVIDIA_L4',
  acceleratorCount: 1,
};

/** Asserts `json` is valid proto3 JSON of `typeName` (what a Google client would parse). */
export function expectValidProto(typeName: string, json: unknown): void {
  const check = checkProtoJson(typeName, json);
  expect(check.ok ? [] : check.violations).toEqual([]);
}

/** An endpoint serving revision `tiny-r1`, and Model `tiny-r2` (deployed on an endpoint of its own) ready to join it. */
export interface TwoRevisions {
  endpoint: string;
  /** The endpoint's dedicated DNS name (the inference Host). */
  host: string;
  /** Deployed model id of tiny-r1 on the endpoint. */
  r1: string;
  /** Full name of Model tiny-r2. */
  r2Model: string;
}

export async function twoRevisions(api: Api, project: string, gcsUri: string): Promise<TwoRevisions> {
  const [first, second] = await Promise.all([
    deployReady(api, project, gcsUri, { endpoint: 'canary', model: 'tiny-r1' }),
    deployReady(api, project, gcsUri, { endpoint: 'r2-home', model: 'tiny-r2' }),
  ]);
  return {
    endpoint: first.endpoint.name,
    host: first.endpoint.dedicatedEndpointDns,
    r1: first.endpoint.deployedModels[0].id,
    r2Model: second.operation.response.model,
  };
}

/** `:deployModel` of `model` with `split`; waits for the operation and the new model's replicas; returns its id. */
export async function deployRevision(
  api: Api,
  endpoint: string,
  model: string,
  split: Record<string, number>,
  deployedModel: Record<string, unknown> = {},
): Promise<string> {
  const body = {
    deployedModel: {
      model,
      dedicatedResources: { machineSpec: L4_MACHINE, minReplicaCount: 1, maxReplicaCount: 1 },
      ...deployedModel,
    },
    trafficSplit: split,
  };
  const start = await api.post(`/v1beta1/${endpoint}:deployModel`, body);
  expect(start.status, start.text).toBe(200);
  const op = await waitForOperation(api, start.json.name);
  expect(op.error, JSON.stringify(op.error)).toBeUndefined();
  const id: string = op.response.deployedModel.id;
  await waitForReplica(api, endpoint, id);
  return id;
}

/** Waits until deployed model `id` of `endpoint` has a replica available. */
export async function waitForReplica(api: Api, endpoint: string, id: string): Promise<void> {
  await pollUntil(`a replica of deployed model ${id}`, async () => {
    const res = await api.get(`/v1beta1/${endpoint}`);
    const deployed = res.json.deployedModels.find((m: { id: string }) => m.id === id);
    return deployed?.status?.availableReplicaCount >= 1 ? true : undefined;
  });
}

/** Sends `count` chat completions one after another; returns who answered each (the x-vertex-ai-model header). */
export async function chatSequence(
  api: Api,
  endpoint: string,
  host: string,
  count: number,
): Promise<string[]> {
  const served: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await api.post(
      `/v1beta1/${endpoint}/chat/completions`,
      { messages: [{ role: 'user', content: `request ${i}` }], max_tokens: 4 },
      { host },
    );
    expect(res.status, res.text).toBe(200);
    served.push(String(res.headers['x-vertex-ai-model']));
  }
  return served;
}
