import { type StorageEventDeps, type StorageEventResult, handleStorageEvent } from './pipeline';
import type { EventOutcome } from './status';
import {
  InvalidStorageEventError,
  type StorageEvent,
  storageEventFromCloudEvent,
  storageEventFromPushEnvelope,
} from './storage-event';

/**
 * The HTTP routes' logic without a framework: a push envelope or a CloudEvent in, a status and a
 * JSON body out. Authentication is the server's (its OIDC/bearer verifier runs before these); the
 * principal it verified is only logged. The status code is the ack: 2xx for everything handled,
 * ignored or reported (so Pub/Sub stops redelivering a bad marker), 503 for a transient failure
 * (Pub/Sub and Eventarc retry with backoff), 400 for a body that is no event at all.
 */

export interface EventHttpAnswer {
  status: 200 | 400 | 503;
  body: Omit<StorageEventResult, 'outcome'> & { outcome: EventOutcome | 'bad-request' };
}

/** Who the server's verifier says sent the request (`token:<name>`, `oidc:<email>`), for the log. */
export interface EventPrincipal {
  id: string;
}

/** `POST /v1/events/pubsub`: a Pub/Sub push envelope (the default wrapper). */
export function handlePubsubPush(
  envelope: unknown,
  principal: EventPrincipal | undefined,
  deps: StorageEventDeps,
): Promise<EventHttpAnswer> {
  return answer(() => storageEventFromPushEnvelope(envelope), principal, deps);
}

/** `POST /v1/events/cloudevents`: an Eventarc CloudEvent, binary or structured mode. */
export function handleCloudEvent(
  headers: Record<string, string | string[] | undefined>,
  body: unknown,
  principal: EventPrincipal | undefined,
  deps: StorageEventDeps,
): Promise<EventHttpAnswer> {
  return answer(() => storageEventFromCloudEvent(headers, body), principal, deps);
}

async function answer(
  parse: () => StorageEvent | undefined,
  principal: EventPrincipal | undefined,
  deps: StorageEventDeps,
): Promise<EventHttpAnswer> {
  let event: StorageEvent | undefined;
  try {
    event = parse();
  } catch (err) {
    if (!(err instanceof InvalidStorageEventError)) throw err;
    return { status: 400, body: { outcome: 'bad-request', message: err.message } };
  }
  if (!event) {
    deps.log?.(JSON.stringify({ msg: 'storage event', outcome: 'ignored', sender: principal?.id }));
    return { status: 200, body: { outcome: 'ignored', message: 'not a storage object event' } };
  }
  const result = await handleStorageEvent(event, deps, principal?.id);
  return { status: result.outcome === 'retry' ? 503 : 200, body: result };
}
