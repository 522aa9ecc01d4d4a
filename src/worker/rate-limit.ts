import { setTimeout as delay } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type { GcpClient } from '../gcp';

/**
 * Google's API quotas are per project and region, per service. Every Vertex management, Compute and
 * prediction call of this worker first waits for the budget of its (service, project, region), so
 * a thousand deployments of one project cannot slow another project's, and a burst of retries
 * cannot turn into a storm of 429s. A call whose activity is cancelled stops waiting at once.
 *
 * The budget is shared by `workers` processes by giving each a whole share, ⌊budget ÷ workers⌋ calls
 * a second: evenly spaced calls at a whole rate r never put more than r in any one second, so with
 * that many workers running no second sees more than the budget. Temporal's server-side alternatives
 * (task-queue and fairness-key rate limits) limit activity dispatches, not calls; see the README.
 */

export const BUDGETED_SERVICES = ['vertex', 'compute', 'prediction'] as const;
export type BudgetedService = (typeof BUDGETED_SERVICES)[number];

/** Calls per second per project and region, for each service. */
export type ApiBudget = Record<BudgetedService, number>;

export interface LimiterClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<unknown>;
}

const wallClock: LimiterClock = { now: Date.now, sleep: (ms, signal) => delay(ms, undefined, { signal }) };

/** Spaces calls evenly: at most `perSecond` start in any second. */
export class RateLimiter {
  private nextSlot = 0;
  private readonly intervalMs: number;

  constructor(
    perSecond: number,
    private readonly clock: LimiterClock = wallClock,
  ) {
    if (!(perSecond > 0))
      throw new RangeError(`rate limit must be more than 0 requests per second, got ${perSecond}`);
    this.intervalMs = 1000 / perSecond;
  }

  /**
   * Resolves when the caller may send its request, with how long it waited (ms); rejects as soon
   * as `signal` aborts (the slot it had stays unused, so the rate is never exceeded).
   */
  async acquire(signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const now = this.clock.now();
    const slot = Math.max(now, this.nextSlot);
    this.nextSlot = slot + this.intervalMs;
    if (slot > now) await this.clock.sleep(slot - now, signal);
    return slot - now;
  }
}

/** One limiter per (service, project, region), created when first used. */
export class ApiBudgets {
  private readonly limiters = new Map<string, RateLimiter>();
  private readonly perSecond: ApiBudget;

  constructor(
    budget: ApiBudget,
    workers = 1,
    private readonly clock: LimiterClock = wallClock,
  ) {
    if (!(Number.isInteger(workers) && workers >= 1))
      throw new RangeError(`workers sharing the budget must be a whole number ≥ 1, got ${workers}`);
    this.perSecond = Object.fromEntries(
      BUDGETED_SERVICES.map((service) => [service, shareOf(budget[service], workers)]),
    ) as ApiBudget;
  }

  limiter(service: BudgetedService, scope: string): RateLimiter {
    const key = `${service} ${scope}`;
    let limiter = this.limiters.get(key);
    if (!limiter) {
      limiter = new RateLimiter(this.perSecond[service], this.clock);
      this.limiters.set(key, limiter);
    }
    return limiter;
  }
}

/**
 * One worker's calls per second: a whole number when it can be (a fractional rate such as 5/3 can
 * put two calls in one second); below one call a second, the fraction (then at most one a second).
 */
function shareOf(budget: number, workers: number): number {
  const share = budget / workers;
  return share >= 1 ? Math.floor(share) : share;
}

const RESOURCE_SCOPE = /^projects\/([^/]+)\/(?:locations|regions)\/([^/]+)/;

/**
 * The project and region a call is charged to. Vertex names operations by project number, so a
 * call made for a deployment is charged to the deployment's project (from its workflow id,
 * `deploy/{project}/{region}/{name}`); Compute calls name their project (the PSC consumer's) in
 * their first argument.
 */
function scopeOf(service: BudgetedService, args: unknown[]): string {
  const first = args[0];
  if (service === 'compute' && first && typeof first === 'object') {
    const { project, region } = first as { project?: unknown; region?: unknown };
    if (typeof project === 'string' && typeof region === 'string') return `${project}/${region}`;
  }
  const deployment = deploymentScope();
  if (deployment) return deployment;
  for (const arg of args) {
    const named = typeof arg === 'string' ? arg : (arg as { name?: unknown; endpoint?: unknown } | null);
    const text = typeof named === 'string' ? named : (named?.endpoint ?? named?.name);
    const match = typeof text === 'string' ? RESOURCE_SCOPE.exec(text) : null;
    if (match) return `${match[1]}/${match[2]}`;
    if (arg && typeof arg === 'object') {
      const { project, location } = arg as { project?: unknown; location?: unknown };
      if (typeof project === 'string' && typeof location === 'string') return `${project}/${location}`;
    }
  }
  return 'unscoped';
}

/** `project/region` of the deployment whose activity is running, if any. */
function deploymentScope(): string | undefined {
  let workflowId: string | undefined;
  try {
    workflowId = Context.current().info.workflowExecution?.workflowId;
  } catch {
    return undefined; // not inside an activity
  }
  const parts = workflowId?.split('/');
  return parts && parts[0] === 'deploy' && parts.length >= 4 ? `${parts[1]}/${parts[2]}` : undefined;
}

/** The cancellation signal in a call's options (its last argument), if any. */
function signalOf(args: unknown[]): AbortSignal | undefined {
  const last = args.at(-1);
  const signal = last && typeof last === 'object' ? (last as { signal?: unknown }).signal : undefined;
  return signal instanceof AbortSignal ? signal : undefined;
}

/** Told how long each call waited for its budget (metrics); not of a wait its cancellation ended. */
export type BudgetWaitObserver = (service: BudgetedService, waitedMs: number) => void;

/** Wraps every method of `target` so it first waits for its budget (async generators included). */
function limited<T extends object>(
  target: T,
  service: BudgetedService,
  budgets: ApiBudgets,
  onWait?: BudgetWaitObserver,
): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...a: unknown[]) => unknown;
      const acquire = async (args: unknown[]) => {
        const waited = await budgets.limiter(service, scopeOf(service, args)).acquire(signalOf(args));
        onWait?.(service, waited);
      };
      if (method.constructor.name === 'AsyncGeneratorFunction') {
        return async function* (...args: unknown[]) {
          await acquire(args);
          yield* method.apply(object, args) as AsyncIterable<unknown>;
        };
      }
      return async (...args: unknown[]) => {
        await acquire(args);
        return method.apply(object, args);
      };
    },
  });
}

/** The client with Vertex management, Compute and prediction behind their budgets. */
export function budgetedGcpClient(
  client: GcpClient,
  budgets: ApiBudgets,
  onWait?: BudgetWaitObserver,
): GcpClient {
  return {
    ...client,
    vertex: limited(client.vertex, 'vertex', budgets, onWait),
    compute: limited(client.compute, 'compute', budgets, onWait),
    prediction: limited(client.prediction, 'prediction', budgets, onWait),
  };
}
