import { setTimeout as delay } from 'node:timers/promises';
import { GcpApiError, type GcpClient, type PredictionTarget } from '../../src/gcp';

/**
 * A steady stream of chat requests to an endpoint, as its clients would send them, recording which
 * deployed model answered each and every failure: what an upgrade must not disturb.
 */

export interface LoadReport {
  sent: number;
  ok: number;
  /** Each failed request: when, and what the client saw. */
  failures: Array<{ at: number; message: string }>;
  /** Answers per deployed model (`X-Vertex-AI-Deployed-Model-Id`). */
  byDeployedModel: Record<string, number>;
}

export interface Load {
  /** The report so far. */
  report(): LoadReport;
  /** Stops sending and waits for the requests in flight; returns the final report. */
  stop(): Promise<LoadReport>;
}

export function startLoad(
  gcp: GcpClient,
  target: PredictionTarget,
  options: { workers?: number; pauseMs?: number } = {},
): Load {
  const report: LoadReport = { sent: 0, ok: 0, failures: [], byDeployedModel: {} };
  const stop = new AbortController();
  const one = async (n: number) => {
    let servedBy: string | undefined;
    try {
      await gcp.prediction.chatCompletions(
        target,
        { messages: [{ role: 'user', content: `request ${n}: say something short` }], max_tokens: 8 },
        { servedBy: (served) => (servedBy = served.deployedModelId), timeoutMs: 30_000 },
      );
      report.ok++;
      if (servedBy) report.byDeployedModel[servedBy] = (report.byDeployedModel[servedBy] ?? 0) + 1;
    } catch (err) {
      const message =
        err instanceof GcpApiError
          ? `${err.httpStatus ?? ''} ${err.status}: ${err.googleMessage}${servedBy ? ` (deployed model ${servedBy})` : ''}`
          : String(err);
      report.failures.push({ at: Date.now(), message });
    }
  };
  const loop = async () => {
    while (!stop.signal.aborted) {
      await one(report.sent++);
      await delay(options.pauseMs ?? 20, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  };
  const workers = Array.from({ length: options.workers ?? 2 }, loop);
  return {
    report: () => ({
      ...report,
      failures: [...report.failures],
      byDeployedModel: { ...report.byDeployedModel },
    }),
    async stop() {
      stop.abort();
      await Promise.all(workers);
      return report;
    },
  };
}
