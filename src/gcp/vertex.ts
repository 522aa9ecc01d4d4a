import { z } from 'zod';
import { parseGcsUri } from '../storage/uri';
import { type GcpClientConfig, vertexBaseUrlFor } from './config';
import { type GcpApiError, errorFromOperation, errorFromUnexpectedBody } from './errors';
import { type CallOptions, type HttpMethod, type HttpTransport, sendJsonCall } from './http';
import { parseInput } from './input';
import { type Labels, LabelsSchema } from './labels';
import {
  ContainerInputSchema,
  MachineInputSchema,
  ScalingInputShape,
  compact,
  containerSpecJson,
  dedicatedResourcesJson,
  seconds,
  MAX_AT_LEAST_MIN,
  ReplicaCount,
} from './serving-resources';
import {
  ENDPOINT_USER_ID_RE,
  LOCATION_RE,
  type LocationRef,
  MODEL_USER_ID_RE,
  PROJECT_RE,
  locationName,
  parseVertexName,
} from './names';
import {
  type DeployResponse,
  DeployResponseSchema,
  type DeployedModel,
  type Endpoint,
  EndpointSchema,
  ListEndpointsResponseSchema,
  ListModelsResponseSchema,
  type Model,
  ModelSchema,
  MutateDeployedModelResponseSchema,
  OperationSchema,
} from './schemas';

/** DeployModelResponse (endpoint_service.proto): the deployed model as created. */
const DeployModelResponseSchema = MutateDeployedModelResponseSchema;

const SERVICE = 'aiplatform.googleapis.com';

const DisplayName = z.string().min(1).max(128);

/** What `:deploy` needs for custom weights; validated before anything is sent. */
export const DeployInputSchema = z
  .strictObject({
    project: z.string().regex(PROJECT_RE, 'must be a project ID or number'),
    location: z.string().regex(LOCATION_RE, 'must be a region such as us-central1'),
    /** `gs://bucket/path` of the Hugging Face–format model folder. */
    gcsUri: z.string().refine(
      (uri) => {
        try {
          return parseGcsUri(uri).prefix !== '';
        } catch {
          return false;
        }
      },
      { error: 'must be gs://BUCKET/PATH/TO/MODEL (a folder inside a bucket)' },
    ),
    /** ID of the created Model; fixing it makes a retried deploy detectable. */
    modelUserId: z
      .string()
      .regex(MODEL_USER_ID_RE, '≤63 of [a-z0-9_-], not starting with a digit or hyphen')
      .optional(),
    modelDisplayName: DisplayName.optional(),
    /** ID of the created Endpoint; fixing it makes a retried deploy fail fast instead of duplicating. */
    endpointUserId: z
      .string()
      .regex(ENDPOINT_USER_ID_RE, 'a letter then ≤62 of [a-z0-9-] ending in a letter or digit, or ≤9 digits')
      .optional(),
    endpointDisplayName: DisplayName.optional(),
    /** Machine shape; the accelerator type and count go together. */
    machine: MachineInputSchema.optional(),
    ...ScalingInputShape,
    minReplicaCount: ScalingInputShape.minReplicaCount.default(1),
    /** Overrides of the serving container (ModelContainerSpec). */
    container: ContainerInputSchema.optional(),
    /** Serve on the shared regional domain instead of a dedicated endpoint. */
    dedicatedEndpointDisabled: z.boolean().optional(),
    fastTryoutEnabled: z.boolean().optional(),
    /** Private endpoint reachable only through Private Service Connect from these projects. */
    privateServiceConnect: z
      .strictObject({
        projectAllowlist: z
          .array(z.string().regex(PROJECT_RE, 'must be a project ID or number'))
          .min(1, 'list at least one consumer project')
          .max(100),
      })
      .optional(),
  })
  .refine(...MAX_AT_LEAST_MIN);

export type DeployInput = z.input<typeof DeployInputSchema>;

/**
 * The v1beta1 `DeployRequest` JSON body (camelCase) for custom weights. `destination` is in the
 * URL. The request has no user-label field in v1beta1 (only Google-managed `systemLabels`), so
 * labels are set on the created endpoint and model afterwards (`setEndpointLabels`/`setModelLabels`).
 */
export function buildDeployRequest(input: DeployInput): Record<string, unknown> {
  const i = parseInput(DeployInputSchema, input, 'deploy request');
  const modelConfig = compact({
    modelUserId: i.modelUserId,
    modelDisplayName: i.modelDisplayName,
    containerSpec: i.container && containerSpecJson(i.container),
  });
  const endpointConfig = compact({
    endpointUserId: i.endpointUserId,
    endpointDisplayName: i.endpointDisplayName,
    dedicatedEndpointDisabled: i.dedicatedEndpointDisabled || undefined,
    privateServiceConnectConfig: i.privateServiceConnect && {
      enablePrivateServiceConnect: true,
      projectAllowlist: i.privateServiceConnect.projectAllowlist,
    },
  });
  return compact({
    customModel: { gcsUri: i.gcsUri },
    modelConfig: Object.keys(modelConfig).length ? modelConfig : undefined,
    endpointConfig: Object.keys(endpointConfig).length ? endpointConfig : undefined,
    deployConfig: compact({
      dedicatedResources: dedicatedResourcesJson(i.machine, i),
      fastTryoutEnabled: i.fastTryoutEnabled || undefined,
    }),
  });
}

/** A google.longrunning.Operation; `error` is already mapped (and not thrown). */
export interface Operation {
  name: string;
  done: boolean;
  metadata?: Record<string, unknown>;
  response?: Record<string, unknown>;
  error?: GcpApiError;
}

/** The `response` of a finished, successful operation as `schema`; throws its error if it failed. */
function readResponse<S extends z.ZodType>(op: Operation, schema: S, expected: string): z.output<S> {
  if (!op.done) throw new Error(`operation ${op.name} is still running; wait until done`);
  if (op.error) throw op.error;
  const parsed = schema.safeParse(op.response ?? {});
  if (!parsed.success) throw errorFromUnexpectedBody(`operation ${op.name}`, `done without ${expected}`);
  return parsed.data;
}

/** The `DeployResponse` of a finished, successful deploy operation; throws its error if it failed. */
export function readDeployResponse(op: Operation): DeployResponse {
  return readResponse(op, DeployResponseSchema, 'DeployResponse.endpoint');
}

/** The deployed model of a finished, successful deployModel operation; throws its error if it failed. */
export function readDeployModelResponse(op: Operation): DeployedModel {
  return readResponse(op, DeployModelResponseSchema, 'DeployModelResponse.deployedModel').deployedModel;
}

/** The deployed model of a finished, successful mutate operation; throws its error if it failed. */
export function readMutateDeployedModelResponse(op: Operation): DeployedModel {
  return readResponse(op, MutateDeployedModelResponseSchema, 'MutateDeployedModelResponse.deployedModel')
    .deployedModel;
}

export interface ListInput extends LocationRef {
  /** AIP-160 filter, e.g. `labels.owner="garden-deploy"` (see `labelsFilter`). */
  filter?: string;
  pageSize?: number;
  pageToken?: string;
}

const ListInputSchema = z.strictObject({
  project: z.string().regex(PROJECT_RE, 'must be a project ID or number'),
  location: z.string().regex(LOCATION_RE, 'must be a region such as us-central1'),
  filter: z.string().min(1).max(2000).optional(),
  pageSize: z.number().int().min(1).max(1000).optional(),
  pageToken: z.string().min(1).max(4096).optional(),
});

/** `Endpoint.traffic_split`: percent per deployed model id, summing to 100 (or empty: no traffic). */
const TrafficSplitSchema = z
  .record(z.string().min(1).max(128), z.number().int().min(0).max(100))
  .refine((split) => {
    const values = Object.values(split);
    return values.length === 0 || values.reduce((a, b) => a + b, 0) === 100;
  }, 'the percentages of a traffic split add up to 100 (or the split is empty: no traffic)');

const UndeployInputSchema = z.strictObject({
  endpoint: z.string(),
  deployedModelId: z.string().min(1).max(128),
  trafficSplit: TrafficSplitSchema.optional(),
});

/** `endpoints.deployModel`: one more deployed model on an existing endpoint (lifecycle-apis.md §1.1). */
const DeployModelInputSchema = z
  .strictObject({
    endpoint: z.string(),
    /**
     * The deployed model's id (1–10 digits): fixing it makes a retried call detectable (ALREADY_EXISTS,
     * or the model already on the endpoint) instead of deploying twice.
     */
    deployedModelId: z
      .string()
      .regex(/^[1-9]\d{0,9}$/, 'a deployed model id is 1-10 digits')
      .optional(),
    /** `projects/P/locations/L/models/M` (optionally `@version`). */
    model: z.string().min(1).max(1000),
    displayName: DisplayName.optional(),
    machine: MachineInputSchema,
    ...ScalingInputShape,
    enableContainerLogging: z.boolean().optional(),
    enableAccessLogging: z.boolean().optional(),
    /** The endpoint's new split; "0" names the model being deployed. Empty/absent: split unchanged. */
    trafficSplit: TrafficSplitSchema.optional(),
  })
  .refine(...MAX_AT_LEAST_MIN);

export type DeployModelInput = z.input<typeof DeployModelInputSchema>;

const MutateInputSchema = z
  .strictObject({
    endpoint: z.string(),
    deployedModelId: z.string().min(1).max(128),
    minReplicaCount: ReplicaCount.optional(),
    maxReplicaCount: ReplicaCount.optional(),
    autoscalingMetricSpecs: ScalingInputShape.autoscalingMetricSpecs,
    enableContainerLogging: z.boolean().optional(),
  })
  .refine(
    (i) =>
      i.minReplicaCount !== undefined ||
      i.maxReplicaCount !== undefined ||
      i.autoscalingMetricSpecs !== undefined ||
      i.enableContainerLogging !== undefined,
    { error: 'give what to change: replica counts, autoscalingMetricSpecs or enableContainerLogging' },
  )
  .refine(
    (i) =>
      i.minReplicaCount === undefined ||
      i.maxReplicaCount === undefined ||
      i.maxReplicaCount >= i.minReplicaCount,
    { error: 'maxReplicaCount must be ≥ minReplicaCount', path: ['maxReplicaCount'] },
  );

export type MutateDeployedModelInput = z.input<typeof MutateInputSchema>;

/** Longest `:wait` asked for; Google bounds the hold by its own deadline anyway. */
const WaitTimeoutSchema = z.number().int().min(0).max(3_600_000);
/** Room for the answer to travel after the server's hold ends. */
const WAIT_TRANSPORT_MARGIN_MS = 10_000;

/** Vertex AI v1beta1 management calls, each sent to the regional host of the resource it names. */
export class VertexClient {
  constructor(
    private readonly transport: HttpTransport,
    private readonly config: GcpClientConfig,
  ) {}

  /** `POST v1beta1/projects/P/locations/L:deploy` — starts a deploy; returns its operation. */
  async deploy(input: DeployInput, options: CallOptions = {}): Promise<Operation> {
    const body = buildDeployRequest(input);
    const ref = { project: input.project, location: input.location };
    const raw = await this.call(
      'POST',
      ref.location,
      `${locationName(ref)}:deploy`,
      { body, options },
      OperationSchema,
    );
    return toOperation(raw);
  }

  /** `GET v1beta1/{operation name}` — `done` false while running; `error` set when it failed. */
  async getOperation(name: string, options: CallOptions = {}): Promise<Operation> {
    const parsed = parseVertexName('operation', name);
    return toOperation(await this.call('GET', parsed.location, name, { options }, OperationSchema));
  }

  /**
   * `POST v1beta1/{operation name}:wait {timeout}` — returns the operation once it is done or
   * `timeoutMs` has passed (then still running: check `done`). The HTTP timeout is stretched to
   * outlast the hold unless `options.timeoutMs` says otherwise.
   */
  async waitOperation(name: string, timeoutMs: number, options: CallOptions = {}): Promise<Operation> {
    const parsed = parseVertexName('operation', name);
    const hold = parseInput(WaitTimeoutSchema, timeoutMs, 'wait timeout (ms)');
    const body = { timeout: `${hold / 1000}s` };
    const callOptions = {
      ...options,
      timeoutMs: options.timeoutMs ?? Math.max(this.config.requestTimeoutMs, hold + WAIT_TRANSPORT_MARGIN_MS),
    };
    return toOperation(
      await this.call(
        'POST',
        parsed.location,
        `${name}:wait`,
        { body, options: callOptions },
        OperationSchema,
      ),
    );
  }

  /** `POST v1beta1/{operation name}:cancel` — best effort; poll the operation to see the outcome. */
  async cancelOperation(name: string, options: CallOptions = {}): Promise<void> {
    const parsed = parseVertexName('operation', name);
    await this.call('POST', parsed.location, `${name}:cancel`, { options }, z.unknown());
  }

  async getEndpoint(name: string, options: CallOptions = {}): Promise<Endpoint> {
    const parsed = parseVertexName('endpoint', name);
    return this.call('GET', parsed.location, name, { options }, EndpointSchema);
  }

  /** One page of endpoints; pass `nextPageToken` back as `pageToken` for the next. */
  async listEndpoints(
    input: ListInput,
    options: CallOptions = {},
  ): Promise<{ endpoints: Endpoint[]; nextPageToken?: string }> {
    const page = await this.listPage(input, 'endpoints', ListEndpointsResponseSchema, options);
    return {
      endpoints: page.endpoints,
      ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    };
  }

  /**
   * `POST v1beta1/{endpoint}:undeployModel`. Pass the endpoint's `deployedModels[].id` (not the
   * traffic-split keys, which may miss a model).
   */
  async undeployModel(
    input: { endpoint: string; deployedModelId: string; trafficSplit?: Record<string, number> },
    options: CallOptions = {},
  ): Promise<Operation> {
    const i = parseInput(UndeployInputSchema, input, 'undeploy request');
    const parsed = parseVertexName('endpoint', i.endpoint);
    const body = {
      deployedModelId: i.deployedModelId,
      ...(i.trafficSplit ? { trafficSplit: i.trafficSplit } : {}),
    };
    return toOperation(
      await this.call(
        'POST',
        parsed.location,
        `${i.endpoint}:undeployModel`,
        { body, options },
        OperationSchema,
      ),
    );
  }

  /**
   * `POST v1beta1/{endpoint}:mutateDeployedModel` — changes the replica bounds of a deployed model
   * in place; returns its operation (response `MutateDeployedModelResponse`). Only the counts given
   * are sent in the update mask: raising minReplicaCount above the current maximum needs
   * maxReplicaCount too (INVALID_ARGUMENT otherwise).
   */
  async mutateDeployedModel(input: MutateDeployedModelInput, options: CallOptions = {}): Promise<Operation> {
    const i = parseInput(MutateInputSchema, input, 'mutate deployed model request');
    const parsed = parseVertexName('endpoint', i.endpoint);
    const dedicatedResources = compact({
      minReplicaCount: i.minReplicaCount,
      maxReplicaCount: i.maxReplicaCount,
      autoscalingMetricSpecs: i.autoscalingMetricSpecs,
    });
    // FieldMask JSON: comma-separated lowerCamelCase paths relative to the DeployedModel.
    const updateMask = [
      ...Object.keys(dedicatedResources).map((field) => `dedicatedResources.${field}`),
      ...(i.enableContainerLogging !== undefined ? ['enableContainerLogging'] : []),
    ].join(',');
    const body = {
      deployedModel: compact({
        id: i.deployedModelId,
        ...(Object.keys(dedicatedResources).length ? { dedicatedResources } : {}),
        enableContainerLogging: i.enableContainerLogging,
      }),
      updateMask,
    };
    return toOperation(
      await this.call(
        'POST',
        parsed.location,
        `${i.endpoint}:mutateDeployedModel`,
        { body, options },
        OperationSchema,
      ),
    );
  }

  /**
   * `POST v1beta1/{endpoint}:deployModel` — deploys an existing Model on the endpoint next to the
   * models there; returns its operation (response `DeployModelResponse`). With `trafficSplit` the
   * endpoint's split is replaced when the model is deployed ("0" names it), else left as it is.
   */
  async deployModel(input: DeployModelInput, options: CallOptions = {}): Promise<Operation> {
    const i = parseInput(DeployModelInputSchema, input, 'deploy model request');
    const parsed = parseVertexName('endpoint', i.endpoint);
    const deployedModel = compact({
      id: i.deployedModelId,
      model: i.model,
      displayName: i.displayName,
      dedicatedResources: dedicatedResourcesJson(i.machine, i),
      enableContainerLogging: i.enableContainerLogging,
      enableAccessLogging: i.enableAccessLogging,
    });
    const body = {
      deployedModel,
      ...(i.trafficSplit && Object.keys(i.trafficSplit).length ? { trafficSplit: i.trafficSplit } : {}),
    };
    return toOperation(
      await this.call(
        'POST',
        parsed.location,
        `${i.endpoint}:deployModel`,
        { body, options },
        OperationSchema,
      ),
    );
  }

  /**
   * `PATCH v1beta1/{endpoint}?updateMask=trafficSplit` — replaces the endpoint's traffic split (not
   * an LRO: the answer is the endpoint as changed). With `etag`, only if nobody changed the
   * endpoint since it was read (ABORTED otherwise).
   */
  async setTrafficSplit(
    name: string,
    trafficSplit: Record<string, number>,
    options: CallOptions & { etag?: string } = {},
  ): Promise<Endpoint> {
    const split = parseInput(TrafficSplitSchema, trafficSplit, 'traffic split');
    return this.patch('endpoint', name, 'trafficSplit', { trafficSplit: split }, options, EndpointSchema);
  }

  /**
   * `POST v1beta1/{endpoint}:update` (UpdateEndpointLongRunning) — the one way to change
   * `clientConnectionConfig`, here the inference timeout; returns its operation (response: Endpoint).
   */
  async setInferenceTimeout(name: string, timeoutMs: number, options: CallOptions = {}): Promise<Operation> {
    const parsed = parseVertexName('endpoint', name);
    const ms = parseInput(z.number().int().min(1_000).max(3_600_000), timeoutMs, 'inference timeout (ms)');
    const body = { endpoint: { name, clientConnectionConfig: { inferenceTimeout: seconds(ms) } } };
    return toOperation(
      await this.call('POST', parsed.location, `${name}:update`, { body, options }, OperationSchema),
    );
  }

  /** `DELETE v1beta1/{endpoint}` — fails with FAILED_PRECONDITION while models are deployed. */
  async deleteEndpoint(name: string, options: CallOptions = {}): Promise<Operation> {
    const parsed = parseVertexName('endpoint', name);
    return toOperation(await this.call('DELETE', parsed.location, name, { options }, OperationSchema));
  }

  async getModel(name: string, options: CallOptions = {}): Promise<Model> {
    const parsed = parseVertexName('model', name);
    return this.call('GET', parsed.location, name, { options }, ModelSchema);
  }

  async listModels(
    input: ListInput,
    options: CallOptions = {},
  ): Promise<{ models: Model[]; nextPageToken?: string }> {
    const page = await this.listPage(input, 'models', ListModelsResponseSchema, options);
    return { models: page.models, ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) };
  }

  /** `DELETE v1beta1/{model}` — fails while any endpoint still serves it. */
  async deleteModel(name: string, options: CallOptions = {}): Promise<Operation> {
    const parsed = parseVertexName('model', name);
    return toOperation(await this.call('DELETE', parsed.location, name, { options }, OperationSchema));
  }

  /**
   * `PATCH v1beta1/{endpoint}?updateMask=labels` — replaces the endpoint's labels. With `etag`, the
   * update only applies if nobody changed the endpoint since it was read (ABORTED otherwise).
   */
  async setEndpointLabels(
    name: string,
    labels: Labels,
    options: CallOptions & { etag?: string } = {},
  ): Promise<Endpoint> {
    return this.patchLabels('endpoint', name, labels, options, EndpointSchema);
  }

  /** `PATCH v1beta1/{model}?updateMask=labels` — replaces the model's labels. */
  async setModelLabels(
    name: string,
    labels: Labels,
    options: CallOptions & { etag?: string } = {},
  ): Promise<Model> {
    return this.patchLabels('model', name, labels, options, ModelSchema);
  }

  /** `GET {location}/{collection}`: one page of endpoints or models, as the list request asks. */
  private listPage<S extends z.ZodType>(
    input: ListInput,
    collection: 'endpoints' | 'models',
    schema: S,
    options: CallOptions,
  ): Promise<z.output<S>> {
    const i = parseInput(ListInputSchema, input, 'list request');
    return this.call(
      'GET',
      i.location,
      `${locationName(i)}/${collection}`,
      { query: { filter: i.filter, pageSize: i.pageSize, pageToken: i.pageToken }, options },
      schema,
    );
  }

  /** `PATCH {name}?updateMask=labels` on an endpoint or model, conditional on `etag` when given. */
  private patchLabels<S extends z.ZodType>(
    kind: 'endpoint' | 'model',
    name: string,
    labels: Labels,
    options: CallOptions & { etag?: string },
    schema: S,
  ): Promise<z.output<S>> {
    return this.patch(
      kind,
      name,
      'labels',
      { labels: parseInput(LabelsSchema, labels, 'labels') },
      options,
      schema,
    );
  }

  /** `PATCH {name}?updateMask={mask}` with the changed fields, conditional on `etag` when given. */
  private patch<S extends z.ZodType>(
    kind: 'endpoint' | 'model',
    name: string,
    /** FieldMask JSON: lowerCamelCase paths (protobuf field_mask.proto). */
    mask: string,
    fields: Record<string, unknown>,
    options: CallOptions & { etag?: string },
    schema: S,
  ): Promise<z.output<S>> {
    const parsed = parseVertexName(kind, name);
    const body = { ...fields, ...(options.etag ? { etag: options.etag } : {}) };
    return this.call('PATCH', parsed.location, name, { query: { updateMask: mask }, body, options }, schema);
  }

  private async call<S extends z.ZodType>(
    method: HttpMethod,
    location: string,
    path: string,
    request: { query?: Record<string, string | number | undefined>; body?: unknown; options: CallOptions },
    schema: S,
  ): Promise<z.output<S>> {
    const url = new URL(`${vertexBaseUrlFor(this.config.vertexBaseUrl, location)}/v1beta1/${path}`);
    return sendJsonCall(this.transport, this.config, { service: SERVICE, method, url, ...request }, schema);
  }
}

function toOperation(raw: z.output<typeof OperationSchema>): Operation {
  const op: Operation = { name: raw.name, done: raw.done === true };
  if (raw.metadata) op.metadata = raw.metadata;
  // `error` and `response` are a oneof; an error wins if a server ever sends both.
  if (raw.error) op.error = errorFromOperation(raw.name, raw.error, SERVICE);
  else if (raw.response) op.response = raw.response;
  return op;
}
