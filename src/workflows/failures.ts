import { ActivityFailure, ApplicationFailure, TemporalFailure, TimeoutFailure } from '@temporalio/workflow';
import type { ActivityFailureDetails, ValidationSummary } from '../activities/contract';

export interface FailureSummary {
  message: string;
  type?: string;
  /** Attempt of the activity that failed, when it reported one. */
  attempt?: number;
  /** A failed validation's summary, when the validate step reported one. */
  validation?: ValidationSummary;
}

/** What went wrong, in words a user can act on, from whatever an activity or the workflow threw. */
export function summarizeFailure(err: unknown): FailureSummary {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const details = failureDetails(cause.details);
    return { message: cause.message, type: cause.type ?? undefined, ...details };
  }
  if (cause instanceof TimeoutFailure) {
    const activity = err instanceof ActivityFailure ? ` ${err.activityType}` : '';
    return {
      message: `activity${activity} timed out (${cause.timeoutType}); is a worker running?`,
      type: 'Timeout',
    };
  }
  if (cause instanceof TemporalFailure || cause instanceof Error) return { message: cause.message };
  return { message: String(cause) };
}

function failureDetails(details: unknown[] | null | undefined): Partial<ActivityFailureDetails> {
  const first = details?.[0];
  if (!first || typeof first !== 'object') return {};
  const { attempt, validation } = first as Partial<ActivityFailureDetails>;
  return {
    attempt: typeof attempt === 'number' ? attempt : undefined,
    validation: validation && typeof validation === 'object' ? validation : undefined,
  };
}
