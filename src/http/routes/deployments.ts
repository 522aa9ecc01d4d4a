import type { FastifyInstance } from 'fastify';
import {
  type ListFilters,
  type RequestState,
  RequestAlreadyDoneError,
  RequestNotFoundError,
  getProgress,
  listDeployments,
  requestState,
  settleRequest,
  startDeployment,
  upgradeDeployment,
  checkSpecNames,
} from '../../client';
import { canonicalDigest, describeLatest, startedBy } from '../../client/start';
import { type DeploymentSpec, DeploymentSpecSchema, deploymentWorkflowId } from '../../spec';
import { type ApiOperation, type RouteAnswer, addRoute } from '../api';
import { HttpError, IdempotencyKeyReusedError } from '../errors';
import { requestOnce, waitMsOf } from '../requests';
import {
  CreatedDeploymentSchema,
  type DeploymentPath,
  DeploymentListSchema,
  DeploymentPathSchema,
  DeploymentStatusSchema,
  ListQuerySchema,
  RequestPathSchema,
  RequestStateSchema,
  WaitQuerySchema,
} from '../schemas';
import type { ServerDeps } from '../server';

/** Deployments: create, list, read, upgrade, and the state of any request sent to one. */

const DEPLOYMENT = '/v1/deployments/{project}/{region}/{name}';

const create: ApiOperation = {
  operationId: 'createDeployment',
  method: 'POST',
  path: '/v1/deployments',
  summary: 'Create a deployment from a spec',
  description:
    'Validates the spec (the DeploymentSpec schema the CLI uses; a bad one is 400 listing every field) and ' +
    'starts its durable deployment, deploy/{project}/{region}/{name}. Retried with the same Idempotency-Key and ' +
    'spec, answers the deployment the first call started (200); a deployment of that name started by another ' +
    'request is a 409 (change it with …/upgrade).',
  tag: 'deployments',
  mutating: true,
  query: WaitQuerySchema,
  body: DeploymentSpecSchema,
  responses: {
    201: { description: 'Started', schema: CreatedDeploymentSchema },
    200: { description: 'The deployment this key started earlier', schema: CreatedDeploymentSchema },
    409: { description: 'A deployment of that name runs already, started by another request' },
    422: { description: 'The Idempotency-Key was used with another spec' },
  },
};

const list: ApiOperation = {
  operationId: 'listDeployments',
  method: 'GET',
  path: '/v1/deployments',
  summary: 'List deployments by search attribute',
  description:
    'Newest first, the latest run of each; filtered by the search attributes (stage, model URI prefix, project, ' +
    'region, name). Visibility is eventually consistent: a change may take a moment to show.',
  tag: 'deployments',
  query: ListQuerySchema,
  responses: { 200: { description: 'The deployments', schema: DeploymentListSchema } },
};

const get: ApiOperation = {
  operationId: 'getDeployment',
  method: 'GET',
  path: DEPLOYMENT,
  summary: 'A deployment’s progress',
  description:
    'Stage, steps with live attempts and last errors, replicas, resources and result (as `status` shows).',
  tag: 'deployments',
  params: DeploymentPathSchema,
  responses: {
    200: { description: 'Its progress', schema: DeploymentStatusSchema },
    404: { description: 'No such deployment' },
  },
};

const upgrade: ApiOperation = {
  operationId: 'upgradeDeployment',
  method: 'POST',
  path: `${DEPLOYMENT}/upgrade`,
  summary: 'Roll out a new revision',
  description:
    'Sends the spec as the deployment’s `upgrade` Update (staged, canary/linear under the spec’s gates, rolled ' +
    'back when one fails). The spec must name this deployment. Answers once accepted (202), or with the outcome ' +
    'when it comes within `wait`.',
  tag: 'deployments',
  mutating: true,
  params: DeploymentPathSchema,
  query: WaitQuerySchema,
  body: DeploymentSpecSchema,
  responses: {
    202: { description: 'Accepted, still running', schema: RequestStateSchema },
    200: { description: 'Done (or failed) within the wait', schema: RequestStateSchema },
    404: { description: 'No such deployment' },
    409: { description: 'Refused by the deployment, with its reason' },
    422: { description: 'The Idempotency-Key was used with another spec' },
  },
};

const request: ApiOperation = {
  operationId: 'getRequest',
  method: 'GET',
  path: `${DEPLOYMENT}/requests/{requestId}`,
  summary: 'Where a request stands',
  description:
    'The outcome of a request an earlier call answered (its requestId), waiting up to `wait` for it.',
  tag: 'deployments',
  params: RequestPathSchema,
  query: WaitQuerySchema,
  responses: {
    200: { description: 'Its state (running, done or failed)', schema: RequestStateSchema },
    404: { description: 'No such deployment or request' },
  },
};

export const operations: ApiOperation[] = [create, list, get, upgrade, request];

export function register(app: FastifyInstance, deps: ServerDeps): void {
  const { client } = deps;

  // The spec bodies come checked against DeploymentSpecSchema by addRoute (a bad one is 400 there).
  addRoute<never, { wait?: number }, DeploymentSpec>(app, create, async ({ body, query, idempotencyKey }) =>
    createOnce(deps, body, idempotencyKey, waitMsOf(query)),
  );

  addRoute<never, ListFilters, unknown>(app, list, async ({ query }) => ({
    status: 200,
    body: { deployments: await listDeployments(client, query) },
  }));

  addRoute<DeploymentPath, unknown, unknown>(app, get, async ({ params }) => ({
    status: 200,
    body: await getProgress(client, deploymentWorkflowId(params)),
  }));

  addRoute<DeploymentPath, { wait?: number }, DeploymentSpec>(
    app,
    upgrade,
    async ({ params, query, body: spec, idempotencyKey }) => {
      const workflowId = deploymentWorkflowId(params);
      // A spec of another deployment is bad input (400), found before anything is read or sent.
      checkSpecNames(spec, workflowId);
      return requestOnce(
        client,
        workflowId,
        'upgrade',
        idempotencyKey,
        { spec },
        waitMsOf(query),
        (requestId) => upgradeDeployment(client, spec, { deployment: workflowId, requestId }),
      );
    },
  );

  addRoute<DeploymentPath & { requestId: string }, { wait?: number }, unknown>(
    app,
    request,
    async ({ params, query }) => {
      const workflowId = deploymentWorkflowId(params);
      const state = await requestState(client, workflowId, params.requestId, waitMsOf(query));
      return {
        status: 200,
        body: {
          requestId: params.requestId,
          workflowId,
          operation: params.requestId.split(':')[0],
          ...state,
        },
      };
    },
  );
}

/**
 * A create, once per Idempotency-Key: the key (as the deploy request id) and the spec's digest are
 * in the run's memo, so a retry finds the run its first call started, even after the deployment
 * ended, and the name's deployment started by anyone else is a conflict rather than attached to.
 */
async function createOnce(
  deps: ServerDeps,
  spec: DeploymentSpec,
  key: string,
  waitMs: number,
): Promise<RouteAnswer> {
  const { client } = deps;
  const workflowId = deploymentWorkflowId(spec);
  const requestId = `create:${key}`;
  const answer = (status: number, runId: string, state: RequestState, waitingForWorker = false) => ({
    status,
    body: {
      requestId,
      workflowId,
      runId,
      operation: 'create',
      ...state,
      started: status === 201,
      waitingForWorker,
    },
  });
  const conflict = () =>
    new HttpError(
      409,
      'conflict',
      `${workflowId} exists already, started by another request; read it with GET ${pathOf(workflowId)}, ` +
        `change it with POST ${pathOf(workflowId)}/upgrade`,
    );
  const latest = await describeLatest(client, workflowId);
  if (latest) {
    const first = startedBy(latest);
    const ours = first.requestId === requestId;
    if (ours && first.specDigest !== canonicalDigest(spec))
      throw new IdempotencyKeyReusedError(`creating ${workflowId}`);
    if (!ours && latest.status.name === 'RUNNING') throw conflict();
  }
  let started;
  try {
    started = await startDeployment(client, spec, {
      taskQueue: deps.taskQueue,
      requestId,
      ...(deps.settings ? { settings: deps.settings } : {}),
    });
  } catch (err) {
    if (!(err instanceof RequestAlreadyDoneError)) throw err;
    // A retry of a create whose deployment has ended since: its answer, not a new deployment.
    const state = await requestState(client, workflowId, requestId, 0).catch((notThere: unknown) =>
      notThere instanceof RequestNotFoundError
        ? { state: 'done' as const, outcome: undefined }
        : Promise.reject(notThere),
    );
    return answer(200, err.runId, state);
  }
  // Two creates of one name with different keys at once: the one whose key is not in the memo lost.
  if (!started.started && startedBy(await started.handle.describe()).requestId !== requestId)
    throw conflict();
  const state: RequestState = started.waitingForWorker
    ? { state: 'running' }
    : await settleRequest(client, started.result, waitMs);
  return answer(started.started ? 201 : 200, started.runId, state, started.waitingForWorker);
}

/** The API path of a deployment's workflow id. */
export function pathOf(workflowId: string): string {
  return `/v1/deployments/${workflowId.replace(/^deploy\//, '')}`;
}
