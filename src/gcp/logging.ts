import { z } from 'zod';
import type { GcpClientConfig } from './config';
import { type CallOptions, type HttpTransport, sendJsonCall } from './http';
import { parseInput } from './input';
import { LOCATION_RE, PROJECT_RE } from './names';

const SERVICE = 'logging.googleapis.com';

const LogEntrySchema = z.looseObject({
  logName: z.string().optional(),
  timestamp: z.string().optional(),
  severity: z.string().optional(),
  textPayload: z.string().optional(),
  jsonPayload: z.record(z.string(), z.unknown()).optional(),
  labels: z.record(z.string(), z.string()).default({}),
  insertId: z.string().optional(),
});
export type LogEntry = z.infer<typeof LogEntrySchema>;

const ListEntriesResponseSchema = z.looseObject({
  entries: z.array(LogEntrySchema).max(1_000).default([]),
  nextPageToken: z.string().optional(),
});

const ListEntriesInputSchema = z.strictObject({
  resourceNames: z
    .array(z.string().regex(/^projects\/[^/]+$/, 'must be projects/PROJECT'))
    .min(1)
    .max(100),
  filter: z.string().max(20_000).optional(),
  orderBy: z.enum(['timestamp asc', 'timestamp desc']).optional(),
  pageSize: z.number().int().min(1).max(1_000).optional(),
  pageToken: z.string().min(1).max(10_000).optional(),
});
export type ListEntriesInput = z.input<typeof ListEntriesInputSchema>;

/** Cloud Logging v2 reads (`entries:list`), over the same ADC transport as every other call. */
export class LoggingClient {
  constructor(
    private readonly transport: HttpTransport,
    private readonly config: GcpClientConfig,
  ) {}

  /** `POST v2/entries:list` — one page; an empty page with a token means "not searched through yet". */
  async listEntries(
    input: ListEntriesInput,
    options: CallOptions = {},
  ): Promise<{ entries: LogEntry[]; nextPageToken?: string }> {
    const body = parseInput(ListEntriesInputSchema, input, 'log entries request');
    const url = new URL(`${this.config.loggingBaseUrl.replace(/\/+$/, '')}/v2/entries:list`);
    const page = await sendJsonCall(
      this.transport,
      this.config,
      { service: SERVICE, method: 'POST', url, body, options },
      ListEntriesResponseSchema,
    );
    return { entries: page.entries, ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) };
  }
}

/** One line the serving container wrote. */
export interface ContainerLogLine {
  timestamp?: string;
  severity?: string;
  message: string;
}

const ContainerLogRequestSchema = z.strictObject({
  project: z.string().regex(PROJECT_RE, 'must be a project ID or number'),
  // Each goes into the filter between quotes: only characters a resource id can hold.
  region: z.string().regex(LOCATION_RE, 'must be a region like us-central1'),
  endpointId: z.string().regex(/^[a-z0-9-]{1,128}$/, 'must be an endpoint id'),
  deployedModelId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a deployed model id')
    .optional(),
  /** Only lines written after this time. */
  since: z.date(),
  /** At most this many (the newest). */
  max: z.number().int().min(1).max(1_000).default(50),
});

/** Pages read at most while looking for lines (Logging may answer empty pages while it searches). */
const MAX_PAGES = 5;

/**
 * The newest lines a Vertex endpoint's serving container wrote (log `prediction_container`, per
 * lifecycle-apis.md §3.3), oldest first; only those of one deployed model when given.
 */
export async function containerLogLines(
  logging: LoggingClient,
  request: z.input<typeof ContainerLogRequestSchema>,
  options: CallOptions = {},
): Promise<ContainerLogLine[]> {
  const r = parseInput(ContainerLogRequestSchema, request, 'container log request');
  const filter = [
    'resource.type="aiplatform.googleapis.com/Endpoint"',
    `resource.labels.endpoint_id="${r.endpointId}"`,
    `resource.labels.location="${r.region}"`,
    `logName="projects/${r.project}/logs/aiplatform.googleapis.com%2Fprediction_container"`,
    ...(r.deployedModelId ? [`labels.deployed_model_id="${r.deployedModelId}"`] : []),
    `timestamp>="${r.since.toISOString()}"`,
  ].join(' AND ');
  const lines: ContainerLogLine[] = [];
  let pageToken: string | undefined;
  for (let page = 0; page < MAX_PAGES && lines.length < r.max; page++) {
    const result = await logging.listEntries(
      {
        resourceNames: [`projects/${r.project}`],
        filter,
        orderBy: 'timestamp desc',
        pageSize: Math.min(r.max - lines.length, 1_000),
        ...(pageToken ? { pageToken } : {}),
      },
      options,
    );
    for (const entry of result.entries) lines.push(lineOf(entry));
    pageToken = result.nextPageToken;
    if (!pageToken) break;
  }
  return lines.slice(0, r.max).reverse();
}

function lineOf(entry: LogEntry): ContainerLogLine {
  const message =
    typeof entry.jsonPayload?.message === 'string'
      ? entry.jsonPayload.message
      : (entry.textPayload ?? JSON.stringify(entry.jsonPayload ?? {}));
  return {
    message,
    ...(entry.timestamp ? { timestamp: entry.timestamp } : {}),
    ...(entry.severity ? { severity: entry.severity } : {}),
  };
}
