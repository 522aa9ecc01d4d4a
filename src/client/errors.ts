/**
 * Errors of the client library. Each says what is wrong and what to do instead; none changed
 * anything. `name` is stable so callers (and the CLI's exit codes) can tell them apart.
 */

/** Temporal cannot be reached, or its connection settings are unusable. */
export class TemporalConnectionError extends Error {
  override readonly name = 'TemporalConnectionError';
}

/** No deployment matches the id or name given. */
export class DeploymentNotFoundError extends Error {
  override readonly name = 'DeploymentNotFoundError';
}

/** No request (Update) with the id given in the deployment's latest run. */
export class RequestNotFoundError extends Error {
  override readonly name = 'RequestNotFoundError';
}

/**
 * A deploy request that started a run which has ended since: retried, it is the same request, so
 * nothing new starts (a new request id deploys again).
 */
export class RequestAlreadyDoneError extends Error {
  override readonly name = 'RequestAlreadyDoneError';
  constructor(
    readonly workflowId: string,
    readonly runId: string,
    /** Temporal execution status of that run, e.g. `COMPLETED`. */
    readonly status: string,
    readonly requestId: string,
  ) {
    super(
      `request ${requestId} started ${workflowId} (run ${runId}), which has ended (${status}); ` +
        'nothing new was started: deploy with another request id to start it again',
    );
  }
}

/** A bare deployment name matches deployments in several projects or regions. */
export class AmbiguousDeploymentError extends Error {
  override readonly name = 'AmbiguousDeploymentError';
  constructor(
    readonly deployment: string,
    readonly workflowIds: string[],
  ) {
    super(
      `"${deployment}" names ${workflowIds.length} deployments: ${workflowIds.join(', ')}; ` +
        'give the workflow id instead',
    );
  }
}

/** The operation needs a deployment in another state (finished vs running, or not already undoing). */
export class DeploymentStateError extends Error {
  override readonly name = 'DeploymentStateError';
}

/** `list` filters that cannot be turned into a visibility query. */
export class InvalidFilterError extends Error {
  override readonly name = 'InvalidFilterError';
}

/** A followed deployment (or teardown) ended Failed, Canceled, Terminated or Timed out. */
export class DeploymentFailedError extends Error {
  override readonly name = 'DeploymentFailedError';
  constructor(
    readonly workflowId: string,
    /** Temporal execution status, e.g. `FAILED`. */
    readonly status: string,
    /** The failure as the workflow reported it. */
    readonly failure: string,
  ) {
    super(`${workflowId} ended ${status}: ${failure}`);
  }
}
