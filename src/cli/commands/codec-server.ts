import { type Command, Option } from 'commander';
import { z } from 'zod';
import { UI_URL_ENV } from '../../client';
import {
  AesGcmCodec,
  CodecConfigError,
  DEFAULT_CODEC_PORT,
  DEFAULT_MAX_BODY_BYTES,
  type Keyring,
  OriginSchema,
  keyringFromEnv,
  loadKeyringFile,
  localUiOrigins,
  readSecretFile,
  startCodecServer,
} from '../../codec';

/** Exit codes: 0 stopped by SIGINT/SIGTERM, 1 could not start (e.g. port taken), 2 bad flags or keys. */
const EXIT_START_FAILED = 1;
const EXIT_BAD_INPUT = 2;

const MAX_TOKEN_FILE_BYTES = 4096;

const Port = z
  .string()
  .regex(/^\d{1,5}$/, '--port must be a port number (0 for a free one)')
  .transform(Number)
  .pipe(z.number().max(65_535, '--port must be at most 65535'));

const FlagsSchema = z.object({
  host: z.string().min(1, '--host must not be empty'),
  port: Port,
  corsOrigin: z.array(OriginSchema).optional(),
  keyFile: z.string().min(1).optional(),
  authTokenFile: z.string().min(1).optional(),
  namespace: z
    .array(z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, '--namespace must be a namespace name'))
    .optional(),
  maxBodyBytes: z
    .string()
    .regex(/^\d+$/, '--max-body-bytes must be a number of bytes')
    .transform(Number)
    .pipe(
      z
        .number()
        .min(1024, '--max-body-bytes must be at least 1024')
        .max(64 * 1024 * 1024, '--max-body-bytes must be at most 64 MiB'),
    ),
  json: z.boolean().default(false),
});
type Flags = z.output<typeof FlagsSchema>;

class CodecServerFlagsError extends Error {
  override readonly name = 'CodecServerFlagsError';
}

export function register(program: Command): void {
  program
    .command('codec-server')
    .summary('serve the payload codec over HTTP for the Temporal Web UI and CLI')
    .description(
      "Serve the payload codec (Temporal's codec-server protocol: POST …/encode and …/decode) so the Temporal Web UI " +
        '(its codec endpoint, e.g. `temporal server start-dev --ui-codec-endpoint URL`) and `temporal --codec-endpoint URL` ' +
        'show payloads decoded. Keys: --key-file, else GARDEN_DEPLOY_CODEC_KEYS or GARDEN_DEPLOY_CODEC_KEY_FILE. ' +
        'Only the --cors-origin pages may read its answers from a browser; with --auth-token-file every call needs ' +
        '`Authorization: Bearer <token>`. Whoever reaches it can decrypt: keep it on 127.0.0.1 or behind your SSO proxy. ' +
        'One log line per request on stderr, never a payload. ' +
        'Exit code 0 when stopped by Ctrl-C/SIGTERM, 1 when it cannot listen, 2 on bad flags or keys.',
    )
    .addOption(new Option('--host <host>', 'address to listen on').default('127.0.0.1'))
    .addOption(
      new Option('--port <port>', 'port, 0 for a free one')
        .env('GARDEN_DEPLOY_CODEC_PORT')
        .default(String(DEFAULT_CODEC_PORT)),
    )
    .option(
      '--cors-origin <origin...>',
      `origins of the Web UI pages that may call it (default: the origin of ${UI_URL_ENV}, else ` +
        `${localUiOrigins(8233).join(' and ')})`,
    )
    .option(
      '--key-file <file>',
      'keyring file (default: GARDEN_DEPLOY_CODEC_KEYS or GARDEN_DEPLOY_CODEC_KEY_FILE)',
    )
    .option('--auth-token-file <file>', 'file holding the bearer token every encode/decode must present')
    .option('--namespace <namespace...>', 'serve only these namespaces (the X-Namespace header)')
    .addOption(
      new Option('--max-body-bytes <bytes>', 'largest request body').default(String(DEFAULT_MAX_BODY_BYTES)),
    )
    .option('--json', 'print one JSON line {url, port, corsOrigins, keys} instead of text')
    .action(async (raw: unknown) => {
      process.exitCode = await runCodecServer(raw);
    });
}

async function runCodecServer(raw: unknown): Promise<number> {
  const say = (line: string) => process.stderr.write(`garden-deploy codec-server: ${line}\n`);
  let flags: Flags;
  let keyring: Keyring;
  let authToken: string | undefined;
  try {
    flags = parseFlags(raw);
    keyring = keysOf(flags, say);
    authToken = flags.authTokenFile ? readToken(flags.authTokenFile, say) : undefined;
  } catch (err) {
    if (!(err instanceof CodecServerFlagsError || err instanceof CodecConfigError)) throw err;
    say(err.message);
    return EXIT_BAD_INPUT;
  }
  const corsOrigins = flags.corsOrigin ?? defaultCorsOrigins(process.env);
  let server;
  try {
    server = await startCodecServer({
      codec: new AesGcmCodec(keyring),
      host: flags.host,
      port: flags.port,
      corsOrigins,
      ...(authToken ? { authToken } : {}),
      ...(flags.namespace ? { namespaces: flags.namespace } : {}),
      maxBodyBytes: flags.maxBodyBytes,
      log: say,
    });
  } catch (err) {
    say(`cannot listen on ${flags.host}:${flags.port}: ${(err as Error).message}`);
    return EXIT_START_FAILED;
  }
  process.stdout.write(
    flags.json
      ? `${JSON.stringify({ url: server.url, port: server.port, corsOrigins, keys: keyring.toJSON(), auth: Boolean(authToken) })}\n`
      : [
          `garden-deploy codec server on ${server.url} (AES-256-GCM, ${keyring.describe()})`,
          `  Web UI:        its codec endpoint ${server.url} (temporal server start-dev --ui-codec-endpoint ${server.url}); CORS for ${corsOrigins.join(', ')}`,
          `  Temporal CLI:  temporal workflow show --workflow-id ID --codec-endpoint ${server.url}`,
          `  auth:          ${authToken ? `bearer token from ${flags.authTokenFile}` : `none: whoever reaches ${server.url} can decrypt`}`,
          'Press Ctrl-C to stop.',
          '',
        ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}

function parseFlags(raw: unknown): Flags {
  const parsed = FlagsSchema.safeParse(raw);
  if (!parsed.success)
    throw new CodecServerFlagsError(parsed.error.issues.map((issue) => issue.message).join('; '));
  return parsed.data;
}

function keysOf(flags: Flags, warn: (message: string) => void): Keyring {
  const keyring = flags.keyFile
    ? loadKeyringFile(flags.keyFile, warn)
    : keyringFromEnv(process.env, { warn });
  if (!keyring) {
    throw new CodecServerFlagsError(
      'no keys: pass --key-file, or set GARDEN_DEPLOY_CODEC_KEYS (the keyring JSON) or GARDEN_DEPLOY_CODEC_KEY_FILE',
    );
  }
  return keyring;
}

function readToken(file: string, warn: (message: string) => void): string {
  const token = readSecretFile(file, MAX_TOKEN_FILE_BYTES, 'auth token', warn).trim();
  if (!/^[\x21-\x7e]{16,}$/.test(token)) {
    throw new CodecServerFlagsError(
      `the auth token file ${file} must hold one token of at least 16 printable characters`,
    );
  }
  return token;
}

/** The configured Web UI's origin, else the local stack's UI on its default port. */
function defaultCorsOrigins(env: NodeJS.ProcessEnv): string[] {
  const ui = env[UI_URL_ENV];
  if (ui) {
    try {
      return [new URL(ui).origin];
    } catch {
      // An invalid UI URL is the client's to report; fall back to the local UI.
    }
  }
  return localUiOrigins(8233);
}
