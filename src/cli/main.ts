import { Command } from 'commander';
import * as cancel from './commands/cancel';
import * as deploy from './commands/deploy';
import * as dev from './commands/dev';
import * as emulator from './commands/emulator';
import * as list from './commands/list';
import * as rollback from './commands/rollback';
import * as sampleModel from './commands/sample-model';
import * as status from './commands/status';
import * as teardown from './commands/teardown';
import * as validate from './commands/validate';
import * as watch from './commands/watch';
import * as worker from './commands/worker';

/**
 * Each command lives in `./commands/<name>.ts` and exports `register(program)`;
 * add new ones to this list.
 */
const commandModules: Array<{ register(program: Command): void }> = [
  cancel,
  deploy,
  dev,
  emulator,
  list,
  rollback,
  sampleModel,
  status,
  teardown,
  validate,
  watch,
  worker,
];

export function buildProgram(): Command {
  const program = new Command('garden-deploy')
    .description('Deploy fine-tuned open-weight LLMs with custom weights to Vertex AI Model Garden, durably.')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  for (const module of commandModules) module.register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}

if (require.main === module) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`garden-deploy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode ||= 1;
  });
}
