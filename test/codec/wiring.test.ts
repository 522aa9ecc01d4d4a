import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ValueError } from '@temporalio/common';
import { afterAll, describe, expect, it } from 'vitest';
import { reportError } from '../../src/cli/client-command';
import { connectTemporal } from '../../src/client';
import { deploymentStartOptions } from '../../src/client/start';
import { AesGcmCodec, CodecConfigError, PayloadDecryptionError } from '../../src/codec';
import { envForStack } from '../../src/local-stack/stack';
import { WorkerConfigError, describeWorkerConfig, loadWorkerConfig } from '../../src/worker/config';

/** Where the keys reach: the worker's configuration, the client's data converter, the CLI's messages, the stack. */

const dir = mkdtempSync(path.join(os.tmpdir(), 'codec-wiring-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const base = { TEMPORAL_CONFIG_FILE: path.join(dir, 'none.toml') };
const key = randomBytes(32).toString('base64');
const keys = JSON.stringify({ current: 'k1', keys: { k1: key } });

describe('the worker', () => {
  it('encrypts with the keys of GARDEN_DEPLOY_CODEC_KEYS, and says so without them', () => {
    const plain = loadWorkerConfig(base);
    expect(plain.dataConverter).toBeUndefined();
    expect(describeWorkerConfig(plain).payloadEncryption).toBe('off');
    const config = loadWorkerConfig({ ...base, GARDEN_DEPLOY_CODEC_KEYS: keys });
    expect(config.dataConverter?.payloadCodecs?.[0]).toBeInstanceOf(AesGcmCodec);
    const described = JSON.stringify(describeWorkerConfig(config));
    expect(described).toContain('AES-256-GCM (current key k1; keys k1)');
    expect(described).not.toContain(key);
  });

  it('refuses a bad keyring as configuration (exit code 2) without quoting it', () => {
    const broken = JSON.stringify({ current: 'k2', keys: { k1: key } });
    let err: unknown;
    try {
      loadWorkerConfig({ ...base, GARDEN_DEPLOY_CODEC_KEYS: broken });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WorkerConfigError);
    expect((err as Error).message).toMatch(
      /GARDEN_DEPLOY_CODEC_KEYS is not a valid keyring \(current: must name one/,
    );
    expect((err as Error).message).not.toContain(key);
  });

  it('keeps a warning about a key file others may read for its log', () => {
    const file = path.join(dir, 'keys.json');
    writeFileSync(file, keys);
    chmodSync(file, 0o640);
    const config = loadWorkerConfig({ ...base, GARDEN_DEPLOY_CODEC_KEY_FILE: file });
    expect(config.warnings).toEqual([
      `the keyring file ${file} can be read by group or others (mode 640): chmod 600 ${file}`,
    ]);
  });
});

describe('the client', () => {
  it('refuses a bad keyring before connecting', async () => {
    await expect(
      connectTemporal({ env: { ...base, GARDEN_DEPLOY_CODEC_KEYS: '{"current":' } }),
    ).rejects.toThrow(CodecConfigError);
  });

  it('starts deployments without the ModelUri search attribute when it encrypts', () => {
    const spec = { name: 'n', project: 'p', region: 'r', model: { uri: 'gs://b/m' } };
    const names = (withModelUri?: boolean) =>
      deploymentStartOptions(
        spec,
        'q',
        withModelUri === undefined ? {} : { withModelUri },
      ).typedSearchAttributes.map(({ key }) => key.name);
    expect(names()).toContain('ModelUri');
    expect(names(false)).toEqual(['DeployStage', 'DeploymentName', 'GcpProject', 'GcpRegion']);
  });
});

describe('the CLI', () => {
  it('says what to set when a deployment is encrypted and it has no keys, or not the right ones', () => {
    const lines: string[] = [];
    const io = { stdout: (t: string) => lines.push(t), stderr: (t: string) => lines.push(t) };
    expect(reportError('status', new ValueError('Unknown encoding: binary/encrypted'), io)).toBe(2);
    expect(lines.pop()).toBe(
      "garden-deploy status: the deployment's payloads are encrypted and this CLI has no keys: " +
        "set GARDEN_DEPLOY_CODEC_KEY_FILE (or GARDEN_DEPLOY_CODEC_KEYS) to the workers' keyring\n",
    );
    const wrongKey = new PayloadDecryptionError(
      'a payload is encrypted with key "k9", which is not in the keyring',
    );
    expect(reportError('list', wrongKey, io)).toBe(2);
    expect(lines.pop()).toContain('garden-deploy list: a payload is encrypted with key "k9"');
  });
});

describe('the local stack', () => {
  it("gives its processes the stack's keys or none, never the shell's", () => {
    const shell = {
      PATH: '/bin',
      GARDEN_DEPLOY_CODEC_KEYS: keys,
      GARDEN_DEPLOY_CODEC_KEY_FILE: '/elsewhere.json',
    };
    expect(envForStack({ TEMPORAL_ADDRESS: '127.0.0.1:7233' }, shell)).toEqual({
      PATH: '/bin',
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
    });
    expect(envForStack({ GARDEN_DEPLOY_CODEC_KEY_FILE: '/data/codec-keys.json' }, shell)).toEqual({
      PATH: '/bin',
      GARDEN_DEPLOY_CODEC_KEY_FILE: '/data/codec-keys.json',
    });
  });
});
