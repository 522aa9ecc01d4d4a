import { compensationActivities } from './compensations';
import type { DeploymentActivities } from './contract';
import { type ActivityDeps, resolveActivityDeps } from './deps';
import { deployActivities } from './deploy-to-vertex';
import { pscActivities } from './psc';
import { revisionActivities } from './revisions';
import { servingCheckActivities } from './serving-checks';
import { scaleActivity } from './scale';
import { runSmokeTestsActivity } from './smoke-tests';
import { validateWeightsActivity } from './validate-weights';
import { waitForReplicasActivity } from './wait-for-replicas';

export * from './contract';
export {
  ActivityOptionsSchema,
  type ActivityDeps,
  type ActivityOptions,
  type ActivityOptionsInput,
  InvalidActivityOptionsError,
} from './deps';

/**
 * The deployment's activities over the given clients: the worker passes the real Google client and
 * storage, tests the emulator-configured ones. The workflow calls them through `DeploymentActivities`.
 */
export function createActivities(deps: ActivityDeps): DeploymentActivities {
  const ctx = resolveActivityDeps(deps);
  return {
    validateWeights: validateWeightsActivity(ctx),
    ...deployActivities(ctx),
    waitForReplicas: waitForReplicasActivity(ctx),
    ...pscActivities(ctx),
    runSmokeTests: runSmokeTestsActivity(ctx),
    ...compensationActivities(ctx),
    scaleDeployment: scaleActivity(ctx),
    ...revisionActivities(ctx),
    ...servingCheckActivities(ctx),
  };
}
