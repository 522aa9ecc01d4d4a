import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { describe, expect, it } from 'vitest';
import { contractFiles } from '../../scripts/generate-contract';
import { parseDeploymentSpec, readDeploymentSpecDocument } from '../../src/spec';

/**
 * The published contract for other languages (docs/contract/) is what the generator makes of the
 * sources now, and its JSON Schemas hold for the specs and requests the project itself uses.
 */

const REPO = path.resolve(__dirname, '../..');
const CONTRACT_DIR = path.join(REPO, 'docs/contract');

async function readJson<T = Record<string, unknown>>(file: string): Promise<T> {
  return JSON.parse(await readFile(path.join(CONTRACT_DIR, file), 'utf8')) as T;
}

async function exampleSpecs(): Promise<Array<{ file: string; document: unknown }>> {
  const dir = path.join(REPO, 'examples');
  const files = (await readdir(dir)).filter((file) => file.endsWith('.yaml'));
  return Promise.all(
    files.map(async (file) => ({ file, document: await readDeploymentSpecDocument(path.join(dir, file)) })),
  );
}

/** A standard draft 2020-12 validator with both spec schemas loaded (the contract refers to them by file name). */
async function validator(): Promise<Ajv2020> {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  ajv.addSchema(await readJson('deployment-spec.schema.json'), 'deployment-spec.schema.json');
  ajv.addSchema(await readJson('deployment-spec.parsed.schema.json'), 'deployment-spec.parsed.schema.json');
  return ajv;
}

describe('the workflow contract for other languages', () => {
  it('is checked in as the generator makes it now (run `npm run contract` after changing the sources)', async () => {
    for (const [file, content] of await contractFiles()) {
      const checkedIn = await readFile(path.join(REPO, file), 'utf8').catch(() => '(missing)');
      expect(checkedIn, `${file} is stale: run npm run contract`).toBe(content);
    }
  });

  it('describes every spec in examples/ as users write it, and rejects what the parser rejects', async () => {
    const ajv = await validator();
    const examples = await exampleSpecs();
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const { file, document } of examples) {
      const valid = ajv.validate('deployment-spec.schema.json', document);
      expect(valid, `${file}: ${ajv.errorsText()}`).toBe(true);
    }
    const document = examples[0]!.document as Record<string, unknown>;
    expect(ajv.validate('deployment-spec.schema.json', { ...document, colour: 'blue' })).toBe(false);
    expect(ajv.validate('deployment-spec.schema.json', { ...document, name: 'Not_A_Name' })).toBe(false);
    expect(ajv.validate('deployment-spec.schema.json', { ...document, rollbackWindow: 'soon' })).toBe(false);
  });

  it('describes the parsed form the workflow takes, which is valid input too', async () => {
    const ajv = await validator();
    for (const { file, document } of await exampleSpecs()) {
      const parsed = parseDeploymentSpec(document);
      expect(ajv.validate('deployment-spec.parsed.schema.json', parsed), `${file}: ${ajv.errorsText()}`).toBe(
        true,
      );
      expect(ajv.validate('deployment-spec.schema.json', parsed), `${file}: ${ajv.errorsText()}`).toBe(true);
      expect(parseDeploymentSpec(parsed), `${file} parsed again`).toEqual(parsed);
    }
    // Written as users may (a duration as text, defaults left out): not the form the workflow takes.
    const document = (await exampleSpecs())[0]!.document as Record<string, unknown>;
    expect(ajv.validate('deployment-spec.parsed.schema.json', document)).toBe(false);
  });

  it("gives the start input's and each Update argument's schema", async () => {
    const ajv = await validator();
    const contract = await readJson<{
      start: { input: object };
      updates: Record<string, { argument: object; result: string }>;
    }>('workflow-contract.json');
    const { document } = (await exampleSpecs())[0]!;
    const spec = parseDeploymentSpec(document);
    const check = (schema: object, value: unknown) => ajv.validate(schema, value);

    expect(
      check(contract.start.input, { spec, settings: { heartbeatTimeoutMs: 2_000, cleanupAttempts: 3 } }),
      ajv.errorsText(),
    ).toBe(true);
    expect(check(contract.start.input, { spec: document })).toBe(false);
    expect(Object.keys(contract.updates).sort()).toEqual(
      [
        'abandonCleanup',
        'cancel',
        'deploy',
        'pause',
        'promote',
        'resume',
        'retryCleanup',
        'rollback',
        'scale',
        'teardown',
        'upgrade',
      ].sort(),
    );
    const { updates } = contract;
    expect(check(updates.deploy!.argument, { spec }), ajv.errorsText()).toBe(true);
    expect(check(updates.upgrade!.argument, { spec }), ajv.errorsText()).toBe(true);
    expect(check(updates.cancel!.argument, {})).toBe(true);
    expect(check(updates.teardown!.argument, { reason: 'no longer needed' })).toBe(true);
    expect(check(updates.abandonCleanup!.argument, { reason: ' ' })).toBe(false);
    expect(check(updates.abandonCleanup!.argument, { reason: 'deleted by hand' })).toBe(true);
    expect(
      check(updates.scale!.argument, { min: 2, autoscaling: [{ metric: 'request_count', target: 600 }] }),
    ).toBe(true);
    expect(check(updates.scale!.argument, { min: -1 })).toBe(false);
  });
});
