import type { Command } from 'commander';
import { registerControlCommand } from '../control-command';

/** `garden-deploy resume <deployment>`: see `../control-command.ts`. */
export function register(program: Command): void {
  registerControlCommand(program, 'resume');
}
