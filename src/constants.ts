/** Task queue the worker polls and clients start deployments on, unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'garden-deploy';

/** Label garden-deploy puts on the Vertex resources it creates; its value is the deployment name. */
export const DEPLOYMENT_LABEL = 'garden-deploy-deployment';
