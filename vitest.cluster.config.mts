import { defineConfig } from 'vitest/config';

/**
 * `npm run test:cluster`: the production cluster on real parts (test/cluster/), apart from the main
 * suite (vitest.config.mts) because it builds its own Temporal server, PostgreSQL and workers and
 * needs the cluster's tools (scripts/install-tools.sh).
 */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    // A batch of deployments through worker kills and a server restart: minutes on a loaded
    // 2-core machine. Speed is measured in bench/, not here.
    testTimeout: 600_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
