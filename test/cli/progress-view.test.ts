import { describe, expect, it } from 'vitest';
import type { DeploymentStatus, StepView } from '../../src/client';
import { ProgressDisplay, renderStatus } from '../../src/cli/progress-view';

const startedAt = '2026-01-01T10:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(startedAt) + seconds * 1000).toISOString();

function status(steps: StepView[], extra: Partial<DeploymentStatus> = {}): DeploymentStatus {
  return {
    workflowId: 'deploy/my-project/us-central1/llama-ft',
    runId: 'run-1',
    workflowType: 'deployModel',
    status: 'RUNNING',
    taskQueue: 'garden-deploy',
    startedAt,
    deployment: 'llama-ft',
    stage: 'WAITING_FOR_REPLICAS',
    percent: 60,
    steps,
    activities: [],
    notes: [],
    ...extra,
  };
}

const validated: StepView = {
  name: 'validate',
  status: 'succeeded',
  attempts: 1,
  startedAt,
  finishedAt: at(2),
  detail: 'Llama-tiny ok',
};
const waiting = (available: number): StepView => ({
  name: 'waitForReplicas',
  status: 'running',
  attempts: 0,
  startedAt: at(10),
  activity: {
    activityType: 'waitForReplicas',
    step: 'waitForReplicas',
    compensation: false,
    state: 'STARTED',
    attempt: 2,
    maximumAttempts: 20,
    waiting: false,
    lastFailure: '503 backend unavailable',
    replicas: { available, target: 2, message: 'scaling up' },
  },
});

describe('progress display', () => {
  it('shows each step with its live attempt, replicas, last failure and elapsed time', () => {
    const lines = renderStatus(status([validated, waiting(1)]), { color: false, now: Date.parse(at(70)) });
    expect(lines[0]).toBe('llama-ft  WAITING_FOR_REPLICAS  60%  1m10s');
    expect(lines).toContain('  ✔ Validate weights         Llama-tiny ok · 2s');
    expect(lines).toContain(
      '  ▶ Wait for replicas        attempt 2 of 20 · replicas 1/2 (scaling up) · last attempt failed: 503 backend unavailable · 1m',
    );
  });

  it('says when a waiting step checks next, without calling the wait a failure or a retry', () => {
    const step: StepView = {
      ...waiting(0),
      activity: {
        ...waiting(0).activity!,
        attempt: 1,
        maximumAttempts: 0,
        waiting: true,
        lastFailure: undefined,
        state: 'SCHEDULED',
        nextAttemptAt: at(75),
      },
    };
    const lines = renderStatus(status([validated, step]), { color: false, now: Date.parse(at(70)) });
    expect(lines).toContain('  ▶ Wait for replicas        replicas 0/2 (scaling up) · next check in 5s · 1m');
  });

  it('redraws in place on a TTY: moves up over the previous frame and clears it', () => {
    const writes: string[] = [];
    const display = new ProgressDisplay((text) => writes.push(text), {
      tty: true,
      color: false,
      columns: 200,
    });
    display.update(status([validated, waiting(1)]));
    display.update(status([validated, waiting(2)]));
    display.stop();
    const firstFrameRows = writes[0]!.trimEnd().split('\n').length;
    expect(writes[0]).not.toContain('\x1b[');
    expect(writes[1]!.startsWith(`\x1b[${firstFrameRows}F\x1b[0J`)).toBe(true);
    expect(writes[1]).toContain('replicas 2/2');
  });

  it('appends one line per change when not a TTY, and nothing when nothing changed', () => {
    const writes: string[] = [];
    const display = new ProgressDisplay((text) => writes.push(text), { tty: false, color: false });
    display.update(status([validated, waiting(1)]));
    const first = writes.length;
    display.update(status([validated, waiting(1)]));
    expect(writes.length).toBe(first);
    display.update(status([validated, waiting(2)]));
    expect(writes.slice(first)).toEqual([
      expect.stringMatching(
        /^\[\+\S+\] Wait for replicas: running · attempt 2 of 20 · replicas 2\/2 \(scaling up\)/,
      ),
    ]);
    expect(writes.join('')).not.toContain('\x1b[');
  });
});
