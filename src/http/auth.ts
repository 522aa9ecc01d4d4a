import { createHash, createPublicKey, timingSafeEqual } from 'node:crypto';
import { OAuth2Client } from 'google-auth-library';
import { z } from 'zod';

/**
 * Who calls the API. Two kinds of credentials, both as `Authorization: Bearer <token>`:
 * - static tokens, of which only SHA-256 digests are stored (`<name> sha256:<hex>` per line),
 *   compared in constant time;
 * - Google-signed OIDC ID tokens (a service account's, e.g. a Pub/Sub push subscription's or a
 *   Cloud Scheduler job's), verified by google-auth-library against the configured audiences, then
 *   allowed when their verified `email` is one of the allowed service accounts.
 * No token is ever logged, echoed or put in an error: google-auth-library's messages quote the
 * token, so they are replaced by ours.
 */

export const GOOGLE_JWKS_URL = 'https://www.googleapis.com/oauth2/v3/certs';
const GOOGLE_ISSUERS = ['accounts.google.com', 'https://accounts.google.com'];

export interface Principal {
  /** `token:<name>` or `oidc:<email>`: what the access log and rate limit know the caller by. */
  id: string;
}

export type AuthOutcome =
  { ok: true; principal: Principal } | { ok: false; status: 401 | 403 | 503; message: string };

export interface OidcConfig {
  /**
   * The `aud` values a token may carry, any one of them: the service's URL (Eventarc's default, and
   * what a push subscription's `--push-auth-token-audience` is usually set to) and a push endpoint's
   * full URL (Pub/Sub's default when no audience is set, e.g. `https://HOST/v1/events/pubsub`).
   */
  audiences: string[];
  /** Service account emails allowed to call. */
  allowedServiceAccounts: string[];
  /** JWKS of the signing keys (default Google's). */
  certsUrl?: string;
}

export interface AuthConfig {
  tokens: TokenDigest[];
  oidc?: OidcConfig;
}

export interface TokenDigest {
  name: string;
  /** SHA-256 of the token. */
  digest: Buffer;
}

/** A tokens file (or variable) that cannot be used. */
export class TokenFileError extends Error {
  override readonly name = 'TokenFileError';
}

const TOKEN_NAME = /^[A-Za-z0-9._@-]{1,64}$/;
const TOKEN_LINE = /^(\S+)\s+sha256:([0-9a-f]{64})$/;
/** Header and token bounds: anything longer is no credential of ours. */
const MAX_AUTHORIZATION = 8192;
const MIN_TOKEN_CHARS = 16;

/** `<name> sha256:<hex>` for a token: the line the tokens file holds (`garden-deploy serve hash-token`). */
export function tokenLine(name: string, token: string): string {
  if (!TOKEN_NAME.test(name))
    throw new TokenFileError(`token name "${name}" must match ${TOKEN_NAME.source}`);
  if (token.length < MIN_TOKEN_CHARS || !/^[\x21-\x7e]+$/.test(token))
    throw new TokenFileError(
      `a token is at least ${MIN_TOKEN_CHARS} printable characters without spaces, e.g. \`openssl rand -hex 32\``,
    );
  return `${name} sha256:${sha256(token).toString('hex')}`;
}

/** Parses the tokens file: one `<name> sha256:<hex>` per line; blank lines and `#` comments ignored. */
export function parseTokenDigests(text: string, source: string): TokenDigest[] {
  const digests: TokenDigest[] = [];
  const names = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = TOKEN_LINE.exec(line);
    // Never quote the line: it may hold a token pasted by mistake.
    if (!match || !TOKEN_NAME.test(match[1]!))
      throw new TokenFileError(
        `${source} line ${index + 1} is not "<name> sha256:<64 hex digits>"; make it with ` +
          '`garden-deploy serve hash-token NAME` (the token on stdin)',
      );
    if (names.has(match[1]!)) throw new TokenFileError(`${source} names token "${match[1]}" twice`);
    names.add(match[1]!);
    digests.push({ name: match[1]!, digest: Buffer.from(match[2]!, 'hex') });
  });
  return digests;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

const JwksSchema = z.object({
  keys: z.array(z.object({ kid: z.string().min(1).max(256), kty: z.string() }).passthrough()).max(100),
});
const MAX_JWKS_BYTES = 256 * 1024;
/** Signing keys are kept this long when the answer says nothing (Google's say about 6 h). */
const DEFAULT_CERTS_TTL_MS = 60 * 60_000;
/** An unknown `kid` refetches the keys (a rotation), at most this often. */
const REFETCH_AFTER_MS = 30_000;

export class Authenticator {
  private readonly oidcClient = new OAuth2Client();
  private certs?: { pems: Record<string, string>; fetchedAt: number; expiresAt: number };
  /** The fetch under way, shared by every request that needs the keys meanwhile (a cold cache). */
  private fetching?: Promise<Record<string, string>>;

  constructor(
    private readonly config: AuthConfig,
    private readonly now: () => number = Date.now,
  ) {
    if (config.tokens.length === 0 && !config.oidc)
      throw new TokenFileError('no credentials configured: give a tokens file, or an OIDC audience');
  }

  async authenticate(authorization: string | undefined): Promise<AuthOutcome> {
    if (!authorization) return unauthenticated('send Authorization: Bearer <token>');
    const match = /^Bearer ([\x21-\x7e]+)$/i.exec(authorization);
    if (authorization.length > MAX_AUTHORIZATION || !match)
      return unauthenticated('the Authorization header must be "Bearer <token>"');
    const token = match[1]!;
    const named = this.staticToken(token);
    if (named) return { ok: true, principal: { id: `token:${named}` } };
    if (this.config.oidc && token.split('.').length === 3) return this.oidc(token, this.config.oidc);
    return unauthenticated('the bearer token is not valid');
  }

  /** The name of the static token, comparing every digest in constant time. */
  private staticToken(token: string): string | undefined {
    const digest = sha256(token);
    let found: string | undefined;
    for (const entry of this.config.tokens) if (timingSafeEqual(digest, entry.digest)) found ??= entry.name;
    return found;
  }

  private async oidc(token: string, oidc: OidcConfig): Promise<AuthOutcome> {
    let payload;
    try {
      const pems = await this.signingKeys(oidc, kidOf(token));
      const ticket = await this.oidcClient.verifySignedJwtWithCertsAsync(
        token,
        pems,
        oidc.audiences,
        GOOGLE_ISSUERS,
      );
      payload = ticket.getPayload();
    } catch (err) {
      // Google's keys out of reach says nothing about the token: the caller should retry, not re-auth.
      if (err instanceof SigningKeysError) return { ok: false, status: 503, message: err.message };
      return unauthenticated(`the ID token is not valid: ${reasonOf(err)}`);
    }
    const email = payload?.email?.toLowerCase();
    if (!email || payload?.email_verified !== true)
      return { ok: false, status: 403, message: 'the ID token has no verified email' };
    if (!oidc.allowedServiceAccounts.some((allowed) => allowed.toLowerCase() === email))
      return { ok: false, status: 403, message: `${email} is not allowed to call this API` };
    return { ok: true, principal: { id: `oidc:${email}` } };
  }

  /**
   * The JWKS as PEMs by key id, cached by its max-age; an unknown `kid` refetches it (rotation). One
   * fetch at a time: requests arriving while it runs wait for it instead of fetching again.
   */
  private async signingKeys(oidc: OidcConfig, kid: string | undefined): Promise<Record<string, string>> {
    const now = this.now();
    const cached = this.certs;
    const fresh = cached && now < cached.expiresAt;
    const rotated =
      cached && kid !== undefined && !(kid in cached.pems) && now - cached.fetchedAt > REFETCH_AFTER_MS;
    if (cached && fresh && !rotated) return cached.pems;
    this.fetching ??= this.fetchSigningKeys(oidc).finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async fetchSigningKeys(oidc: OidcConfig): Promise<Record<string, string>> {
    const now = this.now();
    const response = await fetch(oidc.certsUrl ?? GOOGLE_JWKS_URL, {
      signal: AbortSignal.timeout(10_000),
    }).catch((err: unknown) => {
      throw new SigningKeysError(`the signing keys could not be fetched (${(err as Error).message})`);
    });
    if (!response.ok)
      throw new SigningKeysError(`the signing keys could not be fetched (HTTP ${response.status})`);
    const text = await response.text();
    if (text.length > MAX_JWKS_BYTES) throw new SigningKeysError('the signing keys document is too large');
    const parsed = JwksSchema.safeParse(safeJson(text));
    if (!parsed.success) throw new SigningKeysError('the signing keys document is not a JWKS');
    const jwks = parsed.data;
    const pems: Record<string, string> = {};
    for (const key of jwks.keys) {
      // A key Node cannot import (another key type, a field missing) is skipped: a token signed
      // with it fails as "not signed by the keys", the others still verify.
      try {
        pems[key.kid] = createPublicKey({ key: key as never, format: 'jwk' })
          .export({ type: 'spki', format: 'pem' })
          .toString();
      } catch {
        continue;
      }
    }
    if (Object.keys(pems).length === 0)
      throw new SigningKeysError('the signing keys document holds no key that can be used');
    const maxAge = /max-age=(\d+)/.exec(response.headers.get('cache-control') ?? '')?.[1];
    const ttl = maxAge ? Number(maxAge) * 1000 : DEFAULT_CERTS_TTL_MS;
    this.certs = { pems, fetchedAt: now, expiresAt: now + ttl };
    return pems;
  }
}

/** The ID tokens' signing keys cannot be had: nothing is known about the token. */
class SigningKeysError extends Error {
  override readonly name = 'SigningKeysError';
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function unauthenticated(message: string): AuthOutcome {
  return { ok: false, status: 401, message };
}

function kidOf(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as unknown;
    const kid = (header as { kid?: unknown })?.kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** google-auth-library's reason, without the token or claims it quotes. */
function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  const known: Array<[RegExp, string]> = [
    [/too late/i, 'it has expired'],
    [/too early/i, 'it is not valid yet'],
    [/too far in future/i, 'it expires too far in the future'],
    [/Wrong recipient|audience/i, 'it is for another audience'],
    [/issuer/i, 'it is from another issuer'],
    [/signature|No pem found/i, 'its signature does not verify against the signing keys'],
  ];
  return known.find(([pattern]) => pattern.test(message))?.[1] ?? 'it is malformed';
}
