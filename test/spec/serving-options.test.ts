import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidSpecError, loadDeploymentSpecFile, parseDeploymentSpec } from '../../src/spec';

/** The serving options of the spec: strict, each wrong value named by its field, secrets kept out. */

const minimal = {
  name: 'llama-ft',
  project: 'my-project',
  region: 'us-central1',
  model: { uri: 'gs://bucket/models/llama/' },
};
const image = 'us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:latest';

function issuesOf(input: object): string[] {
  try {
    parseDeploymentSpec({ ...minimal, ...input });
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw err;
  }
  throw new Error('spec was accepted');
}

describe('serving options of the spec', () => {
  it('examples/serving-options.yaml parses; defaults keep container logging on and the endpoint dedicated', async () => {
    const spec = await loadDeploymentSpecFile(path.resolve(__dirname, '../../examples/serving-options.yaml'));
    expect(spec.replicas).toMatchObject({ min: 1, max: 2, required: 1 });
    expect(spec.container?.args).toContain('--max-model-len=32768');
    expect(spec.endpoint.inferenceTimeout).toBe(600_000);
    const defaults = parseDeploymentSpec(minimal);
    expect(defaults).toMatchObject({
      capacity: { spot: false },
      endpoint: { dedicated: true },
      logging: { container: true, access: false },
      fastTryout: false,
    });
    expect(defaults.container).toBeUndefined();
  });

  it('refuses what Vertex would refuse, naming the field', () => {
    expect(issuesOf({ capacity: { spot: true, preemptible: true } })[0]).toMatch(/^capacity: unknown field/);
    expect(issuesOf({ capacity: { reservation: { type: 'SPECIFIC_RESERVATION' } } })[0]).toMatch(
      /^capacity\.reservation: SPECIFIC_RESERVATION needs key/,
    );
    expect(issuesOf({ capacity: { reservation: { type: 'ANY_RESERVATION', values: ['r'] } } })[0]).toMatch(
      /apply to SPECIFIC_RESERVATION only/,
    );
    expect(issuesOf({ capacity: { flexStart: { maxRuntime: '8d' } } })[0]).toMatch(
      /^capacity\.flexStart\.maxRuntime/,
    );
    expect(issuesOf({ replicas: { min: 0 } })).toEqual([
      'replicas.min: replicas.min 0 needs replicas.scaleToZero (otherwise at least 1)',
    ]);
    expect(issuesOf({ replicas: { min: 1, initial: 2 } })[0]).toMatch(/^replicas\.initial: .*min 0/);
    expect(issuesOf({ replicas: { min: 0, scaleToZero: { idleScaledownPeriod: '1m' } } })[0]).toMatch(
      /^replicas\.scaleToZero\.idleScaledownPeriod/,
    );
    expect(
      issuesOf({ replicas: { min: 1, autoscaling: [{ metric: 'cpu/utilization', target: 150 }] } }),
    ).toEqual([
      'replicas.autoscaling: autoscaling target of cpu/utilization must be a whole number from 1 to 100 (percent)',
    ]);
    expect(
      issuesOf({
        replicas: {
          min: 1,
          autoscaling: [
            { metric: 'request_count', target: 100 },
            { metric: 'request_count', target: 200 },
          ],
        },
      })[0],
    ).toMatch(/request_count is given twice/);
    expect(
      issuesOf({ replicas: { min: 1, autoscaling: [{ metric: 'gpu/memory', target: 50 }] } })[0],
    ).toMatch(/^replicas\.autoscaling\[0\]\.metric/);
    expect(issuesOf({ container: { args: ['--max-model-len=4096'] } })[0]).toMatch(/^container\.image/);
    expect(issuesOf({ container: { image, ports: [8080, 8081] } })[0]).toMatch(/one serving port/);
    expect(
      issuesOf({
        container: { image, healthProbe: { httpGet: { path: '/ping' }, tcpSocket: { port: 8080 } } },
      })[0],
    ).toMatch(/exactly one of httpGet, exec or tcpSocket/);
    expect(issuesOf({ container: { image, healthRoute: 'ping' } })[0]).toMatch(/starting with "\/"/);
    expect(issuesOf({ container: { image, deploymentTimeout: '3h' } })[0]).toMatch(
      /^container\.deploymentTimeout/,
    );
    expect(issuesOf({ endpoint: { inferenceTimeout: '2h' } })[0]).toMatch(/^endpoint\.inferenceTimeout/);
  });

  it('keeps credentials out of the spec: they would be stored in the history and the Model', () => {
    for (const env of [{ HF_TOKEN: 'x' }, { OPENAI_API_KEY: 'x' }, { DB_PASSWORD: 'x' }])
      expect(issuesOf({ container: { image, env } })[0]).toMatch(
        /^container\.env: credentials do not belong/,
      );
    for (const arg of [
      '--hf-token=abc',
      '--hf-token',
      '--api-key=s3cret',
      `--tokenizer=hf_${'a'.repeat(24)}`,
    ])
      expect(issuesOf({ container: { image, args: [arg] } })[0], arg).toMatch(
        /^container\.args: credentials do not belong/,
      );
    // Flags that merely mention tokens are fine.
    expect(() =>
      parseDeploymentSpec({
        ...minimal,
        container: {
          image,
          args: ['--max-num-batched-tokens=8192', '--tokenizer=/models/tok'],
          env: { VLLM_X: '1' },
        },
      }),
    ).not.toThrow();
  });
});
