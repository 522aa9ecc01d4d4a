import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../tracing';

/**
 * Bundles the workflows once (webpack) so workers start without bundling: point
 * `GARDEN_DEPLOY_WORKFLOW_BUNDLE` at the file. The bundle must be rebuilt whenever workflow code or
 * the `@temporalio/worker` version changes.
 */
export async function writeWorkflowBundle(file: string): Promise<string> {
  const target = path.resolve(file);
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, code);
  return target;
}
