import { z } from 'zod';
import { CALL_RATE_WINDOW_SECONDS, CALL_SERVICES, type CallRate, type CallService } from './call-rates';
import { computeOperationJson, addressJson, forwardingRuleJson } from './compute';
import type { EmulatorCore } from './core';
import { ApiError } from './errors';
import { FaultConfigSchema, FaultRuleSchema } from './faults';
import {
  MANAGEMENT_BODY_LIMIT,
  type RequestContext,
  type Route,
  parseJsonBody,
  readBody,
  sendJson,
} from './http';
import { TimingOverridesSchema } from './options';
import { QuotaSettingSchema, quotaView, setQuota } from './quotas';
import { projectNumberFor } from './state';
import { endpointJson, modelJson, operationJson } from './vertex';

/**
 * The emulator's own API under `/_emulator/` (no auth, no faults, not counted): inspect every
 * resource, exact call and creation counts, calls per second, served inference answers, faults,
 * issued tokens, per-project timing and accelerator quota, reset.
 * `?project=` (id or number) narrows reads and resets to one project, so concurrent test files
 * sharing one emulator never see each other.
 */

async function readAdminBody<T>(ctx: RequestContext, schema: z.ZodType<T>, what: string): Promise<T> {
  const parsed = schema.safeParse(parseJsonBody(await readBody(ctx.req, MANAGEMENT_BODY_LIMIT)));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ApiError('INVALID_ARGUMENT', `invalid ${what}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** The project number a `?project=` asks about, or undefined for all projects. */
function projectFilter(core: EmulatorCore, ctx: RequestContext): string | undefined {
  const project = ctx.url.searchParams.get('project');
  return project ? core.resolveProject(project).number : undefined;
}

function resources(core: EmulatorCore, ctx: RequestContext): void {
  const project = projectFilter(core, ctx);
  const vertex = <T extends { project: string }>(items: T[]) =>
    items.filter((i) => !project || i.project === project);
  const compute = <T extends { projectId: string }>(items: T[]) =>
    items.filter((i) => !project || projectNumberFor(i.projectId) === project || i.projectId === project);
  const { state } = core;
  sendJson(ctx.res, 200, {
    endpoints: vertex(Object.values(state.endpoints)).map((e) => endpointJson(e, ctx.now)),
    models: vertex(Object.values(state.models)).map((m) => modelJson(core, m)),
    operations: vertex(Object.values(state.operations)).map(operationJson),
    addresses: compute(Object.values(state.addresses)).map((a) => addressJson(core, a)),
    forwardingRules: compute(Object.values(state.forwardingRules)).map((r) =>
      forwardingRuleJson(core, r, ctx.now),
    ),
    computeOperations: compute(Object.values(state.computeOperations)).map(computeOperationJson),
  });
}

function sum(buckets: Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const bucket of buckets)
    for (const [key, n] of Object.entries(bucket)) total[key] = (total[key] ?? 0) + n;
  return total;
}

function stats(core: EmulatorCore, ctx: RequestContext): void {
  const project = projectFilter(core, ctx);
  const { calls, creations } = core.state;
  sendJson(ctx.res, 200, {
    calls: project ? { ...calls[project] } : sum(Object.values(calls)),
    creations: project ? { ...creations[project] } : sum(Object.values(creations)),
  });
}

/** Calls per project and service: total, peak and per second (call-rates.ts). */
function callRates(core: EmulatorCore, ctx: RequestContext): void {
  const service = ctx.url.searchParams.get('service') ?? undefined;
  if (service !== undefined && !CALL_SERVICES.includes(service as CallService)) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `service "${service}" is not one the emulator counts; use one of ${CALL_SERVICES.join(', ')}.`,
    );
  }
  const project = projectFilter(core, ctx);
  const rates: CallRate[] = core.callRates
    .rates(
      { ...(project ? { project } : {}), ...(service ? { service: service as CallService } : {}) },
      ctx.now,
    )
    .map((rate) => {
      const projectId = core.state.projects[rate.project]?.id;
      return projectId ? { ...rate, projectId } : rate;
    });
  sendJson(ctx.res, 200, { windowSeconds: CALL_RATE_WINDOW_SECONDS, rates });
}

function resetCallRates(core: EmulatorCore, ctx: RequestContext): void {
  core.callRates.clear(projectFilter(core, ctx));
  sendJson(ctx.res, 200, {});
}

/** Answers of routed inference calls: endpoint → deployed model id → HTTP status → count. */
function served(core: EmulatorCore, ctx: RequestContext): void {
  sendJson(ctx.res, 200, { endpoints: core.served.counts(projectFilter(core, ctx)) });
}

function reset(core: EmulatorCore, ctx: RequestContext): void {
  const project = projectFilter(core, ctx);
  const { state } = core;
  const keepVertex = <T extends { project: string }>(map: Record<string, T>) => {
    for (const [key, item] of Object.entries(map)) if (!project || item.project === project) delete map[key];
  };
  const keepCompute = <T extends { projectId: string }>(map: Record<string, T>) => {
    for (const [key, item] of Object.entries(map))
      if (!project || projectNumberFor(item.projectId) === project || item.projectId === project)
        delete map[key];
  };
  core.served.clear(project);
  core.logs.clear(project);
  core.callRates.clear(project);
  keepVertex(state.endpoints);
  keepVertex(state.models);
  keepVertex(state.operations);
  keepCompute(state.addresses);
  keepCompute(state.forwardingRules);
  keepCompute(state.computeOperations);
  if (project) {
    delete state.calls[project];
    delete state.creations[project];
    delete state.projects[project]?.timing;
    delete state.projects[project]?.quota;
  } else {
    // Issued tokens stay valid: clients holding one keep working after a reset.
    state.calls = {};
    state.creations = {};
    for (const record of Object.values(state.projects)) {
      delete record.timing;
      delete record.quota;
    }
  }
  core.markDirty();
  sendJson(ctx.res, 200, {});
}

const AddRulesSchema = z.object({ rules: z.array(FaultRuleSchema).min(1).max(1000) }).strict();

async function addFaultRules(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const { rules } = await readAdminBody(ctx, AddRulesSchema, 'fault rules');
  try {
    sendJson(ctx.res, 200, { ids: core.faults.add(rules) });
  } catch (err) {
    throw new ApiError('ALREADY_EXISTS', (err as Error).message);
  }
}

async function replaceFaults(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  core.faults.replace(await readAdminBody(ctx, FaultConfigSchema, 'fault config'));
  sendJson(ctx.res, 200, core.faults.view());
}

function clearFaults(core: EmulatorCore, ctx: RequestContext): void {
  const project = ctx.url.searchParams.get('project') ?? undefined;
  const id = ctx.url.searchParams.get('id') ?? undefined;
  const filter = { ...(project ? { project } : {}), ...(id ? { id } : {}) };
  sendJson(ctx.res, 200, { removed: core.faults.clear(filter) });
}

function tokens(core: EmulatorCore, ctx: RequestContext): void {
  sendJson(ctx.res, 200, { tokens: core.tokens.list() });
}

function issueToken(core: EmulatorCore, ctx: RequestContext): void {
  sendJson(ctx.res, 200, core.tokens.issue(ctx.now, 'https://www.googleapis.com/auth/cloud-platform'));
}

function getTiming(core: EmulatorCore, ctx: RequestContext): void {
  sendJson(ctx.res, 200, core.timing(core.resolveProject(ctx.params[0]!).number));
}

async function setTiming(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const overrides = await readAdminBody(ctx, TimingOverridesSchema, 'timing');
  const number = core.resolveProject(ctx.params[0]!).number;
  const record = (core.state.projects[number] ??= {});
  record.timing = { ...record.timing, ...overrides };
  core.markDirty();
  sendJson(ctx.res, 200, core.timing(number));
}

function getQuota(core: EmulatorCore, ctx: RequestContext): void {
  const region = ctx.url.searchParams.get('region');
  if (!region) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      'region is required: GET /_emulator/projects/{project}/quota?region=us-central1',
    );
  }
  sendJson(ctx.res, 200, quotaView(core, core.resolveProject(ctx.params[0]!).number, region));
}

async function putQuota(core: EmulatorCore, ctx: RequestContext): Promise<void> {
  const setting = await readAdminBody(ctx, QuotaSettingSchema, 'quota');
  sendJson(ctx.res, 200, setQuota(core, core.resolveProject(ctx.params[0]!).number, setting, ctx.now));
}

export function adminRoutes(core: EmulatorCore, allRoutes: () => Route[]): Route[] {
  const route = (
    id: string,
    method: Route['method'],
    pattern: string,
    handler: (core: EmulatorCore, ctx: RequestContext) => Promise<void> | void,
  ): Route => ({
    id,
    method,
    pattern: new RegExp(`^/_emulator${pattern}$`),
    api: 'admin',
    handler: (ctx) => handler(core, ctx),
  });
  return [
    route('admin.health', 'GET', '/health', (_core, ctx) => sendJson(ctx.res, 200, { ok: true })),
    route('admin.routes', 'GET', '/routes', (_core, ctx) =>
      sendJson(ctx.res, 200, {
        routes: allRoutes()
          .filter((r) => r.api !== 'admin')
          .map((r) => ({ id: r.id, method: r.method, api: r.api, pattern: r.pattern.source })),
      }),
    ),
    route('admin.resources', 'GET', '/resources', resources),
    route('admin.stats', 'GET', '/stats', stats),
    route('admin.served', 'GET', '/served', served),
    route('admin.callRates.get', 'GET', '/call-rates', callRates),
    route('admin.callRates.reset', 'DELETE', '/call-rates', resetCallRates),
    route('admin.reset', 'POST', '/reset', reset),
    route('admin.faults.get', 'GET', '/faults', (c, ctx) => sendJson(ctx.res, 200, c.faults.view())),
    route('admin.faults.replace', 'PUT', '/faults', replaceFaults),
    route('admin.faults.clear', 'DELETE', '/faults', clearFaults),
    route('admin.faults.add', 'POST', '/faults/rules', addFaultRules),
    route('admin.tokens.list', 'GET', '/tokens', tokens),
    route('admin.tokens.issue', 'POST', '/tokens', issueToken),
    route('admin.timing.get', 'GET', '/projects/([^/]+)/timing', getTiming),
    route('admin.timing.set', 'PUT', '/projects/([^/]+)/timing', setTiming),
    route('admin.quota.get', 'GET', '/projects/([^/]+)/quota', getQuota),
    route('admin.quota.set', 'PUT', '/projects/([^/]+)/quota', putQuota),
  ];
}
