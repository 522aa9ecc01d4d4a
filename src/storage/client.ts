import { Storage } from '@google-cloud/storage';

export interface StorageConfig {
  /** Base URL of a GCS-compatible endpoint (fake-gcs-server); unset means Google, with ADC. */
  endpoint?: string;
  projectId?: string;
}

/**
 * A `@google-cloud/storage` client. `STORAGE_EMULATOR_HOST` (the client's own convention) or an
 * explicit endpoint points it at fake-gcs-server, where it sends no credentials.
 */
export function createStorage(config: StorageConfig = {}): Storage {
  const endpoint = config.endpoint ?? process.env.STORAGE_EMULATOR_HOST;
  if (!endpoint) return new Storage(config.projectId ? { projectId: config.projectId } : {});
  const apiEndpoint = endpoint.replace(/\/+$/, '');
  const storage = new Storage({
    apiEndpoint,
    projectId: config.projectId ?? 'local-project',
    // Retries hide nothing from us locally and would slow fault-path tests.
    retryOptions: { autoRetry: true, maxRetries: 2 },
  });
  // With STORAGE_EMULATOR_HOST set the client takes that raw URL as its JSON API base (no
  // /storage/v1), so listing and metadata calls 404 on fake-gcs-server; pin the real base.
  storage.baseUrl = `${apiEndpoint}/storage/v1`;
  return storage;
}
