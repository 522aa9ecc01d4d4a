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
  /**
   * How often the subscription is looked up while pulling (default 60 s): a streaming pull is not
   * told that its subscription was deleted or its permission revoked until it reconnects.
   */
  checkIntervalMs?: number;
  /**
   * Called once when pulling has stopped for good (the subscription is gone, permission was
   * revoked, or the client gave up on a non-retryable error), with why; nothing is pulled after.
   */
  onFatal?: (reason: string) => void;
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
const GRPC_NOT_FOUND = 5;
const GRPC_PERMISSION_DENIED = 7;
/** The streaming-pull codes the client retries itself (@google-cloud/pubsub's pull-retry RETRY_CODES). */
const PULL_RETRY_CODES = new Set([1, 4, 8, 10, 13, 14]);
/** Bounds the retry bookkeeping of messages that keep failing. */
const MAX_TRACKED = 10_000;

/** A non-retryable Pub/Sub error, said plainly. */
function why(err: Error & { code?: unknown }): string {
  const plain =
    err.code === GRPC_NOT_FOUND
      ? 'the subscription no longer exists'
      : err.code === GRPC_PERMISSION_DENIED
        ? 'permission to the subscription was revoked'
        : typeof err.code === 'number'
          ? `gRPC status ${err.code}`
          : 'the Pub/Sub client failed';
  return `${plain} (${err.message})`;
}

export async function startPullSubscriber(options: PullSubscriberOptions): Promise<PullSubscriber> {
  const { subscription, deps } = options;
  const pubsub = new PubSub(
    pubsubClientConfig(subscription.split('/')[1]!, options.apiEndpoint ?? process.env.PUBSUB_EMULATOR_HOST),
  );
  const sub = pubsub.subscription(subscription, {
    flowControl: { maxMessages: options.maxMessages ?? 4, allowExcessMessages: false },
  });
  // Fails early, naming the subscription, instead of an error event later. An identity that may pull
  // but not read the subscription's metadata (no pubsub.subscriptions.get) just starts pulling, and
  // is then not checked while pulling (a denied lookup would say nothing about the pull).
  const exists = await sub.exists().then(
    ([found]) => found,
    () => undefined,
  );
  if (exists === false) {
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
  let stopping = false;
  let dead = false;
  let lastError: Error | undefined;
  let checkTimer: NodeJS.Timeout | undefined;
  const fail = (reason: string) => {
    if (dead || stopping) return;
    dead = true;
    clearInterval(checkTimer);
    deps.log?.(JSON.stringify({ msg: 'pubsub subscriber stopped', subscription, error: reason }));
    void sub.close().catch(() => undefined);
    options.onFatal?.(reason);
  };
  sub.on('error', (err: Error) => {
    lastError = err;
    deps.log?.(JSON.stringify({ msg: 'pubsub subscriber error', subscription, error: err.message }));
    // The client retries the transient codes itself; any other ends its streams for good.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number' && !PULL_RETRY_CODES.has(code)) fail(why(err));
  });
  // The client closes the subscription when its streams cannot be reopened.
  sub.on('close', () => fail(lastError ? why(lastError) : 'the Pub/Sub client stopped pulling'));
  if (exists) {
    checkTimer = setInterval(() => {
      sub.getMetadata().then(
        () => undefined,
        (err: Error & { code?: unknown }) => {
          // Anything else (unreachable, throttled) is checked again next time.
          if (err.code === GRPC_NOT_FOUND || err.code === GRPC_PERMISSION_DENIED) fail(why(err));
        },
      );
    }, options.checkIntervalMs ?? 60_000);
    checkTimer.unref();
  }

  return {
    subscription,
    async stop() {
      stopping = true;
      clearInterval(checkTimer);
      await sub.close();
      await Promise.allSettled([...inFlight]);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await pubsub.close();
    },
  };
}
