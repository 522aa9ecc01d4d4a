import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDeploymentSpecFile } from '../../src/spec';

const examples = path.resolve(__dirname, '../../examples');

describe('example spec files', () => {
  it('are accepted by the schema: one public, one private with PSC, one with every serving option', async () => {
    const files = (await readdir(examples)).filter((file) => file.endsWith('.yaml')).sort();
    expect(files).toEqual(['private-psc.yaml', 'public.yaml', 'serving-options.yaml']);
    const options = await loadDeploymentSpecFile(path.join(examples, 'serving-options.yaml'));
    expect(options.machine).toMatchObject({ multihostGpuNodeCount: 2 });
    const publicSpec = await loadDeploymentSpecFile(path.join(examples, 'public.yaml'));
    expect(publicSpec.access.type).toBe('public');
    expect(publicSpec.strategy).toMatchObject({
      canary: { percent: 10, bake: 600_000 },
      retainPrevious: 3_600_000,
    });
    expect(publicSpec.gates).toMatchObject({
      onIdle: 'pause',
      errorRatio: { max: 0.05 },
      latencyP95: { max: 20_000 },
    });
    const privateSpec = await loadDeploymentSpecFile(path.join(examples, 'private-psc.yaml'));
    expect(privateSpec.access).toMatchObject({ type: 'private', consumerProject: 'my-network-project' });
  });
});
