import path from 'node:path';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { WorkerOptions } from '@temporalio/worker';
import type { ExchangeRecord, GcpApi } from './gcp';

/**
 * OpenTelemetry tracing through Temporal's interceptors: client → workflow → activities → one span
 * per Google call. Off unless configured; spans carry names, routes (ids as `*`) and statuses,
 * never headers, tokens, bodies or prompts.
 */

/** `otlp` turns tracing on with the OTLP exporter's own defaults (http://localhost:4318). */
export const TRACING_ENV = 'GARDEN_DEPLOY_TRACING';

/**
 * The otel workflow interceptors, which must be in every workflow bundle (a prebuilt bundle ignores
 * the worker's `workflowModules`): always bundled, so one bundle serves traced and untraced workers.
 */
// No extension: webpack resolves it to the .ts source (tests, tsx) or the built .js.
export const WORKFLOW_INTERCEPTOR_MODULES = [path.join(__dirname, 'workflows', 'tracing-interceptors')];

/** Tracing is on with the standard OTLP endpoint variables or `GARDEN_DEPLOY_TRACING=otlp`. */
export function tracingConfigured(env: Record<string, string | undefined> = process.env): boolean {
  return Boolean(
    env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env[TRACING_ENV] === 'otlp',
  );
}

export interface Tracing {
  /** Where every span of the process ends, workflow spans (told through the sink) included. */
  processor: SpanProcessor;
  resource: Resource;
  /** Exports what is buffered (before a short-lived process exits). */
  flush(): Promise<void>;
}

let installed: Tracing | undefined;

/**
 * Registers the process's tracer provider once (context manager and W3C propagation included),
 * exporting by OTLP (the SDK reads `OTEL_EXPORTER_OTLP_*`) unless given a processor (tests).
 * Returns undefined when tracing is not configured and no processor is given.
 */
export function installTracing(
  serviceName: string,
  {
    env = process.env,
    processor,
  }: { env?: Record<string, string | undefined>; processor?: SpanProcessor } = {},
): Tracing | undefined {
  if (installed) return installed;
  if (!processor && !tracingConfigured(env)) return undefined;
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME ?? serviceName });
  const spanProcessor = processor ?? new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  installed = { processor: spanProcessor, resource, flush: () => provider.forceFlush() };
  return installed;
}

/** The process's tracing, when installed. */
export function activeTracing(): Tracing | undefined {
  return installed;
}

/**
 * Worker options for tracing. The workflow span sink is registered even when tracing is off: a
 * traced client's workflows call it (their spans then go nowhere).
 */
export function workerTracingOptions(
  tracing: Tracing | undefined,
): Required<Pick<WorkerOptions, 'sinks'>> & Pick<WorkerOptions, 'interceptors'> {
  const exporter = makeWorkflowExporter(
    tracing?.processor ?? new NoopSpanProcessor(),
    tracing?.resource ?? Resource.empty(),
  );
  return {
    sinks: { exporter },
    ...(tracing
      ? {
          interceptors: {
            activity: [
              (ctx) => ({
                inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
                outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
              }),
            ],
          },
        }
      : {}),
  };
}

/** Client interceptors that start a span per workflow start/signal/query and pass its context on. */
export function clientTracingInterceptors(): WorkflowClientInterceptor[] {
  return [new OpenTelemetryWorkflowClientInterceptor()];
}

/**
 * One span per Google HTTP exchange, under the active (activity) span: API, HTTP method, route
 * (ids as `*`, as metrics count it) and status. Nothing else of the request is recorded.
 */
export function traceGcpCall(api: GcpApi, { method, route, status, startedAt }: ExchangeRecord): void {
  const span = trace.getTracer('garden-deploy').startSpan(`gcp ${api} ${method} ${route}`, {
    kind: SpanKind.CLIENT,
    startTime: startedAt,
    attributes: {
      'gcp.service': api,
      'http.request.method': method,
      'http.route': route,
      'http.response.status': status,
    },
  });
  const code = Number(status);
  if (!(code >= 200 && code < 400)) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
