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

/**
 * The compensations, run newest first by the workflow (forwarding rule, address, deployed models,
 * endpoint, model) and retried until they succeed. Each is idempotent (gone already is success),
 * works from the recorded resource names or else from the deployment's deterministic ids, leaves
 * alone what the ownership proof says is not ours, and waits for its operation to finish.
 */
export function compensationActivities(ctx: ActivityContext) {
  const { vertex, compute } = ctx.gcp;

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
        const description = typeof current.description === 'string' ? current.description : undefined;
        if (!judgePscOwnership(description, input.ownership.deploymentLabel).ours) {
          return done([{ resource, outcome: 'not-ours' }]);
        }
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
      throw cleanupFailure(err, what);
    }
  }

  function endpointName(input: CleanupInput): string | undefined {
    return input.resources.endpoint ?? (input.ids && endpointOf(input.project, input.region, input.ids));
  }

  /** Reads our endpoint: undefined when gone, `not-ours` when the ownership proof rules it out. */
  async function ourEndpoint(input: CleanupInput, name: string): Promise<Endpoint | 'not-ours' | undefined> {
    const endpoint = await retryTransient(ctx, () =>
      getIfExists(() => vertex.getEndpoint(name, callOptions())),
    );
    if (!endpoint) return undefined;
    if (input.ownership && !judgeVertexOwnership(ctx, 'endpoint', endpoint, input.ownership).ours)
      return 'not-ours';
    return endpoint;
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

  async function undeployModels(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    const name = endpointName(input);
    if (!name) return done([]);
    try {
      const operation = input.resources.deployOperation;
      if (operation) {
        // A deploy still running would deploy a model after we undeployed: stop it and wait it out.
        const op = await retryTransient(ctx, () =>
          getIfExists(() => vertex.getOperation(operation, callOptions())),
        );
        if (op && !op.done) {
          await retryTransient(ctx, () =>
            getIfExists(() => vertex.cancelOperation(operation, callOptions())),
          );
          await awaitVertexOperation(operation, 'waiting for the cancelled deploy operation to end');
        }
      }
      const endpoint = await ourEndpoint(input, name);
      if (!endpoint) return done([{ resource: `${name}/deployedModels`, outcome: 'already-gone' }]);
      if (endpoint === 'not-ours') return done([{ resource: name, outcome: 'not-ours' }]);
      const outcomes = await undeployAll(endpoint);
      return done(
        outcomes.length ? outcomes : [{ resource: `${name}/deployedModels`, outcome: 'already-gone' }],
      );
    } catch (err) {
      throw cleanupFailure(err, `undeploy the models of ${name}`);
    }
  }

  async function deleteEndpoint(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    const name = endpointName(input);
    if (!name) return done([]);
    try {
      const endpoint = await ourEndpoint(input, name);
      if (!endpoint) return done([{ resource: name, outcome: 'already-gone' }]);
      if (endpoint === 'not-ours') return done([{ resource: name, outcome: 'not-ours' }]);
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
      throw cleanupFailure(err, `delete endpoint ${name}`);
    }
  }

  async function deleteModel(input: CleanupInput): Promise<Attempted<CleanupResult>> {
    const name = input.resources.model ?? (input.ids && modelOf(input.project, input.region, input.ids));
    if (!name) return done([]);
    try {
      const model = await retryTransient(ctx, () => getIfExists(() => vertex.getModel(name, callOptions())));
      if (!model) return done([{ resource: name, outcome: 'already-gone' }]);
      if (input.ownership && !judgeVertexOwnership(ctx, 'model', model, input.ownership).ours) {
        return done([{ resource: name, outcome: 'not-ours' }]);
      }
      beat({ removing: name });
      const op = await retryTransient(ctx, () => getIfExists(() => vertex.deleteModel(name, callOptions())));
      if (!op) return done([{ resource: name, outcome: 'already-gone' }]);
      const finished = await awaitVertexOperation(op.name, `deleting ${name}`);
      if (finished.error && !isNotFound(finished.error)) throw finished.error;
      return done([{ resource: name, outcome: finished.error ? 'already-gone' : 'removed' }]);
    } catch (err) {
      throw cleanupFailure(err, `delete model ${name}`);
    }
  }

  return { deletePscForwardingRule, releasePscAddress, undeployModels, deleteEndpoint, deleteModel };
}
