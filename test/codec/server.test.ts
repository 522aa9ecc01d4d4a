import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AesGcmCodec, Keyring, type RunningCodecServer, startCodecServer } from '../../src/codec';
import { cliCommand } from '../harness/built-cli';

/** The codec server over real HTTP, as the Web UI and `temporal --codec-endpoint` call it. */

const UI = 'http://127.0.0.1:8233';
const TOKEN = 'test-token-0123456789abcdef';
const keys = { k1: randomBytes(32).toString('base64') };
const keyring = Keyring.from({ current: 'k1', keys }, 'test');
const b64 = (value: string) => Buffer.from(value).toString('base64');
const plainPayload = (value: unknown) => {
  const payload = defaultPayloadConverter.toPayload(value);
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(payload.data ?? []).toString('base64'),
  };
};
type PayloadJson = ReturnType<typeof plainPayload>;

let open: RunningCodecServer;
let guarded: RunningCodecServer;
const logs: string[] = [];

beforeAll(async () => {
  const codec = new AesGcmCodec(keyring);
  [open, guarded] = await Promise.all([
    startCodecServer({
      codec,
      port: 0,
      corsOrigins: [UI],
      maxBodyBytes: 64 * 1024,
      log: (l) => logs.push(l),
    }),
    startCodecServer({ codec, port: 0, corsOrigins: [UI], authToken: TOKEN, namespaces: ['default'] }),
  ]);
});
afterAll(async () => {
  await Promise.all([open?.close(), guarded?.close()]);
});

async function post(
  server: RunningCodecServer,
  route: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${server.url}${route}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

describe('codec server', () => {
  it('encodes and decodes with the codec-server protocol, on any path ending in /encode or /decode', async () => {
    const spec = { model: { uri: 'gs://private/llama' } };
    const encoded = await post(open, '/encode', { payloads: [plainPayload(spec), plainPayload('hi')] });
    expect(encoded.status).toBe(200);
    const payloads = encoded.json.payloads as PayloadJson[];
    expect(payloads).toHaveLength(2);
    expect(payloads[0]!.metadata.encoding).toBe(b64('binary/encrypted'));
    expect(payloads[0]!.metadata['encryption-key-id']).toBe(b64('k1'));
    expect(Buffer.from(payloads[0]!.data, 'base64').toString('latin1')).not.toContain('gs://private');

    const decoded = await post(open, '/default/decode', { payloads });
    expect(decoded.status).toBe(200);
    expect(decoded.json).toEqual({ payloads: [plainPayload(spec), plainPayload('hi')] });
    expect(logs.some((line) => /^POST \/default\/decode 200 2 payloads namespace=default$/.test(line))).toBe(
      true,
    );
    expect(logs.join('\n')).not.toContain('gs://private');
  });

  it('answers the browser preflight for the UI origin only, with credentials allowed', async () => {
    const preflight = (origin: string) =>
      fetch(`${open.url}/decode`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'content-type,x-namespace',
        },
      });
    const ok = await preflight(UI);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
    expect(ok.headers.get('vary')).toBe('Origin');

    const other = await preflight('http://evil.example');
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // The POST itself from another page's origin is refused too, not only unreadable.
    const post403 = await post(open, '/decode', { payloads: [] }, { Origin: 'http://evil.example' });
    expect(post403.status).toBe(403);
    const fromUi = await post(open, '/decode', { payloads: [] }, { Origin: UI });
    expect(fromUi.status).toBe(200);
    expect(fromUi.headers.get('access-control-allow-origin')).toBe(UI);
  });

  it('refuses what is not a small JSON request of payloads, saying why', async () => {
    const big = { payloads: [{ metadata: {}, data: b64('x'.repeat(70 * 1024)) }] };
    const tooLarge = await post(open, '/encode', big);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json.error).toBe('the body is over 65536 bytes');

    const badJson = await post(open, '/decode', '{"payloads": [');
    expect(badJson.status).toBe(400);
    expect(badJson.json.error).toMatch(/not valid JSON/);

    const badShape = await post(open, '/decode', { payloads: [{ data: 'not base64!' }] });
    expect(badShape.status).toBe(400);
    expect(badShape.json.error).toMatch(/payloads\.0\.data: must be base64/);

    const notJson = await fetch(`${open.url}/decode`, { method: 'POST', body: '{"payloads":[]}' });
    expect(notJson.status).toBe(415);
    expect((await fetch(`${open.url}/decode`)).status).toBe(405);
    expect((await fetch(`${open.url}/other`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${open.url}/healthz`)).status).toBe(200);
  });

  it('refuses a payload it cannot decrypt with the key id, never the key', async () => {
    const encoded = (await post(open, '/encode', { payloads: [plainPayload('x')] })).json
      .payloads as PayloadJson[];
    const foreign = { ...encoded[0]!, metadata: { ...encoded[0]!.metadata, 'encryption-key-id': b64('k7') } };
    const res = await post(open, '/decode', { payloads: [foreign] });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/encrypted with key "k7", which is not in the keyring/);
    expect(JSON.stringify(res.json)).not.toContain(keys.k1);
  });

  it('with a token, serves only callers presenting it, for the namespaces it serves', async () => {
    const body = { payloads: [plainPayload('x')] };
    expect((await post(guarded, '/encode', body)).status).toBe(401);
    const wrong = await post(guarded, '/encode', body, { Authorization: 'Bearer wrong-token-0123456789' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    const auth = { Authorization: `Bearer ${TOKEN}` };
    expect((await post(guarded, '/encode', body, auth)).status).toBe(200);
    const otherNamespace = await post(guarded, '/encode', body, { ...auth, 'X-Namespace': 'prod' });
    expect(otherNamespace.status).toBe(403);
    expect(otherNamespace.json.error).toMatch(/serves namespace default only/);
    // A browser's preflight carries no credentials: it is answered without the token.
    const preflight = await fetch(`${guarded.url}/decode`, { method: 'OPTIONS', headers: { Origin: UI } });
    expect(preflight.status).toBe(204);
  });
});

describe('garden-deploy codec-server', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'codec-server-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the keyring of GARDEN_DEPLOY_CODEC_KEY_FILE until SIGTERM', async () => {
    const keyFile = path.join(dir, 'keys.json');
    writeFileSync(keyFile, JSON.stringify({ current: 'k1', keys }), { mode: 0o600 });
    const cli = cliCommand('codec-server', '--port', '0', '--json', '--cors-origin', UI);
    const child = spawn(cli.command, cli.args, {
      env: { PATH: process.env.PATH, GARDEN_DEPLOY_CODEC_KEY_FILE: keyFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const first = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    const started = JSON.parse(first) as { url: string; corsOrigins: string[]; keys: unknown };
    expect(started.corsOrigins).toEqual([UI]);
    expect(started.keys).toEqual({ current: 'k1', keys: ['k1'] });
    expect(first).not.toContain(keys.k1);
    const server = { url: started.url } as RunningCodecServer;
    const encoded = await post(server, '/encode', { payloads: [plainPayload('hello')] });
    const decoded = await post(server, '/decode', encoded.json);
    expect(decoded.json).toEqual({ payloads: [plainPayload('hello')] });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('exits 2 without keys, saying how to give them', async () => {
    const cli = cliCommand('codec-server', '--port', '0');
    const child = spawn(cli.command, cli.args, {
      env: { PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/no keys: pass --key-file, or set GARDEN_DEPLOY_CODEC_KEYS/);
  });
});
