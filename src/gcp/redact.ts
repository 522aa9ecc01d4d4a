/**
 * Removes credentials from text that may end up in an error, a log line or a workflow history.
 * Servers and proxies sometimes echo request headers or token-exchange bodies back in an error
 * body, so every message built from a response goes through here.
 */

const MAX_KNOWN_SECRETS = 16;

const SECRET_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  [/\b(Bearer|Basic)\s+[^\s"',;]+/gi, '$1 [REDACTED]'],
  // Google OAuth access tokens and refresh tokens.
  [/\bya29\.[\w.-]+/g, '[REDACTED]'],
  [/\b1\/\/[\w.-]{20,}/g, '[REDACTED]'],
  // JWTs (ID tokens, self-signed service-account assertions, STS subject tokens).
  [/\beyJ[\w-]*\.[\w-]+\.[\w-]*/g, '[REDACTED]'],
  // Hugging Face and other vendor tokens a container may print.
  [/\bhf_[A-Za-z0-9]{20,}/g, '[REDACTED]'],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, '[REDACTED]'],
  // `--hf-token X`, `HF_TOKEN=X`, `api_key: X` and the like, as servers log them.
  [
    /(\b[\w-]*(?:token|secret|password|api[_-]?key)\b["']?\s*(?:[:=]|\s)\s*["']?)(?!\[REDACTED\])(?=[^\s"',;]*[A-Za-z])[^\s"',;]{6,}/gi,
    '$1[REDACTED]',
  ],
  // Token fields in JSON or form bodies.
  [
    /("?(?:access_token|refresh_token|id_token|subject_token|client_secret|private_key|assertion)"?\s*[:=]\s*)("[^"]*"|[^&\s,}]+)/gi,
    '$1"[REDACTED]"',
  ],
];

/** Secrets this process has sent recently; any echo of them is removed even if no pattern matches. */
export class SecretRegistry {
  private readonly secrets: string[] = [];

  remember(secret: string): void {
    if (secret.length < 8 || this.secrets.includes(secret)) return;
    this.secrets.push(secret);
    if (this.secrets.length > MAX_KNOWN_SECRETS) this.secrets.shift();
  }

  /** Remembers the credential part of `authorization`-style header values. */
  rememberHeaders(headers: Record<string, string>): void {
    for (const [key, value] of Object.entries(headers)) {
      if (key.toLowerCase() !== 'authorization') continue;
      this.remember(value);
      const credential = value.replace(/^\S+\s+/, '');
      if (credential !== value) this.remember(credential);
    }
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('[REDACTED]');
    return redactSecrets(out);
  }
}

export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * Stricter scrub for text from a credential exchange, where an unknown secret (a subject token, a
 * key) may appear anywhere: also removes every long word mixing letters and digits, unless it is a
 * file path or URL (contains `/` plus characters base64 never has).
 */
export function redactTokenLike(text: string): string {
  return redactSecrets(text).replace(/[A-Za-z0-9._~+/=-]{20,}/g, (word) => {
    const pathLike = word.includes('/') && /[._~-]/.test(word);
    const mixed = /\d/.test(word) && /[A-Za-z]/.test(word);
    return mixed && !pathLike ? '[REDACTED]' : word;
  });
}
