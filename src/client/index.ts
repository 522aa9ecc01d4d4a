export * from './connect';
export * from './control';
export * from './errors';
export * from './list';
export * from './progress';
export * from './requests';
export {
  DEPLOYMENT_WORKFLOW_TYPE,
  LEGACY_DEPLOY_WORKFLOW_TYPE,
  LEGACY_TEARDOWN_WORKFLOW_TYPE,
  resolveWorkflow,
  type ResolvedWorkflow,
} from './resolve';
export { type DeploymentRequest, REQUEST_ID_PATTERN } from './updates';
export * from './start';
export * from './upgrade';
export * from './watch';
