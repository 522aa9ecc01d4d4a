export * from './connect';
export * from './control';
export * from './errors';
export * from './list';
export * from './progress';
export {
  DEPLOY_WORKFLOW_TYPE,
  TEARDOWN_WORKFLOW_TYPE,
  resolveWorkflow,
  type ResolvedWorkflow,
} from './resolve';
export * from './start';
export * from './watch';
