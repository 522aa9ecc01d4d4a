/** Entry point of the workflow bundle: every workflow the worker registers. */
export { deployment } from './deployment/workflow';
/** garden-deploy 0.1's workflows: runs started before the durable deployment finish on them. */
export { deployModel } from './legacy/deploy-model';
export { teardownDeployment } from './legacy/teardown';
