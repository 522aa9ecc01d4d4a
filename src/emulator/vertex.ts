import { createHash } from 'node:crypto';
import { InvalidModelUriError, parseGcsUri } from '../storage';
import { type EmulatorCore, V1BETA1_TYPE, cancelledStatus, deployedModelJson, endpointName } from './core';
import { ApiError, badRequest } from './errors';
import { compileFilter } from './filter';
import {
  MANAGEMENT_BODY_LIMIT,
  type RequestContext,
  type Route,
  managementRoute,
  parseJsonBody,
  readBody,
  sendJson,
} from './http';
import { checkContainerSpec, checkDedicatedResources } from './deploy-config';
import { V1BETA1, checkProtoJson, durationMs } from './protos';
import { paginate } from './paging';
import { checkQuery, readMessage } from './query';
import { exceedsQuota } from './quotas';
import { type TrafficSplit, checkEndpointSplit, checkUndeploySplit } from './traffic';
import {
  type DeployFault,
  type DeployWork,
  type DeployedModelRecord,
  type EndpointRecord,
  type ModelRecord,
  type VertexOperationRecord,
  type VertexResourceRecord,
  numericId,
  timestamp,
  touch,
} from './state';

/** Model Garden's default serving image for LLM custom weights (vertex-api.md §1.3). */
export const VLLM_IMAGE =
  'us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:20250601_0916_RC01';

export function etag(resource: VertexResourceRecord): string {
  return createHash('sha256')
    .update(`${resource.name}#${resource.revision}#${resource.updateTime}`)
    .digest('base64url')
    .slice(0, 22);
}

/** An `etag` in a request, when given, must be the resource's current one; `what` names the resource to read again. */
export function checkEtag(resource: VertexResourceRecord, given: unknown, what = 'resource'): void {
  if (typeof given === 'string' && given !== '' && given !== etag(resource)) {
    throw new ApiError(
      'ABORTED',
      `The etag "${given}" does not match the current etag of ${resource.name}; read the ${what} again and retry.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// JSON renderings (proto3 JSON: lowerCamelCase, default values omitted)

export function endpointJson(endpoint: EndpointRecord, now: number): Record<string, unknown> {
  const deployedModels = endpoint.deployedModels.map((model) => deployedModelJson(endpoint, model, now));
  return {
    name: endpoint.name,
    displayName: endpoint.displayName,
    ...(endpoint.description ? { description: endpoint.description } : {}),
    ...(deployedModels.length ? { deployedModels } : {}),
    ...(Object.keys(endpoint.trafficSplit).length ? { trafficSplit: endpoint.trafficSplit } : {}),
    etag: etag(endpoint),
    ...(Object.keys(endpoint.labels).length ? { labels: endpoint.labels } : {}),
    createTime: timestamp(endpoint.createTime),
    updateTime: timestamp(endpoint.updateTime),
    ...(endpoint.psc
      ? {
          privateServiceConnectConfig: {
            enablePrivateServiceConnect: true,
            ...(endpoint.psc.projectAllowlist.length
              ? { projectAllowlist: endpoint.psc.projectAllowlist }
              : {}),
            ...(endpoint.psc.enableSecurePrivateServiceConnect
              ? { enableSecurePrivateServiceConnect: true }
              : {}),
            ...(endpoint.psc.serviceAttachment ? { serviceAttachment: endpoint.psc.serviceAttachment } : {}),
          },
        }
      : {}),
    ...(endpoint.dedicatedEndpointEnabled
      ? { dedicatedEndpointEnabled: true, dedicatedEndpointDns: dedicatedEndpointDns(endpoint) }
      : {}),
    ...(endpoint.clientConnectionConfig ? { clientConnectionConfig: endpoint.clientConnectionConfig } : {}),
  };
}

/** `{endpointId}.{region}-{projectNumber}.prediction.vertexai.goog` (a bare host, as the API returns it). */
export function dedicatedEndpointDns(endpoint: { id: string; location: string; project: string }): string {
  return `${endpoint.id}.${endpoint.location}-${endpoint.project}.prediction.vertexai.goog`;
}

export function modelJson(core: EmulatorCore, model: ModelRecord): Record<string, unknown> {
  const deployedModels = Object.values(core.state.endpoints).flatMap((endpoint) =>
    endpoint.deployedModels
      .filter((d) => d.model === model.name)
      .map((d) => ({ endpoint: endpoint.name, deployedModelId: d.id })),
  );
  return {
    name: model.name,
    versionId: '1',
    versionAliases: ['default'],
    versionCreateTime: timestamp(model.createTime),
    versionUpdateTime: timestamp(model.updateTime),
    displayName: model.displayName,
    ...(model.description ? { description: model.description } : {}),
    containerSpec: model.containerSpec ?? {
      imageUri: VLLM_IMAGE,
      args: [
        'python',
        '-m',
        'vllm.entrypoints.api_server',
        '--host=0.0.0.0',
        '--port=8080',
        '--model=gs://model',
      ],
      ports: [{ containerPort: 8080 }],
      predictRoute: '/generate',
      healthRoute: '/ping',
    },
    artifactUri: model.artifactUri,
    supportedDeploymentResourcesTypes: ['DEDICATED_RESOURCES'],
    createTime: timestamp(model.createTime),
    updateTime: timestamp(model.updateTime),
    ...(deployedModels.length ? { deployedModels } : {}),
    etag: etag(model),
    ...(Object.keys(model.labels).length ? { labels: model.labels } : {}),
    modelSourceInfo: { sourceType: 'MODEL_GARDEN' },
  };
}

const METADATA_TYPES: Record<VertexOperationRecord['kind'], string> = {
  deploy: 'DeployOperationMetadata',
  deployModel: 'DeployModelOperationMetadata',
  undeploy: 'UndeployModelOperationMetadata',
  mutateDeployedModel: 'MutateDeployedModelOperationMetadata',
  updateEndpoint: 'UpdateEndpointOperationMetadata',
  deleteEndpoint: 'DeleteOperationMetadata',
  deleteModel: 'DeleteOperationMetadata',
};

export function operationJson(op: VertexOperationRecord): Record<string, unknown> {
  const metadata: Record<string, unknown> = {
    '@type': `${V1BETA1_TYPE}.${METADATA_TYPES[op.kind]}`,
    genericMetadata: { createTime: timestamp(op.createTime), updateTime: timestamp(op.updateTime) },
  };
  if (op.kind === 'deploy') {
    metadata.destination = `projects/${op.project}/locations/${op.location}`;
    metadata.projectNumber = op.project;
    metadata.modelId = op.deploy!.modelId;
  }
  return {
    name: op.name,
    metadata,
    ...(op.done ? { done: true } : {}),
    ...(op.error ? { error: op.error } : {}),
    ...(op.response ? { response: op.response } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Handlers

const ENDPOINT_ID_RE = /^(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[1-9]\d{0,8})$/;
const MODEL_ID_RE = /^[a-z_][a-z0-9_-]{0,62}$/;
const LOCATION_RE = /^[a-z]+(?:-[a-z]+\d*)+$|^global$|^us$|^eu$/;

function checkLocation(location: string): void {
  if (!LOCATION_RE.test(location)) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `Location "${location}" is not a valid region (e.g. us-central1).`,
    );
  }
}

export function newOperationName(project: string, location: string, parent?: string): string {
  return `${parent ?? `projects/${project}/locations/${location}`}/operations/${numericId()}`;
}

/**
 * What a deployment accepted now will meet: a deploy fault, or (as Vertex decides once the
 * operation runs) the accelerator quota it would exceed.
 */
export function deployFault(
  core: EmulatorCore,
  ctx: RequestContext,
  project: string,
  location: string,
  resources: Record<string, unknown>,
): { fault?: DeployFault } {
  const { type } = ctx.fault;
  if (type === 'quotaExhausted' || exceedsQuota(core, project, location, resources))
    return { fault: 'quotaExhausted' };
  if (type === 'replicasNeverReady' || type === 'outOfMemory') return { fault: type };
  return {};
}

export type Message = Record<string, unknown>;
export const asMessage = (value: unknown): Message =>
  value && typeof value === 'object' ? (value as Message) : {};

async function deploy(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const [projectParam, location] = ctx.params as [string, string];
  checkLocation(location);
  const project = core.resolveProject(projectParam);
  const request = await readMessage(ctx, `${V1BETA1}.DeployRequest`);
  if (typeof request.destination === 'string' && request.destination !== '') {
    const match = /^projects\/([^/]+)\/locations\/([^/]+)$/.exec(request.destination);
    if (!match || core.resolveProject(match[1]!).number !== project.number || match[2] !== location) {
      throw badRequest([
        {
          field: 'destination',
          description: `destination "${request.destination}" does not match the request URL (projects/${projectParam}/locations/${location}).`,
        },
      ]);
    }
  }
  if (request.publisherModelName !== undefined || request.huggingFaceModelId !== undefined) {
    throw new ApiError(
      'UNIMPLEMENTED',
      'This emulator implements Model Garden deploy of custom weights only (custom_model.gcs_uri); publisher_model_name and hugging_face_model_id are not emulated.',
    );
  }
  const customModel = asMessage(request.customModel);
  const gcsUri = typeof customModel.gcsUri === 'string' ? customModel.gcsUri : '';
  if (!gcsUri) {
    throw badRequest([
      {
        field: 'custom_model.gcs_uri',
        description:
          'One of publisher_model_name, hugging_face_model_id or custom_model.gcs_uri must be set.',
      },
    ]);
  }
  try {
    parseGcsUri(gcsUri);
  } catch (err) {
    if (err instanceof InvalidModelUriError)
      throw badRequest([{ field: 'custom_model.gcs_uri', description: err.message }]);
    throw err;
  }
  const modelConfig = asMessage(request.modelConfig);
  const endpointConfig = asMessage(request.endpointConfig);
  const deployConfig = asMessage(request.deployConfig);
  const containerSpec =
    modelConfig.containerSpec === undefined
      ? undefined
      : checkContainerSpec(asMessage(modelConfig.containerSpec));
  if (endpointConfig.dedicatedEndpointDisabled === true && endpointConfig.dedicatedEndpointEnabled === true) {
    throw badRequest([
      {
        field: 'endpoint_config.dedicated_endpoint_disabled',
        description:
          'endpoint_config.dedicated_endpoint_disabled and the deprecated dedicated_endpoint_enabled contradict each other; set only dedicated_endpoint_disabled.',
      },
    ]);
  }

  const endpointUserId =
    typeof endpointConfig.endpointUserId === 'string' ? endpointConfig.endpointUserId : '';
  const modelUserId = typeof modelConfig.modelUserId === 'string' ? modelConfig.modelUserId : '';
  if (endpointUserId && !ENDPOINT_ID_RE.test(endpointUserId)) {
    throw badRequest([
      {
        field: 'endpoint_config.endpoint_user_id',
        description:
          `endpoint_user_id "${endpointUserId}" is invalid: use up to 63 characters [a-z0-9-] starting with a letter and ending ` +
          'with a letter or digit, or up to 9 digits without a leading zero.',
      },
    ]);
  }
  if (modelUserId && !MODEL_ID_RE.test(modelUserId)) {
    throw badRequest([
      {
        field: 'model_config.model_user_id',
        description: `model_user_id "${modelUserId}" is invalid: use up to 63 characters [a-z0-9_-]; the first character cannot be a digit or hyphen.`,
      },
    ]);
  }

  const { resources, initialReplicas } = checkDedicatedResources(
    deployConfig.dedicatedResources === undefined ? undefined : asMessage(deployConfig.dedicatedResources),
    'deploy_config.dedicated_resources',
    { defaults: true },
  );
  const pscConfig = asMessage(endpointConfig.privateServiceConnectConfig);
  const psc =
    pscConfig.enablePrivateServiceConnect === true
      ? {
          projectAllowlist: (pscConfig.projectAllowlist as string[] | undefined) ?? [],
          ...(pscConfig.enableSecurePrivateServiceConnect === true
            ? { enableSecurePrivateServiceConnect: true }
            : {}),
        }
      : undefined;

  // Ids are taken from the moment the request is accepted, also while the import still runs.
  const endpointId = endpointUserId || `mg-endpoint-${numericId(10)}`;
  const modelId = modelUserId || numericId();
  const running = Object.values(core.state.operations).filter(
    (op) => op.kind === 'deploy' && !op.done && op.project === project.number && op.location === location,
  );
  const endpointTaken =
    core.state.endpoints[endpointName({ project: project.number, location }, endpointId)] ||
    running.some((op) => op.deploy!.endpointId === endpointId);
  if (endpointTaken) {
    throw new ApiError(
      'ALREADY_EXISTS',
      `Endpoint with ID "${endpointId}" already exists in projects/${project.number}/locations/${location}.`,
      {
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ResourceInfo',
            resourceType: 'aiplatform.googleapis.com/Endpoint',
            resourceName: endpointName({ project: project.number, location }, endpointId),
          },
        ],
      },
    );
  }
  const modelName = `projects/${project.number}/locations/${location}/models/${modelId}`;
  if (core.state.models[modelName] || running.some((op) => op.deploy!.modelId === modelId)) {
    throw new ApiError(
      'ALREADY_EXISTS',
      `Model with ID "${modelId}" already exists in projects/${project.number}/locations/${location}.`,
      {
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ResourceInfo',
            resourceType: 'aiplatform.googleapis.com/Model',
            resourceName: modelName,
          },
        ],
      },
    );
  }

  const timing = core.timing(project.number);
  const folderName = gcsUri.replace(/\/+$/, '').split('/').pop() ?? 'custom-model';
  const work: DeployWork = {
    gcsUri,
    importAt: ctx.now + timing.importMs,
    endpointId,
    modelId,
    deployedModelId: numericId(),
    endpointDisplayName:
      (endpointConfig.endpointDisplayName as string | undefined) || `${folderName}-mg-custom-deploy`,
    modelDisplayName: (modelConfig.modelDisplayName as string | undefined) || folderName,
    dedicatedResources: resources,
    initialReplicas,
    ...(containerSpec ? { containerSpec } : {}),
    dedicatedEndpointEnabled: !psc && endpointConfig.dedicatedEndpointDisabled !== true,
    ...(psc ? { psc } : {}),
    ...(deployConfig.systemLabels
      ? { systemLabels: deployConfig.systemLabels as Record<string, string> }
      : {}),
    ...(deployConfig.fastTryoutEnabled === true ? { fastTryoutEnabled: true } : {}),
    ...deployFault(core, ctx, project.number, location, resources),
    ...(ctx.fault.type === 'createsAfterCancel' ? { createsAfterCancel: { ms: ctx.fault.ms } } : {}),
    created: false,
  };
  const op: VertexOperationRecord = {
    name: newOperationName(project.number, location),
    project: project.number,
    location,
    kind: 'deploy',
    createTime: ctx.now,
    updateTime: ctx.now,
    doneAt: ctx.now + timing.deployMs,
    done: false,
    target: endpointName({ project: project.number, location }, endpointId),
    deploy: work,
  };
  core.state.operations[op.name] = op;
  core.markDirty();
  core.startInspection(op);
  sendJson(ctx.res, 200, operationJson(op));
}

/** Operation names may use the project id; stored names use the number. */
export function canonicalName(core: EmulatorCore, name: string): string {
  const match = /^projects\/([^/]+)\/(.*)$/.exec(name);
  return match ? `projects/${core.resolveProject(match[1]!).number}/${match[2]}` : name;
}

function getOperation(core: EmulatorCore, ctx: RequestContext): void {
  checkQuery(ctx.url, 'google.longrunning.GetOperationRequest', ['name']);
  const name = canonicalName(core, ctx.params[0]!);
  const op = core.state.operations[name];
  if (!op) throw new ApiError('NOT_FOUND', `Operation "${ctx.params[0]}" not found.`);
  sendJson(ctx.res, 200, operationJson(op));
}

async function cancelOperation(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  await readMessage(ctx, 'google.longrunning.CancelOperationRequest');
  const name = canonicalName(core, ctx.params[0]!);
  const op = core.state.operations[name];
  if (!op) throw new ApiError('NOT_FOUND', `Operation "${ctx.params[0]}" not found.`);
  if (!op.done) {
    if (op.kind !== 'deploy') {
      throw new ApiError('FAILED_PRECONDITION', `Operation ${op.name} (${op.kind}) cannot be cancelled.`);
    }
    const late = op.deploy!.createsAfterCancel;
    if (late) {
      // Best effort (fault): the operation runs on and ends CANCELLED later (core.advanceDeploy).
      late.endsAt ??= ctx.now + late.ms;
      core.markDirty();
    } else {
      // Resources the deployment already created stay, as on Vertex.
      core.finish(op, ctx.now, { error: cancelledStatus() });
    }
  }
  sendJson(ctx.res, 200, {});
}

/** Longest `:wait` the emulator holds a call (Google's is bounded by the HTTP deadline). */
const MAX_WAIT_MS = 120_000;

/** `POST {operation}:wait`: returns when the operation is done or `timeout` (Duration) has passed. */
async function waitOperation(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const request = await readMessage(ctx, 'google.longrunning.WaitOperationRequest');
  const name = canonicalName(core, ctx.params[0]!);
  if (!core.state.operations[name])
    throw new ApiError('NOT_FOUND', `Operation "${ctx.params[0]}" not found.`);
  const timeout = typeof request.timeout === 'string' ? durationMs(request.timeout) : MAX_WAIT_MS;
  const deadline = ctx.now + Math.min(Math.max(timeout, 0), MAX_WAIT_MS);
  // Answered as soon as the clock ends the operation (or a reset deletes it), else at the deadline.
  const ended = () => core.state.operations[name]?.done !== false;
  if (!(await core.until(ended, deadline, ctx.res))) return;
  const op = core.state.operations[name];
  if (!op) throw new ApiError('NOT_FOUND', `Operation "${ctx.params[0]}" not found.`);
  sendJson(ctx.res, 200, operationJson(op));
}

function listEndpoints(core: EmulatorCore, ctx: RequestContext): void {
  const [projectParam, location] = ctx.params as [string, string];
  const project = core.resolveProject(projectParam);
  const query = checkQuery(ctx.url, `${V1BETA1}.ListEndpointsRequest`, ['parent']);
  const matches = compileFilter(typeof query.filter === 'string' ? query.filter : '', 'endpoint');
  const items = Object.values(core.state.endpoints)
    .filter((e) => e.project === project.number && e.location === location && matches(e))
    .sort((a, b) => a.createTime - b.createTime || a.name.localeCompare(b.name));
  const { page, nextPageToken } = paginate(items, query);
  sendJson(ctx.res, 200, {
    ...(page.length ? { endpoints: page.map((e) => endpointJson(e, ctx.now)) } : {}),
    ...(nextPageToken ? { nextPageToken } : {}),
  });
}

export function endpointFromPath(core: EmulatorCore, ctx: RequestContext): EndpointRecord {
  const [projectParam, location, id] = ctx.params as [string, string, string];
  return core.endpoint(endpointName({ project: core.resolveProject(projectParam).number, location }, id));
}

function getEndpoint(core: EmulatorCore, ctx: RequestContext): void {
  checkQuery(ctx.url, `${V1BETA1}.GetEndpointRequest`, ['name']);
  sendJson(ctx.res, 200, endpointJson(endpointFromPath(core, ctx), ctx.now));
}

export function runningOperationsOn(core: EmulatorCore, target: string): VertexOperationRecord[] {
  return Object.values(core.state.operations).filter((op) => !op.done && op.target === target);
}

function deleteEndpoint(core: EmulatorCore, ctx: RequestContext): void {
  checkQuery(ctx.url, `${V1BETA1}.DeleteEndpointRequest`, ['name']);
  const endpoint = endpointFromPath(core, ctx);
  if (endpoint.deployedModels.length > 0) {
    throw new ApiError(
      'FAILED_PRECONDITION',
      `Endpoint ${endpoint.name} has deployed models (${endpoint.deployedModels.map((m) => m.id).join(', ')}). Undeploy all models from the endpoint before deleting it.`,
      {
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.PreconditionFailure',
            violations: [
              {
                type: 'DEPLOYED_MODELS',
                subject: endpoint.name,
                description: 'The endpoint still has deployed models.',
              },
            ],
          },
        ],
      },
    );
  }
  const running = runningOperationsOn(core, endpoint.name);
  if (running.length > 0) {
    throw new ApiError(
      'FAILED_PRECONDITION',
      `Endpoint ${endpoint.name} has a running operation (${running[0]!.name}); wait for it to finish or cancel it before deleting the endpoint.`,
    );
  }
  delete core.state.endpoints[endpoint.name];
  const op: VertexOperationRecord = {
    name: newOperationName(endpoint.project, endpoint.location, endpoint.name),
    project: endpoint.project,
    location: endpoint.location,
    kind: 'deleteEndpoint',
    createTime: ctx.now,
    updateTime: ctx.now,
    doneAt: ctx.now + core.timing(endpoint.project).deleteMs,
    done: false,
    target: endpoint.name,
  };
  core.state.operations[op.name] = op;
  core.markDirty();
  sendJson(ctx.res, 200, operationJson(op));
}

/** The body's `endpoint` (bound from the URL) may be repeated, but only as the same endpoint. */
export function checkBodyEndpoint(core: EmulatorCore, request: Message, endpoint: EndpointRecord): void {
  if (
    typeof request.endpoint === 'string' &&
    request.endpoint !== '' &&
    canonicalName(core, request.endpoint) !== endpoint.name
  ) {
    throw badRequest([
      { field: 'endpoint', description: `endpoint "${request.endpoint}" does not match the request URL.` },
    ]);
  }
}

function deployedModelOf(endpoint: EndpointRecord, deployedModelId: string): DeployedModelRecord {
  const deployed = endpoint.deployedModels.find((m) => m.id === deployedModelId);
  if (!deployed) {
    throw new ApiError(
      'NOT_FOUND',
      `Deployed model ${deployedModelId} not found on endpoint ${endpoint.name}; use an id from the endpoint's deployedModels[].id.`,
    );
  }
  return deployed;
}

async function undeployModel(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const endpoint = endpointFromPath(core, ctx);
  const request = await readMessage(ctx, `${V1BETA1}.UndeployModelRequest`);
  checkBodyEndpoint(core, request, endpoint);
  const deployedModelId = typeof request.deployedModelId === 'string' ? request.deployedModelId : '';
  if (!deployedModelId)
    throw badRequest([{ field: 'deployed_model_id', description: 'deployed_model_id is required.' }]);
  deployedModelOf(endpoint, deployedModelId);
  if (
    runningOperationsOn(core, endpoint.name).some((op) => op.undeploy?.deployedModelId === deployedModelId)
  ) {
    throw new ApiError(
      'FAILED_PRECONDITION',
      `Deployed model ${deployedModelId} is already being undeployed from ${endpoint.name}.`,
    );
  }
  const split = checkUndeploySplit(
    endpoint,
    request.trafficSplit as TrafficSplit | undefined,
    deployedModelId,
  );
  if (!split && endpoint.deployedModels.length > 1 && (endpoint.trafficSplit[deployedModelId] ?? 0) > 0) {
    throw new ApiError(
      'FAILED_PRECONDITION',
      `Deployed model ${deployedModelId} receives ${endpoint.trafficSplit[deployedModelId]}% of the traffic of ${endpoint.name}; pass a traffic_split that moves it to the remaining models.`,
    );
  }
  const op: VertexOperationRecord = {
    name: newOperationName(endpoint.project, endpoint.location, endpoint.name),
    project: endpoint.project,
    location: endpoint.location,
    kind: 'undeploy',
    createTime: ctx.now,
    updateTime: ctx.now,
    doneAt: ctx.now + core.timing(endpoint.project).undeployMs,
    done: false,
    target: endpoint.name,
    undeploy: { deployedModelId, ...(split ? { trafficSplit: split } : {}) },
  };
  core.state.operations[op.name] = op;
  core.markDirty();
  sendJson(ctx.res, 200, operationJson(op));
}

/**
 * The mutable fields of `MutateDeployedModelRequest.deployed_model` (endpoint_service.proto) as
 * mask paths relative to the DeployedModel; each is accepted in its proto (snake_case) and its
 * proto3-JSON (lowerCamelCase) spelling. automatic_resources is not emulated (Model Garden
 * deployments use dedicated resources).
 */
const MUTABLE_PATHS = [
  'dedicated_resources.min_replica_count',
  'dedicated_resources.max_replica_count',
  'dedicated_resources.required_replica_count',
  'dedicated_resources.autoscaling_metric_specs',
  'enable_container_logging',
] as const;
type MutablePath = (typeof MUTABLE_PATHS)[number];

const camelPath = (path: string) => path.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

function mutablePath(path: string): MutablePath {
  const found = MUTABLE_PATHS.find((p) => path === p || path === camelPath(p));
  if (!found) {
    throw badRequest([
      {
        field: 'update_mask',
        description: `update_mask path "${path}" cannot be mutated; mutable fields are ${MUTABLE_PATHS.join(', ')} (or their camelCase JSON names).`,
      },
    ]);
  }
  return found;
}

/** `POST {endpoint}:mutateDeployedModel`: changes replica counts, autoscaling or logging in an LRO. */
async function mutateDeployedModel(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const endpoint = endpointFromPath(core, ctx);
  const request = await readMessage(ctx, `${V1BETA1}.MutateDeployedModelRequest`);
  checkBodyEndpoint(core, request, endpoint);
  if (request.deployedModel === undefined) {
    throw badRequest([
      {
        field: 'deployed_model',
        description: 'deployed_model is required (with its id and the new values).',
      },
    ]);
  }
  const update = asMessage(request.deployedModel);
  if (typeof update.id !== 'string' || update.id === '') {
    throw badRequest([
      {
        field: 'deployed_model.id',
        description:
          "deployed_model.id is required: the id of the deployed model to mutate (the endpoint's deployedModels[].id).",
      },
    ]);
  }
  const mask =
    typeof request.updateMask === 'string' ? request.updateMask.split(',').filter((p) => p !== '') : [];
  if (mask.length === 0) {
    throw badRequest([
      {
        field: 'update_mask',
        description: `update_mask is required: name the fields to change, from ${MUTABLE_PATHS.join(', ')}.`,
      },
    ]);
  }
  const paths = new Set(mask.map(mutablePath));
  const deployed = deployedModelOf(endpoint, update.id);
  const busy = runningOperationsOn(core, endpoint.name).find(
    (op) => op.undeploy?.deployedModelId === deployed.id || op.mutate?.deployedModelId === deployed.id,
  );
  if (busy) {
    throw new ApiError(
      'FAILED_PRECONDITION',
      `Deployed model ${deployed.id} on ${endpoint.name} has a running operation (${busy.name}); wait for it to finish, then retry.`,
    );
  }

  // Field-mask semantics: a masked field absent from the body is set to its default (0, empty, false).
  const given = asMessage(update.dedicatedResources);
  const resources: Message = { ...deployed.dedicatedResources };
  const counts = {
    'dedicated_resources.min_replica_count': 'minReplicaCount',
    'dedicated_resources.max_replica_count': 'maxReplicaCount',
    'dedicated_resources.required_replica_count': 'requiredReplicaCount',
  } as const;
  for (const [path, field] of Object.entries(counts)) {
    if (!paths.has(path as MutablePath)) continue;
    if (typeof given[field] === 'number' && given[field] !== 0) resources[field] = given[field];
    else delete resources[field];
  }
  if (paths.has('dedicated_resources.autoscaling_metric_specs')) {
    if (Array.isArray(given.autoscalingMetricSpecs) && given.autoscalingMetricSpecs.length > 0)
      resources.autoscalingMetricSpecs = given.autoscalingMetricSpecs;
    else delete resources.autoscalingMetricSpecs;
  }
  const min = typeof resources.minReplicaCount === 'number' ? resources.minReplicaCount : 0;
  if (min < 1 && resources.scaleToZeroSpec === undefined) {
    throw badRequest([
      {
        field: 'deployed_model.dedicated_resources.min_replica_count',
        description: `min_replica_count must be at least 1 (got ${min}); 0 needs a deployment with scale_to_zero_spec.`,
      },
    ]);
  }
  // As on deploy, an unset max_replica_count means min_replica_count.
  if (resources.maxReplicaCount === undefined && min > 0) resources.maxReplicaCount = min;
  const max = typeof resources.maxReplicaCount === 'number' ? resources.maxReplicaCount : min;
  if (max < min) {
    throw badRequest([
      {
        field: 'deployed_model.dedicated_resources.max_replica_count',
        description: `max_replica_count (${max}) must not be less than min_replica_count (${min}); mutate both together.`,
      },
    ]);
  }
  const required = typeof resources.requiredReplicaCount === 'number' ? resources.requiredReplicaCount : 0;
  if (min > 0 && required > min) {
    throw badRequest([
      {
        field: 'deployed_model.dedicated_resources.required_replica_count',
        description: `required_replica_count (${required}) must not exceed min_replica_count (${min}).`,
      },
    ]);
  }

  const op: VertexOperationRecord = {
    name: newOperationName(endpoint.project, endpoint.location, endpoint.name),
    project: endpoint.project,
    location: endpoint.location,
    kind: 'mutateDeployedModel',
    createTime: ctx.now,
    updateTime: ctx.now,
    doneAt: ctx.now + core.timing(endpoint.project).mutateMs,
    done: false,
    target: endpoint.name,
    mutate: {
      deployedModelId: deployed.id,
      dedicatedResources: resources,
      ...(paths.has('enable_container_logging')
        ? { enableContainerLogging: update.enableContainerLogging === true }
        : {}),
    },
  };
  core.state.operations[op.name] = op;
  core.markDirty();
  sendJson(ctx.res, 200, operationJson(op));
}

/** The Model `projects/{project}/locations/{location}/models/{id}[@version]` names (project id or number). */
export function findModel(core: EmulatorCore, project: string, location: string, id: string): ModelRecord {
  // `models/{id}@{version}` addresses a version; there is only version 1.
  const [modelId, version] = id.split('@') as [string, string | undefined];
  const name = `projects/${core.resolveProject(project).number}/locations/${location}/models/${modelId}`;
  const model = core.state.models[name];
  if (!model || (version !== undefined && version !== '1' && version !== 'default')) {
    throw new ApiError('NOT_FOUND', `Model \`${name}${version ? `@${version}` : ''}\` not found.`);
  }
  return model;
}

function modelFromPath(core: EmulatorCore, ctx: RequestContext): ModelRecord {
  const [projectParam, location, id] = ctx.params as [string, string, string];
  return findModel(core, projectParam, location, id);
}

function getModel(core: EmulatorCore, ctx: RequestContext): void {
  checkQuery(ctx.url, `${V1BETA1}.GetModelRequest`, ['name']);
  sendJson(ctx.res, 200, modelJson(core, modelFromPath(core, ctx)));
}

function listModels(core: EmulatorCore, ctx: RequestContext): void {
  const [projectParam, location] = ctx.params as [string, string];
  const project = core.resolveProject(projectParam);
  const query = checkQuery(ctx.url, `${V1BETA1}.ListModelsRequest`, ['parent']);
  const matches = compileFilter(typeof query.filter === 'string' ? query.filter : '', 'model');
  const items = Object.values(core.state.models)
    .filter((m) => m.project === project.number && m.location === location && matches(m))
    .sort((a, b) => a.createTime - b.createTime || a.name.localeCompare(b.name));
  const { page, nextPageToken } = paginate(items, query);
  sendJson(ctx.res, 200, {
    ...(page.length ? { models: page.map((m) => modelJson(core, m)) } : {}),
    ...(nextPageToken ? { nextPageToken } : {}),
  });
}

function deleteModel(core: EmulatorCore, ctx: RequestContext): void {
  checkQuery(ctx.url, `${V1BETA1}.DeleteModelRequest`, ['name']);
  const model = modelFromPath(core, ctx);
  const usedBy = [
    ...Object.values(core.state.endpoints)
      .filter((e) => e.deployedModels.some((d) => d.model === model.name))
      .map((e) => e.name),
    ...Object.values(core.state.operations)
      .filter(
        (op) =>
          !op.done &&
          ((op.kind === 'deploy' &&
            op.deploy!.created &&
            `projects/${op.project}/locations/${op.location}/models/${op.deploy!.modelId}` === model.name) ||
            op.deployModel?.model === model.name),
      )
      .map((op) => op.target!),
  ];
  if (usedBy.length > 0) {
    throw new ApiError(
      'FAILED_PRECONDITION',
      `The Model "${model.name}" is deployed or being deployed at the following Endpoint(s): ${[...new Set(usedBy)].join(', ')}. Undeploy it first.`,
    );
  }
  delete core.state.models[model.name];
  const op: VertexOperationRecord = {
    name: newOperationName(model.project, model.location),
    project: model.project,
    location: model.location,
    kind: 'deleteModel',
    createTime: ctx.now,
    updateTime: ctx.now,
    doneAt: ctx.now + core.timing(model.project).deleteMs,
    done: false,
    target: model.name,
  };
  core.state.operations[op.name] = op;
  core.markDirty();
  sendJson(ctx.res, 200, operationJson(op));
}

/** Google's label rules: lower-case keys starting with a letter, values of the same alphabet, 64 at most. */
const LABEL_KEY_RE = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const LABEL_VALUE_RE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;
const UPDATABLE = { displayName: 'display_name', description: 'description', labels: 'labels' } as const;
/** UpdateEndpoint also sets the traffic split (checked like every split, see traffic.ts). */
const ENDPOINT_UPDATABLE = { ...UPDATABLE, trafficSplit: 'traffic_split' } as const;
type UpdatableField = keyof typeof ENDPOINT_UPDATABLE;

/**
 * `PATCH {resource}?updateMask=...` (UpdateEndpoint / UpdateModel): display_name, description,
 * labels and an endpoint's traffic_split are emulated; an `etag` in the body must match the
 * current one. Everything is checked before anything changes.
 */
async function updateResource(
  ctx: RequestContext,
  target: { type: 'Endpoint'; record: EndpointRecord } | { type: 'Model'; record: ModelRecord },
): Promise<void> {
  const { type: typeName, record: resource } = target;
  const updatable: Record<string, string> = typeName === 'Endpoint' ? ENDPOINT_UPDATABLE : UPDATABLE;
  const query = checkQuery(
    ctx.url,
    `${V1BETA1}.${typeName === 'Endpoint' ? 'UpdateEndpointRequest' : 'UpdateModelRequest'}`,
    [typeName === 'Endpoint' ? 'endpoint' : 'model'],
  );
  const body = parseJsonBody(await readBody(ctx.req, MANAGEMENT_BODY_LIMIT));
  const result = checkProtoJson(`${V1BETA1}.${typeName}`, body);
  if (!result.ok) throw badRequest(result.violations);
  const update = result.value;
  const mask =
    typeof query.updateMask === 'string' ? query.updateMask.split(',').filter((p) => p !== '') : [];
  if (mask.length === 0)
    throw badRequest([
      { field: 'update_mask', description: 'update_mask is required (e.g. updateMask=labels).' },
    ]);
  const fields = mask.map((path) => {
    const field = Object.entries(updatable).find(([json, proto]) => path === json || path === proto)?.[0];
    if (!field) {
      throw badRequest([
        {
          field: 'update_mask',
          description: `update_mask path "${path}" is not supported; updatable fields are ${Object.values(updatable).join(', ')}.`,
        },
      ]);
    }
    return field as UpdatableField;
  });
  if (typeof update.name === 'string' && update.name !== '' && update.name !== resource.name) {
    throw badRequest([
      {
        field: `${typeName.toLowerCase()}.name`,
        description: `name "${update.name}" does not match the request URL (${resource.name}).`,
      },
    ]);
  }
  checkEtag(resource, update.etag);
  const labels = (update.labels as Record<string, string> | undefined) ?? {};
  if (fields.includes('labels')) {
    const entries = Object.entries(labels);
    const bad = entries.find(([k, v]) => !LABEL_KEY_RE.test(k) || !LABEL_VALUE_RE.test(v));
    if (entries.length > 64 || bad) {
      throw badRequest([
        {
          field: 'labels',
          description: bad
            ? `Label "${bad[0]}": "${bad[1]}" is invalid: keys start with a lower-case letter and, like values, use up to 63 lower-case letters, digits, '_' or '-'.`
            : `At most 64 labels are allowed (got ${entries.length}).`,
        },
      ]);
    }
  }
  if (
    fields.includes('displayName') &&
    (typeof update.displayName !== 'string' || update.displayName === '')
  ) {
    throw badRequest([{ field: 'display_name', description: 'display_name cannot be empty.' }]);
  }
  // A masked but absent split clears it (the endpoint then takes no traffic), as gcloud's --clear-traffic-split.
  const split = (update.trafficSplit as TrafficSplit | undefined) ?? {};
  if (target.type === 'Endpoint' && fields.includes('trafficSplit')) checkEndpointSplit(target.record, split);
  for (const field of fields) {
    if (field === 'labels') resource.labels = labels;
    else if (field === 'displayName') resource.displayName = update.displayName as string;
    else if (field === 'trafficSplit') {
      if (target.type === 'Endpoint') target.record.trafficSplit = split;
    } else if (typeof update.description === 'string' && update.description !== '')
      resource.description = update.description;
    else delete resource.description;
  }
  touch(resource, ctx.now);
}

async function patchEndpoint(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const endpoint = endpointFromPath(core, ctx);
  await updateResource(ctx, { type: 'Endpoint', record: endpoint });
  core.markDirty();
  sendJson(ctx.res, 200, endpointJson(endpoint, ctx.now));
}

async function patchModel(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const model = modelFromPath(core, ctx);
  await updateResource(ctx, { type: 'Model', record: model });
  core.markDirty();
  sendJson(ctx.res, 200, modelJson(core, model));
}

/** `/v1beta1/projects/{project}/locations/{location}`, the prefix of every Vertex route pattern. */
export const P = '/v1beta1/projects/([^/]+)/locations/([^/:]+)';
const OPERATION = '(projects/[^/]+/locations/[^/]+/(?:(?:endpoints|models)/[^/:]+/)?operations/[^/:]+)';

/** The route builder of Vertex management routes (project from the path, Vertex errors). */
export function vertexRoute(core: EmulatorCore) {
  return managementRoute(core, 'vertex', (params) => /^(?:projects\/)?([^/]+)/.exec(params[0] ?? '')?.[1]);
}

export function vertexRoutes(core: EmulatorCore): Route[] {
  const route = vertexRoute(core);
  return [
    route('vertex.deploy', 'POST', `${P}:deploy`, 'aiplatform.endpoints.deploy', deploy),
    route('vertex.operations.get', 'GET', `/v1beta1/${OPERATION}`, 'aiplatform.operations.get', getOperation),
    route(
      'vertex.operations.wait',
      'POST',
      `/v1beta1/${OPERATION}:wait`,
      'aiplatform.operations.get',
      waitOperation,
    ),
    route(
      'vertex.operations.cancel',
      'POST',
      `/v1beta1/${OPERATION}:cancel`,
      'aiplatform.operations.cancel',
      cancelOperation,
    ),
    route('vertex.endpoints.list', 'GET', `${P}/endpoints`, 'aiplatform.endpoints.list', listEndpoints),
    route('vertex.endpoints.get', 'GET', `${P}/endpoints/([^/:]+)`, 'aiplatform.endpoints.get', getEndpoint),
    route(
      'vertex.endpoints.patch',
      'PATCH',
      `${P}/endpoints/([^/:]+)`,
      'aiplatform.endpoints.update',
      patchEndpoint,
    ),
    route(
      'vertex.endpoints.delete',
      'DELETE',
      `${P}/endpoints/([^/:]+)`,
      'aiplatform.endpoints.delete',
      deleteEndpoint,
    ),
    route(
      'vertex.endpoints.undeployModel',
      'POST',
      `${P}/endpoints/([^/:]+):undeployModel`,
      'aiplatform.endpoints.undeploy',
      undeployModel,
    ),
    route(
      'vertex.endpoints.mutateDeployedModel',
      'POST',
      `${P}/endpoints/([^/:]+):mutateDeployedModel`,
      // The permission Google checks here is not published: UNCONFIRMED (see README).
      'aiplatform.endpoints.update',
      mutateDeployedModel,
    ),
    route('vertex.models.list', 'GET', `${P}/models`, 'aiplatform.models.list', listModels),
    route('vertex.models.get', 'GET', `${P}/models/([^/:]+)`, 'aiplatform.models.get', getModel),
    route('vertex.models.patch', 'PATCH', `${P}/models/([^/:]+)`, 'aiplatform.models.update', patchModel),
    route('vertex.models.delete', 'DELETE', `${P}/models/([^/:]+)`, 'aiplatform.models.delete', deleteModel),
  ];
}
