import type { Command } from 'commander';
import { registerControlCommand } from '../control-command';

/** `garden-deploy pause <deployment>`: see `../control-command.ts`. */
export function register(program: Command): void {
  registerControlCommand(program, 'pause');
}
