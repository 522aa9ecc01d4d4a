import { log, patched } from '@temporalio/workflow';
import { NON_RETRYABLE_ERRORS, SMOKE_SERVER_ERROR } from '../../activities/contract';
import type { FailureSummary } from '../failures';
import type { StepName } from '../types';
import type { StepContext } from './deploy-steps';

/** Runs that started before the diagnosis existed replay without it. */
const ROOT_CAUSE = 'root-cause-of-failed-start';

/**
 * After a start failed (the deploy operation, replicas that never came up, or smoke tests answered
 * with server errors), the serving container's own last lines say why: they are read from Cloud
 * Logging, classified, and attached to the progress; the failure's message gains the root cause.
 * Reading them never changes the outcome: a diagnosis that cannot run is noted and the failure
 * stands as it was.
 */
export async function explainFailedStart(ctx: StepContext, failure: FailureSummary): Promise<FailureSummary> {
  const { state, tracker } = ctx;
  const step = ctx.tracker.failedStep();
  if (!step || !state.validated || !state.ownership || !startFailure(ctx, step, failure)) return failure;
  if (!patched(ROOT_CAUSE)) return failure;
  const { spec, ids } = state.validated;
  try {
    const diagnosis = await ctx.activities.short.diagnoseStart({
      project: spec.project,
      region: spec.region,
      endpointId: ids.endpointId,
      ...(tracker.resources.deployedModelId ? { deployedModelId: tracker.resources.deployedModelId } : {}),
      since: state.ownership.notBefore,
    });
    const cause = diagnosis.rootCause;
    if (!cause) {
      log.warn('no root cause for the failed start', { why: diagnosis.unavailable });
      return failure;
    }
    tracker.setRootCause(cause);
    ctx.publish();
    const evidence = cause.evidence ? ` Last error in the container log: ${cause.evidence}` : '';
    return {
      ...failure,
      message: `${failure.message} — root cause (${cause.class}): ${cause.explanation}.${evidence}`,
    };
  } catch (err) {
    log.warn('could not read the container logs of the failed start', { error: String(err) });
    return failure;
  }
}

/** Failures the container's lines can explain: not validation, quota or a refused request. */
function startFailure(ctx: StepContext, step: StepName, failure: FailureSummary): boolean {
  if (step === 'waitForReplicas') return true;
  if (step === 'deploy') return failure.type === NON_RETRYABLE_ERRORS.deployFailed;
  if (step === 'smoke') return ctx.tracker.smoke.some((r) => SMOKE_SERVER_ERROR.test(r.failure ?? ''));
  return false;
}
