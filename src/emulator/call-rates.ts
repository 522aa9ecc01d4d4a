import { ROUTE_APIS, type RouteApi } from './http';

/**
 * API calls per project, service and wall-clock second: how often a client polls, measured by the
 * server (benchmarks and tests read it through the admin API). In memory only and bounded: per
 * (project, service) a total and a peak since the start or the last reset, and the per-second
 * counts of the last `WINDOW_SECONDS` seconds that had calls.
 */

/** Every API family but the admin API's (which is not counted). */
export const CALL_SERVICES = ROUTE_APIS.filter((api): api is Exclude<RouteApi, 'admin'> => api !== 'admin');
export type CallService = (typeof CALL_SERVICES)[number];

export const CALL_RATE_WINDOW_SECONDS = 600;

export interface SecondCount {
  /** Epoch second (`Math.floor(ms / 1000)`). */
  second: number;
  count: number;
}

export interface CallRate {
  /** Project number; `-` for calls that name no project (the STS token exchange). */
  project: string;
  /** The project id, when a call used it. */
  projectId?: string;
  service: CallService;
  /** Calls since the emulator started or the counters were last reset. */
  total: number;
  /** The most calls in one wall-clock second over the same span. */
  peakPerSecond: number;
  /** Calls per second over the last `CALL_RATE_WINDOW_SECONDS`, oldest first; seconds without calls left out. */
  perSecond: SecondCount[];
}

interface Counter {
  project: string;
  service: CallService;
  total: number;
  peakPerSecond: number;
  /** Ascending by second, none older than the window. */
  seconds: SecondCount[];
}

export class CallRates {
  private readonly counters = new Map<string, Counter>();

  record(project: string, service: CallService, now: number): void {
    const key = `${project}/${service}`;
    let counter = this.counters.get(key);
    if (!counter) {
      counter = { project, service, total: 0, peakPerSecond: 0, seconds: [] };
      this.counters.set(key, counter);
    }
    const second = Math.floor(now / 1000);
    const { seconds } = counter;
    // Calls arrive in clock order, so the second is almost always the last one or a new last one;
    // a clock stepped back lands earlier in the list.
    let i = seconds.length - 1;
    while (i >= 0 && seconds[i]!.second > second) i--;
    let slot = seconds[i];
    if (slot?.second !== second) {
      slot = { second, count: 0 };
      seconds.splice(i + 1, 0, slot);
    }
    slot.count += 1;
    counter.total += 1;
    counter.peakPerSecond = Math.max(counter.peakPerSecond, slot.count);
    const oldest = second - CALL_RATE_WINDOW_SECONDS;
    let stale = 0;
    while (stale < seconds.length && seconds[stale]!.second <= oldest) stale++;
    if (stale > 0) seconds.splice(0, stale);
  }

  /** The counters of one project (number) or all, of one service or all, ordered by project then service. */
  rates(filter: { project?: string; service?: CallService }, now: number): Omit<CallRate, 'projectId'>[] {
    const oldest = Math.floor(now / 1000) - CALL_RATE_WINDOW_SECONDS;
    return [...this.counters.values()]
      .filter(
        (c) =>
          (filter.project === undefined || c.project === filter.project) &&
          (filter.service === undefined || c.service === filter.service),
      )
      .sort((a, b) => a.project.localeCompare(b.project) || a.service.localeCompare(b.service))
      .map((c) => ({
        project: c.project,
        service: c.service,
        total: c.total,
        peakPerSecond: c.peakPerSecond,
        perSecond: c.seconds.filter((s) => s.second > oldest).map((s) => ({ ...s })),
      }));
  }

  /** Forgets the counters of one project (number), or all. */
  clear(project?: string): void {
    for (const [key, counter] of this.counters)
      if (project === undefined || counter.project === project) this.counters.delete(key);
  }
}
