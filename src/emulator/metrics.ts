import type { ServerResponse } from 'node:http';
import type { Serving } from './traffic';

/**
 * Served-request samples: one per inference call that was routed to a deployed model and answered
 * (successes, vLLM's 400s and injected errors alike; not calls whose client hung up first). They
 * feed Cloud Monitoring's `prediction/online/*` metrics and the admin `served` counts. In memory
 * only and bounded: the newest `capacity` samples are kept.
 */

export interface ServedSample {
  /** When the answer was finished (epoch ms). */
  time: number;
  /** Project number. */
  project: string;
  location: string;
  /** Full endpoint name. */
  endpoint: string;
  endpointId: string;
  endpointDisplayName: string;
  deployedModelId: string;
  modelDisplayName: string;
  status: number;
  /** From the start of dispatch to the answer's last byte (injected latency included). */
  latencyMs: number;
}

/** Counts of answers: endpoint name → deployed model id → HTTP status → calls. */
export type ServedCounts = Record<string, Record<string, Record<string, number>>>;

export const SERVED_SAMPLES_KEPT = 200_000;

export class ServedRequests {
  /** A ring: once full, `next` is the oldest sample and the next one to be overwritten. */
  private ring: ServedSample[] = [];
  private next = 0;

  constructor(private readonly capacity = SERVED_SAMPLES_KEPT) {}

  record(sample: ServedSample): void {
    if (this.ring.length < this.capacity) this.ring.push(sample);
    else {
      this.ring[this.next] = sample;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  /** Samples oldest first, of one project (number) or all. */
  samples(project?: string): ServedSample[] {
    const ordered = [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return project === undefined ? ordered : ordered.filter((s) => s.project === project);
  }

  clear(project?: string): void {
    this.ring = project === undefined ? [] : this.samples().filter((s) => s.project !== project);
    this.next = 0;
  }

  counts(project?: string): ServedCounts {
    const counts: ServedCounts = {};
    for (const s of this.samples(project)) {
      const byStatus = ((counts[s.endpoint] ??= {})[s.deployedModelId] ??= {});
      byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    }
    return counts;
  }
}

/**
 * Records the call when its answer is completed (`end`); a call whose client hung up before that,
 * or whose connection a fault cut, is not recorded.
 */
export function recordWhenAnswered(
  served: ServedRequests,
  res: ServerResponse,
  { endpoint, deployed }: Serving,
  startedAt: number,
  clock: () => number,
): void {
  // Not on 'finish': a client that has its answer may ask Monitoring before 'finish' runs here.
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  let recorded = false;
  res.end = ((...args: unknown[]) => {
    if (!recorded && !res.destroyed) {
      recorded = true;
      record();
    }
    return end(...args);
  }) as typeof res.end;
  const record = () => {
    const time = clock();
    served.record({
      time,
      project: endpoint.project,
      location: endpoint.location,
      endpoint: endpoint.name,
      endpointId: endpoint.id,
      endpointDisplayName: endpoint.displayName,
      deployedModelId: deployed.id,
      modelDisplayName: deployed.displayName,
      status: res.statusCode,
      latencyMs: time - startedAt,
    });
  };
}
