import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node' with { 'resolution-mode': 'import' };
import { startEmulator } from '../../src/emulator';
import { startFakeGcs } from '../../src/local-stack/fake-gcs';
import { findFreePort } from '../../src/local-stack/process';
import { startTemporalDevServer } from '../../src/local-stack/temporal';
import { requireTool } from '../../src/local-stack/tools';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../src/tracing';
import { ensureBuilt } from './built-cli';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    temporalDbFile: string;
    temporalBinary: string;
    gcsEndpoint: string;
    emulatorUrl: string;
    dataDir: string;
    workflowBundlePath: string;
  }
}

/**
 * Starts the real parts once for the whole run, each on a free port: the pinned Temporal dev
 * server (SQLite file, project search attributes), fake-gcs-server and the emulator; bundles the
 * workflow code once for every test worker (a webpack build costs seconds of CPU each time).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensureBuilt();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'garden-deploy-test-'));
  const temporalBinary = requireTool('temporal');
  const temporalDbFile = path.join(dataDir, 'temporal.db');
  const workflowBundlePath = path.join(dataDir, 'workflow-bundle.js');
  const [temporal, gcs] = await Promise.all([
    findFreePort().then((port) =>
      startTemporalDevServer({
        binary: temporalBinary,
        port,
        dbFile: temporalDbFile,
        logFile: path.join(dataDir, 'logs', 'temporal.log'),
      }),
    ),
    findFreePort().then((port) =>
      startFakeGcs({
        binary: requireTool('fakeGcs'),
        port,
        rootDir: path.join(dataDir, 'gcs'),
        logFile: path.join(dataDir, 'logs', 'fake-gcs.log'),
      }),
    ),
    bundleWorkflowCode({
      workflowsPath: path.resolve(__dirname, '../../src/workflows/index.ts'),
      // As the product's bundle (src/worker/bundle.ts): tracing's workflow interceptors included.
      workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    }).then(({ code }) => writeFile(workflowBundlePath, code)),
  ]);
  project.provide('temporalAddress', temporal.address);
  project.provide('temporalNamespace', temporal.namespace);
  project.provide('temporalDbFile', temporalDbFile);
  project.provide('temporalBinary', temporalBinary);
  // The Vertex/Compute emulator, in-process; its serving container reads from fake-gcs-server.
  const emulator = await startEmulator({ port: 0, gcsEndpoint: gcs.endpoint });
  project.provide('gcsEndpoint', gcs.endpoint);
  project.provide('emulatorUrl', emulator.url);
  project.provide('dataDir', dataDir);
  project.provide('workflowBundlePath', workflowBundlePath);

  return async () => {
    await emulator.close();
    await Promise.allSettled([temporal.stop(), gcs.stop()]);
    if (!process.env.GARDEN_DEPLOY_KEEP_TEST_DATA) await rm(dataDir, { recursive: true, force: true });
  };
}
