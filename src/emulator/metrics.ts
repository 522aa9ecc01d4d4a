import type { ServerResponse } from 'node:http';
import { Ring } from './ring';
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

const SERVED_SAMPLES_KEPT = 200_000;

export class ServedRequests {
  private readonly ring: Ring<ServedSample>;

  constructor(capacity = SERVED_SAMPLES_KEPT) {
    this.ring = new Ring(capacity);
  }

  record(sample: ServedSample): void {
    this.ring.add(sample);
  }

  /** Samples oldest first, of one project (number) or all. */
  samples(project?: string): ServedSample[] {
    return this.ring.items(project === undefined ? undefined : (s) => s.project === project);
  }

  clear(project?: string): void {
    this.ring.clear(project);
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
