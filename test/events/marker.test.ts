import { describe, expect, it } from 'vitest';
import { eventsConfig, markerOf, specFromMarker } from '../../src/events';
import { InvalidSpecError } from '../../src/spec';

/** The marker contract: which objects trigger, and what their spec becomes. */

const config = eventsConfig({ prefix: 'models/', buckets: ['my-models'] });

describe('markers', () => {
  it('is <prefix><folder>/garden-deploy.yaml in a watched bucket, nothing else', () => {
    expect(markerOf('my-models', 'models/llama-ft/garden-deploy.yaml', config)).toEqual({
      bucket: 'my-models',
      object: 'models/llama-ft/garden-deploy.yaml',
      folder: 'models/llama-ft/',
      folderUri: 'gs://my-models/models/llama-ft/',
      statusObject: 'models/llama-ft/garden-deploy.status.json',
    });
    expect(markerOf('my-models', 'models/team/llama-ft/garden-deploy.yaml', config)?.folder).toBe(
      'models/team/llama-ft/',
    );
    for (const object of [
      'models/llama-ft/config.json',
      'models/llama-ft/garden-deploy.status.json',
      'models/garden-deploy.yaml',
      'other/llama-ft/garden-deploy.yaml',
      'models/llama-ft/xgarden-deploy.yaml',
      'models//garden-deploy.yaml',
      'models/a//garden-deploy.yaml',
      'models/../garden-deploy.yaml',
    ])
      expect(markerOf('my-models', object, config), object).toBe(undefined);
    expect(markerOf('other-bucket', 'models/llama-ft/garden-deploy.yaml', config)).toBe(undefined);
    // No buckets and no prefix: any folder of any bucket that notifies.
    expect(markerOf('any', 'x/garden-deploy.yaml', eventsConfig())?.folderUri).toBe('gs://any/x/');
  });

  it('takes the marker and status names from the configuration', () => {
    const custom = eventsConfig({ markerName: 'deploy.json', statusName: 'deploy.status' });
    expect(markerOf('b12', 'm/deploy.json', custom)?.statusObject).toBe('m/deploy.status');
    expect(markerOf('b12', 'm/garden-deploy.yaml', custom)).toBe(undefined);
  });
});

describe('the marker spec', () => {
  const marker = markerOf('my-models', 'models/llama-ft/garden-deploy.yaml', config)!;
  const yaml = [
    'name: llama-ft',
    'project: my-project',
    'region: us-central1',
    'machine: { type: g2-standard-12, acceleratorType: NVIDIA_L4, acceleratorCount: 1 }',
  ].join('\n');

  it('deploys the marker’s folder when it names no model', () => {
    expect(specFromMarker(yaml, marker).model.uri).toBe('gs://my-models/models/llama-ft/');
    expect(specFromMarker(`${yaml}\nmodel: { id: llama_ft }`, marker).model).toMatchObject({
      uri: 'gs://my-models/models/llama-ft/',
      id: 'llama_ft',
    });
    expect(specFromMarker(`${yaml}\nmodel: { uri: gs://elsewhere/m/ }`, marker).model.uri).toBe(
      'gs://elsewhere/m/',
    );
  });

  it('reports every issue with its field path, as the CLI does', () => {
    const bad = [
      'name: Llama FT',
      'project: my-project',
      'region: us-central1',
      'replicas: { min: -1 }',
    ].join('\n');
    let error: unknown;
    try {
      specFromMarker(bad, marker);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidSpecError);
    const paths = (error as InvalidSpecError).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['name', 'replicas.min']));
    expect((error as Error).message).toContain('gs://my-models/models/llama-ft/garden-deploy.yaml');
  });

  it('reports YAML that does not parse, and repeated keys', () => {
    expect(() => specFromMarker('name: [unclosed', marker)).toThrow(/not valid YAML\/JSON/);
    expect(() => specFromMarker(`${yaml}\nname: again`, marker)).toThrow(InvalidSpecError);
  });
});
