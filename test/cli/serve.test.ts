import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENCRYPTED_ENCODING, writeNewKeyringFile } from '../../src/codec';
import { tokenLine } from '../../src/http/auth';
import { publicSpec } from '../activities/env';
import { cliCommand } from '../harness/built-cli';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import { type TestApi, call } from '../http/harness';
import { baseEnv, runCli } from './run-cli';

/**
 * `garden-deploy serve` as users run it (the built CLI): `hash-token`, the refusal to run without
 * credentials, and a server on the Temporal dev server with a payload keyring, whose deployments'
 * payloads are encrypted exactly as the CLI's (same connection, same data converter).
 */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'serve-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await closeTestEnv();
});

describe('garden-deploy serve', () => {
  it('hash-token prints the tokens file line of the token on stdin', async () => {
    const token = randomUUID();
    const result = await runCli(['serve', 'hash-token', 'ci'], {}, `${token}\n`);
    expect(result).toMatchObject({ code: 0, stdout: `${tokenLine('ci', token)}\n` });
    const short = await runCli(['serve', 'hash-token', 'ci'], {}, 'short');
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/at least 16 printable characters/);
  });

  it('refuses to run without credentials, or with a tokens file that holds no digest (exit 2)', async () => {
    const none = await runCli(['serve', '--listen', '127.0.0.1:0'], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no credentials: give --token-file/);
    const file = path.join(dir, 'plain.txt');
    await writeFile(file, 'ci my-plain-secret-token-value\n', { mode: 0o600 });
    const plain = await runCli(['serve', '--listen', '127.0.0.1:0'], {
      GARDEN_DEPLOY_SERVE_TOKEN_FILE: file,
    });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/line 1 is not "<name> sha256:<64 hex digits>"/);
    expect(plain.stderr).not.toContain('my-plain-secret');
  });

  it('refuses a malformed storage-event option at start (exit 2), naming its flag and variable', async () => {
    const tokens = tokenLine('ci', randomUUID());
    const result = await runCli(['serve', '--listen', '127.0.0.1:0'], {
      GARDEN_DEPLOY_SERVE_TOKENS: tokens,
      GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION: 'garden-deploy-pull',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /--pubsub-subscription \(GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION\) must be projects\/PROJECT\/subscriptions\/SUBSCRIPTION/,
    );
    expect(result.stderr).not.toMatch(/cannot listen/);
  });

  it('serves the API on Temporal with the CLI’s data converter: payloads encrypted with the keyring', async () => {
    const { temporalAddress, namespace, client } = await getTestEnv();
    const keyFile = path.join(dir, 'keys.json');
    writeNewKeyringFile(keyFile);
    const token = randomUUID();
    const tokensFile = path.join(dir, 'tokens.txt');
    await writeFile(tokensFile, `${tokenLine('ci', token)}\n`, { mode: 0o600 });
    const cli = cliCommand('serve', '--listen', '127.0.0.1:0');
    const child: ChildProcess = spawn(cli.command, cli.args, {
      env: {
        ...baseEnv(),
        TEMPORAL_ADDRESS: temporalAddress,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_CONFIG_FILE: path.join(dir, 'none.toml'),
        GARDEN_DEPLOY_CODEC_KEY_FILE: keyFile,
        GARDEN_DEPLOY_SERVE_TOKEN_FILE: tokensFile,
        GARDEN_DEPLOY_TASK_QUEUE: uniqueTaskQueue('serve-cli'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const url = await eventually(
        'serve listening',
        async () => /listening on (http:\/\/\S+)/.exec(stderr)?.[1],
      );
      expect(stderr).toMatch(/payloads encrypted; auth: 1 static token\(s\)/);
      const api = { url } as TestApi;
      expect((await call(api, 'GET', '/healthz')).status).toBe(200);
      expect((await call(api, 'GET', '/v1/deployments')).status).toBe(401);

      // No worker polls this task queue: the deployment is started and waits, its input encrypted.
      const spec = publicSpec(`serve-${randomUUID().slice(0, 8)}`, 'gs://nowhere/models/tiny/', 'sealed');
      const created = await call(api, 'POST', '/v1/deployments', { token, key: randomUUID(), body: spec });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ started: true, waitingForWorker: true });
      const { workflowId } = created.body as { workflowId: string };
      try {
        const history = await client.workflow.getHandle(workflowId).fetchHistory();
        const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
        expect(Buffer.from(input?.metadata?.encoding ?? []).toString()).toBe(ENCRYPTED_ENCODING);
        expect(Buffer.from(input?.data ?? []).toString('latin1')).not.toContain('gs://nowhere');
        const progress = await call(
          api,
          'GET',
          `/v1/deployments/${spec.project}/${spec.region}/${spec.name}`,
          {
            token,
          },
        );
        expect(progress.status).toBe(200);
        expect(progress.body).toMatchObject({ workflowId, status: 'RUNNING' });
      } finally {
        await client.workflow.getHandle(workflowId).terminate('test over');
      }
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
