import { type KeyObject, createSecretKey, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { z } from 'zod';

/**
 * The payload codec's keys: a keyring `{ "current": "k2", "keys": { "k1": "<base64>", "k2": "<base64>" } }`
 * of AES-256 keys. New payloads are encrypted with `current`; every key in `keys` still decrypts,
 * so keys rotate by adding a new one, making it current, and dropping the old one only once no
 * history that must stay readable holds payloads encrypted with it.
 *
 * Key material never leaves this module in a message: errors and logs name key ids only.
 */

export const KEY_BYTES = 32;
/** A keyring is a few hundred bytes; anything much larger is not one. */
const MAX_KEYRING_BYTES = 64 * 1024;
const MAX_KEYS = 100;

export const KeyIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key id is 1-64 letters, digits, ".", "_" or "-"');

const KeySchema = z
  .string()
  .refine(
    (value) => /^[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value, 'base64').length === KEY_BYTES,
    { message: `must be ${KEY_BYTES} random bytes in base64 (e.g. \`openssl rand -base64 32\`)` },
  );

export const KeyringSchema = z
  .strictObject({
    current: KeyIdSchema,
    keys: z
      .record(KeyIdSchema, KeySchema)
      .refine((keys) => Object.keys(keys).length > 0, 'must hold at least one key')
      .refine((keys) => Object.keys(keys).length <= MAX_KEYS, `must hold at most ${MAX_KEYS} keys`),
  })
  .refine((ring) => Object.hasOwn(ring.keys, ring.current), {
    message: 'must name one of the keys in "keys"',
    path: ['current'],
  });
export type KeyringJson = z.input<typeof KeyringSchema>;

/** A keyring's problem: what is wrong and where, never a key. */
export class CodecConfigError extends Error {
  override readonly name = 'CodecConfigError';
}

export class Keyring {
  readonly currentId: string;
  readonly #keys: ReadonlyMap<string, KeyObject>;

  private constructor(currentId: string, keys: Map<string, KeyObject>) {
    this.currentId = currentId;
    this.#keys = keys;
  }

  /** Checks a parsed keyring (`source` names where it came from in messages). */
  static from(json: unknown, source: string): Keyring {
    const parsed = KeyringSchema.safeParse(json);
    if (!parsed.success) {
      // Issue paths hold key ids at most; messages are this module's, and never echo values.
      const problems = parsed.error.issues.map(
        (issue) => `${issue.path.length ? issue.path.join('.') : '(keyring)'}: ${issue.message}`,
      );
      throw new CodecConfigError(
        `${source} is not a valid keyring (${problems.join('; ')}); expected ` +
          '{ "current": "<key id>", "keys": { "<key id>": "<32 bytes in base64>", ... } }',
      );
    }
    const keys = new Map(
      Object.entries(parsed.data.keys).map(([id, key]) => [id, createSecretKey(Buffer.from(key, 'base64'))]),
    );
    return new Keyring(parsed.data.current, keys);
  }

  /** A keyring in JSON text: a parse error says where, not what (the text holds keys). */
  static parse(text: string, source: string): Keyring {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CodecConfigError(`${source} is not valid JSON; expected a keyring object`);
    }
    return Keyring.from(json, source);
  }

  get ids(): string[] {
    return [...this.#keys.keys()];
  }

  key(id: string): KeyObject | undefined {
    return this.#keys.get(id);
  }

  get currentKey(): KeyObject {
    return this.#keys.get(this.currentId)!;
  }

  /** What may be shown: key ids only. */
  describe(): string {
    return `current key ${this.currentId}; keys ${this.ids.join(', ')}`;
  }

  toJSON(): { current: string; keys: string[] } {
    return { current: this.currentId, keys: this.ids };
  }

  [inspect.custom](): string {
    return `Keyring { ${this.describe()} }`;
  }
}

/**
 * Reads a keyring file, at most 64 KiB. A file that group or others may read is used, with a
 * warning: refusing it would stop a worker over a deployment detail, keeping quiet would hide it.
 */
export function loadKeyringFile(file: string, warn: (message: string) => void): Keyring {
  const text = readSecretFile(file, MAX_KEYRING_BYTES, 'keyring', warn);
  return Keyring.parse(text, `keyring file ${file}`);
}

/** A small file holding a secret (keyring, token), read bounded, its mode checked. */
export function readSecretFile(
  file: string,
  maxBytes: number,
  what: string,
  warn: (message: string) => void,
): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new CodecConfigError(
      `cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new CodecConfigError(`the ${what} file ${file} is not a regular file`);
    if (stat.size > maxBytes) {
      throw new CodecConfigError(
        `the ${what} file ${file} is ${stat.size} bytes; a ${what} is at most ${maxBytes}`,
      );
    }
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      warn(
        `the ${what} file ${file} can be read by group or others (mode ${(stat.mode & 0o777).toString(8)}): ` +
          `chmod 600 ${file}`,
      );
    }
    // One more byte than allowed: a file that grew after fstat is still caught.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) throw new CodecConfigError(`the ${what} file ${file} is over ${maxBytes} bytes`);
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** A new keyring of one random key (the local stack's). */
export function generateKeyring(id = 'dev-1'): KeyringJson {
  return { current: id, keys: { [id]: randomBytes(KEY_BYTES).toString('base64') } };
}

/** Creates `file` (owner-only, never over an existing file) holding a new keyring. */
export function writeNewKeyringFile(file: string, keyring: KeyringJson = generateKeyring()): void {
  writeFileSync(file, `${JSON.stringify(keyring, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
}
