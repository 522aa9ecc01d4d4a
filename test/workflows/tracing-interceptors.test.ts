import { TRACE_HEADER as SDK_TRACE_HEADER } from '@temporalio/interceptors-opentelemetry/lib/instrumentation';
import * as otel from '@temporalio/interceptors-opentelemetry/lib/workflow';
import { describe, expect, it } from 'vitest';
import { INTERCEPTOR_METHODS, TRACE_HEADER } from '../../src/workflows/tracing-interceptors';

/** The own methods of a class's prototype chain, up to Object. */
function methodsOf(cls: new () => object): string[] {
  const names = new Set<string>();
  for (let proto = cls.prototype as object; proto !== Object.prototype; proto = Object.getPrototypeOf(proto))
    for (const name of Object.getOwnPropertyNames(proto)) if (name !== 'constructor') names.add(name);
  return [...names];
}

describe('the gated OpenTelemetry workflow interceptors', () => {
  it('look for the trace header the SDK writes', () => {
    expect(TRACE_HEADER).toBe(SDK_TRACE_HEADER);
  });

  it.each([
    ['inbound', otel.OpenTelemetryInboundInterceptor],
    ['outbound', otel.OpenTelemetryOutboundInterceptor],
    ['internals', otel.OpenTelemetryInternalsInterceptor],
  ] as const)('pass on every %s method the SDK interceptor has (a new one would be skipped)', (kind, cls) => {
    const gated: readonly string[] = INTERCEPTOR_METHODS[kind];
    expect(methodsOf(cls).filter((name) => !gated.includes(name))).toEqual([]);
  });
});
