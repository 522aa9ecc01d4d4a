import { type Address, type ComputeOperation, type ForwardingRule, isAlreadyExists } from '../gcp';
import { type PrivateAccess, formatDuration } from '../spec';
import {
  type Attempted,
  NON_RETRYABLE_ERRORS,
  type PscAddress,
  type PscConnection,
  type PscInput,
} from './contract';
import {
  type RegionalRef,
  awaitComputeOperation,
  computeName,
  relativeComputeName,
  runRequestId,
} from './compute-resources';
import type { ActivityContext } from './deps';
import { currentAttempt, permanentFailure, toActivityFailure } from './failures';
import { computeIdOf, judgePscOwnership, pscDescription } from './ownership';
import { beat, callOptions, pollUntil, retryTransient } from './runtime';
import { getIfExists } from './vertex-resources';

/**
 * The consumer side of Private Service Connect for a private endpoint: an internal address in the
 * consumer subnetwork and a forwarding rule from it to the endpoint's service attachment, both
 * named after the deployment and created idempotently (look first; `requestId` on inserts; an
 * existing resource is taken only if its description names this deployment), then the wait for
 * the producer to accept the connection.
 */
export function pscActivities(ctx: ActivityContext) {
  const compute = ctx.gcp.compute;

  /** Looks the resource up, creates it when missing, and returns it once it exists and is ours. */
  async function ensure<T extends Address | ForwardingRule>(
    input: PscInput,
    kind: 'address' | 'forwarding rule',
    ref: RegionalRef,
    read: () => Promise<T>,
    insert: (description: string, requestId: string) => Promise<ComputeOperation>,
  ): Promise<T> {
    const description = pscDescription(input.spec.name, input.ids.workflowId, input.identity);
    beat({ status: `looking up ${kind} ${ref.name}` });
    let resource = await retryTransient(ctx, () => getIfExists(read));
    if (!resource) {
      try {
        const op = await retryTransient(ctx, () =>
          insert(description, runRequestId(`insert ${kind} ${ref.name}`)),
        );
        const error = await awaitComputeOperation(ctx, ref, op, `the ${kind} insert`);
        if (error && !isAlreadyExists(error)) throw error;
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      resource = await retryTransient(ctx, read);
    }
    const recorded =
      kind === 'address' ? input.fingerprints?.pscAddressId : input.fingerprints?.pscForwardingRuleId;
    const verdict = judgePscOwnership(resource, input.spec.name, input.identity, recorded);
    if (!verdict.ours) {
      const noun = kind === 'address' ? 'addresses' : 'forwarding-rules';
      throw permanentFailure(
        NON_RETRYABLE_ERRORS.resourceConflict,
        `${kind} ${computeName(kind === 'address' ? 'addresses' : 'forwardingRules', ref)} already exists and is not ` +
          `this deployment's: ${verdict.reason}. If it is a leftover of an earlier deployment of "${input.spec.name}", ` +
          `remove it with \`garden-deploy teardown ${input.ids.workflowId}\`; otherwise delete it ` +
          `(gcloud compute ${noun} delete ${ref.name} --project ${ref.project} --region ${ref.region}) or rename the deployment.`,
      );
    }
    return resource;
  }

  async function reservePscAddress(input: PscInput): Promise<Attempted<PscAddress>> {
    const { access, ref } = consumerSide(input, input.ids.pscAddressName);
    try {
      let address = await ensure(
        input,
        'address',
        ref,
        () => compute.getAddress(ref, callOptions()),
        (description, requestId) =>
          compute.insertAddress(
            {
              ...ref,
              subnetwork: access.subnetwork,
              ...(access.ipAddress ? { address: access.ipAddress } : {}),
              description,
              requestId,
            },
            callOptions(),
          ),
      );
      if (!address.address) {
        address = await pollUntil(ctx, {
          progress: () => ({ status: `waiting for ${ref.name} to get its IP` }),
          resumable: true,
          check: async () => {
            const current = await compute.getAddress(ref, callOptions());
            return current.address ? current : undefined;
          },
        });
      }
      return {
        address: computeName('addresses', ref),
        ipAddress: address.address!,
        ...computeId(address),
        attempt: currentAttempt(),
      };
    } catch (err) {
      throw toActivityFailure(err, `reserving PSC address ${ref.name} in ${ref.project}`);
    }
  }

  async function createPscForwardingRule(
    input: PscInput & { address: PscAddress },
  ): Promise<Attempted<PscConnection>> {
    const { access, ref } = consumerSide(input, input.ids.pscForwardingRuleName);
    try {
      const rule = await ensure(
        input,
        'forwarding rule',
        ref,
        () => compute.getForwardingRule(ref, callOptions()),
        (description, requestId) =>
          compute.insertForwardingRule(
            {
              ...ref,
              target: input.serviceAttachment,
              network: access.network,
              ipAddress: input.address.address,
              ...(access.serviceDirectory ? { serviceDirectoryRegistration: access.serviceDirectory } : {}),
              description,
              requestId,
            },
            callOptions(),
          ),
      );
      const target = rule.target ? relativeComputeName(rule.target) : undefined;
      if (target && target !== relativeComputeName(input.serviceAttachment)) {
        throw permanentFailure(
          NON_RETRYABLE_ERRORS.resourceConflict,
          `forwarding rule ${computeName('forwardingRules', ref)} of this deployment targets ${target}, not the ` +
            `endpoint's service attachment ${input.serviceAttachment} (left over from an earlier endpoint). Delete it ` +
            `(gcloud compute forwarding-rules delete ${ref.name} --project ${ref.project} --region ${ref.region}) and retry.`,
        );
      }
      return {
        forwardingRule: computeName('forwardingRules', ref),
        ipAddress: rule.IPAddress ?? input.address.ipAddress,
        status: rule.pscConnectionStatus ?? 'PENDING',
        ...computeId(rule),
        attempt: currentAttempt(),
      };
    } catch (err) {
      throw toActivityFailure(err, `creating PSC forwarding rule ${ref.name} in ${ref.project}`);
    }
  }

  async function waitForPscConnection(
    input: PscInput & { connection: PscConnection; deadline: number },
  ): Promise<Attempted<PscConnection>> {
    const { access, ref } = consumerSide(input, input.ids.pscForwardingRuleName);
    let status = input.connection.status;
    const allowlistHint =
      `The endpoint accepts connections only from projects in access.projectAllowlist ` +
      `(${access.projectAllowlist.join(', ')}); the forwarding rule is in ${access.consumerProject}` +
      (access.projectAllowlist.includes(access.consumerProject)
        ? '. The consumer project is listed, so check the endpoint’s PSC settings in the Cloud console.'
        : ': add it to access.projectAllowlist and deploy again.');
    try {
      const rule = await pollUntil(ctx, {
        progress: () => ({ forwardingRule: input.connection.forwardingRule, status }),
        resumable: true,
        check: async () => {
          const current = await compute.getForwardingRule(ref, callOptions());
          status = current.pscConnectionStatus ?? 'PENDING';
          if (status === 'ACCEPTED') return current;
          if (status === 'REJECTED' || status === 'CLOSED') {
            throw permanentFailure(
              NON_RETRYABLE_ERRORS.pscRejected,
              `the PSC connection from ${input.connection.forwardingRule} to ${input.serviceAttachment} is ${status}. ${allowlistHint}`,
            );
          }
          return undefined;
        },
        deadline: {
          at: input.deadline,
          expired: async () => {
            throw permanentFailure(
              NON_RETRYABLE_ERRORS.pscTimeout,
              `the PSC connection from ${input.connection.forwardingRule} is still ${status} after timeouts.psc ` +
                `(${formatDuration(input.spec.timeouts.psc)}). ${allowlistHint}`,
            );
          },
        },
      });
      return {
        forwardingRule: input.connection.forwardingRule,
        ipAddress: rule.IPAddress ?? input.connection.ipAddress,
        status,
        attempt: currentAttempt(),
      };
    } catch (err) {
      throw toActivityFailure(err, `waiting for the PSC connection of ${ref.name}`);
    }
  }

  return { reservePscAddress, createPscForwardingRule, waitForPscConnection };
}

/** The resource's Compute id, as the optional `id` of a result. */
function computeId(resource: Readonly<Record<string, unknown>>): { id?: string } {
  const id = computeIdOf(resource);
  return id ? { id } : {};
}

/**
 * The private access settings, and where the consumer-side resource `name` lives: in the consumer
 * project, in the deployment's region.
 */
function consumerSide(input: PscInput, name: string): { access: PrivateAccess; ref: RegionalRef } {
  const access = privateAccess(input);
  return { access, ref: { project: access.consumerProject, region: input.spec.region, name } };
}

function privateAccess(input: PscInput): PrivateAccess {
  if (input.spec.access.type !== 'private') {
    throw permanentFailure(
      NON_RETRYABLE_ERRORS.gcpPermanent,
      `deployment ${input.spec.name} has public access: Private Service Connect applies to private endpoints only`,
    );
  }
  return input.spec.access;
}
