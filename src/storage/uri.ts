/** Parsing of `gs://bucket/prefix` URIs, with the messages a user needs to fix a bad one. */

export interface GcsLocation {
  bucket: string;
  /** Object-name prefix: '' for the bucket root, otherwise without a leading slash and ending in '/'. */
  prefix: string;
}

export class InvalidModelUriError extends Error {
  override readonly name = 'InvalidModelUriError';
}

// https://cloud.google.com/storage/docs/buckets#naming (dots allow up to 222 chars, 63 per component).
const BUCKET_RE = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

export function isGcsUri(value: string): boolean {
  return value.startsWith('gs://');
}

export function parseGcsUri(uri: string): GcsLocation {
  if (!isGcsUri(uri)) {
    throw new InvalidModelUriError(`"${uri}" is not a gs:// URI; expected gs://BUCKET/PATH/TO/MODEL`);
  }
  const rest = uri.slice('gs://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash + 1);
  if (
    !BUCKET_RE.test(bucket) ||
    bucket.split('.').some((part) => part.length > 63) ||
    bucket.includes('..')
  ) {
    throw new InvalidModelUriError(
      `"${bucket}" in ${uri} is not a valid bucket name (3-63 lowercase letters, digits, '-', '_' or '.')`,
    );
  }
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '.' || s === '..')) {
    throw new InvalidModelUriError(`${uri} contains '.' or '..' path segments; give the folder's real path`);
  }
  if (/[\r\n\0]/.test(path)) {
    throw new InvalidModelUriError(`${uri} contains control characters`);
  }
  return { bucket, prefix: segments.length ? `${segments.join('/')}/` : '' };
}

export function formatGcsUri(location: GcsLocation): string {
  return `gs://${location.bucket}/${location.prefix}`;
}
