import { describe, expect, it } from 'vitest';
import {
  InvalidStorageEventError,
  storageEventFromCloudEvent,
  storageEventFromPubsub,
  storageEventFromPushEnvelope,
} from '../../src/events';

/** Storage events as Google sends them (docs/lifecycle-apis.md §5), read into one shape. */

const OBJECT = 'models/llama-ft/garden-deploy.yaml';
const GENERATION = '1587627537231057';

/** The object resource GCS puts in `data` with payloadFormat JSON_API_V1. */
const objectResource = {
  kind: 'storage#object',
  id: `my-models/${OBJECT}/${GENERATION}`,
  name: OBJECT,
  bucket: 'my-models',
  generation: GENERATION,
  metageneration: '1',
  contentType: 'application/yaml',
  size: '352',
};

const attributes = {
  eventType: 'OBJECT_FINALIZE',
  payloadFormat: 'JSON_API_V1',
  bucketId: 'my-models',
  objectId: OBJECT,
  objectGeneration: GENERATION,
  eventTime: '2026-12-07T21:04:32.279744Z',
  notificationConfig: 'projects/_/buckets/my-models/notificationConfigs/1',
};

const base64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

const expected = {
  kind: 'finalized',
  bucket: 'my-models',
  object: OBJECT,
  generation: GENERATION,
};

describe('Pub/Sub push envelopes', () => {
  it('reads the current shape (both casings of the id and time, deliveryAttempt)', () => {
    const envelope = {
      message: {
        attributes,
        data: base64(objectResource),
        messageId: '2070443601311540',
        message_id: '2070443601311540',
        publishTime: '2026-12-07T21:04:32.4Z',
        publish_time: '2026-12-07T21:04:32.4Z',
      },
      subscription: 'projects/my-project/subscriptions/garden-deploy-push',
      deliveryAttempt: 1,
    };
    expect(storageEventFromPushEnvelope(envelope)).toEqual({
      ...expected,
      transport: 'pubsub',
      id: '2070443601311540',
      type: 'OBJECT_FINALIZE',
    });
  });

  it('reads the older shape with snake_case message_id only', () => {
    const envelope = {
      message: { attributes, data: base64(objectResource), message_id: '136969346945' },
      subscription: 'projects/my-project/subscriptions/s',
    };
    expect(storageEventFromPushEnvelope(envelope)).toMatchObject({ ...expected, id: '136969346945' });
  });

  it('takes bucket, name and generation from the object when attributes lack them', () => {
    const { bucketId: _b, objectId: _o, objectGeneration: _g, ...rest } = attributes;
    const event = storageEventFromPushEnvelope({
      message: { attributes: rest, data: base64(objectResource) },
    });
    expect(event).toMatchObject(expected);
  });

  it('reads payloadFormat NONE (no data) from the attributes', () => {
    const event = storageEventFromPushEnvelope({
      message: { attributes: { ...attributes, payloadFormat: 'NONE' }, messageId: '1' },
    });
    expect(event).toMatchObject(expected);
  });

  it('names the other event types; a message that is no GCS notification is no event', () => {
    const of = (eventType: string) =>
      storageEventFromPushEnvelope({ message: { attributes: { ...attributes, eventType }, messageId: '1' } })
        ?.kind;
    expect(of('OBJECT_DELETE')).toBe('deleted');
    expect(of('OBJECT_ARCHIVE')).toBe('archived');
    expect(of('OBJECT_METADATA_UPDATE')).toBe('metadataUpdated');
    expect(of('SOMETHING_NEW')).toBe('other');
    expect(storageEventFromPushEnvelope({ message: { data: base64({ hello: 1 }), messageId: '1' } })).toBe(
      undefined,
    );
    // A generation that is not an int64 cannot be pinned or deduplicated.
    expect(
      storageEventFromPushEnvelope({
        message: { attributes: { ...attributes, objectGeneration: '12abc' }, messageId: '1' },
      }),
    ).toBe(undefined);
  });

  it('refuses a body that is no envelope, saying what it expected', () => {
    expect(() => storageEventFromPushEnvelope({ attributes })).toThrow(InvalidStorageEventError);
    expect(() => storageEventFromPushEnvelope('x')).toThrow(/pubsubWrapper/);
    expect(() =>
      storageEventFromPushEnvelope({ message: { data: 'x'.repeat(300 * 1024), messageId: '1' } }),
    ).toThrow(InvalidStorageEventError);
  });

  it('reads a pulled message (what fake-gcs-server publishes: id bucket/name#generation, no notificationConfig)', () => {
    const data = Buffer.from(
      JSON.stringify({
        ...objectResource,
        id: `my-models/${OBJECT}#${GENERATION}`,
        metageneration: undefined,
      }),
    );
    const { notificationConfig: _n, ...fakeAttributes } = attributes;
    expect(storageEventFromPubsub({ id: 'm0', attributes: fakeAttributes, data })).toEqual({
      ...expected,
      transport: 'pubsub',
      id: 'm0',
      type: 'OBJECT_FINALIZE',
    });
  });
});

describe('Eventarc CloudEvents', () => {
  const structured = {
    bucket: 'my-models',
    data: objectResource,
    datacontenttype: 'application/json',
    id: '1234567',
    source: '//storage.googleapis.com/projects/_/buckets/my-models',
    specversion: '1.0',
    subject: `objects/${OBJECT}`,
    time: '2021-11-25T21:04:32.279744Z',
    type: 'google.cloud.storage.object.v1.finalized',
  };

  it('reads structured mode (application/cloudevents+json)', () => {
    expect(
      storageEventFromCloudEvent(
        { 'content-type': 'application/cloudevents+json; charset=utf-8' },
        structured,
      ),
    ).toEqual({
      ...expected,
      transport: 'cloudevent',
      id: '1234567',
      type: 'google.cloud.storage.object.v1.finalized',
    });
  });

  it('reads binary mode: ce-* headers (any case), the body is StorageObjectData with generation as a string', () => {
    const headers = {
      'Content-Type': 'application/json',
      'Ce-Id': '1234567',
      'Ce-Source': '//storage.googleapis.com/projects/_/buckets/my-models',
      'Ce-Specversion': '1.0',
      'Ce-Type': 'google.cloud.storage.object.v1.finalized',
      'Ce-Subject': `objects/${OBJECT}`,
      'Ce-Bucket': 'my-models',
      'Ce-Time': '2021-11-25T21:04:32.279744Z',
    };
    expect(storageEventFromCloudEvent(headers, objectResource)).toMatchObject({
      ...expected,
      transport: 'cloudevent',
      id: '1234567',
    });
    // Bucket and name from the subject and source when the data lacks them.
    expect(storageEventFromCloudEvent(headers, { generation: GENERATION })).toMatchObject(expected);
  });

  it('names deleted, archived and metadataUpdated; other CloudEvents are none of ours', () => {
    const of = (type: string) =>
      storageEventFromCloudEvent({ 'content-type': 'application/cloudevents+json' }, { ...structured, type });
    expect(of('google.cloud.storage.object.v1.deleted')?.kind).toBe('deleted');
    expect(of('google.cloud.storage.object.v1.archived')?.kind).toBe('archived');
    expect(of('google.cloud.storage.object.v1.metadataUpdated')?.kind).toBe('metadataUpdated');
    expect(of('google.cloud.audit.log.v1.written')).toBe(undefined);
  });

  it('reads a GCS notification wrapped by an Eventarc Pub/Sub trigger (messagePublished)', () => {
    const event = storageEventFromCloudEvent(
      {
        'ce-id': '9',
        'ce-source': '//pubsub.googleapis.com/projects/p/topics/t',
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      },
      { message: { attributes, data: base64(objectResource), messageId: '77' }, subscription: 'x' },
    );
    expect(event).toMatchObject({ ...expected, transport: 'pubsub', id: '77' });
  });

  it('refuses a request that is no CloudEvent, naming the missing headers', () => {
    expect(() => storageEventFromCloudEvent({ 'content-type': 'application/json' }, objectResource)).toThrow(
      /ce-specversion: 1.0, ce-id, ce-source and ce-type/,
    );
    expect(() =>
      storageEventFromCloudEvent(
        { 'content-type': 'application/cloudevents+json' },
        { ...structured, id: '' },
      ),
    ).toThrow(InvalidStorageEventError);
  });
});
