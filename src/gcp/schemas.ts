/**
 * Response shapes (proto3 JSON, lowerCamelCase), lenient on fields we do not use and strict on the
 * ones we rely on. Field names follow google/cloud/aiplatform/v1beta1/*.proto and compute.proto.
 */
import { z } from 'zod';
import { RpcStatusSchema } from './errors';

const stringMap = z.record(z.string(), z.string());

// --- google.longrunning.Operation --------------------------------------------------------------

/** A proto3 int64 as JSON carries it (a decimal string, or a number), as a number. */
export const Int64 = z.union([z.string().regex(/^-?\d+$/), z.number().int()]).transform(Number);

export const OperationSchema = z.looseObject({
  name: z.string().min(1),
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** Absent while running: proto3 JSON omits `false`. */
  done: z.boolean().optional(),
  error: RpcStatusSchema.optional(),
  response: z.record(z.string(), z.unknown()).optional(),
});
export type OperationJson = z.infer<typeof OperationSchema>;

/** DeployResponse (model_garden_service.proto). */
export const DeployResponseSchema = z.looseObject({
  endpoint: z.string().min(1),
  model: z.string().optional(),
  publisherModel: z.string().optional(),
});
export type DeployResponse = z.infer<typeof DeployResponseSchema>;

// --- Endpoint / Model --------------------------------------------------------------------------

export const MachineSpecSchema = z.looseObject({
  machineType: z.string().optional(),
  acceleratorType: z.string().optional(),
  acceleratorCount: z.number().int().optional(),
});

export const DedicatedResourcesSchema = z.looseObject({
  machineSpec: MachineSpecSchema.optional(),
  minReplicaCount: z.number().int().optional(),
  maxReplicaCount: z.number().int().optional(),
});

export const DeployedModelSchema = z.looseObject({
  id: z.string().min(1),
  model: z.string().optional(),
  modelVersionId: z.string().optional(),
  displayName: z.string().optional(),
  createTime: z.string().optional(),
  dedicatedResources: DedicatedResourcesSchema.optional(),
  enableContainerLogging: z.boolean().optional(),
  enableAccessLogging: z.boolean().optional(),
  privateEndpoints: z
    .looseObject({
      predictHttpUri: z.string().optional(),
      explainHttpUri: z.string().optional(),
      healthHttpUri: z.string().optional(),
      serviceAttachment: z.string().optional(),
    })
    .optional(),
  status: z
    .looseObject({
      message: z.string().optional(),
      lastUpdateTime: z.string().optional(),
      availableReplicaCount: z.number().int().optional(),
    })
    .optional(),
});
export type DeployedModel = z.infer<typeof DeployedModelSchema>;

/** MutateDeployedModelResponse (endpoint_service.proto): the deployed model as mutated. */
export const MutateDeployedModelResponseSchema = z.looseObject({ deployedModel: DeployedModelSchema });

export const PrivateServiceConnectConfigSchema = z.looseObject({
  enablePrivateServiceConnect: z.boolean().optional(),
  projectAllowlist: z.array(z.string()).default([]),
  serviceAttachment: z.string().optional(),
});

export const EndpointSchema = z.looseObject({
  name: z.string().min(1),
  displayName: z.string().optional(),
  description: z.string().optional(),
  deployedModels: z.array(DeployedModelSchema).default([]),
  trafficSplit: z.record(z.string(), z.number()).default({}),
  etag: z.string().optional(),
  labels: stringMap.default({}),
  createTime: z.string().optional(),
  updateTime: z.string().optional(),
  dedicatedEndpointEnabled: z.boolean().optional(),
  dedicatedEndpointDns: z.string().optional(),
  clientConnectionConfig: z.looseObject({ inferenceTimeout: z.string().optional() }).optional(),
  privateServiceConnectConfig: PrivateServiceConnectConfigSchema.optional(),
});
export type Endpoint = z.infer<typeof EndpointSchema>;

export const ListEndpointsResponseSchema = z.looseObject({
  endpoints: z.array(EndpointSchema).default([]),
  nextPageToken: z.string().optional(),
});

export const ModelSchema = z.looseObject({
  name: z.string().min(1),
  displayName: z.string().optional(),
  versionId: z.string().optional(),
  etag: z.string().optional(),
  labels: stringMap.default({}),
  createTime: z.string().optional(),
  updateTime: z.string().optional(),
  deployedModels: z
    .array(z.looseObject({ endpoint: z.string().optional(), deployedModelId: z.string().optional() }))
    .default([]),
});
export type Model = z.infer<typeof ModelSchema>;

export const ListModelsResponseSchema = z.looseObject({
  models: z.array(ModelSchema).default([]),
  nextPageToken: z.string().optional(),
});

// --- inference ---------------------------------------------------------------------------------

export const PredictResponseSchema = z.looseObject({
  predictions: z.array(z.unknown()).default([]),
  deployedModelId: z.string().optional(),
  model: z.string().optional(),
  modelVersionId: z.string().optional(),
  modelDisplayName: z.string().optional(),
  metadata: z.unknown().optional(),
});
export type PredictResponse = z.infer<typeof PredictResponseSchema>;

const UsageSchema = z.looseObject({
  prompt_tokens: z.number().int().optional(),
  completion_tokens: z.number().int().optional(),
  total_tokens: z.number().int().optional(),
});

/** OpenAI `chat.completion` as served by the model container. */
export const ChatCompletionSchema = z.looseObject({
  id: z.string().optional(),
  object: z.string().optional(),
  model: z.string().optional(),
  choices: z.array(
    z.looseObject({
      index: z.number().int().optional(),
      message: z.looseObject({
        role: z.string().optional(),
        content: z.string().nullable().optional(),
      }),
      finish_reason: z.string().nullable().optional(),
    }),
  ),
  usage: UsageSchema.nullable().optional(),
});
export type ChatCompletion = z.infer<typeof ChatCompletionSchema>;

/** OpenAI `chat.completion.chunk`; `choices` may be empty in the final usage chunk. */
export const ChatCompletionChunkSchema = z.looseObject({
  id: z.string().optional(),
  object: z.string().optional(),
  model: z.string().optional(),
  choices: z
    .array(
      z.looseObject({
        index: z.number().int().optional(),
        delta: z
          .looseObject({ role: z.string().optional(), content: z.string().nullable().optional() })
          .default({}),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .default([]),
  usage: UsageSchema.nullable().optional(),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunkSchema>;

// --- Compute Engine v1 -------------------------------------------------------------------------

/** Compute's own Operation (not google.longrunning): `status` DONE may still carry `error`. */
export const ComputeOperationSchema = z.looseObject({
  kind: z.string().optional(),
  id: z.string().optional(),
  name: z.string().min(1),
  operationType: z.string().optional(),
  targetLink: z.string().optional(),
  status: z.string().min(1),
  progress: z.number().optional(),
  region: z.string().optional(),
  selfLink: z.string().optional(),
  insertTime: z.string().optional(),
  startTime: z.string().optional(),
  endTime: z.string().optional(),
  error: z
    .looseObject({
      errors: z
        .array(
          z.looseObject({
            code: z.string().optional(),
            message: z.string().optional(),
            location: z.string().optional(),
          }),
        )
        .default([]),
    })
    .optional(),
  httpErrorStatusCode: z.number().int().optional(),
  httpErrorMessage: z.string().optional(),
});
export type ComputeOperation = z.infer<typeof ComputeOperationSchema>;

export const AddressSchema = z.looseObject({
  name: z.string().min(1),
  address: z.string().optional(),
  addressType: z.string().optional(),
  purpose: z.string().optional(),
  status: z.string().optional(),
  subnetwork: z.string().optional(),
  network: z.string().optional(),
  region: z.string().optional(),
  selfLink: z.string().optional(),
  users: z.array(z.string()).default([]),
  labels: stringMap.default({}),
});
export type Address = z.infer<typeof AddressSchema>;

export const ForwardingRuleSchema = z.looseObject({
  name: z.string().min(1),
  IPAddress: z.string().optional(),
  target: z.string().optional(),
  network: z.string().optional(),
  subnetwork: z.string().optional(),
  loadBalancingScheme: z.string().optional(),
  pscConnectionId: z.string().optional(),
  pscConnectionStatus: z.string().optional(),
  region: z.string().optional(),
  selfLink: z.string().optional(),
  labels: stringMap.default({}),
});
export type ForwardingRule = z.infer<typeof ForwardingRuleSchema>;
