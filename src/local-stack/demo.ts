import { generateSampleModel } from '../sample-model';
import { createStorage } from '../storage';
import { type ValidationReport, validateModel } from '../validation';
import type { StackInfo } from './stack-file';

export const DEMO_BUCKET = 'garden-deploy-demo';
export const DEMO_MODEL_URI = `gs://${DEMO_BUCKET}/models/tiny-llama`;
/** The demo deployment on the emulator: any project id works there. */
export const DEMO_DEPLOYMENT = {
  name: 'tiny-llama-demo',
  project: 'garden-deploy-local',
  region: 'us-central1',
};

export interface DemoModel {
  model: { uri: string; architecture: string; files: number; totalBytes: number };
  validation: ValidationReport;
}

export class DemoError extends Error {
  override readonly name = 'DemoError';
}

/**
 * The demo's model on a running local stack: a tiny valid sample written to fake-gcs-server, then
 * validated there the way a deployment validates its weights. Safe to repeat: the bucket is
 * reused and the model overwritten.
 */
export async function prepareDemoModel(stack: StackInfo): Promise<DemoModel> {
  const storage = createStorage({ endpoint: stack.gcs.endpoint });
  const [exists] = await storage.bucket(DEMO_BUCKET).exists();
  if (!exists) await storage.createBucket(DEMO_BUCKET);
  const model = await generateSampleModel({ location: DEMO_MODEL_URI }, { storage });
  const validation = await validateModel(model.modelUri, {}, { storage });
  if (validation.status !== 'ok') {
    throw new DemoError(
      `the sample model at ${model.modelUri} did not validate (${validation.status}: ` +
        `${validation.findings.map((finding) => finding.message).join('; ')})`,
    );
  }
  return {
    model: {
      uri: model.modelUri,
      architecture: model.architecture,
      files: model.files.length,
      totalBytes: model.totalBytes,
    },
    validation,
  };
}

/** `garden-deploy deploy` arguments that deploy the demo model, as a user would type them. */
export function demoDeployArgs(modelUri: string): string[] {
  return [
    'deploy',
    ...['--name', DEMO_DEPLOYMENT.name],
    ...['--project', DEMO_DEPLOYMENT.project],
    ...['--region', DEMO_DEPLOYMENT.region],
    ...['--model-uri', modelUri],
  ];
}
