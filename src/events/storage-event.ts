import { z } from 'zod';

/**
 * Storage events as Google delivers them, read into one shape: a Pub/Sub message of a GCS
 * notification (push envelope or pulled message) and an Eventarc CloudEvent (binary or structured
 * mode). zod checks each edge; sizes are bounded by the caller's body limit and by the schemas.
 */

/** What happened to the object, in Eventarc's words. */
export type StorageEventKind = 'finalized' | 'deleted' | 'archived' | 'metadataUpdated' | 'other';

export interface StorageEvent {
  transport: 'pubsub' | 'cloudevent';
  /** Pub/Sub messageId or the CloudEvent id (for logs: redeliveries may carry a new one). */
  id: string;
  kind: StorageEventKind;
  /** The type as sent (`OBJECT_FINALIZE`, `google.cloud.storage.object.v1.finalized`, …). */
  type: string;
  bucket: string;
  object: string;
  /** The object's generation, a decimal string (int64). */
  generation: string;
}

/** A request that is not a storage event at all: answered 400, never retried into success. */
export class InvalidStorageEventError extends Error {
  override readonly name = 'InvalidStorageEventError';
}

const GENERATION = /^[0-9]{1,19}$/;
const MAX_DATA_BASE64 = 256 * 1024;

const PUBSUB_KINDS: Record<string, StorageEventKind> = {
  OBJECT_FINALIZE: 'finalized',
  OBJECT_DELETE: 'deleted',
  OBJECT_ARCHIVE: 'archived',
  OBJECT_METADATA_UPDATE: 'metadataUpdated',
};

const CLOUDEVENT_PREFIX = 'google.cloud.storage.object.v1.';
/** Eventarc's Pub/Sub trigger wraps a whole Pub/Sub message (a GCS notification, here). */
const PUBSUB_PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';

const Attributes = z.record(z.string().max(1024), z.string().max(4096));

/** A PubsubMessage in JSON: both casings of the id and time, as push delivery sends them. */
export const PubsubMessageSchema = z.looseObject({
  data: z.string().max(MAX_DATA_BASE64).optional(),
  attributes: Attributes.optional(),
  messageId: z.string().max(256).optional(),
  message_id: z.string().max(256).optional(),
  publishTime: z.string().max(64).optional(),
  publish_time: z.string().max(64).optional(),
});
export type PubsubMessageJson = z.infer<typeof PubsubMessageSchema>;

/** The wrapped push body (`pubsubWrapper`). */
export const PushEnvelopeSchema = z.looseObject({
  message: PubsubMessageSchema,
  subscription: z.string().max(512).optional(),
  deliveryAttempt: z.number().int().optional(),
});
export type PushEnvelope = z.infer<typeof PushEnvelopeSchema>;

/** The StorageObjectData fields used; int64 fields come as strings (numbers tolerated). */
const ObjectDataSchema = z.looseObject({
  bucket: z.string().max(222).optional(),
  name: z.string().max(1024).optional(),
  generation: z.union([z.string().max(20), z.number().int().nonnegative()]).optional(),
});

const CloudEventSchema = z.looseObject({
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(256),
  source: z.string().min(1).max(1024),
  type: z.string().min(1).max(256),
  subject: z.string().max(1100).optional(),
  bucket: z.string().max(222).optional(),
  data: z.unknown().optional(),
});

/** A Pub/Sub message (pushed or pulled) of a GCS notification as a storage event; undefined when it is none. */
export function storageEventFromPubsub(message: {
  id: string;
  attributes: Record<string, string>;
  data?: Buffer;
}): StorageEvent | undefined {
  const a = message.attributes;
  const type = a.eventType;
  if (!type) return undefined;
  // payloadFormat NONE sends no body; the attributes carry everything needed.
  const data = a.bucketId && a.objectId && a.objectGeneration ? undefined : objectData(message.data);
  const bucket = a.bucketId ?? data?.bucket;
  const object = a.objectId ?? data?.name;
  const generation =
    a.objectGeneration ?? (data?.generation === undefined ? undefined : String(data.generation));
  if (!bucket || !object || !generation) return undefined;
  return event('pubsub', message.id, type, PUBSUB_KINDS[type] ?? 'other', bucket, object, generation);
}

/** A push body (the wrapped envelope) as a storage event; undefined when the message is not one. */
export function storageEventFromPushEnvelope(body: unknown): StorageEvent | undefined {
  const parsed = PushEnvelopeSchema.safeParse(body);
  if (!parsed.success) {
    throw new InvalidStorageEventError(
      `not a Pub/Sub push envelope (${issueText(parsed.error)}); expected {"message": {"attributes": …, ` +
        '"data": …, "messageId": …}, "subscription": …} as sent with the default wrapper (pubsubWrapper)',
    );
  }
  return fromMessageJson(parsed.data.message);
}

/**
 * An Eventarc CloudEvent over HTTP as a storage event: structured mode when the content type is
 * `application/cloudevents+json`, binary mode otherwise (`ce-*` headers, the body is the data).
 * Header names are matched case-insensitively. Undefined when it is not an object event.
 */
export function storageEventFromCloudEvent(
  headers: Record<string, string | string[] | undefined>,
  body: unknown,
): StorageEvent | undefined {
  const header = (name: string) => {
    const value = headers[name] ?? headers[Object.keys(headers).find((k) => k.toLowerCase() === name) ?? ''];
    return Array.isArray(value) ? value[0] : value;
  };
  const structured = /^application\/cloudevents\+json\b/i.test(header('content-type') ?? '');
  const candidate = structured
    ? body
    : {
        specversion: header('ce-specversion'),
        id: header('ce-id'),
        source: header('ce-source'),
        type: header('ce-type'),
        subject: header('ce-subject'),
        bucket: header('ce-bucket'),
        data: body,
      };
  const parsed = CloudEventSchema.safeParse(candidate);
  if (!parsed.success) {
    throw new InvalidStorageEventError(
      `not a CloudEvent (${issueText(parsed.error)}); expected ${structured ? 'a structured-mode body with specversion "1.0", id, source and type' : 'binary mode with the headers ce-specversion: 1.0, ce-id, ce-source and ce-type'}`,
    );
  }
  const ce = parsed.data;
  if (ce.type === PUBSUB_PUBLISHED) {
    const wrapped = PushEnvelopeSchema.safeParse(ce.data);
    return wrapped.success ? fromMessageJson(wrapped.data.message) : undefined;
  }
  if (!ce.type.startsWith(CLOUDEVENT_PREFIX)) return undefined;
  const data = ObjectDataSchema.safeParse(ce.data);
  const fields = data.success ? data.data : {};
  const bucket = fields.bucket ?? ce.bucket ?? bucketOfSource(ce.source);
  const object = fields.name ?? (ce.subject?.startsWith('objects/') ? ce.subject.slice(8) : undefined);
  const generation = fields.generation === undefined ? undefined : String(fields.generation);
  if (!bucket || !object || !generation) return undefined;
  const suffix = ce.type.slice(CLOUDEVENT_PREFIX.length);
  const kind = (['finalized', 'deleted', 'archived', 'metadataUpdated'] as const).find((k) => k === suffix);
  return event('cloudevent', ce.id, ce.type, kind ?? 'other', bucket, object, generation);
}

function fromMessageJson(message: PubsubMessageJson): StorageEvent | undefined {
  const data = message.data === undefined ? undefined : Buffer.from(message.data, 'base64');
  return storageEventFromPubsub({
    id: message.messageId ?? message.message_id ?? '',
    attributes: message.attributes ?? {},
    ...(data ? { data } : {}),
  });
}

function event(
  transport: StorageEvent['transport'],
  id: string,
  type: string,
  kind: StorageEventKind,
  bucket: string,
  object: string,
  generation: string,
): StorageEvent | undefined {
  // A generation that is not an int64 cannot be read back or deduplicated: not an event we act on.
  if (!GENERATION.test(generation)) return undefined;
  return { transport, id, kind, type, bucket, object, generation };
}

/** `//storage.googleapis.com/projects/_/buckets/BUCKET`. */
function bucketOfSource(source: string): string | undefined {
  return /\/buckets\/([^/]+)$/.exec(source)?.[1];
}

function objectData(data: Buffer | undefined): z.infer<typeof ObjectDataSchema> | undefined {
  if (!data || data.length === 0) return undefined;
  try {
    const parsed = ObjectDataSchema.safeParse(JSON.parse(data.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function issueText(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
