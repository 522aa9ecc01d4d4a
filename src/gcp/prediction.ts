import net from 'node:net';
import { z } from 'zod';
import { DEFAULT_DEDICATED_DNS_SUFFIX, type GcpClientConfig } from './config';
import { GcpApiError, errorFromStream, errorFromUnexpectedBody } from './errors';
import {
  type CallOptions,
  type HttpCall,
  type HttpTransport,
  describe,
  jsonBody,
  parseJsonBody,
} from './http';
import { InvalidRequestError, parseInput } from './input';
import { bareHost, parseVertexName } from './names';
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  ChatCompletionChunkSchema,
  ChatCompletionSchema,
  type Endpoint,
  type PredictResponse,
  PredictResponseSchema,
} from './schemas';
import { type ServerSentEvent, SseFormatError, parseServerSentEvents } from './sse';

const SERVICE = 'aiplatform.googleapis.com';

/** Where inference for one endpoint is sent. */
export interface PredictionTarget {
  /** `projects/P/locations/L/endpoints/E`. */
  endpoint: string;
  /** Bare host: the endpoint's `dedicatedEndpointDns`, or the PSC forwarding rule's IP or private DNS name. */
  host: string;
  /** Dedicated hosts are always verified; `psc` targets see `tlsServerName` and config `pscSkipTlsVerify`. */
  via: 'dedicated' | 'psc';
  /**
   * `psc` only: the DNS name the endpoint's certificate is issued for. The connection still goes to
   * `host`, but TLS (SNI, certificate check) and `Host:` use this name.
   */
  tlsServerName?: string;
}

/**
 * The dedicated-endpoint host of a (public) endpoint. The DNS name comes from an API answer, so it
 * must end in one of `suffixes` (config `dedicatedDnsSuffixes`) before any token goes to it.
 */
export function dedicatedTarget(
  endpoint: Pick<Endpoint, 'name' | 'dedicatedEndpointDns'>,
  suffixes: readonly string[] = [DEFAULT_DEDICATED_DNS_SUFFIX],
): PredictionTarget {
  parseVertexName('endpoint', endpoint.name);
  const host = endpoint.dedicatedEndpointDns ? bareHost(endpoint.dedicatedEndpointDns) : '';
  if (!isHostName(host)) {
    throw new InvalidRequestError(
      `endpoint ${endpoint.name} has no dedicated DNS name: it is private (use pscTarget with the forwarding ` +
        'rule address) or its dedicated endpoint is disabled',
    );
  }
  checkDedicatedHost(endpoint.name, host, suffixes);
  return { endpoint: endpoint.name, host, via: 'dedicated' };
}

/**
 * The PSC consumer address (forwarding rule IP or a private DNS name for it) of a private endpoint;
 * `tlsServerName` is the DNS name its certificate is verified against.
 */
export function pscTarget(
  endpointName: string,
  address: string,
  options: { tlsServerName?: string | undefined } = {},
): PredictionTarget {
  parseVertexName('endpoint', endpointName);
  const host = bareHost(address);
  if (!net.isIP(host) && !isHostName(host)) {
    throw new InvalidRequestError(`"${address}" is not an IP address or DNS name of a PSC endpoint`);
  }
  if (options.tlsServerName === undefined) return { endpoint: endpointName, host, via: 'psc' };
  checkTlsServerName(options.tlsServerName);
  return { endpoint: endpointName, host, via: 'psc', tlsServerName: options.tlsServerName };
}

function checkDedicatedHost(endpoint: string, host: string, suffixes: readonly string[]): void {
  const lower = host.toLowerCase();
  if (suffixes.some((suffix) => lower.endsWith(suffix.toLowerCase()))) return;
  throw new InvalidRequestError(
    `the dedicated endpoint host "${host}" of ${endpoint} does not end in ${suffixes.map((s) => `"${s}"`).join(' or ')}, ` +
      'so no credentials are sent to it; if Google serves your endpoints under another domain, add that suffix ' +
      'to the client config dedicatedDnsSuffixes',
  );
}

/** A DNS name (not an IP address): what a certificate can be verified against. */
export function isDnsName(value: string): boolean {
  return !net.isIP(value) && isHostName(value);
}

function checkTlsServerName(name: string): void {
  if (!isDnsName(name)) {
    throw new InvalidRequestError(
      `tlsServerName "${name}" is not a DNS name: give the name the PSC endpoint's certificate is issued for`,
    );
  }
}

function isHostName(value: string): boolean {
  return (
    value.length <= 253 &&
    /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(
      value,
    )
  );
}

/** OpenAI chat-completions request, passed through to the serving container; `stream` is set by the method. */
export const ChatCompletionRequestSchema = z.looseObject({
  model: z.string().max(256).optional(),
  messages: z
    .array(
      z.looseObject({
        role: z.string().min(1).max(64),
        content: z.union([z.string(), z.array(z.unknown()), z.null()]),
      }),
    )
    .min(1, 'give at least one message')
    .max(10_000),
  max_tokens: z.number().int().positive().optional(),
  stream: z.never({ error: 'leave stream unset: use chatCompletions or chatCompletionsStream' }).optional(),
});
export type ChatCompletionRequest = z.input<typeof ChatCompletionRequestSchema>;

export const PredictRequestSchema = z.strictObject({
  instances: z.array(z.unknown()).min(1, 'give at least one instance').max(10_000),
  parameters: z.unknown().optional(),
});
export type PredictRequest = z.input<typeof PredictRequestSchema>;

/** Body of rawPredict/streamRawPredict: JSON, or bytes with their content type. */
export type RawBody = { json: unknown } | { data: Buffer | string; contentType: string };

export interface RawPredictResponse {
  status: number;
  contentType?: string;
  body: Buffer;
  /** `X-Vertex-AI-Endpoint-Id` / `X-Vertex-AI-Deployed-Model-Id` response headers. */
  endpointId?: string;
  deployedModelId?: string;
}

/** Who answered an inference call: Vertex names the endpoint and deployed model in response headers. */
export interface ServedBy {
  endpointId?: string;
  deployedModelId?: string;
}

/** Inference call options: `servedBy` hears which deployed model took the call (traffic splits route). */
export type PredictionCallOptions = CallOptions & { servedBy?: (served: ServedBy) => void };

function servedByOf(headers: Record<string, string | string[] | undefined>): ServedBy {
  const header = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const endpointId = header('x-vertex-ai-endpoint-id');
  const deployedModelId = header('x-vertex-ai-deployed-model-id');
  return { ...(endpointId ? { endpointId } : {}), ...(deployedModelId ? { deployedModelId } : {}) };
}

/**
 * Inference on a deployed model (prediction_service.proto paths on the endpoint's own host). With
 * `predictionBaseUrl` configured the connection goes there and `Host:` names the target host.
 */
export class PredictionClient {
  constructor(
    private readonly transport: HttpTransport,
    private readonly config: GcpClientConfig,
  ) {}

  /** `POST /v1beta1/{endpoint}/chat/completions` with `stream: false`. */
  async chatCompletions(
    target: PredictionTarget,
    request: ChatCompletionRequest,
    options: PredictionCallOptions = {},
  ): Promise<ChatCompletion> {
    const body = {
      model: '',
      ...parseInput(ChatCompletionRequestSchema, request, 'chat completion request'),
      stream: false,
    };
    const call = this.httpCall(target, '/chat/completions', jsonBody(body), options);
    const res = await this.transport.send(call);
    options.servedBy?.(servedByOf(res.headers));
    return parseJsonBody(call, res.body, ChatCompletionSchema);
  }

  /**
   * `POST /v1beta1/{endpoint}/chat/completions` with `stream: true`: yields each parsed chunk, ends
   * at `data: [DONE]`, throws an in-band `error` object as GcpApiError, and treats a stream that ends
   * without `[DONE]` as a (retryable) failure. Breaking out of the loop closes the connection.
   */
  async *chatCompletionsStream(
    target: PredictionTarget,
    request: ChatCompletionRequest,
    options: PredictionCallOptions = {},
  ): AsyncGenerator<ChatCompletionChunk> {
    const body = {
      model: '',
      ...parseInput(ChatCompletionRequestSchema, request, 'chat completion request'),
      stream: true,
    };
    const call = this.httpCall(target, '/chat/completions', jsonBody(body), options, 'text/event-stream');
    const res = await this.transport.openStream(call);
    options.servedBy?.(servedByOf(res.headers));
    yield* chatCompletionChunks(parseServerSentEvents(res.body), describe(call));
  }

  /** `POST /v1beta1/{endpoint}:predict` with `{ instances, parameters }`. */
  async predict(
    target: PredictionTarget,
    request: PredictRequest,
    options: PredictionCallOptions = {},
  ): Promise<PredictResponse> {
    const body = parseInput(PredictRequestSchema, request, 'predict request');
    const call = this.httpCall(target, ':predict', jsonBody(body), options);
    const res = await this.transport.send(call);
    const response = parseJsonBody(call, res.body, PredictResponseSchema);
    const served = servedByOf(res.headers);
    options.servedBy?.({
      ...served,
      ...(response.deployedModelId ? { deployedModelId: response.deployedModelId } : {}),
    });
    return response;
  }

  /** `POST /v1beta1/{endpoint}:rawPredict` — the body goes to the container as-is; its answer comes back as-is. */
  async rawPredict(
    target: PredictionTarget,
    body: RawBody,
    options: CallOptions = {},
  ): Promise<RawPredictResponse> {
    const res = await this.transport.send(this.httpCall(target, ':rawPredict', rawBody(body), options));
    const contentType = res.headers['content-type'];
    return {
      status: res.status,
      body: res.body,
      ...(typeof contentType === 'string' ? { contentType } : {}),
      ...servedByOf(res.headers),
    };
  }

  /**
   * `POST /v1beta1/{endpoint}:streamRawPredict` — the container's response bytes as they arrive. For
   * an SSE body, feed them to `parseServerSentEvents` (and `chatCompletionChunks` for OpenAI chunks).
   */
  async *streamRawPredict(
    target: PredictionTarget,
    body: RawBody,
    options: PredictionCallOptions = {},
  ): AsyncGenerator<Buffer> {
    const res = await this.transport.openStream(
      this.httpCall(target, ':streamRawPredict', rawBody(body), options, '*/*'),
    );
    options.servedBy?.(servedByOf(res.headers));
    yield* res.body;
  }

  private httpCall(
    target: PredictionTarget,
    suffix: string,
    body: { data: Buffer; contentType: string },
    options: CallOptions,
    accept?: string,
  ): HttpCall {
    const endpoint = parseVertexName('endpoint', target.endpoint).name;
    const route = this.route(target);
    const call: HttpCall = {
      method: 'POST',
      url: new URL(`https://${route.host}/v1beta1/${endpoint}${suffix}`),
      body,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.config.predictionTimeoutMs,
      maxResponseBytes: accept ? this.config.maxStreamBytes : this.config.maxResponseBytes,
      skipTlsVerify: route.skipTlsVerify,
      service: SERVICE,
    };
    if (accept) call.accept = accept;
    if (route.connectTo) call.connectTo = route.connectTo;
    return call;
  }

  /**
   * Which name the call uses (`Host:`, TLS SNI and verification) and where it connects. Refuses a
   * PSC call whose certificate nothing could verify: a bearer token never crosses an unverified
   * TLS connection unless the operator opted out (`pscSkipTlsVerify`) or chose the host itself
   * (`predictionBaseUrl`, e.g. the local emulator).
   */
  private route(target: PredictionTarget): { host: string; connectTo?: URL; skipTlsVerify: boolean } {
    const base = this.config.predictionBaseUrl ? new URL(this.config.predictionBaseUrl) : undefined;
    const address = net.isIPv6(target.host) ? `[${target.host}]` : target.host;
    if (target.via === 'dedicated') {
      // Again here: a hand-built target must not bypass the check dedicatedTarget makes.
      checkDedicatedHost(target.endpoint, target.host, this.config.dedicatedDnsSuffixes);
      return { host: address, ...(base ? { connectTo: base } : {}), skipTlsVerify: false };
    }
    const name = target.tlsServerName;
    if (name !== undefined) {
      checkTlsServerName(name);
      // Without TLS (an http:// base URL) there is nothing to verify: keep the address the emulator routes by.
      if (base && base.protocol !== 'https:') return { host: address, connectTo: base, skipTlsVerify: false };
      return { host: name, connectTo: base ?? new URL(`https://${address}`), skipTlsVerify: false };
    }
    const verifiable = !net.isIP(target.host); // a private DNS name is verified against itself
    if (!base && !verifiable && !this.config.pscSkipTlsVerify) {
      throw new InvalidRequestError(
        `refusing to call the PSC address ${target.host} of ${target.endpoint}: a certificate cannot be verified ` +
          'for a bare IP and the access token is never sent over an unverified TLS connection. Give ' +
          'access.tlsServerName in the deployment spec (the DNS name whose certificate the endpoint presents), ' +
          'or opt out explicitly with GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY=true (client config pscSkipTlsVerify)',
      );
    }
    return {
      host: address,
      ...(base ? { connectTo: base } : {}),
      skipTlsVerify: this.config.pscSkipTlsVerify,
    };
  }
}

function rawBody(body: RawBody): { data: Buffer; contentType: string } {
  if ('json' in body) return jsonBody(body.json);
  return {
    data: Buffer.isBuffer(body.data) ? body.data : Buffer.from(body.data),
    contentType: body.contentType,
  };
}

/**
 * OpenAI chat chunks from SSE events: stops at `data: [DONE]`, throws in-band `error` objects, and
 * fails a stream that ends before `[DONE]`.
 */
export async function* chatCompletionChunks(
  events: AsyncIterable<ServerSentEvent>,
  call: string,
): AsyncGenerator<ChatCompletionChunk> {
  try {
    for await (const event of events) {
      const data = event.data.trim();
      if (data === '[DONE]') return;
      let json: unknown;
      try {
        json = JSON.parse(data);
      } catch {
        throw errorFromUnexpectedBody(call, `stream event is not JSON: ${data.slice(0, 200)}`);
      }
      const inBand = inBandError(json);
      if (inBand !== undefined) throw errorFromStream(call, inBand);
      const chunk = ChatCompletionChunkSchema.safeParse(json);
      if (!chunk.success) {
        throw errorFromUnexpectedBody(
          call,
          `stream event is not a chat.completion.chunk: ${chunk.error.issues[0]?.message}`,
        );
      }
      yield chunk.data;
    }
  } catch (err) {
    if (err instanceof SseFormatError) throw errorFromUnexpectedBody(call, err.message);
    throw err;
  }
  throw new GcpApiError({
    source: 'stream',
    call,
    status: 'UNAVAILABLE',
    googleMessage: 'the stream ended before data: [DONE]',
    classification: 'retryable',
    hint: 'The connection was cut mid-answer: retry the request.',
  });
}

function inBandError(json: unknown): unknown {
  const candidate = Array.isArray(json) ? json[0] : json;
  if (typeof candidate === 'object' && candidate !== null && 'error' in candidate) {
    return (candidate as { error: unknown }).error;
  }
  return undefined;
}
