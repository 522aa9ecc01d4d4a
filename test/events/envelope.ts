/** The attributes of a GCS notification (Pub/Sub push) for one object's finalize. */
export function finalizeAttributes(bucket: string, object: string, generation: string) {
  return { eventType: 'OBJECT_FINALIZE', bucketId: bucket, objectId: object, objectGeneration: generation };
}
