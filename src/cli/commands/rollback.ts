import type { Command } from 'commander';
import { registerUndoCommand } from '../undo-command';

/** `garden-deploy rollback <deployment> [--reason]`. */
export function register(program: Command): void {
  registerUndoCommand(program, 'rollback');
}
