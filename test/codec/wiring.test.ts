import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AesGcmCodec, CodecConfigError } from '../../src/codec';
import { connectTemporal } from '../../src/client';
import { deploymentStartOptions } from '../../src/client/start';
import { envForStack } from '../../src/local-stack/stack';
import { WorkerConfigError, describeWorkerConfig, loadWorkerConfig } from '../../src/worker/config';

/** Where the keys reach: the worker's configuration and the client's data converter. */

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
