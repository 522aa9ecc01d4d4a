import { currentUpdateInfo } from '@temporalio/workflow';
import type { RequestRecord } from '../types';

/** Update outcomes kept for idempotency across continue-as-new. */
const MAX_REMEMBERED_REQUESTS = 50;

/**
 * The answers given to the latest Updates, by request id (the Update id). Temporal already gives a
 * repeated id in the same run the first answer; this also does after continue-as-new.
 */
export class RequestLog {
  constructor(private readonly records: RequestRecord[] = []) {}

  /** A request id already answered: its validator accepts it again, its handler answers the same. */
  known(): boolean {
    const id = currentUpdateInfo()?.id;
    return id !== undefined && this.records.some((r) => r.id === id);
  }

  /** Runs an Update's handler once per request id. */
  async once<T>(update: string, handle: () => Promise<T>): Promise<T> {
    const id = currentUpdateInfo()?.id;
    const known = id ? this.records.find((r) => r.id === id) : undefined;
    if (known) return known.result as T;
    const result = await handle();
    if (id) {
      this.records.push({ id, update, result });
      if (this.records.length > MAX_REMEMBERED_REQUESTS) this.records.shift();
    }
    return result;
  }

  /** What continue-as-new carries. */
  carry(): RequestRecord[] {
    return [...this.records];
  }
}
