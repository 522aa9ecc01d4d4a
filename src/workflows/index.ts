/** Entry point of the workflow bundle: every workflow the worker registers. */
export { deployModel } from './deploy-model';
export { teardownDeployment } from './teardown';
