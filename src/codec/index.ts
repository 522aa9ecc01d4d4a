export {
  AesGcmCodec,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  PayloadDecryptionError,
  isEncrypted,
} from './aes-gcm';
export {
  CODEC_ENV_VARIABLES,
  CODEC_KEY_FILE_ENV,
  CODEC_KEYS_ENV,
  type CodecOptions,
  dataConverterFor,
  dataConverterFromEnv,
  describePayloadEncryption,
  keyringFromEnv,
} from './env';
export {
  CodecConfigError,
  KEY_BYTES,
  Keyring,
  type KeyringJson,
  KeyringSchema,
  generateKeyring,
  loadKeyringFile,
  readSecretFile,
  writeNewKeyringFile,
} from './keyring';
export {
  type CodecHandlerOptions,
  type CodecServerOptions,
  DEFAULT_CODEC_PORT,
  DEFAULT_MAX_BODY_BYTES,
  OriginSchema,
  type RunningCodecServer,
  handleCodecRequest,
  localUiOrigins,
  startCodecServer,
} from './server';
