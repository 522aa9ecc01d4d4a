import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator, TokenFileError, parseTokenDigests, tokenLine } from '../../src/http/auth';
import { RateLimiter } from '../../src/http/rate-limit';
import { ALLOWED_SA, AUDIENCE, type Issuer, OTHER_SA, startIssuer, staticToken } from './harness';

/**
 * Who may call the API: static tokens known by digest only, and Google-style ID tokens verified
 * against a local JWKS, the audience and the allowed service accounts. No message quotes a token.
 */

let issuer: Issuer;
beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(() => issuer.close());

function authenticator(allowed = [ALLOWED_SA], audiences = [AUDIENCE]) {
  const { token, tokens } = staticToken('ci');
  const auth = new Authenticator({
    tokens,
    oidc: { audiences, allowedServiceAccounts: allowed, certsUrl: issuer.certsUrl },
  });
  return { auth, token };
}

describe('static bearer tokens', () => {
  it('are stored as digests and recognised by name', async () => {
    const { auth, token } = authenticator();
    expect(await auth.authenticate(`Bearer ${token}`)).toEqual({ ok: true, principal: { id: 'token:ci' } });
    expect(await auth.authenticate(`bearer ${token}`)).toMatchObject({ ok: true });
    const wrong = await auth.authenticate(`Bearer ${token.slice(0, -1)}x`);
    expect(wrong).toMatchObject({ ok: false, status: 401 });
    expect(JSON.stringify(wrong)).not.toContain(token.slice(0, 12));
    expect(await auth.authenticate(undefined)).toMatchObject({ ok: false, status: 401 });
    expect(await auth.authenticate(`Basic ${token}`)).toMatchObject({ ok: false, status: 401 });
  });

  it('file lines are "<name> sha256:<hex>"; anything else is refused without quoting the line', () => {
    const line = tokenLine('deployer', 'a'.repeat(32));
    expect(line).toMatch(/^deployer sha256:[0-9a-f]{64}$/);
    expect(parseTokenDigests(`# comment\n\n${line}\n`, 'f')).toHaveLength(1);
    expect(() => parseTokenDigests(`deployer ${'s3cr3t'.repeat(4)}`, 'the file')).toThrow(
      /the file line 1 is not "<name> sha256:<64 hex digits>"/,
    );
    try {
      parseTokenDigests(`deployer ${'s3cr3t'.repeat(4)}`, 'f');
    } catch (err) {
      expect((err as Error).message).not.toContain('s3cr3t');
    }
    expect(() => parseTokenDigests(`${line}\n${line}`, 'f')).toThrow(/twice/);
    expect(() => tokenLine('ci', 'short')).toThrow(TokenFileError);
  });
});

describe('Google OIDC ID tokens', () => {
  it('a valid token of an allowed service account passes, as oidc:<email>', async () => {
    const { auth } = authenticator();
    expect(await auth.authenticate(`Bearer ${issuer.sign()}`)).toEqual({
      ok: true,
      principal: { id: `oidc:${ALLOWED_SA}` },
    });
  });

  it('accepts any of several audiences: the service URL (Eventarc) and a push endpoint (Pub/Sub’s default)', async () => {
    const url = 'https://deploy.example.test';
    const { auth } = authenticator([ALLOWED_SA], [url, `${url}/v1/events/pubsub`]);
    for (const aud of [url, `${url}/v1/events/pubsub`])
      expect(await auth.authenticate(`Bearer ${issuer.sign({ aud })}`)).toEqual({
        ok: true,
        principal: { id: `oidc:${ALLOWED_SA}` },
      });
    const other = await auth.authenticate(`Bearer ${issuer.sign({ aud: `${url}/v1/events/cloudevents` })}`);
    expect(other).toMatchObject({
      ok: false,
      status: 401,
      message: expect.stringMatching(/another audience/),
    });
  });

  it.each([
    [
      'expired',
      { exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200 },
      /expired/,
    ],
    ['for another audience', { aud: 'https://elsewhere.test' }, /another audience/],
    ['from another issuer', { iss: 'https://evil.test' }, /another issuer/],
  ])('401 when %s', async (_what, claims, reason) => {
    const { auth } = authenticator();
    const token = issuer.sign(claims);
    const outcome = await auth.authenticate(`Bearer ${token}`);
    expect(outcome).toMatchObject({ ok: false, status: 401 });
    expect(outcome.ok ? '' : outcome.message).toMatch(reason);
    expect(JSON.stringify(outcome)).not.toContain(token.split('.')[2]!.slice(0, 20));
  });

  it('401 when signed by a key the JWKS does not hold', async () => {
    const { auth } = authenticator();
    const outcome = await auth.authenticate(`Bearer ${issuer.sign({}, { key: 'untrusted' })}`);
    expect(outcome).toMatchObject({ ok: false, status: 401, message: expect.stringMatching(/signature/) });
  });

  it('503 when the signing keys cannot be fetched: nothing is known about the token', async () => {
    const auth = new Authenticator({
      tokens: [],
      oidc: {
        audiences: [AUDIENCE],
        allowedServiceAccounts: [ALLOWED_SA],
        certsUrl: 'http://127.0.0.1:9/certs',
      },
    });
    const token = issuer.sign();
    const outcome = await auth.authenticate(`Bearer ${token}`);
    expect(outcome).toMatchObject({ ok: false, status: 503, message: expect.stringMatching(/signing keys/) });
    expect(JSON.stringify(outcome)).not.toContain(token.split('.')[2]!.slice(0, 20));
  });

  it('skips signing keys Node cannot import: tokens of the usable key still verify', async () => {
    const mixed = await startIssuer({
      extraKeys: [
        { kid: 'no-modulus', kty: 'RSA', alg: 'RS256' },
        { kid: 'unknown-type', kty: 'weird' },
      ],
    });
    try {
      const auth = new Authenticator({
        tokens: [],
        oidc: { audiences: [AUDIENCE], allowedServiceAccounts: [ALLOWED_SA], certsUrl: mixed.certsUrl },
      });
      expect(await auth.authenticate(`Bearer ${mixed.sign()}`)).toEqual({
        ok: true,
        principal: { id: `oidc:${ALLOWED_SA}` },
      });
    } finally {
      await mixed.close();
    }
  });

  it('503 when no signing key can be used', async () => {
    const unusable = await startIssuer({
      extraKeys: [{ kid: 'no-modulus', kty: 'RSA' }],
      publishSigningKey: false,
    });
    try {
      const auth = new Authenticator({
        tokens: [],
        oidc: { audiences: [AUDIENCE], allowedServiceAccounts: [ALLOWED_SA], certsUrl: unusable.certsUrl },
      });
      const outcome = await auth.authenticate(`Bearer ${unusable.sign()}`);
      expect(outcome).toMatchObject({ ok: false, status: 503, message: expect.stringMatching(/no key/) });
    } finally {
      await unusable.close();
    }
  });

  it('one fetch of the signing keys for concurrent requests on a cold cache', async () => {
    const cold = await startIssuer();
    try {
      const auth = new Authenticator({
        tokens: [],
        oidc: { audiences: [AUDIENCE], allowedServiceAccounts: [ALLOWED_SA], certsUrl: cold.certsUrl },
      });
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () => auth.authenticate(`Bearer ${cold.sign()}`)),
      );
      expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
      expect(cold.fetches()).toBe(1);
    } finally {
      await cold.close();
    }
  });

  it('403 for a valid token of a service account not allowed, or without a verified email', async () => {
    const { auth } = authenticator();
    expect(await auth.authenticate(`Bearer ${issuer.sign({ email: OTHER_SA })}`)).toMatchObject({
      ok: false,
      status: 403,
      message: `${OTHER_SA} is not allowed to call this API`,
    });
    expect(await auth.authenticate(`Bearer ${issuer.sign({ email_verified: false })}`)).toMatchObject({
      ok: false,
      status: 403,
    });
  });
});

describe('rate limit', () => {
  it('allows the burst, then refuses with the seconds to wait, refilled over time', () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 60, burst: 2 }, { now: () => now });
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 1]);
    expect(limiter.take('b')).toBe(0);
    now += 1_000;
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(1);
  });
});
