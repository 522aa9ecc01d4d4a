/**
 * Workflow interceptors for tracing (bundled; see src/tracing.ts). The SDK's OpenTelemetry
 * interceptors run only for a workflow whose start carried a trace context (a traced client):
 * otherwise they would add a plaintext trace header to every activity even with tracing off (and
 * payload encryption on). Decided from the start's headers, which the history holds: deterministic.
 *
 * OpenTelemetry is loaded only by a traced workflow: every workflow evaluates its own copy of the
 * modules it loads (the SDK shares only its own between workflows), and OpenTelemetry's ~110
 * modules cost each untraced deployment memory and start time for nothing.
 */
import type * as OtelWorkflow from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { WorkflowInterceptors } from '@temporalio/workflow';

/**
 * The header the SDK's OpenTelemetry interceptors carry the trace context in (`TRACE_HEADER` of
 * `@temporalio/interceptors-opentelemetry`, asserted equal in test/workflows/tracing-interceptors.test.ts;
 * importing it would load OpenTelemetry in every workflow).
 */
export const TRACE_HEADER = '_tracer-data';

/** Every interceptor method the SDK calls, by kind: the surface gated below. */
export const INTERCEPTOR_METHODS = {
  inbound: ['execute', 'handleSignal', 'handleUpdate', 'validateUpdate', 'handleQuery'],
  outbound: [
    'scheduleActivity',
    'scheduleLocalActivity',
    'startNexusOperation',
    'startChildWorkflowExecution',
    'continueAsNew',
    'signalWorkflow',
    'getLogAttributes',
    'getMetricTags',
  ],
  internals: ['activate', 'concludeActivation', 'dispose'],
} as const;
type Kind = keyof typeof INTERCEPTOR_METHODS;

type Method = (input: unknown, next: (input: unknown) => unknown) => unknown;

const OTEL_CLASS = {
  inbound: 'OpenTelemetryInboundInterceptor',
  outbound: 'OpenTelemetryOutboundInterceptor',
  internals: 'OpenTelemetryInternalsInterceptor',
} as const satisfies Record<Kind, keyof typeof OtelWorkflow>;

export const interceptors = (): WorkflowInterceptors => {
  const state: { traced: boolean; otel?: Partial<Record<Kind, Record<string, unknown>>> } = { traced: false };
  const inner = (kind: Kind): Record<string, unknown> => {
    const made = (state.otel ??= {});
    if (!made[kind]) {
      // Loaded here, not imported at the top: only a traced workflow pays for OpenTelemetry.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const otel = require('@temporalio/interceptors-opentelemetry/lib/workflow') as typeof OtelWorkflow;
      made[kind] = new otel[OTEL_CLASS[kind]]() as unknown as Record<string, unknown>;
    }
    return made[kind];
  };
  // Each method runs the SDK's interceptor only when the workflow is traced; otherwise straight to `next`.
  const gated = (kind: Kind) =>
    Object.fromEntries(
      INTERCEPTOR_METHODS[kind].map((name) => [
        name,
        (input: unknown, next: (input: unknown) => unknown) => {
          if (name === 'execute')
            state.traced = TRACE_HEADER in ((input as { headers?: object }).headers ?? {});
          if (!state.traced) return next(input);
          const target = inner(kind);
          const method = target[name] as Method | undefined;
          return method ? method.call(target, input, next) : next(input);
        },
      ]),
    );
  return { inbound: [gated('inbound')], outbound: [gated('outbound')], internals: [gated('internals')] };
};
