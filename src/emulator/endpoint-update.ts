import { type EmulatorCore, V1BETA1_TYPE } from './core';
import { badRequest } from './errors';
import { type RequestContext, type Route, sendJson } from './http';
import { V1BETA1, durationMs, protoFieldName } from './protos';
import { readMessage } from './query';
import { type VertexOperationRecord, touch } from './state';
import {
  P,
  asMessage,
  canonicalName,
  checkEtag,
  endpointFromPath,
  endpointJson,
  newOperationName,
  operationJson,
  vertexRoute,
} from './vertex';

/**
 * UpdateEndpointLongRunning (`POST {endpoint}:update`): the long-running update that, as the proto
 * says, only changes `client_connection_config` (the inference timeout); the change applies when
 * the operation completes (after `mutateMs`), whose response is the Endpoint.
 */

/** Fields of the body's Endpoint that are not an update: its name and etag (checked). */
const IDENTIFYING = new Set(['name', 'etag']);
const MAX_INFERENCE_TIMEOUT_MS = 3_600_000;

async function updateEndpoint(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const endpoint = endpointFromPath(core, ctx);
  const request = await readMessage(ctx, `${V1BETA1}.UpdateEndpointLongRunningRequest`);
  if (request.endpoint === undefined) {
    throw badRequest([
      {
        field: 'endpoint',
        description:
          'endpoint is required: the Endpoint with its new client_connection_config, e.g. {"endpoint": {"clientConnectionConfig": {"inferenceTimeout": "600s"}}}.',
      },
    ]);
  }
  const update = asMessage(request.endpoint);
  if (
    typeof update.name === 'string' &&
    update.name !== '' &&
    canonicalName(core, update.name) !== endpoint.name
  ) {
    throw badRequest([
      {
        field: 'endpoint.name',
        description: `endpoint.name "${update.name}" does not match the request URL.`,
      },
    ]);
  }
  const others = Object.keys(update).filter((k) => !IDENTIFYING.has(k) && k !== 'clientConnectionConfig');
  if (others.length > 0) {
    throw badRequest([
      {
        field: `endpoint.${protoFieldName(others[0]!)}`,
        description:
          "Currently we only support updating the client_connection_config field, all the other fields' update will be blocked. " +
          `Remove ${others.map(protoFieldName).join(', ')} from the request (display_name, description, labels and traffic_split change with PATCH and an update mask).`,
      },
    ]);
  }
  checkEtag(endpoint, update.etag, 'endpoint');
  const config = update.clientConnectionConfig as { inferenceTimeout?: string } | undefined;
  if (config?.inferenceTimeout !== undefined) {
    const ms = durationMs(config.inferenceTimeout);
    if (ms <= 0 || ms > MAX_INFERENCE_TIMEOUT_MS) {
      throw badRequest([
        {
          field: 'endpoint.client_connection_config.inference_timeout',
          description: `endpoint.client_connection_config.inference_timeout must be positive and at most 3600s (1 hour); got ${config.inferenceTimeout}.`,
        },
      ]);
    }
  }
  const op: VertexOperationRecord = {
    name: newOperationName(endpoint.project, endpoint.location, endpoint.name),
    project: endpoint.project,
    location: endpoint.location,
    kind: 'updateEndpoint',
    createTime: ctx.now,
    updateTime: ctx.now,
    doneAt: ctx.now + core.timing(endpoint.project).mutateMs,
    done: false,
    target: endpoint.name,
    update: config && Object.keys(config).length > 0 ? { clientConnectionConfig: config } : {},
  };
  core.state.operations[op.name] = op;
  core.markDirty();
  sendJson(ctx.res, 200, operationJson(op));
}

/** At `doneAt` the endpoint takes the new config (an absent one clears it); the response is the Endpoint. */
function completeUpdate(core: EmulatorCore, op: VertexOperationRecord, now: number): void {
  const endpoint = op.target ? core.state.endpoints[op.target] : undefined;
  if (!endpoint) {
    return core.finish(op, now, {
      error: { code: 5, message: `Endpoint ${op.target} was deleted before its update completed.` },
    });
  }
  const config = op.update?.clientConnectionConfig;
  if (config) endpoint.clientConnectionConfig = config;
  else delete endpoint.clientConnectionConfig;
  touch(endpoint, now);
  core.finish(op, now, { response: { '@type': `${V1BETA1_TYPE}.Endpoint`, ...endpointJson(endpoint, now) } });
}

export function endpointUpdateRoutes(core: EmulatorCore): Route[] {
  core.completions.set('updateEndpoint', (op, now) => completeUpdate(core, op, now));
  return [
    vertexRoute(core)(
      'vertex.endpoints.update',
      'POST',
      `${P}/endpoints/([^/:]+):update`,
      'aiplatform.endpoints.update',
      updateEndpoint,
    ),
  ];
}
