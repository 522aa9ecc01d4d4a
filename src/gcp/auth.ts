import { GoogleAuth } from 'google-auth-library';
import { CLOUD_PLATFORM_SCOPE } from './config';

/**
 * Supplies the credential headers for one request. The client asks for them on every request (the
 * source caches and refreshes) and once more with `forceRefresh` after a 401.
 */
export interface AccessTokenSource {
  getRequestHeaders(options?: { forceRefresh?: boolean }): Promise<Record<string, string>>;
}

/**
 * Application Default Credentials through google-auth-library: GOOGLE_APPLICATION_CREDENTIALS
 * (service-account key, external-account/workload-identity config, …), gcloud's ADC file, or the
 * metadata server. `keyFilename` pins one ADC file instead of the search.
 */
export function googleAuthTokenSource(
  options: { keyFilename?: string; auth?: GoogleAuth } = {},
): AccessTokenSource {
  const auth =
    options.auth ??
    new GoogleAuth({
      scopes: [CLOUD_PLATFORM_SCOPE],
      ...(options.keyFilename ? { keyFilename: options.keyFilename } : {}),
    });
  return {
    async getRequestHeaders({ forceRefresh = false } = {}) {
      const client = await auth.getClient();
      if (forceRefresh) {
        // Marking the cached token expired makes every client type (user refresh token, service
        // account, external account, metadata server) fetch a new one while keeping what it needs
        // to do so (e.g. the refresh token).
        client.setCredentials({ ...client.credentials, expiry_date: 1 });
      }
      const headers = await client.getRequestHeaders();
      const out: Record<string, string> = {};
      headers.forEach((value, key) => {
        out[key.toLowerCase()] = value;
      });
      return out;
    },
  };
}
