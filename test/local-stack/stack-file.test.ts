import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StackInfo,
  StackFileError,
  readStackFile,
  stackFilePath,
  writeStackFile,
} from '../../src/local-stack/stack-file';

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'garden-stack-file-test-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function stackInfo(pid: number): StackInfo {
  return {
    pid,
    startedAt: new Date().toISOString(),
    dataDir,
    temporal: { address: '127.0.0.1:7233', namespace: 'default', uiUrl: 'http://127.0.0.1:8233' },
    gcs: { endpoint: 'http://127.0.0.1:4443' },
    emulator: { url: 'http://127.0.0.1:8780', logFile: path.join(dataDir, 'logs', 'emulator.log') },
    services: [{ name: 'temporal', pid, logFile: path.join(dataDir, 'logs', 'temporal.log') }],
    env: { TEMPORAL_ADDRESS: '127.0.0.1:7233' },
  };
}

describe('stack.json', () => {
  it('reads back what a running dev wrote', () => {
    const info = stackInfo(process.pid);
    expect(writeStackFile(info)).toBe(stackFilePath(dataDir));
    expect(readStackFile(dataDir)).toEqual(info);
  });

  it('ignores the file of a dev that is gone (killed without cleaning up)', () => {
    const exited = spawnSync(process.execPath, ['-e', '']);
    writeStackFile(stackInfo(exited.pid!));
    expect(readStackFile(dataDir)).toBeUndefined();
  });

  it('is undefined when no dev ever ran there', () => {
    expect(readStackFile(path.join(dataDir, 'elsewhere'))).toBeUndefined();
  });

  it('rejects a damaged file, saying what to do', () => {
    writeFileSync(stackFilePath(dataDir), '{"pid": "twelve"}');
    expect(() => readStackFile(dataDir)).toThrow(StackFileError);
    expect(() => readStackFile(dataDir)).toThrow(/delete it and restart garden-deploy dev/);
    writeFileSync(stackFilePath(dataDir), '{not json');
    expect(() => readStackFile(dataDir)).toThrow(`${stackFilePath(dataDir)} is not valid JSON`);
  });
});
