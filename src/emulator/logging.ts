import { createHash, randomBytes } from 'node:crypto';
import type { EmulatorCore } from './core';
import { type ApiError, badRequest } from './errors';
import { type FilterNode, parseFilterExpression } from './filter';
import { type RequestContext, type Route, sendJson } from './http';
import { readMessage } from './query';
import { Ring } from './ring';
import { timestamp } from './state';

/**
 * Cloud Logging v2 `entries.list` over the lines the emulator's serving containers wrote
 * (container.ts): the filter grammar a client needs to read one deployed model's lines
 * (lifecycle-apis.md §3), ordering by timestamp and paging. Entries are kept in memory, the newest
 * `capacity` of them, and cleared by the admin reset.
 */

const LOGGING = 'google.logging.v2';
export const ENDPOINT_RESOURCE = 'aiplatform.googleapis.com/Endpoint';
export const PREDICTION_CONTAINER_LOG = 'aiplatform.googleapis.com/prediction_container';
const LOG_ENTRIES_KEPT = 50_000;
const MAX_RESOURCE_NAMES = 100;
const MAX_FILTER_LENGTH = 20_000;
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

/** google/logging/type/log_severity.proto */
const SEVERITIES: Record<string, number> = {
  DEFAULT: 0,
  DEBUG: 100,
  INFO: 200,
  NOTICE: 300,
  WARNING: 400,
  ERROR: 500,
  CRITICAL: 600,
  ALERT: 700,
  EMERGENCY: 800,
};
export type Severity = keyof typeof SEVERITIES;

export interface StoredLogEntry {
  /** Project number. */
  project: string;
  /** The log's id, unencoded (`aiplatform.googleapis.com/prediction_container`). */
  logId: string;
  resource: { type: string; labels: Record<string, string> };
  labels: Record<string, string>;
  message: string;
  severity: Severity;
  /** Epoch ms. */
  time: number;
  receiveTime: number;
  /** Unique; orders entries written in the same millisecond as they were written. */
  insertId: string;
}

export type NewLogEntry = Omit<StoredLogEntry, 'insertId' | 'receiveTime'>;

/** The newest `capacity` entries, in the order they were written. */
export class LogStore {
  private readonly ring: Ring<StoredLogEntry>;
  private written = 0;
  /** Keeps insert ids of different emulator runs apart (entries are not saved). */
  private readonly prefix = randomBytes(4).toString('hex');

  constructor(capacity = LOG_ENTRIES_KEPT) {
    this.ring = new Ring(capacity);
  }

  write(entries: NewLogEntry[], now: number): void {
    for (const entry of entries) {
      this.ring.add({
        ...entry,
        // Received when the emulator wrote it (lines are written when their deployment step completes).
        receiveTime: Math.max(entry.time, now),
        insertId: `${this.prefix}${String(this.written++).padStart(12, '0')}`,
      });
    }
  }

  /** Entries of the given projects (numbers), oldest written first. */
  entries(projects?: ReadonlySet<string>): StoredLogEntry[] {
    return this.ring.items(projects && ((e) => projects.has(e.project)));
  }

  clear(project?: string): void {
    this.ring.clear(project);
  }
}

// ---------------------------------------------------------------------------------------------
// Filter: restrictions joined by AND

const FILTER_HELP =
  'the emulator takes resource.type = "…", resource.labels.KEY = "…", logName = "…", labels.KEY = "…" (also labels."KEY"), ' +
  'severity = / >= / > / <= / < LEVEL and timestamp >= / > / <= / < "RFC 3339", joined by AND';

function unsupported(filter: string, part: string): ApiError {
  return badRequest([
    { field: 'filter', description: `The filter "${filter}" is not supported at "${part}": ${FILTER_HELP}.` },
  ]);
}

type Predicate = (entry: StoredLogEntry) => boolean;
const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '>=': (a, b) => a >= b,
  '>': (a, b) => a > b,
  '<=': (a, b) => a <= b,
  '<': (a, b) => a < b,
};

function restrictions(node: FilterNode, filter: string): Extract<FilterNode, { kind: 'restriction' }>[] {
  if (node.kind === 'and') return node.children.flatMap((c) => restrictions(c, filter));
  if (node.kind === 'restriction') return [node];
  throw unsupported(filter, node.kind === 'or' ? 'OR' : 'NOT');
}

/** The entry's logName as Logging renders it: the project id when known, the log id URL-encoded. */
function logNameOf(core: EmulatorCore, entry: StoredLogEntry): string {
  const project = core.state.projects[entry.project]?.id ?? entry.project;
  return `projects/${project}/logs/${encodeURIComponent(entry.logId)}`;
}

function compileLogFilter(core: EmulatorCore, filter: string): Predicate {
  const root = parseFilterExpression(filter, { maxLength: MAX_FILTER_LENGTH, anyCaseKeywords: true });
  if (!root) return () => true;
  const predicates = restrictions(root, filter).map((r): Predicate => {
    const name = r.path.join('.');
    const part = `${name} ${r.op} ${r.value}`;
    const equality = (actual: (e: StoredLogEntry) => string | undefined): Predicate => {
      if (r.op !== '=' && r.op !== '!=') throw unsupported(filter, part);
      return (e) => (actual(e) === r.value) === (r.op === '=');
    };
    const [head, second, ...rest] = r.path;
    if (name === 'resource.type') return equality((e) => e.resource.type);
    if (head === 'resource' && second === 'labels' && rest.length > 0) {
      const key = rest.join('.');
      return equality((e) => e.resource.labels[key]);
    }
    if (head === 'labels' && second !== undefined) {
      const key = [second, ...rest].join('.');
      return equality((e) => e.labels[key]);
    }
    if (name === 'logName' || name === 'log_name') {
      const match = /^projects\/([^/]+)\/logs\/(.+)$/.exec(r.value);
      if (!match) {
        throw badRequest([
          {
            field: 'filter',
            description: `logName "${r.value}" is not a log name; use projects/PROJECT_ID/logs/LOG_ID (LOG_ID URL-encoded).`,
          },
        ]);
      }
      // The project may be written as id or number, the log id encoded or not: compare what they name.
      const project = core.resolveProject(match[1]!).number;
      const logId = decodeURIComponent(match[2]!);
      return equality((e) => (e.project === project && e.logId === logId ? r.value : logNameOf(core, e)));
    }
    if (name === 'severity') {
      const level =
        SEVERITIES[r.value.toUpperCase()] ?? (/^\d+$/.test(r.value) ? Number(r.value) : undefined);
      if (level === undefined) {
        throw badRequest([
          {
            field: 'filter',
            description: `severity "${r.value}" is not a LogSeverity; use one of ${Object.keys(SEVERITIES).join(', ')}.`,
          },
        ]);
      }
      const compare = COMPARE[r.op];
      if (!compare) throw unsupported(filter, part);
      return (e) => compare(SEVERITIES[e.severity]!, level);
    }
    if (name === 'timestamp') {
      const time = Date.parse(r.value);
      const compare = COMPARE[r.op];
      if (!compare || r.op === '=') throw unsupported(filter, part);
      if (!/^\d{4}-\d{2}-\d{2}T/.test(r.value) || Number.isNaN(time)) {
        throw badRequest([
          {
            field: 'filter',
            description: `timestamp "${r.value}" is not an RFC 3339 time such as "2026-01-01T00:00:00Z".`,
          },
        ]);
      }
      return (e) => compare(e.time, time);
    }
    throw unsupported(filter, part);
  });
  return (entry) => predicates.every((p) => p(entry));
}

// ---------------------------------------------------------------------------------------------
// entries.list

function entryJson(core: EmulatorCore, e: StoredLogEntry): Record<string, unknown> {
  return {
    logName: logNameOf(core, e),
    resource: e.resource,
    jsonPayload: { message: e.message },
    timestamp: timestamp(e.time),
    receiveTimestamp: timestamp(e.receiveTime),
    severity: e.severity,
    insertId: e.insertId,
    labels: e.labels,
  };
}

interface Cursor {
  /** The last entry of the previous page. */
  time: number;
  insertId: string;
  query: string;
}

function fingerprint(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 16);
}

function readCursor(token: string, query: string): Cursor {
  let cursor: Partial<Cursor> | undefined;
  try {
    cursor = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    cursor = undefined;
  }
  if (
    !cursor ||
    cursor.query !== query ||
    typeof cursor.time !== 'number' ||
    typeof cursor.insertId !== 'string'
  ) {
    throw badRequest([
      {
        field: 'page_token',
        description:
          'Invalid page_token: it does not come from a previous entries.list call with the same resource_names, filter and order_by.',
      },
    ]);
  }
  return cursor as Cursor;
}

async function listEntries(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const request = await readMessage(ctx, `${LOGGING}.ListLogEntriesRequest`);
  const names = (request.resourceNames as string[] | undefined) ?? [];
  if (names.length === 0) {
    throw badRequest([
      {
        field: 'resource_names',
        description: 'resource_names is required: at least one projects/PROJECT_ID.',
      },
    ]);
  }
  if (names.length > MAX_RESOURCE_NAMES) {
    throw badRequest([
      {
        field: 'resource_names',
        description: `resource_names has ${names.length} entries; at most ${MAX_RESOURCE_NAMES} are allowed.`,
      },
    ]);
  }
  const projects = new Set(
    names.map((name, i) => {
      const match = /^projects\/([^/]+)$/.exec(name);
      if (!match) {
        throw badRequest([
          {
            field: `resource_names[${i}]`,
            description: `resource_names[${i}] "${name}" is not supported; the emulator reads projects/PROJECT_ID (not organizations, folders, billing accounts or bucket views).`,
          },
        ]);
      }
      return core.resolveProject(match[1]!).number;
    }),
  );
  const filter = typeof request.filter === 'string' ? request.filter : '';
  if (filter.length > MAX_FILTER_LENGTH) {
    throw badRequest([
      {
        field: 'filter',
        description: `filter is ${filter.length} characters long; the maximum is ${MAX_FILTER_LENGTH}.`,
      },
    ]);
  }
  const orderBy = (typeof request.orderBy === 'string' ? request.orderBy : '')
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ');
  if (orderBy !== '' && orderBy !== 'timestamp asc' && orderBy !== 'timestamp desc') {
    throw badRequest([
      {
        field: 'order_by',
        description: `order_by "${String(request.orderBy)}" is not supported; use "timestamp asc" (the default) or "timestamp desc".`,
      },
    ]);
  }
  const pageSize = typeof request.pageSize === 'number' ? request.pageSize : 0;
  if (pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
    throw badRequest([
      {
        field: 'page_size',
        description: `page_size must be from 0 (the default, ${DEFAULT_PAGE_SIZE}) to ${MAX_PAGE_SIZE}; got ${pageSize}.`,
      },
    ]);
  }
  const matches = compileLogFilter(core, filter);
  const query = fingerprint([[...projects].sort(), filter, orderBy]);
  const cursor =
    typeof request.pageToken === 'string' && request.pageToken !== ''
      ? readCursor(request.pageToken, query)
      : undefined;

  const descending = orderBy === 'timestamp desc';
  const sign = descending ? -1 : 1;
  const order = (a: { time: number; insertId: string }, b: { time: number; insertId: string }) =>
    sign * (a.time - b.time || (a.insertId < b.insertId ? -1 : a.insertId > b.insertId ? 1 : 0));
  const found = core.logs
    .entries(projects)
    .filter((e) => matches(e) && (!cursor || order(e, cursor) > 0))
    .sort(order);
  const page = found.slice(0, pageSize || DEFAULT_PAGE_SIZE);
  const last = page.at(-1);
  const nextPageToken =
    last && found.length > page.length
      ? Buffer.from(JSON.stringify({ time: last.time, insertId: last.insertId, query })).toString('base64url')
      : undefined;
  sendJson(ctx.res, 200, {
    ...(page.length ? { entries: page.map((e) => entryJson(core, e)) } : {}),
    ...(nextPageToken ? { nextPageToken } : {}),
  });
}

/** The first `projects/P` of a ListLogEntriesRequest: the project a call is counted, faulted and refused for. */
function projectOfRequest(body: unknown): string | undefined {
  const value = body as { resourceNames?: unknown; resource_names?: unknown } | null;
  const names = value?.resourceNames ?? value?.resource_names;
  const first = Array.isArray(names) ? names[0] : undefined;
  return typeof first === 'string' ? /^projects\/([^/]+)$/.exec(first)?.[1] : undefined;
}

export function loggingRoutes(core: EmulatorCore): Route[] {
  return [
    {
      id: 'logging.entries.list',
      method: 'POST',
      pattern: /^\/v2\/entries:list$/,
      api: 'logging',
      projectFromBody: projectOfRequest,
      permission: 'logging.logEntries.list',
      handler: (ctx) => listEntries(core, ctx),
    },
  ];
}
