import { RE2JS } from 're2js';
import { z } from 'zod';
import { DEPLOYABLE_ACCELERATOR_TYPES } from '../gcp/accelerators';
import { isDnsName } from '../gcp/prediction';
import { InvalidModelUriError, parseGcsUri } from '../storage/uri';
import { durationField } from './duration-field';
import { DEFAULT_STRATEGY, GatesSchema, StrategySchema } from './rollout';
import {
  AutoscalingSchema,
  CapacitySchema,
  ContainerSchema,
  LoggingSchema,
  ScaleToZeroSchema,
} from './serving';

/**
 * `DeploymentSpec`: the one description of a deployment, shared by the CLI (YAML/JSON file or
 * flags), the library API, HTTP callers and the workflow. Strict: unknown fields are errors.
 * `DeploymentSpecInput` is what users write; `DeploymentSpec` is the parsed form with defaults
 * applied and durations in milliseconds.
 */

/** A MIG partition profile (`1g.10gb`); the group is its memory in GB. */
export const MIG_PROFILE_RE = /^\d+g\.(\d+)gb$/;

const HOUR = 3_600_000;

// Resource-name rules from the DeployRequest proto (endpoint_user_id / model_user_id) and Compute.
const DEPLOYMENT_NAME = /^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$/;
const ENDPOINT_USER_ID = /^([a-z]([a-z0-9-]{0,61}[a-z0-9])?|[1-9][0-9]{0,8})$/;
const MODEL_USER_ID = /^[a-z_][a-z0-9_-]{0,62}$/;
const PROJECT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const REGION = /^[a-z]+-[a-z]+[0-9]+$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const NETWORK = /^projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/global\/networks\/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBNETWORK =
  /^projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/regions\/[a-z]+-[a-z]+[0-9]+\/subnetworks\/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Label keys garden-deploy sets itself; users cannot override them. */
export const RESERVED_LABEL_PREFIX = 'garden-deploy';

/** What a deployment may ask for (the proto's enum less the end-of-life K80). */
export const ACCELERATOR_TYPES = DEPLOYABLE_ACCELERATOR_TYPES;
export type AcceleratorType = (typeof ACCELERATOR_TYPES)[number];

const gcsUri = z.string().superRefine((value, ctx) => {
  try {
    const { prefix } = parseGcsUri(value);
    if (prefix === '')
      ctx.addIssue({ code: 'custom', message: 'point at the model folder, not the bucket root' });
  } catch (err) {
    if (!(err instanceof InvalidModelUriError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

const displayName = z.string().min(1).max(128);

export const MachineSpecSchema = z.strictObject({
  /** e.g. `g2-standard-12`. */
  type: z.string().regex(/^[a-z][a-z0-9]*-[a-z0-9-]+$/, 'expected a machine type like "g2-standard-12"'),
  acceleratorType: z.enum(ACCELERATOR_TYPES),
  acceleratorCount: z.number().int().min(1).max(16),
  /** A MIG partition of each GPU, e.g. "1g.10gb" (`gpuPartitionSize`; one accelerator). */
  gpuPartitionSize: z.string().regex(MIG_PROFILE_RE, 'expected a MIG profile like "1g.10gb"').optional(),
  /** Hosts per replica for models larger than one machine (`multihostGpuNodeCount`). */
  multihostGpuNodeCount: z.number().int().min(2).max(64).optional(),
});
export type MachineSpec = z.output<typeof MachineSpecSchema>;

/**
 * A smoke test's `expect.regex`, compiled with RE2: matching takes time linear in the answer, so
 * no pattern can stall the worker (JavaScript's backtracking engine can take exponential time).
 * Throws RE2JSException for syntax RE2 does not support.
 */
export function compileAnswerRegex(source: string, ignoreCase = false): RE2JS {
  return RE2JS.compile(source, ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
}

export const SMOKE_MODES = ['chat', 'chat-stream', 'predict', 'stream-raw-predict'] as const;
export type SmokeMode = (typeof SMOKE_MODES)[number];

export const SmokeTestSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,39}$/)
    .optional(),
  prompt: z.string().min(1).max(4_000),
  mode: z.enum(SMOKE_MODES).default('chat'),
  maxTokens: z.number().int().min(1).max(4_096).default(32),
  expect: z
    .strictObject({
      nonEmpty: z.boolean().default(true),
      /** RE2 regular expression the answer must contain a match of (no backreferences or lookarounds). */
      regex: z
        .string()
        .max(500)
        .superRefine((source, ctx) => {
          try {
            compileAnswerRegex(source);
          } catch (err) {
            ctx.addIssue({
              code: 'custom',
              message:
                `not a regular expression RE2 accepts (${(err as Error).message}); smoke tests match with RE2, ` +
                'which runs in linear time and so has no backreferences (\\1, \\k<name>) and no lookarounds ' +
                '((?=…), (?!…), (?<=…), (?<!…)): rewrite the pattern without them',
            });
          }
        })
        .optional(),
      ignoreCase: z.boolean().default(false),
      maxLatency: durationField({ max: HOUR }).optional(),
    })
    .prefault({}),
});

const PublicAccessSchema = z.strictObject({ type: z.literal('public') });

const PrivateAccessSchema = z.strictObject({
  type: z.literal('private'),
  /** Projects allowed to connect to the endpoint's service attachment. */
  projectAllowlist: z.array(z.string().regex(PROJECT_ID, 'expected a project id')).min(1).max(50),
  /** Project that owns the consumer network, the address and the forwarding rule. */
  consumerProject: z.string().regex(PROJECT_ID, 'expected a project id'),
  network: z.string().regex(NETWORK, 'expected projects/PROJECT/global/networks/NETWORK'),
  subnetwork: z.string().regex(SUBNETWORK, 'expected projects/PROJECT/regions/REGION/subnetworks/SUBNET'),
  /** Internal IP to reserve; picked from the subnetwork when absent. */
  ipAddress: z.string().regex(IPV4, 'expected an IPv4 address').optional(),
  /**
   * DNS name whose certificate the endpoint presents: smoke calls still go to the PSC IP but verify
   * TLS against this name (without it they need the worker's GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY=true).
   */
  tlsServerName: z
    .string()
    .max(253)
    .refine(isDnsName, 'expected a DNS name like "llm.internal.example.com" (not an IP address)')
    .optional(),
  /** Service Directory namespace to register the forwarding rule in (optional). */
  serviceDirectory: z
    .strictObject({
      namespace: z.string().regex(/^projects\/[^/]+\/locations\/[^/]+\/namespaces\/[a-z][a-z0-9-]{0,62}$/),
      service: z
        .string()
        .regex(/^[a-z][a-z0-9-]{0,62}$/)
        .optional(),
    })
    .optional(),
});

export const AccessSchema = z.discriminatedUnion('type', [PublicAccessSchema, PrivateAccessSchema]);
export type Access = z.output<typeof AccessSchema>;
export type PrivateAccess = z.output<typeof PrivateAccessSchema>;

const labels = z
  .record(
    z.string().regex(LABEL_KEY, 'label keys: lowercase letter first, then [a-z0-9_-], ≤ 63'),
    z.string().regex(LABEL_VALUE, 'label values: [a-z0-9_-], ≤ 63'),
  )
  .refine((value) => Object.keys(value).length <= 48, 'at most 48 labels (garden-deploy adds its own)')
  .refine(
    (value) => !Object.keys(value).some((key) => key.startsWith(RESERVED_LABEL_PREFIX)),
    `label keys starting with "${RESERVED_LABEL_PREFIX}" are reserved`,
  );

export const DeploymentSpecSchema = z
  .strictObject({
    /** Names the deployment; derives the workflow id and every resource id. */
    name: z
      .string()
      .regex(DEPLOYMENT_NAME, 'lowercase letters, digits and "-", starting with a letter, ≤ 40'),
    project: z.string().regex(PROJECT_ID, 'expected a GCP project id like "my-project-123"'),
    region: z.string().regex(REGION, 'expected a region like "us-central1"'),
    model: z.strictObject({
      /** `gs://bucket/path/` of the Hugging Face–format folder. */
      uri: gcsUri,
      /** `model_user_id`: the Model's id in the registry. Default: the deployment name. */
      id: z
        .string()
        .regex(MODEL_USER_ID, 'model ids: [a-z0-9_-], ≤ 63, not starting with a digit or "-"')
        .optional(),
      displayName: displayName.optional(),
    }),
    endpoint: z
      .strictObject({
        /** `endpoint_user_id`. Default: the deployment name. */
        id: z
          .string()
          .regex(ENDPOINT_USER_ID, 'endpoint ids: a letter then [a-z0-9-] (≤ 63), or ≤ 9 digits')
          .optional(),
        displayName: displayName.optional(),
        /** A dedicated endpoint (its own DNS name); false serves on the shared regional domain. */
        dedicated: z.boolean().default(true),
        /** How long one inference request may take (`clientConnectionConfig.inferenceTimeout`). */
        inferenceTimeout: durationField({ min: 1_000, max: HOUR }).optional(),
      })
      .prefault({}),
    /** A machine that must fit the model, or `auto` for the validator's recommendation. */
    machine: z.union([z.literal('auto'), MachineSpecSchema]).default('auto'),
    replicas: z
      .strictObject({
        /** Replicas kept available; 0 only with `scaleToZero`. */
        min: z.number().int().min(0).max(1_000),
        /** Autoscaling ceiling (default: min; quota is charged for it). */
        max: z.number().int().min(1).max(1_000).optional(),
        /** Replicas that must come up for the deploy to succeed (`requiredReplicaCount`; default: min). */
        required: z.number().int().min(1).max(1_000).optional(),
        /** With `min: 0`: replicas started with the deployment (`initialReplicaCount`). */
        initial: z.number().int().min(1).max(1_000).optional(),
        /** Metrics and targets autoscaling follows (`autoscalingMetricSpecs`). */
        autoscaling: AutoscalingSchema.optional(),
        /** Scale to zero when idle (`scaleToZeroSpec`); needs `min: 0`. */
        scaleToZero: ScaleToZeroSchema.optional(),
      })
      .transform(({ max, ...rest }) => ({ ...rest, max: max ?? Math.max(rest.min, 1) }))
      .refine(({ min, max }) => max >= min, { message: 'replicas.max must be ≥ replicas.min', path: ['max'] })
      .refine(({ min, scaleToZero }) => min > 0 || scaleToZero !== undefined, {
        message: 'replicas.min 0 needs replicas.scaleToZero (otherwise at least 1)',
        path: ['min'],
      })
      .refine(({ initial, min }) => initial === undefined || min === 0, {
        message: 'replicas.initial applies with min 0 (scale to zero) only',
        path: ['initial'],
      })
      .prefault({ min: 1 }),
    /** Spot VMs, flex start, reservations. */
    capacity: CapacitySchema.prefault({}),
    /** Overrides of the serving container (image, vLLM args, env, routes, probes, shared memory, timeout). */
    container: ContainerSchema.optional(),
    /** Stdout/stderr and access logs of the deployed model. */
    logging: LoggingSchema.prefault({}),
    /** Model Garden's faster deploy path for popular models (`fastTryoutEnabled`; not for production). */
    fastTryout: z.boolean().default(false),
    access: AccessSchema.default({ type: 'public' }),
    smoke: z
      .strictObject({
        /** Where smoke tests run: the dedicated endpoint, the PSC address, or nowhere. */
        target: z.enum(['auto', 'dedicated', 'psc', 'skip']).default('auto'),
        skipReason: z.string().min(1).max(200).optional(),
        /** What a failed smoke test does: roll the deployment back, or keep it and report. */
        onFailure: z.enum(['rollback', 'keep']).default('rollback'),
        tests: z
          .array(SmokeTestSchema)
          .max(10)
          .prefault([{ prompt: 'Reply with one short sentence: what are you?' }])
          .transform((tests) => tests.map((test, i) => ({ ...test, name: test.name ?? `smoke-${i + 1}` }))),
      })
      .prefault({}),
    validation: z
      .strictObject({
        /** Context length the sizing must leave KV-cache room for. */
        contextLength: z.number().int().min(256).max(10_485_760).default(8_192),
        /** Treat a missing chat template as an error; default: when a chat smoke test is configured. */
        requireChat: z.boolean().optional(),
      })
      .prefault({}),
    timeouts: z
      .strictObject({
        deploy: durationField({ min: 60_000, max: 6 * HOUR }).default(2 * HOUR),
        replicas: durationField({ min: 10_000, max: 6 * HOUR }).default(HOUR / 2),
        psc: durationField({ min: 10_000, max: 2 * HOUR }).default(HOUR / 6),
        smoke: durationField({ min: 5_000, max: HOUR }).default(HOUR / 12),
      })
      .prefault({}),
    /** How long a successful deployment stays open to a `rollback` signal (0 = finish at once). */
    rollbackWindow: durationField({ max: 30 * 24 * HOUR }).default(0),
    /** How an upgrade shifts traffic to a new revision (see `rollout.ts`). */
    strategy: StrategySchema.prefault(DEFAULT_STRATEGY),
    /** What must hold while an upgrade bakes; a failed gate rolls it back. */
    gates: GatesSchema.prefault({}),
    labels: labels.default({}),
  })
  .superRefine((spec, ctx) => {
    if (spec.smoke.target === 'skip' && !spec.smoke.skipReason) {
      ctx.addIssue({
        code: 'custom',
        path: ['smoke', 'skipReason'],
        message: 'say why smoke tests are skipped',
      });
    }
    if (spec.access.type === 'public' && spec.smoke.target === 'psc') {
      ctx.addIssue({
        code: 'custom',
        path: ['smoke', 'target'],
        message: 'a public endpoint has no PSC address',
      });
    }
    if (spec.access.type === 'private' && spec.smoke.target === 'dedicated') {
      ctx.addIssue({
        code: 'custom',
        path: ['smoke', 'target'],
        message: 'a private (PSC) endpoint is reachable only through its PSC address; use "psc" or "auto"',
      });
    }
    if (spec.access.type === 'private' && !spec.access.subnetwork.includes(`/regions/${spec.region}/`)) {
      ctx.addIssue({
        code: 'custom',
        path: ['access', 'subnetwork'],
        message: `the subnetwork must be in the deployment's region ${spec.region}`,
      });
    }
    // The forwarding rule lives in consumerProject; if the service attachment does not allow that
    // project, the connection is REJECTED — found only after the whole GPU deployment. Say it now.
    if (
      spec.access.type === 'private' &&
      !spec.access.projectAllowlist.includes(spec.access.consumerProject)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['access', 'projectAllowlist'],
        message:
          `the consumer project ${spec.access.consumerProject} (access.consumerProject, where the PSC forwarding ` +
          `rule is created) is not in the allowlist, so its connection would be rejected: add ` +
          `"${spec.access.consumerProject}" to access.projectAllowlist`,
      });
    }
    const names = spec.smoke.tests.map((test) => test.name);
    if (new Set(names).size !== names.length) {
      ctx.addIssue({ code: 'custom', path: ['smoke', 'tests'], message: 'smoke test names must be unique' });
    }
  });

export type DeploymentSpecInput = z.input<typeof DeploymentSpecSchema>;
export type DeploymentSpec = z.output<typeof DeploymentSpecSchema>;
export type SmokeTest = DeploymentSpec['smoke']['tests'][number];

/** Whether a missing chat template fails validation: as set, else when a chat smoke test runs. */
export function chatRequired(spec: Pick<DeploymentSpec, 'validation' | 'smoke'>): boolean {
  return (
    spec.validation.requireChat ??
    (spec.smoke.target !== 'skip' &&
      spec.smoke.tests.some((test) => test.mode === 'chat' || test.mode === 'chat-stream'))
  );
}
