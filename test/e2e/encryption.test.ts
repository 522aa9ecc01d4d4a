import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNewKeyringFile } from '../../src/codec';
import {
  type TemporalConnection,
  connectTemporal,
  getProgress,
  listDeployments,
  startDeployment,
  teardownDeployment,
} from '../../src/client';
import { DeploymentName, ModelUri } from '../../src/search-attributes';
import { progressQuery } from '../../src/workflows/messages';
import { freshProject, publicSpec, uploadModel } from '../activities/env';
import { closeTestEnv, getTestEnv, uniqueTaskQueue } from '../harness/env';
import { eventually } from '../harness/eventually';
import { E2E_SETTINGS, expectNothingLeft, uniqueName } from './harness';
import { workerProcesses } from './worker-process';

/**
 * With the payload codec on (`garden-deploy worker` and the client given the same keyring), a
 * whole deployment leaves neither its model URI nor its smoke prompt readable anywhere in its
 * history, while the client with the keys reads both back.
 */

let keyFile: string;
let modelUri: string;
let taskQueue: string;
let encrypted: TemporalConnection;
const workers = workerProcesses('encryption');

beforeAll(async () => {
  const dir = await workers.dataDir();
  keyFile = path.join(dir, 'keys.json');
  writeNewKeyringFile(keyFile);
  taskQueue = uniqueTaskQueue('encrypted');
  const { temporalAddress, namespace } = await getTestEnv();
  [modelUri, , encrypted] = await Promise.all([
    uploadModel(),
    workers.start(taskQueue, { GARDEN_DEPLOY_CODEC_KEY_FILE: keyFile }),
    connectTemporal({
      env: {
        TEMPORAL_ADDRESS: temporalAddress,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_CONFIG_FILE: path.join(dir, 'none.toml'),
        GARDEN_DEPLOY_CODEC_KEY_FILE: keyFile,
      },
    }),
  ]);
}, 120_000);

afterAll(async () => {
  await workers.stop();
  await encrypted?.close();
  await closeTestEnv();
});

/** Every page of the history as the server stores it: payloads as the codec left them. */
async function rawHistory(
  workflowId: string,
  runId: string,
): Promise<temporal.api.history.v1.IHistoryEvent[]> {
  const { connection, namespace } = await getTestEnv();
  const events: temporal.api.history.v1.IHistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await connection.workflowService.getWorkflowExecutionHistory({
      namespace,
      execution: { workflowId, runId },
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return events;
}

/** Every byte string and string in a value, and each base64-looking string decoded too. */
function* textsOf(value: unknown, depth = 0): Generator<string> {
  if (depth > 64) return;
  if (typeof value === 'string') {
    yield value;
    if (/^[A-Za-z0-9+/_-]{16,}={0,2}$/.test(value)) yield Buffer.from(value, 'base64').toString('latin1');
  } else if (value instanceof Uint8Array) {
    yield Buffer.from(value).toString('latin1');
  } else if (Array.isArray(value)) {
    for (const item of value) yield* textsOf(item, depth + 1);
  } else if (value && typeof value === 'object') {
    for (const item of Object.values(value)) yield* textsOf(item, depth + 1);
  }
}

/**
 * Payloads anywhere in these history events (input, results, Update arguments, user metadata,
 * memo), but search attributes: the server indexes those, so no codec may touch them.
 */
function* payloadsOf(value: unknown, depth = 0): Generator<temporal.api.common.v1.IPayload> {
  if (depth > 64 || !value || typeof value !== 'object' || value instanceof Uint8Array) return;
  const { metadata, data } = value as temporal.api.common.v1.IPayload;
  if (metadata && typeof metadata === 'object' && (data === undefined || data instanceof Uint8Array)) {
    yield value as temporal.api.common.v1.IPayload;
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (key !== 'searchAttributes') yield* payloadsOf(item, depth + 1);
  }
}

describe('encrypted payloads', () => {
  it('keeps the model URI and the smoke prompt out of the history; the client with the keys reads them', async () => {
    const project = await freshProject('encrypted');
    const name = uniqueName('enc');
    const prompt = `Reply with one word: codename ${randomUUID()}`;
    const spec = { ...publicSpec(project, modelUri, name), smoke: { tests: [{ prompt }] } };
    const started = await startDeployment(encrypted.client, spec, { taskQueue, settings: E2E_SETTINGS });
    const result = await started.result();
    expect(result.outcome).toBe('serving');

    // Decoded by the client with the keys: the progress query, the start's metadata and input.
    const progress = await getProgress(encrypted.client, started.workflowId);
    expect(progress.modelUri).toBe(modelUri);
    const handle = encrypted.client.workflow.getHandle(started.workflowId, started.runId);
    const description = await handle.describe();
    const details = await description.staticDetails();
    expect(details).toContain(modelUri);
    expect(details).toContain(prompt);
    expect(await description.staticSummary()).toContain(modelUri);
    expect(description.typedSearchAttributes.get(DeploymentName)).toBe(name);
    // Search attributes are stored in plaintext: with the codec on, the model URI is not one.
    expect(description.typedSearchAttributes.get(ModelUri)).toBeUndefined();

    const events = await rawHistory(started.workflowId, started.runId);
    expect(events.length).toBeGreaterThan(10);
    // Patch markers hold the patch id, written by the SDK's core outside any codec.
    const payloads = [
      ...payloadsOf(events.filter((e) => !e.markerRecordedEventAttributes?.details?.['patch-data'])),
    ];
    expect(payloads.length).toBeGreaterThan(10);
    for (const payload of payloads) {
      expect(Buffer.from(payload.metadata?.encoding ?? []).toString()).toBe('binary/encrypted');
    }
    const stored = Buffer.concat(
      events.map((event) => temporal.api.history.v1.HistoryEvent.encode(event).finish()),
    ).toString('latin1');
    const texts = [stored, ...textsOf(events)].join('\n');
    const uriPath = modelUri.replace(/^gs:\/\//, '');
    for (const secret of [modelUri, uriPath, prompt, prompt.slice(-36)]) {
      expect(texts.includes(secret), `"${secret}" in the stored history`).toBe(false);
      expect(texts.includes(Buffer.from(secret).toString('base64').slice(0, 24))).toBe(false);
    }

    // A client without the keys sees ciphertext only: it cannot even read the progress.
    const { client: plainClient } = await getTestEnv();
    await expect(plainClient.workflow.getHandle(started.workflowId).query(progressQuery)).rejects.toThrow(
      /binary\/encrypted/,
    );
    // But it still lists it (from its search attributes; its encrypted memo is not read).
    const listed = await eventually('the encrypted deployment listed by a client without keys', async () =>
      (await listDeployments(plainClient, { name: spec.name })).find(
        (d) => d.workflowId === started.workflowId,
      ),
    );
    expect(listed.stage).toBe('SERVING');

    const teardown = await teardownDeployment(encrypted.client, started.workflowId, { reason: 'test done' });
    expect((await teardown.result()).outcome).toBe('torn-down');
    await expectNothingLeft(project);
  });
});
