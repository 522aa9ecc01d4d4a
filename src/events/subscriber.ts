import { type ClientConfig, type Message, PubSub } from '@google-cloud/pubsub';
import { type StorageEventDeps, handleStorageEvent } from './pipeline';
import { storageEventFromPubsub } from './storage-event';

/**
 * Storage events pulled from a Pub/Sub subscription, into the same pipeline as the push route: how
 * `serve` takes events where nothing can push to it, and locally, where the Pub/Sub fake (pstest)
 * delivers to pull subscribers only. `PUBSUB_EMULATOR_HOST` (or `apiEndpoint`) points it at the fake.
 * A message is acked once handled (also ignored or invalid ones); a transient failure is nacked
 * after a growing pause, so a Temporal outage is not a hot redelivery loop.
 */

export interface PullSubscriberOptions {
  /** `projects/P/subscriptions/S`. */
  subscription: string;
  deps: StorageEventDeps;
  /** `host:port` of a Pub/Sub emulator; default: `PUBSUB_EMULATOR_HOST`, else Google. */
  apiEndpoint?: string;
  /** Messages handled at once (default 4). */
  maxMessages?: number;
  /** First pause before a transient failure is nacked (default 1 s, doubling to 60 s). */
  retryDelayMs?: number;
}

export interface PullSubscriber {
  readonly subscription: string;
  /** Stops pulling, lets the messages in hand finish, closes the client. */
  stop(): Promise<void>;
}

/** The subscription to pull does not exist (say which, and how to make it). */
export class SubscriptionNotFoundError extends Error {
  override readonly name = 'SubscriptionNotFoundError';
}

/**
 * The Pub/Sub client's options for `projectId`, at an emulator when `emulatorHost` is given. There the
 * universe domain is stated: the client otherwise asks Application Default Credentials for it before
 * its first call, and without credentials that probes the GCE metadata server and prints a
 * MetadataLookupWarning (the emulator needs no credentials at all).
 */
export function pubsubClientConfig(projectId: string, emulatorHost?: string): ClientConfig {
  return emulatorHost
    ? { projectId, apiEndpoint: emulatorHost, emulatorMode: true, universeDomain: 'googleapis.com' }
    : { projectId };
}

const MAX_RETRY_DELAY_MS = 60_000;
/** Bounds the retry bookkeeping of messages that keep failing. */
const MAX_TRACKED = 10_000;

export async function startPullSubscriber(options: PullSubscriberOptions): Promise<PullSubscriber> {
  const { subscription, deps } = options;
  const pubsub = new PubSub(
    pubsubClientConfig(subscription.split('/')[1]!, options.apiEndpoint ?? process.env.PUBSUB_EMULATOR_HOST),
  );
  const sub = pubsub.subscription(subscription, {
    flowControl: { maxMessages: options.maxMessages ?? 4, allowExcessMessages: false },
  });
  // Fails early, naming the subscription, instead of an error event later. An identity that may pull
  // but not read the subscription's metadata (no pubsub.subscriptions.get) just starts pulling.
  const exists = await sub.exists().then(
    ([found]) => found,
    () => true,
  );
  if (!exists) {
    await pubsub.close();
    throw new SubscriptionNotFoundError(
      `Pub/Sub subscription ${subscription} does not exist; create it on the topic the bucket notifies ` +
        '(see README, Storage events) or fix --pubsub-subscription (GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION)',
    );
  }
  const failures = new Map<string, number>();
  const inFlight = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  const firstDelay = options.retryDelayMs ?? 1_000;

  const handle = async (message: Message) => {
    const event = storageEventFromPubsub({
      id: message.id,
      attributes: message.attributes,
      data: message.data,
    });
    if (!event) {
      message.ack();
      return;
    }
    const result = await handleStorageEvent(event, deps);
    if (result.outcome !== 'retry') {
      failures.delete(message.id);
      message.ack();
      return;
    }
    const count = (failures.get(message.id) ?? 0) + 1;
    if (failures.size >= MAX_TRACKED) failures.clear();
    failures.set(message.id, count);
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        message.nack();
      },
      Math.min(firstDelay * 2 ** (count - 1), MAX_RETRY_DELAY_MS),
    );
    timers.add(timer);
  };

  sub.on('message', (message: Message) => {
    const work = handle(message).catch((err: unknown) => {
      deps.log?.(JSON.stringify({ msg: 'storage event', outcome: 'retry', error: (err as Error)?.name }));
      message.nack();
    });
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  sub.on('error', (err: Error) => {
    deps.log?.(JSON.stringify({ msg: 'pubsub subscriber error', subscription, error: err.message }));
  });

  return {
    subscription,
    async stop() {
      await sub.close();
      await Promise.allSettled([...inFlight]);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await pubsub.close();
    },
  };
}
