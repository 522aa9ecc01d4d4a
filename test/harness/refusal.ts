import { expect } from 'vitest';
import { DeploymentStateError } from '../../src/client';

/** The message of a request the deployment refuses (failing the test when it was accepted). */
export async function refusal(request: Promise<unknown>): Promise<string> {
  const err = await request.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the request was refused').toBeInstanceOf(DeploymentStateError);
  return (err as Error).message;
}
