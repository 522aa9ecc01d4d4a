/**
 * Workflow interceptors for tracing (bundled; see src/tracing.ts). The SDK's OpenTelemetry
 * interceptors run only for a workflow whose start carried a trace context (a traced client):
 * otherwise they would add a plaintext trace header to every activity even with tracing off (and
 * payload encryption on). Decided from the start's headers, which the history holds: deterministic.
 */
import { TRACE_HEADER } from '@temporalio/interceptors-opentelemetry/lib/instrumentation';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { WorkflowExecuteInput, WorkflowInterceptors } from '@temporalio/workflow';

type Method = (input: unknown, next: (input: unknown) => unknown) => unknown;

export const interceptors = (): WorkflowInterceptors => {
  const state = { traced: false };
  // Each method of `inner` runs only when the workflow is traced; otherwise straight to `next`.
  const gated = <T extends object>(inner: T): T =>
    new Proxy(inner, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop);
        if (typeof value !== 'function') return value;
        const method = value as Method;
        return (input: unknown, next: (input: unknown) => unknown) => {
          if (prop === 'execute')
            state.traced = TRACE_HEADER in ((input as WorkflowExecuteInput).headers ?? {});
          return state.traced ? method.call(target, input, next) : next(input);
        };
      },
    });
  return {
    inbound: [gated(new OpenTelemetryInboundInterceptor())],
    outbound: [gated(new OpenTelemetryOutboundInterceptor())],
    internals: [gated(new OpenTelemetryInternalsInterceptor())],
  };
};
