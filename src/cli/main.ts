import { Command } from 'commander';
import * as dev from './commands/dev';
import * as emulator from './commands/emulator';
import * as sampleModel from './commands/sample-model';
import * as validate from './commands/validate';

/**
 * Each command lives in `./commands/<name>.ts` and exports `register(program)`;
 * add new ones to this list.
 */
const commandModules: Array<{ register(program: Command): void }> = [dev, emulator, sampleModel, validate];

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
