import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The production cluster's suite runs on its own: npm run test:cluster (vitest.cluster.config.mts).
    exclude: [...configDefaults.exclude, 'test/cluster/**'],
    globalSetup: ['test/harness/global-setup.ts'],
    // Generous: on a loaded 2-core machine (CI beside another run) an upgrade test that takes 10 s
    // alone was measured at 55 s. Speed is measured in bench/, not here.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
