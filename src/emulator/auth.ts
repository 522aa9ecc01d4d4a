import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { EmulatorState, TokenRecord } from './state';

/**
 * OAuth for the emulator. It serves an STS-style token exchange (RFC 8693, like
 * `https://sts.googleapis.com/v1/token`), so google-auth-library's `external_account` credentials
 * obtain access tokens from it through plain Application Default Credentials; every API call
 * then needs one of those tokens as `Authorization: Bearer`.
 */

export const STS_PATH = '/v1/token';
const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = [
  'urn:ietf:params:oauth:token-type:jwt',
  'urn:ietf:params:oauth:token-type:id_token',
  'urn:ietf:params:aws:token-type:aws4_request',
  'urn:ietf:params:oauth:token-type:saml2',
  ACCESS_TOKEN_TYPE,
] as const;

/** Project ADC reports (`GoogleAuth#getProjectId`) for emulator credentials unless another is given. */
export const DEFAULT_CREDENTIALS_PROJECT = 'garden-deploy-local';

/** A workload identity pool provider name; google-auth-library reads the project from it. */
function audienceFor(project: string): string {
  return `//iam.googleapis.com/projects/${project}/locations/global/workloadIdentityPools/garden-deploy-emulator/providers/local`;
}

const TOKEN_RETENTION_MS = 24 * 60 * 60 * 1000;

/** An OAuth error as STS returns it (`{error, error_description}`, HTTP 400/401). */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  constructor(
    readonly error: string,
    readonly description: string,
    readonly httpStatus = 400,
  ) {
    super(description);
  }
}

const TokenExchangeSchema = z.object({
  grant_type: z.string(),
  subject_token: z.string().min(1, 'subject_token is empty').max(16_384),
  subject_token_type: z.enum(SUBJECT_TOKEN_TYPES),
  requested_token_type: z.string().optional(),
  audience: z.string().max(1000).optional(),
  scope: z.string().max(4000).optional(),
  options: z.string().max(4000).optional(),
});

export interface TokenResponse {
  access_token: string;
  issued_token_type: string;
  token_type: 'Bearer';
  expires_in: number;
}

export class TokenAuthority {
  constructor(
    private readonly state: () => EmulatorState,
    private readonly lifetimeSeconds: () => number,
    private readonly onChange: () => void,
  ) {}

  issue(now: number, scope?: string): TokenResponse {
    // Long-expired tokens are forgotten so a long-running emulator's state stays small.
    const tokens = this.state().tokens;
    for (const [key, old] of Object.entries(tokens))
      if (old.expiresAt < now - TOKEN_RETENTION_MS) delete tokens[key];
    const accessToken = `ya29.emulator-${randomBytes(24).toString('base64url')}`;
    const lifetime = this.lifetimeSeconds();
    const record: TokenRecord = { accessToken, issuedAt: now, expiresAt: now + lifetime * 1000 };
    if (scope) record.scope = scope;
    this.state().tokens[accessToken] = record;
    this.onChange();
    return {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: lifetime,
    };
  }

  /** RFC 8693 exchange of a form-encoded request body. */
  exchange(form: URLSearchParams, now: number): TokenResponse {
    const fields: Record<string, string> = {};
    for (const [key, value] of form) fields[key] = value;
    const parsed = TokenExchangeSchema.safeParse(fields);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.join('.');
      throw new OAuthError('invalid_request', `${field || 'request'}: ${issue.message}`);
    }
    const request = parsed.data;
    if (request.grant_type !== TOKEN_EXCHANGE_GRANT) {
      throw new OAuthError('unsupported_grant_type', `grant_type must be ${TOKEN_EXCHANGE_GRANT}`);
    }
    if (request.requested_token_type !== undefined && request.requested_token_type !== ACCESS_TOKEN_TYPE) {
      throw new OAuthError('invalid_request', `requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    return this.issue(now, request.scope);
  }

  /** `valid`, or why the header does not authenticate. */
  check(authorization: string | undefined, now: number): 'valid' | 'missing' | 'invalid' | 'expired' {
    if (!authorization) return 'missing';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) return 'invalid';
    const record = this.state().tokens[match[1]!];
    if (!record) return 'invalid';
    return record.expiresAt > now ? 'valid' : 'expired';
  }

  list(): TokenRecord[] {
    return Object.values(this.state().tokens).sort((a, b) => a.issuedAt - b.issuedAt);
  }
}

/**
 * Writes `external_account` credentials whose token exchange goes to the emulator at
 * `emulatorUrl`, plus the subject-token file they read; returns the credentials file's path.
 * Point `GOOGLE_APPLICATION_CREDENTIALS` at it and google-auth-library's ADC gets emulator tokens.
 * ADC's project lookup (Cloud Resource Manager `projects.get`) is served by the emulator too and
 * answers `options.project`.
 */
export async function writeEmulatorCredentials(
  dir: string,
  emulatorUrl: string,
  options: { project?: string } = {},
): Promise<string> {
  const base = new URL(emulatorUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new Error(`emulator URL must be http(s)://host:port, got ${emulatorUrl}`);
  }
  const folder = path.resolve(dir);
  await mkdir(folder, { recursive: true });
  const subjectTokenFile = path.join(folder, 'emulator-subject-token');
  const credentialsFile = path.join(folder, 'emulator-credentials.json');
  // Any non-empty subject token is accepted; a random one keeps files from different runs apart.
  await writeFile(subjectTokenFile, `local-subject-${randomBytes(16).toString('hex')}`, { mode: 0o600 });
  const credentials = {
    type: 'external_account',
    audience: audienceFor(options.project ?? DEFAULT_CREDENTIALS_PROJECT),
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: new URL(STS_PATH, base).toString(),
    // google-auth-library appends the project to this URL.
    cloud_resource_manager_url: new URL('/v1/projects/', base).toString(),
    credential_source: { file: subjectTokenFile },
  };
  await writeFile(credentialsFile, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  return credentialsFile;
}
