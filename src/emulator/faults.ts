import { z } from 'zod';

/**
 * Fault injection. A rule matches calls by route id (`vertex.deploy`, `vertex.*`, `*`), optionally
 * by project and, for inference, by the Model the traffic split routed the call to, and decides
 * what happens to each matching call: either an exact scripted `sequence` (one action per call, in
 * order; inert once used up unless `repeat`) or an `action` applied with a `probability` drawn
 * from a seeded generator. The first matching rule that still has something to say decides; later
 * rules are not consulted for that call.
 */

const STATUS_SHORTHANDS = ['400', '429', '500', '503', '504'] as const;

const ErrorActionSchema = z
  .object({
    type: z.literal('error'),
    status: z.union([z.literal(400), z.literal(429), z.literal(500), z.literal(503), z.literal(504)]),
    /** Sent as `Retry-After` (and a RetryInfo detail); 429 defaults to 1 s. */
    retryAfterSeconds: z.number().int().min(0).max(3600).optional(),
    message: z.string().min(1).max(1000).optional(),
  })
  .strict();

const FaultActionObjectSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('pass') }).strict(),
  ErrorActionSchema,
  z.object({ type: z.literal('latency'), ms: z.number().int().min(0).max(600_000) }).strict(),
  z.object({ type: z.literal('drop') }).strict(),
  // 403 PERMISSION_DENIED naming the route's IAM permission, as for a forbidden project.
  z.object({ type: z.literal('forbidden') }).strict(),
  // The call is processed, then the connection is cut: the client cannot tell whether it happened.
  z.object({ type: z.literal('dropResponse') }).strict(),
  // Deploy only: the LRO is accepted, then fails with RESOURCE_EXHAUSTED (accelerator quota).
  z.object({ type: z.literal('quotaExhausted') }).strict(),
  // Deploy only: the LRO succeeds but no replica ever becomes available.
  z.object({ type: z.literal('replicasNeverReady') }).strict(),
  // Deploy only: the serving container runs out of GPU memory loading the model; the LRO fails.
  z.object({ type: z.literal('outOfMemory') }).strict(),
  // Deploy only: a `:cancel` that arrives early is best effort: the LRO keeps running for `ms`,
  // creates the Endpoint and Model anyway, then ends CANCELLED.
  z.object({ type: z.literal('createsAfterCancel'), ms: z.number().int().min(0).max(600_000) }).strict(),
  // Streaming inference only: the stream starts, then carries an in-band error.
  z.object({ type: z.literal('streamError') }).strict(),
]);

export type FaultAction = z.infer<typeof FaultActionObjectSchema>;

const SHORTHAND_HELP =
  '"pass", "400", "403", "429", "500", "503", "504", "drop", "drop-response", "quota", "never-ready", "oom", "creates-after-cancel:<ms>", "stream-error", "latency:<ms>" or an object with a "type"';

/** Shorthand strings accepted wherever an action is. */
export type FaultActionShorthand =
  | 'pass'
  | '400'
  | '403'
  | '429'
  | '500'
  | '503'
  | '504'
  | 'drop'
  | 'drop-response'
  | 'quota'
  | 'never-ready'
  | 'oom'
  | 'stream-error'
  | `latency:${number}`
  | `creates-after-cancel:${number}`;

function fromShorthand(text: string): FaultAction | undefined {
  if ((STATUS_SHORTHANDS as readonly string[]).includes(text)) {
    return { type: 'error', status: Number(text) as 400 | 429 | 500 | 503 | 504 };
  }
  const latency = /^latency:(\d{1,6})$/.exec(text);
  if (latency) return { type: 'latency', ms: Number(latency[1]) };
  const late = /^creates-after-cancel:(\d{1,6})$/.exec(text);
  if (late) return { type: 'createsAfterCancel', ms: Number(late[1]) };
  const named: Record<string, FaultAction> = {
    pass: { type: 'pass' },
    '403': { type: 'forbidden' },
    drop: { type: 'drop' },
    'drop-response': { type: 'dropResponse' },
    quota: { type: 'quotaExhausted' },
    'never-ready': { type: 'replicasNeverReady' },
    oom: { type: 'outOfMemory' },
    'stream-error': { type: 'streamError' },
  };
  return named[text];
}

/**
 * An action, as an object or a shorthand string (`"503"`, `"latency:250"`, `"quota"`). Parsed by
 * hand rather than as a union so a bad value gets its own message instead of "Invalid input".
 */
export const FaultActionSchema = z.unknown().transform((value, ctx): FaultAction => {
  if (typeof value === 'string') {
    const action = fromShorthand(value);
    if (action) return action;
    ctx.addIssue({ code: 'custom', message: `unknown fault action "${value}"; use ${SHORTHAND_HELP}` });
    return z.NEVER;
  }
  const parsed = FaultActionObjectSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    ctx.addIssue({ code: 'custom', message: `${issue.message} (use ${SHORTHAND_HELP})`, path: issue.path });
  }
  return z.NEVER;
}) as unknown as z.ZodType<FaultAction, FaultAction | FaultActionShorthand>;

/** Actions that act on a deployment's LRO, and the routes that start one. */
const DEPLOY_ONLY: Record<string, readonly string[]> = {
  quotaExhausted: ['vertex.deploy', 'vertex.endpoints.deployModel'],
  replicasNeverReady: ['vertex.deploy', 'vertex.endpoints.deployModel'],
  outOfMemory: ['vertex.deploy', 'vertex.endpoints.deployModel'],
  createsAfterCancel: ['vertex.deploy'],
};
const STREAM_ROUTES = new Set(['inference.chatCompletions', 'inference.streamRawPredict']);

export const FaultRuleSchema = z
  .object({
    /** Assigned by the emulator when absent; used to remove one rule. */
    id: z.string().min(1).max(100).optional(),
    route: z
      .string()
      .min(1)
      .max(100)
      .regex(
        /^(\*|[a-zA-Z]+(\.[a-zA-Z]+)*(\.\*)?)$/,
        'route must be a route id, a prefix ending in ".*", or "*"',
      ),
    /** Project id or number; absent = every project. */
    project: z.string().min(1).max(100).optional(),
    /**
     * Inference only: the rule matches calls the traffic split routed to a deployed model serving
     * this Model (its id, e.g. `tiny-r2`, or its full name with project id or number), so one
     * revision of a canary can be made to fail or slow down. Absent = whichever model serves.
     */
    model: z
      .string()
      .max(300)
      .regex(
        /^(projects\/[^/]+\/locations\/[^/]+\/models\/)?[a-z0-9_-]{1,63}$/,
        'model must be a Model id (e.g. "tiny-r2") or projects/{project}/locations/{location}/models/{id}',
      )
      .optional(),
    sequence: z.array(FaultActionSchema).min(1).max(1000).optional(),
    repeat: z.boolean().optional(),
    action: FaultActionSchema.optional(),
    probability: z.number().min(0).max(1).optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if ((rule.sequence === undefined) === (rule.action === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of "sequence" or "action"' });
      return;
    }
    if (rule.probability !== undefined && rule.action === undefined) {
      ctx.addIssue({ code: 'custom', message: '"probability" applies to "action" only, not to "sequence"' });
    }
    if (rule.model !== undefined && rule.route !== '*' && !rule.route.startsWith('inference.')) {
      ctx.addIssue({
        code: 'custom',
        message: `"model" selects inference calls by the model that serves them; use route "inference.*", an inference route id such as "inference.chatCompletions", or "*" (not "${rule.route}")`,
      });
    }
    for (const action of rule.sequence ?? [rule.action!]) {
      const deployRoutes = DEPLOY_ONLY[action.type];
      if (deployRoutes && rule.model !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `"${action.type}" acts on a deployment operation, not on the inference calls a "model" rule selects; drop "model" and use route ${deployRoutes.map((r) => `"${r}"`).join(' or ')}`,
        });
      } else if (deployRoutes && !deployRoutes.includes(rule.route)) {
        ctx.addIssue({
          code: 'custom',
          message: `"${action.type}" only applies to route ${deployRoutes.map((r) => `"${r}"`).join(' or ')}`,
        });
      }
      // STS is not an IAM-checked API; "*" and prefix rules simply do not refuse it.
      if (action.type === 'forbidden' && rule.route === 'sts.token') {
        ctx.addIssue({
          code: 'custom',
          message:
            '"forbidden" does not apply to route "sts.token" (the token exchange has no IAM permission)',
        });
      }
      if (action.type === 'streamError' && !STREAM_ROUTES.has(rule.route)) {
        ctx.addIssue({
          code: 'custom',
          message: `"streamError" only applies to routes ${[...STREAM_ROUTES].join(', ')}`,
        });
      }
    }
  });

export type FaultRuleInput = z.input<typeof FaultRuleSchema>;
export type FaultRule = z.output<typeof FaultRuleSchema>;

export const FaultConfigSchema = z
  .object({
    /** Seed of the generator behind probabilities; same seed + same call order = same faults. */
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .optional(),
    rules: z.array(FaultRuleSchema).max(1000).default([]),
  })
  .strict();

export type FaultConfigInput = z.input<typeof FaultConfigSchema>;
export type FaultConfig = z.output<typeof FaultConfigSchema>;

/** Deterministic 32-bit generator (mulberry32). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ActiveRule extends FaultRule {
  id: string;
  /** Next index into `sequence`. */
  position: number;
}

export interface FaultCallContext {
  route: string;
  /** The project as written in the request and, when known, its other form (id ↔ number). */
  projects: string[];
  /** Inference: every spelling of the Model the call was routed to (id, full names); else absent. */
  models?: string[];
}

export interface FaultRuleView extends FaultRule {
  id: string;
  /** Sequence elements already used. */
  consumed?: number;
}

export class FaultEngine {
  private rules: ActiveRule[] = [];
  private random: () => number;
  private seed: number;
  private nextId = 1;

  constructor(config: FaultConfig = { rules: [] }) {
    this.seed = config.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.random = mulberry32(this.seed);
    this.add(config.rules);
  }

  /** Replaces every rule (and reseeds when the config has a seed). */
  replace(config: FaultConfig): void {
    if (config.seed !== undefined) {
      this.seed = config.seed;
      this.random = mulberry32(config.seed);
    }
    this.rules = [];
    this.add(config.rules);
  }

  add(rules: FaultRule[]): string[] {
    return rules.map((rule) => {
      const id = rule.id ?? `rule-${this.nextId++}`;
      if (this.rules.some((r) => r.id === id)) throw new Error(`a fault rule with id "${id}" already exists`);
      this.rules.push({ ...rule, id, position: 0 });
      return id;
    });
  }

  /** Removes every rule, or those of one project, or one rule by id; returns how many. */
  clear(filter: { project?: string; id?: string } = {}): number {
    const before = this.rules.length;
    this.rules = this.rules.filter(
      (r) =>
        (filter.project !== undefined && r.project !== filter.project) ||
        (filter.id !== undefined && r.id !== filter.id),
    );
    return before - this.rules.length;
  }

  view(): { seed: number; rules: FaultRuleView[] } {
    return {
      seed: this.seed,
      rules: this.rules.map(({ position, ...rule }) =>
        rule.sequence ? { ...rule, consumed: position } : rule,
      ),
    };
  }

  /** The action for one call; `pass` when no rule applies. */
  decide(call: FaultCallContext): FaultAction {
    for (const rule of this.rules) {
      if (!routeMatches(rule.route, call.route)) continue;
      if (rule.project !== undefined && !call.projects.includes(rule.project)) continue;
      if (rule.model !== undefined && !(call.models ?? []).includes(rule.model)) continue;
      if (rule.sequence) {
        if (rule.position >= rule.sequence.length) {
          if (!rule.repeat) continue;
          rule.position = 0;
        }
        return rule.sequence[rule.position++]!;
      }
      if (this.random() < (rule.probability ?? 1)) return rule.action!;
    }
    return { type: 'pass' };
  }
}

function routeMatches(pattern: string, route: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return route.startsWith(pattern.slice(0, -1));
  return pattern === route;
}
