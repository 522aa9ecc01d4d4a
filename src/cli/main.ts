import { Command } from 'commander';

type CommandModule = { register(program: Command): void };

/**
 * Each command lives in `./commands/<name>.ts` and exports `register(program)`; add new ones to
 * this table. Only the command being run is loaded, so `garden-deploy status` does not pay for
 * loading the worker, the emulator and the validator.
 */
const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  'abandon-cleanup': () => import('./commands/abandon-cleanup.js'),
  cancel: () => import('./commands/cancel.js'),
  'codec-server': () => import('./commands/codec-server.js'),
  deploy: () => import('./commands/deploy.js'),
  dev: () => import('./commands/dev.js'),
  emulator: () => import('./commands/emulator.js'),
  list: () => import('./commands/list.js'),
  pause: () => import('./commands/pause.js'),
  promote: () => import('./commands/promote.js'),
  resume: () => import('./commands/resume.js'),
  'retry-cleanup': () => import('./commands/retry-cleanup.js'),
  rollback: () => import('./commands/rollback.js'),
  'sample-model': () => import('./commands/sample-model.js'),
  scale: () => import('./commands/scale.js'),
  serve: () => import('./commands/serve.js'),
  status: () => import('./commands/status.js'),
  teardown: () => import('./commands/teardown.js'),
  upgrade: () => import('./commands/upgrade.js'),
  validate: () => import('./commands/validate.js'),
  watch: () => import('./commands/watch.js'),
  worker: () => import('./commands/worker.js'),
};

/** The CLI; given the arguments, only the command they name (all of them for help or a typo). */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command('garden-deploy')
    .description('Deploy fine-tuned open-weight LLMs with custom weights to Vertex AI Model Garden, durably.')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  const named = argv?.[2];
  const load =
    named !== undefined && Object.hasOwn(COMMANDS, named) ? [COMMANDS[named]!] : Object.values(COMMANDS);
  for (const command of await Promise.all(load.map((loadCommand) => loadCommand())))
    command.register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await (await buildProgram(argv)).parseAsync(argv);
}

if (require.main === module) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`garden-deploy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode ||= 1;
  });
}
