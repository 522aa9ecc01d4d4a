import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../harness/env';

/**
 * Determinism: every recorded history (test/histories, from real end-to-end runs; re-record with
 * `node --import tsx scripts/record-histories.ts`) replays against the current workflow code. A
 * change that alters the commands a running deployment issues fails here, before it can break
 * deployments in flight: guard such changes with `patched()`.
 */

const DIR = path.resolve(__dirname, '../histories');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

describe('replay of recorded histories', () => {
  it('covers the representative runs', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'public-serving.json',
        'private-serving.json',
        'teardown.json',
        'broken-weights.json',
        'quota-exhausted.json',
        'cancel-deploying.json',
        'temporal-cancel.json',
        'rollback-after-success.json',
        'worker-crash.json',
      ]),
    );
  });

  it('replays every history with the current workflow code', async () => {
    const histories = files.map((file) => ({
      workflowId: file.replace(/\.json$/, ''),
      history: JSON.parse(readFileSync(path.join(DIR, file), 'utf8')) as unknown,
    }));
    const outcomes: Array<{ workflowId: string; error?: string }> = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: workflowBundle() }, histories)) {
      outcomes.push({
        workflowId: result.workflowId,
        ...(result.error ? { error: `${result.error.name}: ${result.error.message}` } : {}),
      });
    }
    expect(outcomes).toEqual(histories.map(({ workflowId }) => ({ workflowId })));
  });
});
