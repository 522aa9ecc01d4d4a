import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { type Payload, defaultPayloadConverter } from '@temporalio/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AesGcmCodec,
  CodecConfigError,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  Keyring,
  PayloadDecryptionError,
  dataConverterFromEnv,
  describePayloadEncryption,
  generateKeyring,
  keyringFromEnv,
  writeNewKeyringFile,
} from '../../src/codec';

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');
const ring = (current: string, keys: Record<string, string>) =>
  Keyring.from({ current, keys }, 'test keyring');
const text = (payload: Payload) => Buffer.from(payload.data ?? []).toString('utf8');
const meta = (payload: Payload, key: string) => Buffer.from(payload.metadata?.[key] ?? []).toString('utf8');

const SPEC = { model: { uri: 'gs://secret-bucket/llama-ft' }, smoke: { prompt: 'What is the launch code?' } };

const tmp = mkdtempSync(path.join(os.tmpdir(), 'codec-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('AES-256-GCM payload codec', () => {
  it('round-trips payloads whole (metadata and data), with a fresh IV each time', async () => {
    const codec = new AesGcmCodec(ring('k1', { k1 }));
    const plain = [defaultPayloadConverter.toPayload(SPEC), defaultPayloadConverter.toPayload(null)];
    const encoded = await codec.encode(plain);
    for (const payload of encoded) {
      expect(meta(payload, 'encoding')).toBe(ENCRYPTED_ENCODING);
      expect(meta(payload, KEY_ID_METADATA)).toBe('k1');
      expect(Object.keys(payload.metadata ?? {}).sort()).toEqual([KEY_ID_METADATA, 'encoding'].sort());
      expect(text(payload)).not.toContain('secret-bucket');
    }
    const decoded = await codec.decode(encoded);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([SPEC, null]);
    expect(meta(decoded[0]!, 'encoding')).toBe('json/plain');
    // The same payload twice: two IVs, two ciphertexts.
    const [again] = await codec.encode([plain[0]!]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(encoded[0]!.data!))).toBe(false);
  });

  it('leaves payloads already encrypted, and plain ones on decode, as they are', async () => {
    const codec = new AesGcmCodec(ring('k1', { k1 }));
    const [once] = await codec.encode([defaultPayloadConverter.toPayload(SPEC)]);
    const [twice] = await codec.encode([once!]);
    expect(twice).toBe(once);
    const plain = defaultPayloadConverter.toPayload('hello');
    expect(await codec.decode([plain])).toEqual([plain]);
  });

  it('rotation: encrypts with the current key, still decrypts with the old one', async () => {
    const before = new AesGcmCodec(ring('k1', { k1 }));
    const after = new AesGcmCodec(ring('k2', { k1, k2 }));
    const [old] = await before.encode([defaultPayloadConverter.toPayload(SPEC)]);
    const [fresh] = await after.encode([defaultPayloadConverter.toPayload(SPEC)]);
    expect(meta(fresh!, KEY_ID_METADATA)).toBe('k2');
    const decoded = await after.decode([old!, fresh!]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([SPEC, SPEC]);
    // Once k1 is dropped, its payloads name the missing key.
    const dropped = new AesGcmCodec(ring('k2', { k2 }));
    await expect(dropped.decode([old!])).rejects.toThrow(
      /encrypted with key "k1", which is not in the keyring/,
    );
  });

  it('refuses a tampered payload, and one relabelled with another key id', async () => {
    const codec = new AesGcmCodec(ring('k2', { k1, k2 }));
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload(SPEC)]);
    const data = Buffer.from(sealed!.data!);
    data[20] = data[20]! ^ 1;
    await expect(codec.decode([{ ...sealed!, data }])).rejects.toThrow(PayloadDecryptionError);
    await expect(codec.decode([{ ...sealed!, data }])).rejects.toThrow(/key "k2" failed authentication/);
    // The key id is authenticated too: k1 exists but is not the key it was sealed with.
    const relabelled = {
      ...sealed!,
      metadata: { ...sealed!.metadata, [KEY_ID_METADATA]: Buffer.from('k1') },
    };
    await expect(codec.decode([relabelled])).rejects.toThrow(/key "k1" failed authentication/);
    await expect(codec.decode([{ ...sealed!, data: data.subarray(0, 10) }])).rejects.toThrow(/truncated/);
  });

  it('a wrong key id names the id, never a key', async () => {
    const codec = new AesGcmCodec(ring('k1', { k1 }));
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload(SPEC)]);
    const other = { ...sealed!, metadata: { ...sealed!.metadata, [KEY_ID_METADATA]: Buffer.from('k9') } };
    const err = (await codec.decode([other]).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(err).toBeInstanceOf(PayloadDecryptionError);
    expect(err.message).toContain('"k9"');
    expect(err.message).toContain('keys k1');
    expect(err.message).not.toContain(k1);
  });
});

describe('keyring', () => {
  it('is validated, and its problems never echo a key', () => {
    const bad = [
      { current: 'k3', keys: { k1 } },
      { current: 'k1', keys: { k1: Buffer.from('short').toString('base64') } },
      { current: 'k1', keys: {} },
      { current: 'bad id!', keys: { 'bad id!': k1 } },
      { current: 'k1', keys: { k1 }, extra: k2 },
    ];
    for (const json of bad) {
      const err = (() => {
        try {
          Keyring.from(json, 'GARDEN_DEPLOY_CODEC_KEYS');
        } catch (e) {
          return e as Error;
        }
        throw new Error(`accepted ${Object.keys(json).join()}`);
      })();
      expect(err).toBeInstanceOf(CodecConfigError);
      expect(err.message).toMatch(/^GARDEN_DEPLOY_CODEC_KEYS is not a valid keyring/);
      expect(err.message).not.toContain(k1);
      expect(err.message).not.toContain(k2);
    }
    const notJson = `{"current":"k1","keys":{"k1":"${k1}"`;
    expect(() => Keyring.parse(notJson, 'X')).toThrow('X is not valid JSON');
    expect(() => Keyring.parse(notJson, 'X')).not.toThrow(k1);
  });

  it('shows key ids only, however it is printed', () => {
    const keyring = ring('k2', { k1, k2 });
    for (const shown of [JSON.stringify(keyring), inspect(keyring), String(keyring.describe())]) {
      expect(shown).toContain('k2');
      expect(shown).not.toContain(k1);
      expect(shown).not.toContain(k2);
    }
    expect(
      describePayloadEncryption(
        dataConverterFromEnv({
          GARDEN_DEPLOY_CODEC_KEYS: JSON.stringify({ current: 'k2', keys: { k1, k2 } }),
        }),
      ),
    ).toBe('AES-256-GCM (current key k2; keys k1, k2)');
    expect(describePayloadEncryption(undefined)).toBe('off');
  });

  it('comes from GARDEN_DEPLOY_CODEC_KEYS or GARDEN_DEPLOY_CODEC_KEY_FILE, not both', () => {
    const json = JSON.stringify({ current: 'k1', keys: { k1 } });
    const file = path.join(tmp, 'keys.json');
    writeFileSync(file, json, { mode: 0o600 });
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    expect(keyringFromEnv({}, { warn })).toBeUndefined();
    expect(dataConverterFromEnv({}, { warn })).toBeUndefined();
    expect(keyringFromEnv({ GARDEN_DEPLOY_CODEC_KEYS: json }, { warn })?.ids).toEqual(['k1']);
    expect(keyringFromEnv({ GARDEN_DEPLOY_CODEC_KEY_FILE: file }, { warn })?.ids).toEqual(['k1']);
    expect(keyringFromEnv({}, { warn, fallbackKeyFile: file })?.ids).toEqual(['k1']);
    expect(warnings).toEqual([]);
    expect(() =>
      keyringFromEnv({ GARDEN_DEPLOY_CODEC_KEYS: json, GARDEN_DEPLOY_CODEC_KEY_FILE: file }, { warn }),
    ).toThrow(/both GARDEN_DEPLOY_CODEC_KEYS and GARDEN_DEPLOY_CODEC_KEY_FILE are set/);
    expect(() =>
      keyringFromEnv({ GARDEN_DEPLOY_CODEC_KEY_FILE: path.join(tmp, 'missing.json') }, { warn }),
    ).toThrow(/cannot read the keyring file .*missing\.json: ENOENT/);
  });

  it('warns about a key file that group or others can read, and refuses an oversized one', () => {
    const file = path.join(tmp, 'open.json');
    writeFileSync(file, JSON.stringify({ current: 'k1', keys: { k1 } }));
    chmodSync(file, 0o644);
    const warnings: string[] = [];
    keyringFromEnv({ GARDEN_DEPLOY_CODEC_KEY_FILE: file }, { warn: (m) => warnings.push(m) });
    expect(warnings).toEqual([
      `the keyring file ${file} can be read by group or others (mode 644): chmod 600 ${file}`,
    ]);
    const big = path.join(tmp, 'big.json');
    writeFileSync(big, ' '.repeat(70_000), { mode: 0o600 });
    expect(() => keyringFromEnv({ GARDEN_DEPLOY_CODEC_KEY_FILE: big })).toThrow(/a keyring is at most 65536/);
  });

  it('a new keyring file is owner-only and never written over an existing one', () => {
    const file = path.join(tmp, 'new.json');
    writeNewKeyringFile(file, generateKeyring('dev-1'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(keyringFromEnv({ GARDEN_DEPLOY_CODEC_KEY_FILE: file })?.currentId).toBe('dev-1');
    expect(() => writeNewKeyringFile(file)).toThrow(/EEXIST/);
  });
});
