/**
 * Vertex AI (v1beta1) and Compute Engine (v1) REST client over Application Default Credentials.
 * No Temporal here: activities call it with plain arguments and get plain data or a GcpApiError.
 */
import { type AccessTokenSource, googleAuthTokenSource } from './auth';
import { type GcpClientConfig, type GcpClientConfigInput, parseGcpClientConfig } from './config';
import { ComputeClient } from './compute';
import { type ExchangeRecord, HttpTransport } from './http';
import { LoggingClient } from './logging';
import { MonitoringClient } from './monitoring';
import { CloudQuotasClient } from './quotas';
import { PredictionClient } from './prediction';
import { SecretRegistry } from './redact';
import { VertexClient } from './vertex';

export * from './accelerators';
export * from './auth';
export * from './compute';
export * from './config';
export * from './errors';
export { type CallOptions, type ExchangeRecord, routeOf } from './http';
export * from './idempotency';
export * from './input';
export * from './labels';
export * from './logging';
export * from './monitoring';
export * from './names';
export * from './prediction';
export * from './quotas';
export type { ContainerInput } from './serving-resources';
export { redactSecrets } from './redact';
export * from './schemas';
export * from './sse';
export * from './vertex';

export interface GcpClient {
  /** Model Garden `:deploy`, operations, endpoints, models. */
  vertex: VertexClient;
  /** PSC consumer side: addresses, forwarding rules, region operations. */
  compute: ComputeClient;
  /** Chat completions (unary/streaming), predict, rawPredict, streamRawPredict on an endpoint's host. */
  prediction: PredictionClient;
  /** Cloud Monitoring reads (the serving metrics upgrade gates judge, quota usage). */
  monitoring: MonitoringClient;
  /** Cloud Quotas reads (the serving GPU quota limit). */
  quotas: CloudQuotasClient;
  /** Cloud Logging reads (the serving container's lines). */
  logging: LoggingClient;
  config: GcpClientConfig;
}

/** The client's APIs, by the name metrics use for them. */
export type GcpApi = Exclude<keyof GcpClient, 'config'>;

export interface GcpClientDeps {
  /** Credentials; defaults to google-auth-library ADC (or `config.credentialsFile`) with the cloud-platform scope. */
  tokenSource?: AccessTokenSource;
  /** Told of every HTTP exchange with Google, and which API it was (metrics). */
  observe?: (api: GcpApi, exchange: ExchangeRecord) => void;
}

/**
 * Builds the Google API client the deployment activities use.
 *
 * @param config Validated with zod; throws GcpConfigError naming each bad field. Defaults point at
 *   Google (`https://{region}-aiplatform.googleapis.com`, `https://compute.googleapis.com`, dedicated
 *   endpoint hosts); the local emulator only changes the base URLs.
 * @param deps Optional injected token source (tests); otherwise Application Default Credentials.
 *
 * Every call takes `{ signal, timeoutMs }`, throws `GcpApiError` (classified retryable/permanent,
 * with a hint) on failure and `InvalidRequestError` on bad input before sending anything. No token
 * ever appears in a message, a thrown object or a return value.
 */
export function createGcpClient(config: GcpClientConfigInput = {}, deps: GcpClientDeps = {}): GcpClient {
  const parsed = parseGcpClientConfig(config);
  const shared = {
    tokenSource:
      deps.tokenSource ??
      googleAuthTokenSource(parsed.credentialsFile ? { keyFilename: parsed.credentialsFile } : {}),
    userAgent: parsed.userAgent,
    ...(parsed.quotaProjectId ? { quotaProjectId: parsed.quotaProjectId } : {}),
    secrets: new SecretRegistry(),
  };
  const { observe } = deps;
  // One transport per API (the credentials and the secrets they redact shared), so each exchange is
  // counted under its API: Vertex management and prediction are both aiplatform.googleapis.com.
  const transport = (api: GcpApi) =>
    new HttpTransport({
      ...shared,
      ...(observe ? { observe: (exchange: ExchangeRecord) => observe(api, exchange) } : {}),
    });
  return {
    vertex: new VertexClient(transport('vertex'), parsed),
    compute: new ComputeClient(transport('compute'), parsed),
    prediction: new PredictionClient(transport('prediction'), parsed),
    monitoring: new MonitoringClient(transport('monitoring'), parsed),
    quotas: new CloudQuotasClient(transport('quotas'), parsed),
    logging: new LoggingClient(transport('logging'), parsed),
    config: parsed,
  };
}
