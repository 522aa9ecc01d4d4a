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
  return new Storage({
    apiEndpoint: endpoint.replace(/\/+$/, ''),
    projectId: config.projectId ?? 'local-project',
    // Retries hide nothing from us locally and would slow fault-path tests.
    retryOptions: { autoRetry: true, maxRetries: 2 },
  });
}
