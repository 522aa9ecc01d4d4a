import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import {
  type DeploymentRequest,
  abandonCleanup,
  cancelDeployment,
  pauseUpgrade,
  promoteUpgrade,
  resumeUpgrade,
  retryCleanup,
  rollbackDeployment,
  scaleDeployment,
  teardownDeployment,
} from '../../client';
import { deploymentWorkflowId } from '../../spec';
import { type ApiOperation, addRoute } from '../api';
import { requestOnce, waitMsOf } from '../requests';
import {
  AbandonCleanupBodySchema,
  ControlBodySchema,
  type DeploymentPath,
  DeploymentPathSchema,
  RequestStateSchema,
  ScaleBodySchema,
  WaitQuerySchema,
} from '../schemas';
import type { ServerDeps } from '../server';

/**
 * The control operations, one table: each is the deployment's Update of the same name, sent by the
 * library function the CLI's command uses, accepted or refused (409, with the deployment's reason)
 * at once, and answered with its outcome when it comes within `wait`.
 */

interface Control {
  summary: string;
  description: string;
  body: z.ZodType;
  /** The Update's argument, as the library sends it (compared on a retried key). */
  argument(body: Record<string, unknown>): unknown;
  send(
    client: Client,
    workflowId: string,
    body: Record<string, unknown>,
    requestId: string,
    deps: ServerDeps,
  ): Promise<DeploymentRequest<unknown>>;
}

type Body = { reason?: string } & Record<string, unknown>;
const reasonOnly = (body: Body) => (body.reason ? { reason: body.reason } : {});
const options = (body: Body, requestId: string) => ({ ...reasonOnly(body), requestId });

const CONTROLS: Record<string, Control> = {
  cancel: {
    summary: 'Stop a deployment still deploying (or its running upgrade) and remove what it created',
    description: 'The `cancel` Update. Refused when it serves with no upgrade running (use teardown).',
    body: ControlBodySchema,
    argument: reasonOnly,
    send: (client, id, body, requestId) => cancelDeployment(client, id, options(body, requestId)),
  },
  rollback: {
    summary: 'Undo the running upgrade; or the deployment while it deploys or within its rollback window',
    description: 'The `rollback` Update: all traffic back on the serving revision and the new one removed.',
    body: ControlBodySchema,
    argument: reasonOnly,
    send: (client, id, body, requestId) => rollbackDeployment(client, id, options(body, requestId)),
  },
  promote: {
    summary: 'Give the upgrade’s new revision all the traffic now',
    description: 'The `promote` Update: skips the remaining traffic steps and bakes.',
    body: ControlBodySchema,
    argument: reasonOnly,
    send: (client, id, body, requestId) => promoteUpgrade(client, id, options(body, requestId)),
  },
  pause: {
    summary: 'Hold the running upgrade at its traffic share',
    description: 'The `pause` Update; gates keep being evaluated.',
    body: ControlBodySchema,
    argument: reasonOnly,
    send: (client, id, body, requestId) => pauseUpgrade(client, id, options(body, requestId)),
  },
  resume: {
    summary: 'Continue a paused upgrade',
    description: 'The `resume` Update.',
    body: ControlBodySchema,
    argument: reasonOnly,
    send: (client, id, body, requestId) => resumeUpgrade(client, id, options(body, requestId)),
  },
  scale: {
    summary: 'Change replicas, autoscaling or container logging in place',
    description: 'The `scale` Update; what is left out keeps its value.',
    body: ScaleBodySchema,
    argument: (body) => body,
    send: (client, id, { reason, ...change }, requestId) =>
      scaleDeployment(client, id, change, { ...(reason ? { reason: reason as string } : {}), requestId }),
  },
  teardown: {
    summary: 'Remove a serving deployment and everything it owns',
    description:
      'The `teardown` Update. A deployment that ended without cleaning up (terminated) is recovered: what it ' +
      'could have created is found and removed. Refused while it still deploys (use cancel).',
    body: ControlBodySchema,
    argument: reasonOnly,
    send: (client, id, body, requestId, deps) =>
      teardownDeployment(client, id, {
        ...options(body, requestId),
        ...(deps.settings ? { settings: deps.settings } : {}),
      }),
  },
  'retry-cleanup': {
    summary: 'Run a blocked cleanup again',
    description: 'The `retryCleanup` Update, for a deployment in CLEANUP_BLOCKED.',
    body: ControlBodySchema,
    argument: reasonOnly,
    send: (client, id, body, requestId) => retryCleanup(client, id, options(body, requestId)),
  },
  'abandon-cleanup': {
    summary: 'Give up a blocked cleanup, leaving its resources to you',
    description: 'The `abandonCleanup` Update; `reason` is required.',
    body: AbandonCleanupBodySchema,
    argument: reasonOnly,
    send: (client, id, body, requestId) =>
      abandonCleanup(client, id, { reason: String(body.reason), requestId }),
  },
};

function operationOf(name: string, control: Control): ApiOperation {
  return {
    operationId: `${name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())}Deployment`,
    method: 'POST',
    path: `/v1/deployments/{project}/{region}/{name}/${name}`,
    summary: control.summary,
    description: `${control.description} Answers once accepted (202), or with the outcome when it comes within \`wait\`.`,
    tag: 'control',
    mutating: true,
    params: DeploymentPathSchema,
    query: WaitQuerySchema,
    body: control.body,
    optionalBody: control.body === ControlBodySchema,
    responses: {
      202: { description: 'Accepted, still running', schema: RequestStateSchema },
      200: { description: 'Done (or failed) within the wait', schema: RequestStateSchema },
      404: { description: 'No such deployment' },
      409: { description: 'Refused by the deployment, with its reason' },
      422: { description: 'The Idempotency-Key was used with another body' },
    },
  };
}

export const operations: ApiOperation[] = Object.entries(CONTROLS).map(([name, control]) =>
  operationOf(name, control),
);

export function register(app: FastifyInstance, deps: ServerDeps): void {
  for (const [name, control] of Object.entries(CONTROLS)) {
    addRoute<DeploymentPath, { wait?: number }, Body | undefined>(
      app,
      operationOf(name, control),
      async ({ params, query, body = {}, idempotencyKey }) => {
        const workflowId = deploymentWorkflowId(params);
        return requestOnce(
          deps.client,
          workflowId,
          name,
          idempotencyKey,
          control.argument(body),
          waitMsOf(query),
          (id) => control.send(deps.client, workflowId, body, id, deps),
        );
      },
    );
  }
}
