import { createStorage } from '../storage';
import { generateSampleModel } from '../sample-model';
import type { StackInfo } from './stack-file';

export const DEMO_BUCKET = 'garden-deploy-demo';
export const DEMO_MODEL_URI = `gs://${DEMO_BUCKET}/models/tiny-llama`;

export interface DemoResult {
  modelUri: string;
  architecture: string;
  files: number;
  totalBytes: number;
}

/**
 * The demo on a running local stack: a tiny valid sample model written to fake-gcs-server, where
 * every later step (validation, deployment on the emulator) reads it. Safe to repeat: the bucket
 * is reused and the model overwritten.
 */
export async function runDemo(stack: StackInfo): Promise<DemoResult> {
  const storage = createStorage({ endpoint: stack.gcs.endpoint });
  const [exists] = await storage.bucket(DEMO_BUCKET).exists();
  if (!exists) await storage.createBucket(DEMO_BUCKET);
  const model = await generateSampleModel({ location: DEMO_MODEL_URI }, { storage });
  return {
    modelUri: model.modelUri,
    architecture: model.architecture,
    files: model.files.length,
    totalBytes: model.totalBytes,
  };
}
