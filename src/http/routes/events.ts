import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  EVENT_OUTCOMES,
  type EventHttpAnswer,
  type PullSubscriber,
  PushEnvelopeSchema,
  type StorageEventDeps,
  eventsConfig,
  handleCloudEvent,
  handlePubsubPush,
  startPullSubscriber,
} from '../../events';
import { createStorage } from '../../storage';
import { type ApiOperation, addRoute } from '../api';
import { HttpError } from '../errors';
import { healthOf } from '../health';
import type { ServerDeps } from '../server';

/**
 * Storage-event triggers (src/events/): a GCS notification pushed by Pub/Sub, or an Eventarc
 * CloudEvent, whose marker object starts or upgrades a deployment at most once per generation.
 * Authenticated like every route (a push subscription's OIDC token: --oidc-audience and
 * --allow-service-account). Given a subscription (serve's --pubsub-subscription), the server also
 * pulls it into the same pipeline while it runs (where nothing can push to it; locally, with
 * PUBSUB_EMULATOR_HOST).
 */

/** What serve hands these routes (its options, src/http/config.ts); the defaults otherwise. */
export interface EventsServerDeps {
  events?: Partial<Pick<StorageEventDeps, 'storage' | 'config' | 'metrics' | 'temporalDeadlineMs'>> & {
    /** `projects/P/subscriptions/S` to pull while the server runs; none: push and CloudEvents only. */
    subscription?: string;
    /** How often the pulled subscription is looked up (default 60 s; startPullSubscriber). */
    subscriptionCheckMs?: number;
    /** `host:port` of a Pub/Sub emulator to pull from; default: `PUBSUB_EMULATOR_HOST`, else Google. */
    pubsubEndpoint?: string;
  };
}

const EventAnswerSchema = z.object({
  outcome: z.enum(EVENT_OUTCOMES),
  message: z.string(),
  marker: z.string().optional().describe('gs:// URI of the marker object'),
  generation: z.string().optional(),
  workflowId: z.string().optional().describe('The deployment it started, upgraded or attached to'),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

const HANDLED = {
  200: {
    description:
      'Handled: started, upgraded, attached, duplicate (this generation was handled before), invalid or refused ' +
      '(reported in the status object next to the marker), ignored, stale or deleted. Pub/Sub and Eventarc stop ' +
      'redelivering.',
    schema: EventAnswerSchema,
  },
  400: { description: 'The body is no event of this kind; nothing was done' },
  503: { description: 'Temporal or Cloud Storage cannot be reached; Pub/Sub and Eventarc redeliver later' },
};

const pubsubPush: ApiOperation = {
  operationId: 'receivePubsubPush',
  method: 'POST',
  path: '/v1/events/pubsub',
  summary: 'A GCS notification pushed by a Pub/Sub subscription',
  description:
    'The push body with the default wrapper ({message: {attributes, data, messageId, publishTime}, subscription}). ' +
    'An OBJECT_FINALIZE of <prefix><folder>/garden-deploy.yaml deploys the folder with the spec it holds.',
  tag: 'events',
  body: PushEnvelopeSchema,
  responses: HANDLED,
};

const cloudEvent: ApiOperation = {
  operationId: 'receiveCloudEvent',
  method: 'POST',
  path: '/v1/events/cloudevents',
  summary: 'An Eventarc CloudEvent of Cloud Storage',
  description:
    'Binary mode (ce-* headers, the body is the StorageObjectData) or structured mode (Content-Type ' +
    'application/cloudevents+json). google.cloud.storage.object.v1.finalized of a marker deploys its folder.',
  tag: 'events',
  body: z.record(z.string(), z.unknown()).describe('StorageObjectData (binary mode) or the whole CloudEvent'),
  responses: HANDLED,
};

export const operations: ApiOperation[] = [pubsubPush, cloudEvent];

export function register(app: FastifyInstance, deps: ServerDeps & EventsServerDeps): void {
  const log = deps.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  // Built when the server starts, not here: listing the routes (OpenAPI) needs no storage or Temporal.
  let pipeline: StorageEventDeps | undefined;
  const eventDeps = (): StorageEventDeps =>
    (pipeline ??= {
      client: deps.client,
      storage: deps.events?.storage ?? createStorage(),
      config: deps.events?.config ?? eventsConfig(),
      taskQueue: deps.taskQueue,
      ...(deps.events?.temporalDeadlineMs ? { temporalDeadlineMs: deps.events.temporalDeadlineMs } : {}),
      ...(deps.settings ? { settings: deps.settings } : {}),
      ...(deps.events?.metrics ? { metrics: deps.events.metrics } : {}),
      log,
    });

  app.addContentTypeParser(
    'application/cloudevents+json',
    { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'ignore'),
  );
  addRoute(app, pubsubPush, async (input) =>
    answered(await handlePubsubPush(input.body, input.principal, eventDeps())),
  );
  addRoute(app, cloudEvent, async (input, request: FastifyRequest) =>
    answered(await handleCloudEvent(request.headers, input.body, input.principal, eventDeps())),
  );

  let subscriber: PullSubscriber | undefined;
  const health = healthOf(app);
  app.addHook('onReady', async () => {
    const subscription = deps.events?.subscription;
    if (!subscription) return;
    subscriber = await startPullSubscriber({
      subscription,
      deps: eventDeps(),
      ...(deps.events?.subscriptionCheckMs ? { checkIntervalMs: deps.events.subscriptionCheckMs } : {}),
      ...(deps.events?.pubsubEndpoint ? { apiEndpoint: deps.events.pubsubEndpoint } : {}),
      // Nothing is pulled any more: /healthz says so, and why, so that the server is restarted.
      onFatal: (reason) => health.fail(`storage events: not pulling ${subscription}: ${reason}`),
    });
    log(JSON.stringify({ msg: 'storage events: pulling', subscription }));
  });
  app.addHook('onClose', async () => {
    await subscriber?.stop();
  });
}

function answered(answer: EventHttpAnswer): { status: number; body: unknown } {
  if (answer.status === 400) throw new HttpError(400, 'invalid_event', answer.body.message);
  if (answer.status === 503)
    throw new HttpError(503, 'unavailable', `${answer.body.message}; deliver it again later`);
  return { status: 200, body: answer.body };
}
