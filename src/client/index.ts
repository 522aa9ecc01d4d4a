export * from './connect';
export * from './control';
export * from './errors';
export * from './list';
export * from './progress';
export {
  DEPLOYMENT_WORKFLOW_TYPE,
  LEGACY_DEPLOY_WORKFLOW_TYPE,
  LEGACY_TEARDOWN_WORKFLOW_TYPE,
  resolveWorkflow,
  type ResolvedWorkflow,
} from './resolve';
export type { DeploymentRequest } from './updates';
export * from './start';
export * from './upgrade';
export * from './watch';
