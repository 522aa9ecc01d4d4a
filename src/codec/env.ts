import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec } from './aes-gcm';
import { CodecConfigError, Keyring, loadKeyringFile } from './keyring';

/**
 * The one place that turns configuration into the data converter the client, the worker, the CLI
 * and the codec server use: without keys, none (payloads are plain JSON, as before); with keys,
 * the AES-256-GCM codec.
 */

/** The keyring itself, as JSON (for secret stores that inject variables). */
export const CODEC_KEYS_ENV = 'GARDEN_DEPLOY_CODEC_KEYS';
/** A file holding the keyring JSON (mode 600). */
export const CODEC_KEY_FILE_ENV = 'GARDEN_DEPLOY_CODEC_KEY_FILE';
export const CODEC_ENV_VARIABLES = [CODEC_KEYS_ENV, CODEC_KEY_FILE_ENV] as const;

export interface CodecOptions {
  /** Told about a key file that group or others may read (default: a Node.js process warning). */
  warn?: (message: string) => void;
  /** Used when the environment names no keys: a key file found another way (the local stack's). */
  fallbackKeyFile?: string;
}

/**
 * The keyring the environment names (`GARDEN_DEPLOY_CODEC_KEYS` or `GARDEN_DEPLOY_CODEC_KEY_FILE`,
 * not both), else `options.fallbackKeyFile`'s, else none. Throws `CodecConfigError`.
 */
export function keyringFromEnv(
  env: Record<string, string | undefined> = process.env,
  options: CodecOptions = {},
): Keyring | undefined {
  const warn = options.warn ?? defaultWarn;
  const inline = env[CODEC_KEYS_ENV];
  const file = env[CODEC_KEY_FILE_ENV];
  if (inline && file) {
    throw new CodecConfigError(`both ${CODEC_KEYS_ENV} and ${CODEC_KEY_FILE_ENV} are set; set only one`);
  }
  if (inline) return Keyring.parse(inline, CODEC_KEYS_ENV);
  if (file) return loadKeyringFile(file, warn);
  if (options.fallbackKeyFile) return loadKeyringFile(options.fallbackKeyFile, warn);
  return undefined;
}

/** The data converter for the configured keys, or undefined when payloads are not encrypted. */
export function dataConverterFromEnv(
  env: Record<string, string | undefined> = process.env,
  options: CodecOptions = {},
): DataConverter | undefined {
  const keyring = keyringFromEnv(env, options);
  return keyring ? dataConverterFor(keyring) : undefined;
}

export function dataConverterFor(keyring: Keyring): DataConverter {
  return { payloadCodecs: [new AesGcmCodec(keyring)] };
}

/** What a log line may say about a data converter: the cipher and key ids, never keys. */
export function describePayloadEncryption(dataConverter: DataConverter | undefined): string {
  const codec = dataConverter?.payloadCodecs?.find((c): c is AesGcmCodec => c instanceof AesGcmCodec);
  return codec ? `AES-256-GCM (${codec.keyring.describe()})` : 'off';
}

function defaultWarn(message: string): void {
  process.emitWarning(message, { code: 'GARDEN_DEPLOY_CODEC' });
}
