/** Task queue the worker polls and clients start deployments on, unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'garden-deploy';

/** Label garden-deploy puts on the Vertex resources it creates; its value is the deployment name. */
export const DEPLOYMENT_LABEL = 'garden-deploy-deployment';

/**
 * Labels naming the rest of a deployment's identity (next to `DEPLOYMENT_LABEL`), on every Vertex
 * resource garden-deploy creates; adoption and deletion check them.
 */
export const IDENTITY_LABELS = {
  /** The first run id of the deployment's workflow: tells it from an earlier one of the same name. */
  incarnation: 'garden-deploy-incarnation',
  project: 'garden-deploy-project',
  region: 'garden-deploy-region',
  revision: 'garden-deploy-revision',
} as const;
