import type { CallRate, CallService } from './call-rates';
import type { FaultConfigInput, FaultRuleInput, FaultRuleView } from './faults';
import type { ServedCounts } from './metrics';
import type { Timing, TimingInput } from './options';
import type { QuotaSettingInput, QuotaView } from './quotas';
import type { CreationKind } from './core';

/** Resource JSON as the emulator serves it (the same bodies as the Vertex / Compute GETs). */
export type ResourceJson = Record<string, unknown> & { name: string };

export interface EmulatorResources {
  endpoints: ResourceJson[];
  models: ResourceJson[];
  /** Vertex long-running operations. */
  operations: ResourceJson[];
  addresses: ResourceJson[];
  forwardingRules: ResourceJson[];
  computeOperations: ResourceJson[];
}

export interface EmulatorStats {
  /** Calls per route id (e.g. `vertex.deploy`), faulted and refused calls included. */
  calls: Record<string, number>;
  creations: Partial<Record<CreationKind, number>>;
}

/**
 * Answers of inference calls the traffic split routed to a deployed model, by endpoint name →
 * deployed model id → HTTP status (as a string) → count.
 */
export interface EmulatorServed {
  endpoints: ServedCounts;
}

export interface IssuedToken {
  accessToken: string;
  issuedAt: number;
  expiresAt: number;
  scope?: string;
}

export interface RouteInfo {
  id: string;
  method: string;
  api: string;
  pattern: string;
}

export class EmulatorAdminError extends Error {
  override readonly name = 'EmulatorAdminError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Typed client of the emulator's admin API (`/_emulator/...`). Pass `project` (id or number) to
 * look at one project only: tests that share an emulator use their own project each.
 */
export class EmulatorAdminClient {
  private readonly base: string;

  constructor(emulatorUrl: string) {
    this.base = emulatorUrl.replace(/\/+$/, '');
  }

  private async call<T>(
    method: string,
    path: string,
    query: Record<string, string | undefined> = {},
    body?: unknown,
  ): Promise<T> {
    const url = new URL(`${this.base}/_emulator${path}`);
    for (const [key, value] of Object.entries(query))
      if (value !== undefined) url.searchParams.set(key, value);
    const response = await fetch(url, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const length = Number(response.headers.get('content-length') ?? 0);
    if (length > MAX_RESPONSE_BYTES)
      throw new EmulatorAdminError(response.status, `admin response of ${length} bytes is too large`);
    const text = await response.text();
    const parsed = text ? (JSON.parse(text) as unknown) : {};
    if (!response.ok) {
      const message = (parsed as { error?: { message?: string } }).error?.message ?? text;
      throw new EmulatorAdminError(
        response.status,
        `emulator admin ${method} ${path} failed (${response.status}): ${message}`,
      );
    }
    return parsed as T;
  }

  async health(): Promise<boolean> {
    return (await this.call<{ ok: boolean }>('GET', '/health')).ok;
  }

  async routes(): Promise<RouteInfo[]> {
    return (await this.call<{ routes: RouteInfo[] }>('GET', '/routes')).routes;
  }

  resources(project?: string): Promise<EmulatorResources> {
    return this.call('GET', '/resources', { project });
  }

  stats(project?: string): Promise<EmulatorStats> {
    return this.call('GET', '/stats', { project });
  }

  /** Which deployed model answered each routed inference call, and with which status. */
  served(project?: string): Promise<EmulatorServed> {
    return this.call('GET', '/served', { project });
  }

  /**
   * Calls served per project (id or number) and service, per wall-clock second: how often a client
   * polls. One entry per (project, service) with calls, ordered by project number then service.
   */
  async callRates(filter: { project?: string; service?: CallService } = {}): Promise<CallRate[]> {
    return (await this.call<{ rates: CallRate[] }>('GET', '/call-rates', filter)).rates;
  }

  /** Starts the call counters over (of one project, when given); nothing else changes. */
  async resetCallRates(project?: string): Promise<void> {
    await this.call('DELETE', '/call-rates', { project });
  }

  /** Deletes every resource, operation, count (call rates included), served-call record, log entry, timing and quota setting (of one project, when given); tokens stay valid. */
  async reset(project?: string): Promise<void> {
    await this.call('POST', '/reset', { project });
  }

  faults(): Promise<{ seed: number; rules: FaultRuleView[] }> {
    return this.call('GET', '/faults');
  }

  /** Replaces all fault rules (and reseeds when `seed` is given). */
  setFaults(config: FaultConfigInput): Promise<{ seed: number; rules: FaultRuleView[] }> {
    return this.call('PUT', '/faults', {}, config);
  }

  /** Appends rules; returns their ids. */
  async addFaultRules(rules: FaultRuleInput[]): Promise<string[]> {
    return (await this.call<{ ids: string[] }>('POST', '/faults/rules', {}, { rules })).ids;
  }

  /** Removes all rules, those of one project, or one by id; returns how many went. */
  async clearFaults(filter: { project?: string; id?: string } = {}): Promise<number> {
    return (await this.call<{ removed: number }>('DELETE', '/faults', filter)).removed;
  }

  async tokens(): Promise<IssuedToken[]> {
    return (await this.call<{ tokens: IssuedToken[] }>('GET', '/tokens')).tokens;
  }

  /** A fresh access token (for curl and tests that skip the STS exchange). */
  async issueToken(): Promise<string> {
    return (await this.call<{ access_token: string }>('POST', '/tokens')).access_token;
  }

  timing(project: string): Promise<Timing> {
    return this.call('GET', `/projects/${encodeURIComponent(project)}/timing`);
  }

  /** Per-project timing overrides (e.g. a slow deploy to test cancellation); returns the effective timing. */
  setTiming(project: string, timing: Partial<TimingInput>): Promise<Timing> {
    return this.call('PUT', `/projects/${encodeURIComponent(project)}/timing`, {}, timing);
  }

  /** A region's serving GPU limits and usage (what its deployments charge plus the extra usage set), per accelerator type. */
  quota(project: string, region: string): Promise<QuotaView> {
    return this.call('GET', `/projects/${encodeURIComponent(project)}/quota`, { region });
  }

  /**
   * Merges limits and extra usage (per accelerator type, e.g. `{NVIDIA_L4: 8}`) into a region's
   * quota; returns the region's effective limits and usage.
   */
  setQuota(project: string, setting: QuotaSettingInput): Promise<QuotaView> {
    return this.call('PUT', `/projects/${encodeURIComponent(project)}/quota`, {}, setting);
  }
}
