import { writeWorkflowBundle } from '../src/worker/bundle';

/** `node --import tsx scripts/build-workflow-bundle.ts [FILE]` (default dist/workflow-bundle.js). */
writeWorkflowBundle(process.argv[2] ?? 'dist/workflow-bundle.js').then(
  (file) => process.stdout.write(`wrote ${file}\n`),
  (err: unknown) => {
    process.stderr.write(`build-workflow-bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
