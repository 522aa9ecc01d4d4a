import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

/**
 * Re-records the replay fixtures in test/histories/ from real runs: the end-to-end tests save the
 * history of each representative deployment (serving public and private then torn down, broken
 * weights, flaky Google, quota, cancel, a late endpoint after a cancel, blocked cleanup retried,
 * Temporal cancel, rollback, worker crash, an upgrade completed under load and one rolled back by its
 * gate) when GARDEN_DEPLOY_RECORD_HISTORIES is set. Run after a
 * deliberate workflow change (with `patched()` where old runs must still replay), then commit the
 * JSON files. test/histories/0.1/ (garden-deploy 0.1's workflows) is never re-recorded.
 *
 *   node --import tsx scripts/record-histories.ts
 */
const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'test/histories');
for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) rmSync(path.join(dir, file));
const run = spawnSync(
  'npx',
  [
    'vitest',
    'run',
    'test/e2e/deployments.test.ts',
    'test/e2e/cancel-rollback.test.ts',
    'test/e2e/worker-crash.test.ts',
    'test/e2e/ownership.test.ts',
    'test/e2e/upgrade.test.ts',
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, GARDEN_DEPLOY_RECORD_HISTORIES: '1' } },
);
const recorded = readdirSync(dir).filter((f) => f.endsWith('.json'));
process.stdout.write(
  `recorded ${recorded.length} histories in ${path.relative(root, dir)}: ${recorded.join(', ')}\n`,
);
process.exitCode = run.status ?? 1;
