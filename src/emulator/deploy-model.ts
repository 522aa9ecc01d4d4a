import type { EmulatorCore } from './core';
import { ApiError, badRequest } from './errors';
import { type RequestContext, type Route, sendJson } from './http';
import { checkDedicatedResources } from './deploy-config';
import { V1BETA1 } from './protos';
import { readMessage } from './query';
import { type DeployModelWork, type EndpointRecord, type VertexOperationRecord, numericId } from './state';
import { type TrafficSplit, checkDeployModelSplit } from './traffic';
import {
  P,
  asMessage,
  checkBodyEndpoint,
  deployFault,
  endpointFromPath,
  findModel,
  newOperationName,
  operationJson,
  runningOperationsOn,
  vertexRoute,
} from './vertex';

/**
 * `endpoints.deployModel`: deploys a Model that already exists (made by a Model Garden `:deploy`)
 * next to the models an endpoint already serves, optionally replacing the traffic split in the
 * same step: how a new revision goes out as a canary. The operation completes after
 * `deployModelMs` (core.ts); the new model's replicas then ramp up like a `:deploy`'s.
 */

const DEPLOYED_MODEL_ID_RE = /^\d{1,10}$/;
const MODEL_NAME_RE = /^projects\/([^/]+)\/locations\/([^/]+)\/models\/([^/]+)$/;

const field = (name: string, description: string) => badRequest([{ field: name, description }]);

function alreadyExists(endpoint: EndpointRecord, id: string, message: string): ApiError {
  return new ApiError('ALREADY_EXISTS', message, {
    details: [
      {
        '@type': 'type.googleapis.com/google.rpc.ResourceInfo',
        resourceType: 'aiplatform.googleapis.com/DeployedModel',
        resourceName: `${endpoint.name}/deployedModels/${id}`,
        description: `Deployed model ${id} of ${endpoint.name}.`,
      },
    ],
  });
}

async function deployModel(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const endpoint = endpointFromPath(core, ctx);
  const request = await readMessage(ctx, `${V1BETA1}.DeployModelRequest`);
  checkBodyEndpoint(core, request, endpoint);
  if (request.deployedModel === undefined) {
    throw field(
      'deployed_model',
      'deployed_model is required: the model to deploy ("model") and its dedicated_resources.',
    );
  }
  const requested = asMessage(request.deployedModel);
  const givenId = typeof requested.id === 'string' && requested.id !== '' ? requested.id : undefined;
  if (givenId !== undefined && (!DEPLOYED_MODEL_ID_RE.test(givenId) || /^0+$/.test(givenId))) {
    throw field(
      'deployed_model.id',
      `deployed_model.id "${givenId}" is invalid: use 1 to 10 digits, not all zeros ("0" stands for the model being deployed in traffic_split), or leave it out and Vertex generates one.`,
    );
  }

  const modelRef = typeof requested.model === 'string' ? requested.model : '';
  if (!modelRef) {
    throw field(
      'deployed_model.model',
      'deployed_model.model is required: the Model to deploy, projects/{project}/locations/{location}/models/{model}.',
    );
  }
  const parts = MODEL_NAME_RE.exec(modelRef);
  if (!parts) {
    throw field(
      'deployed_model.model',
      `deployed_model.model "${modelRef}" is not a Model name; use projects/{project}/locations/{location}/models/{model} (optionally @1 or @default).`,
    );
  }
  const [, modelProject, modelLocation, modelId] = parts as unknown as [string, string, string, string];
  if (core.resolveProject(modelProject).number !== endpoint.project) {
    throw field(
      'deployed_model.model',
      `deployed_model.model "${modelRef}" is in another project; deploy a Model of the endpoint's project (${endpoint.project}).`,
    );
  }
  const model = findModel(core, modelProject, modelLocation, modelId);

  if (requested.automaticResources !== undefined || requested.sharedResources !== undefined) {
    throw field(
      'deployed_model.dedicated_resources',
      'Models with custom weights are deployed on dedicated_resources; automatic_resources and shared_resources are not supported for them.',
    );
  }
  if (requested.dedicatedResources === undefined) {
    throw field(
      'deployed_model.dedicated_resources',
      'deployed_model.dedicated_resources is required: machine_spec, min_replica_count and max_replica_count.',
    );
  }
  const { resources, initialReplicas } = checkDedicatedResources(
    asMessage(requested.dedicatedResources),
    'deployed_model.dedicated_resources',
    { defaults: false },
  );

  // A given id is taken from the moment the request is accepted: a retry meets ALREADY_EXISTS.
  if (givenId !== undefined) {
    if (endpoint.deployedModels.some((m) => m.id === givenId)) {
      throw alreadyExists(
        endpoint,
        givenId,
        `A DeployedModel with ID "${givenId}" already exists on ${endpoint.name}.`,
      );
    }
    const running = runningOperationsOn(core, endpoint.name).find(
      (op) => op.deployModel?.deployedModelId === givenId,
    );
    if (running) {
      throw alreadyExists(
        endpoint,
        givenId,
        `A DeployedModel with ID "${givenId}" is already being deployed to ${endpoint.name} by operation ${running.name}; wait for that operation.`,
      );
    }
  }
  const split = checkDeployModelSplit(endpoint, request.trafficSplit as TrafficSplit | undefined, givenId);

  const work: DeployModelWork = {
    deployedModelId: givenId ?? numericId(),
    model: model.name,
    ...(typeof requested.displayName === 'string' && requested.displayName !== ''
      ? { displayName: requested.displayName }
      : {}),
    dedicatedResources: resources,
    initialReplicas,
    ...(requested.enableContainerLogging === true ? { enableContainerLogging: true } : {}),
    ...(requested.enableAccessLogging === true ? { enableAccessLogging: true } : {}),
    ...(split ? { trafficSplit: split } : {}),
    ...deployFault(core, ctx, endpoint.project, endpoint.location, resources),
  };
  const op: VertexOperationRecord = {
    name: newOperationName(endpoint.project, endpoint.location, endpoint.name),
    project: endpoint.project,
    location: endpoint.location,
    kind: 'deployModel',
    createTime: ctx.now,
    updateTime: ctx.now,
    doneAt: ctx.now + core.timing(endpoint.project).deployModelMs,
    done: false,
    target: endpoint.name,
    deployModel: work,
  };
  core.state.operations[op.name] = op;
  core.markDirty();
  sendJson(ctx.res, 200, operationJson(op));
}

export function deployModelRoutes(core: EmulatorCore): Route[] {
  return [
    vertexRoute(core)(
      'vertex.endpoints.deployModel',
      'POST',
      `${P}/endpoints/([^/:]+):deployModel`,
      'aiplatform.endpoints.deploy',
      deployModel,
    ),
  ];
}
