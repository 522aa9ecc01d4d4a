import { type Endpoint, isNotFound } from '../gcp';
import type { Attempted, CleanupInput, CleanupOutcome, CleanupResult } from './contract';
import {
  type PscKind,
  type RegionalRef,
  computeName,
  deleteComputeResource,
  parseComputeName,
  runRequestId,
} from './compute-resources';
import type { ActivityContext } from './deps';
import { cleanupFailure, currentAttempt } from './failures';
import { judgePscOwnership } from './ownership';
import { beat, callOptions, pollUntil, retryTransient } from './runtime';
import { endpointOf, getIfExists, judgeVertexOwnership, modelOf } from './vertex-resources';

/** How long a cancelled deploy operation may take to end before the stop counts as blocked. */
/** How long a stopped operation is waited for before the attempt fails (and is retried). */
export const DEFAULT_STOP_WAIT_MS = 30 * 60_000;

/**
 * The compensations: stop the deploy operation, undeploy, delete endpoint and model (what stops GPU
 * billing), and the PSC forwarding rule and address, each retried within a budget the workflow
 * sets. Each is idempotent (gone already is success), works from the recorded resource names or
 * else from the deployment's deterministic ids, leaves alone (saying why) what the ownership proof
 * says is not ours, and waits for its operation to finish.
 */
export function compensationActivities(ctx: ActivityContext) {
  const { vertex, compute } = ctx.gcp;

  /** Deployments of the current shape retry compensations within a budget (0.1 ones forever). */
  const budgeted = (input: CleanupInput) => Boolean(input.ownership?.identity);

  const done = (outcomes: CleanupOutcome[]): Attempted<CleanupResult> => ({
    outcomes,
    attempt: currentAttempt(),
  });

  /** The PSC resource to remove: as recorded, else by its derived name in the consumer project. */
  function pscRef(input: CleanupInput, kind: PscKind): RegionalRef | undefined {
    const recorded = kind === 'addresses' ? input.resources.pscAddress : input.resources.pscForwardingRule;
    if (recorded) return parseComputeName(kind, recorded);
    const name = kind === 'addresses' ? input.ids?.pscAddressName : input.ids?.pscForwardingRuleName;
    return name && input.consumerProject
      ? { project: input.consumerProject, region: input.region, name }
      : undefined;
  }

  async function removePsc(input: CleanupInput, kind: PscKind): Promise<Attempted<CleanupResult>> {
    const ref = pscRef(input, kind);
    if (!ref) return done([]);
    const resource = computeName(kind, ref);
    const what = `delete ${resource}`;
    try {
      beat({ removing: resource });
      const read = (): Promise<Record<string, unknown>> =>
        kind === 'addresses'
          ? compute.getAddress(ref, callOptions())
          : compute.getForwardingRule(ref, callOptions());
      const current = await retryTransient(ctx, () => getIfExists(read));
      if (!current) return done([{ resource, outcome: 'already-gone' }]);
      if (input.ownership) {
        const { identity, fingerprints } = input.ownership;
        const recorded =
          kind === 'addresses' ? fingerprints?.pscAddressId : fingerprints?.pscForwardingRuleId;
        const verdict = judgePscOwnership(current, input.ownership.deploymentLabel, identity, recorded);
        if (!verdict.ours) return done([{ resource, outcome: 'not-ours', reason: verdict.reason }]);
      }
      const requestId = runRequestId(`delete ${resource}`);
      const outcome = await deleteComputeResource(
        ctx,
        ref,
        () =>
          retryTransient(ctx, () =>
            kind === 'addresses'
              ? compute.deleteAddress({ ...ref, requestId }, callOptions())
              : compute.deleteForwardingRule({ ...ref, requestId }, callOptions()),
          ),
        `the delete of ${resource}`,
      );
      return done([{ resource, outcome }]);
    } catch (err) {
      throw cleanupFailure(err, what, budgeted(input));
    }
  }

  function endpointName(input: CleanupInput): string | undefined {
    return input.resources.endpoint ?? (input.ids && endpointOf(input.project, input.region, input.ids));
  }

  /** Reads our endpoint: undefined when gone, a `not-ours` outcome when the ownership proof rules it out. */
  async function ourEndpoint(
    input: CleanupInput,
    name: string,
  ): Promise<{ endpoint: Endpoint } | { notOurs: CleanupOutcome } | undefined> {
    const endpoint = await retryTransient(ctx, () =>
      getIfExists(() => vertex.getEndpoint(name, callOptions())),
    );
    if (!endpoint) return undefined;
    const verdict = input.ownership && judgeVertexOwnership(ctx, 'endpoint', endpoint, input.ownership);
    if (verdict && !verdict.ours)
      return { notOurs: { resource: name, outcome: 'not-ours', reason: verdict.reason } };
    return { endpoint };
  }

  /**
   * Undeploys every model on the endpoint (iterating `deployedModels`, not the traffic split, which
   * can miss one), each time moving the traffic to the models that remain.
   */
  async function undeployAll(endpoint: Endpoint): Promise<CleanupOutcome[]> {
    const outcomes: CleanupOutcome[] = [];
    const remaining = endpoint.deployedModels.map((m) => m.id);
    for (const id of endpoint.deployedModels.map((m) => m.id)) {
      remaining.splice(remaining.indexOf(id), 1);
      const resource = `${endpoint.name}/deployedModels/${id}`;
      beat({ removing: resource });
      const trafficSplit = remaining.length > 0 ? { [remaining[0]!]: 100 } : undefined;
      const op = await retryTransient(ctx, () =>
        getIfExists(() =>
          vertex.undeployModel(
            { endpoint: endpoint.name, deployedModelId: id, ...(trafficSplit ? { trafficSplit } : {}) },
            callOptions(),
          ),
        ),
      );
      if (!op) {
        outcomes.push({ resource, outcome: 'already-gone' });
        continue;
      }
      const finished = await awaitVertexOperation(op.name, `undeploying ${id}`);
      if (finished.error && !isNotFound(finished.error)) throw finished.error;
      outcomes.push({ resource, outcome: finished.error ? 'already-gone' : 'removed' });
    }
    return outcomes;
  }

  async function awaitVertexOperation(name: string, what: string) {
    return pollUntil(ctx, {
      progress: () => ({ status: what, operation: name }),
      check: async () => {
        const op = await vertex.getOperation(name, callOptions());
        return op.done ? op : undefined;
      },
    });
  }

  async function deletePscForwardingRule(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    return removePsc(input, 'forwardingRules');
  }

  async function releasePscAddress(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    return removePsc(input, 'addresses');
  }

  /**
   * A deploy still running would create or deploy after we removed: cancel it and wait (bounded by
   * `stopWaitMs`) until Vertex reports it done. Past the bound the attempt fails, naming it.
   */
  async function stopOperation(input: CleanupInput): Promise<CleanupOutcome[]> {
    const operation = input.resources.deployOperation;
    if (!operation) return [];
    const op = await retryTransient(ctx, () =>
      getIfExists(() => vertex.getOperation(operation, callOptions())),
    );
    if (!op) return [{ resource: operation, outcome: 'already-gone' }];
    if (op.done) return [];
    await retryTransient(ctx, () => getIfExists(() => vertex.cancelOperation(operation, callOptions())));
    const waitMs = input.stopWaitMs ?? DEFAULT_STOP_WAIT_MS;
    await pollUntil(ctx, {
      progress: () => ({ status: 'waiting for the cancelled deploy operation to end', operation }),
      check: async () => {
        const current = await vertex.getOperation(operation, callOptions());
        return current.done ? current : undefined;
      },
      deadline: {
        at: Date.now() + waitMs,
        expired: async () => {
          throw new Error(
            `the deploy operation ${operation} was cancelled but is still running after ${Math.round(waitMs / 1000)} s`,
          );
        },
      },
    });
    return [{ resource: operation, outcome: 'removed' }];
  }

  async function stopDeployOperation(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    try {
      return done(await stopOperation(input));
    } catch (err) {
      throw cleanupFailure(
        err,
        `stop the deploy operation ${input.resources.deployOperation}`,
        budgeted(input),
      );
    }
  }

  async function undeployModels(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    const name = endpointName(input);
    if (!name) return done([]);
    try {
      await stopOperation(input);
      const found = await ourEndpoint(input, name);
      if (!found) return done([{ resource: `${name}/deployedModels`, outcome: 'already-gone' }]);
      if ('notOurs' in found) return done([found.notOurs]);
      const outcomes = await undeployAll(found.endpoint);
      return done(
        outcomes.length ? outcomes : [{ resource: `${name}/deployedModels`, outcome: 'already-gone' }],
      );
    } catch (err) {
      throw cleanupFailure(err, `undeploy the models of ${name}`, budgeted(input));
    }
  }

  async function deleteEndpoint(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    const name = endpointName(input);
    if (!name) return done([]);
    try {
      const found = await ourEndpoint(input, name);
      if (!found) return done([{ resource: name, outcome: 'already-gone' }]);
      if ('notOurs' in found) return done([found.notOurs]);
      const endpoint = found.endpoint;
      // A deploy that finished after the undeploy step left a model behind: Vertex refuses the delete until it is gone.
      const undeployed = await undeployAll(endpoint);
      beat({ removing: name });
      const op = await retryTransient(ctx, () =>
        getIfExists(() => vertex.deleteEndpoint(name, callOptions())),
      );
      if (!op) return done([...undeployed, { resource: name, outcome: 'already-gone' }]);
      const finished = await awaitVertexOperation(op.name, `deleting ${name}`);
      if (finished.error && !isNotFound(finished.error)) throw finished.error;
      return done([...undeployed, { resource: name, outcome: finished.error ? 'already-gone' : 'removed' }]);
    } catch (err) {
      throw cleanupFailure(err, `delete endpoint ${name}`, budgeted(input));
    }
  }

  async function deleteModel(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    const name = input.resources.model ?? (input.ids && modelOf(input.project, input.region, input.ids));
    if (!name) return done([]);
    try {
      const model = await retryTransient(ctx, () => getIfExists(() => vertex.getModel(name, callOptions())));
      if (!model) return done([{ resource: name, outcome: 'already-gone' }]);
      const verdict = input.ownership && judgeVertexOwnership(ctx, 'model', model, input.ownership);
      if (verdict && !verdict.ours)
        return done([{ resource: name, outcome: 'not-ours', reason: verdict.reason }]);
      beat({ removing: name });
      const op = await retryTransient(ctx, () => getIfExists(() => vertex.deleteModel(name, callOptions())));
      if (!op) return done([{ resource: name, outcome: 'already-gone' }]);
      const finished = await awaitVertexOperation(op.name, `deleting ${name}`);
      if (finished.error && !isNotFound(finished.error)) throw finished.error;
      return done([{ resource: name, outcome: finished.error ? 'already-gone' : 'removed' }]);
    } catch (err) {
      throw cleanupFailure(err, `delete model ${name}`, budgeted(input));
    }
  }

  return {
    deletePscForwardingRule,
    releasePscAddress,
    stopDeployOperation,
    undeployModels,
    deleteEndpoint,
    deleteModel,
  };
}
