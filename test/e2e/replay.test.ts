import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../harness/env';

/**
 * Determinism: every recorded history replays against the current workflow code: those of the
 * durable `deployment` (test/histories/, from real end-to-end runs; re-record with
 * `node --import tsx scripts/record-histories.ts`) and those of garden-deploy 0.1's `deployModel`
 * and `teardownDeployment` (test/histories/0.1/, frozen: runs of that shape still in flight must
 * finish). A change that alters the commands a running deployment issues fails here, before it can
 * break deployments in flight: guard such changes with `patched()`.
 */

const DIR = path.resolve(__dirname, '../histories');
const LEGACY_DIR = path.join(DIR, '0.1');

function histories(dir: string) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({
      workflowId: `${path.basename(dir)}/${file.replace(/\.json$/, '')}`,
      history: JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as unknown,
    }));
}

async function replay(recorded: ReturnType<typeof histories>) {
  const outcomes: Array<{ workflowId: string; error?: string }> = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: workflowBundle() }, recorded)) {
    outcomes.push({
      workflowId: result.workflowId,
      ...(result.error ? { error: `${result.error.name}: ${result.error.message}` } : {}),
    });
  }
  return outcomes;
}

describe('replay of recorded histories', () => {
  const current = histories(DIR);
  const legacy = histories(LEGACY_DIR);

  it('covers the representative runs of both shapes', () => {
    expect(current.map((h) => h.workflowId)).toEqual(
      expect.arrayContaining(
        [
          'public-serving-teardown',
          'private-serving-teardown',
          'broken-weights',
          'quota-exhausted',
          'cancel-deploying',
          'cancel-late-endpoint',
          'cleanup-blocked-retried',
          'temporal-cancel',
          'rollback-after-success',
          'worker-crash',
          'upgrade-completed',
          'upgrade-gate-rollback',
        ].map((name) => `histories/${name}`),
      ),
    );
    expect(legacy).toHaveLength(10);
  });

  it('replays the durable deployment’s histories with the current workflow code', async () => {
    expect(await replay(current)).toEqual(current.map(({ workflowId }) => ({ workflowId })));
  });

  it('replays garden-deploy 0.1’s histories with its frozen workflows', async () => {
    expect(await replay(legacy)).toEqual(legacy.map(({ workflowId }) => ({ workflowId })));
  });
});
