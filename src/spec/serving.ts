import { z } from 'zod';
import { durationField } from './duration-field';
import { AUTOSCALING_METRICS, autoscalingProblem } from './autoscaling';

export { AUTOSCALING_METRICS, type AutoscalingMetric, PERCENT_METRICS } from './autoscaling';

/**
 * The rest of Model Garden `:deploy`'s surface for custom weights (vertex-api.md §1.1–1.3), as the
 * spec names it: where capacity comes from (`capacity`), the serving container (`container`),
 * autoscaling and scale to zero (in `replicas`, see deployment-spec.ts), the endpoint's
 * `dedicated` and `inferenceTimeout`, `logging` and `fastTryout`. Each maps onto one proto field;
 * the mapping lives in the deploy activity's request builder.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** `machineSpec.reservationAffinity` (reservation_affinity.proto). */
export const ReservationSchema = z
  .strictObject({
    type: z.enum(['NO_RESERVATION', 'ANY_RESERVATION', 'SPECIFIC_RESERVATION']),
    /** For SPECIFIC_RESERVATION: `compute.googleapis.com/reservation-name`. */
    key: z.string().min(1).max(256).optional(),
    /** For SPECIFIC_RESERVATION: `projects/P/zones/Z/reservations/NAME` (or names). */
    values: z.array(z.string().min(1).max(512)).min(1).max(64).optional(),
  })
  .superRefine((reservation, ctx) => {
    const specific = reservation.type === 'SPECIFIC_RESERVATION';
    if (specific && (!reservation.key || !reservation.values)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'SPECIFIC_RESERVATION needs key ("compute.googleapis.com/reservation-name") and values (the reservations)',
      });
    }
    if (!specific && (reservation.key || reservation.values)) {
      ctx.addIssue({
        code: 'custom',
        message: `key and values apply to SPECIFIC_RESERVATION only, not ${reservation.type}`,
      });
    }
  });

/** Where the deployment's capacity comes from. */
export const CapacitySchema = z.strictObject({
  /** Spot VMs (`dedicatedResources.spot`): cheaper, may be preempted. */
  spot: z.boolean().default(false),
  /** Dynamic Workload Scheduler (`dedicatedResources.flexStart`): runs at most `maxRuntime`, up to 7 days. */
  flexStart: z.strictObject({ maxRuntime: durationField({ min: MINUTE, max: 7 * DAY }) }).optional(),
  /** Which Compute reservations the replicas may use (`machineSpec.reservationAffinity`). */
  reservation: ReservationSchema.optional(),
});
export type Capacity = z.output<typeof CapacitySchema>;

const port = z.number().int().min(1).max(65_535);
const route = z
  .string()
  .regex(/^\/[\x21-\x7e]*$/, 'a route is a path starting with "/"')
  .max(1_024);

/** A container probe (ModelContainerSpec `startupProbe` / `healthProbe`): one way to check, and its timing. */
const ProbeSchema = z
  .strictObject({
    httpGet: z.strictObject({ path: route, port: port.optional() }).optional(),
    exec: z.strictObject({ command: z.array(z.string().min(1).max(4_096)).min(1).max(64) }).optional(),
    tcpSocket: z.strictObject({ port }).optional(),
    periodSeconds: z.number().int().min(1).max(3_600).optional(),
    timeoutSeconds: z.number().int().min(1).max(3_600).optional(),
    failureThreshold: z.number().int().min(1).max(10_000).optional(),
    successThreshold: z.number().int().min(1).max(10_000).optional(),
    initialDelaySeconds: z.number().int().min(0).max(3_600).optional(),
  })
  .refine(
    (probe) =>
      [probe.httpGet, probe.exec, probe.tcpSocket].filter((check) => check !== undefined).length === 1,
    'give exactly one of httpGet, exec or tcpSocket',
  );

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Names that carry credentials: they would be stored in the workflow's history and the Model's spec. */
const SECRET_NAME = /(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL)/i;
/** A flag that takes a credential (`--hf-token`, `--api-key=…`), or a token's own shape. */
const SECRET_ARG = /^--?[\w-]*(token|secret|password|api[-_]?key)(=|$)|\bhf_[A-Za-z0-9]{20,}|\bya29\./i;

/** `modelConfig.containerSpec` (model.proto ModelContainerSpec): the serving container, overridden. */
export const ContainerSchema = z.strictObject({
  /** `imageUri` (required by Vertex whenever the container is overridden), e.g. Model Garden's vLLM image. */
  image: z.string().min(1).max(1_024),
  command: z.array(z.string().max(4_096)).max(64).optional(),
  /** e.g. vLLM's `--max-model-len=8192`, `--tensor-parallel-size=2`: cross-checked against the model and machine. */
  args: z
    .array(z.string().max(4_096))
    .max(256)
    .refine(
      (args) => !args.some((arg) => SECRET_ARG.test(arg)),
      'credentials do not belong in container.args (e.g. --hf-token; they would be stored in the workflow history ' +
        'and the Model); give the container access to Secret Manager instead',
    )
    .optional(),
  env: z
    .record(
      z.string().regex(ENV_NAME, 'an environment variable name: a letter or "_", then letters, digits, "_"'),
      z.string().max(32_768),
    )
    .refine((env) => Object.keys(env).length <= 128, 'at most 128 environment variables')
    .refine(
      (env) => !Object.keys(env).some((name) => SECRET_NAME.test(name)),
      'credentials do not belong in the spec (they would be stored in the workflow history and the Model); ' +
        'give the container access to Secret Manager instead',
    )
    .optional(),
  /** The first port gets traffic and health checks (Vertex default 8080). */
  ports: z.array(port).min(1).max(1, 'Vertex uses one serving port').optional(),
  predictRoute: route.optional(),
  healthRoute: route.optional(),
  startupProbe: ProbeSchema.optional(),
  healthProbe: ProbeSchema.optional(),
  /** `/dev/shm` size in MB (vLLM with tensor parallelism wants several GB). */
  sharedMemorySizeMb: z.number().int().min(1).max(1_048_576).optional(),
  /** How long Vertex waits for the container to become ready (max 2h). */
  deploymentTimeout: durationField({ min: MINUTE, max: 2 * HOUR }).optional(),
});
export type Container = z.output<typeof ContainerSchema>;

/** `dedicatedResources.autoscalingMetricSpecs[]`: scale out when a metric passes its target. */
export const AutoscalingSchema = z
  .array(
    z.strictObject({
      metric: z.enum(AUTOSCALING_METRICS),
      /** Percent for duty cycle and CPU (1–100; default 60), requests per replica per minute for request_count. */
      target: z.number().int().min(1).max(1_000_000),
    }),
  )
  .superRefine((targets, ctx) => {
    const problem = autoscalingProblem(targets);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** `dedicatedResources.scaleToZeroSpec`: with `replicas.min: 0` (periods 5m–8h). */
export const ScaleToZeroSchema = z.strictObject({
  minScaleupPeriod: durationField({ min: 5 * MINUTE, max: 8 * HOUR }).optional(),
  idleScaledownPeriod: durationField({ min: 5 * MINUTE, max: 8 * HOUR }).optional(),
});

/** Container and access logging of the deployed model. */
export const LoggingSchema = z.strictObject({
  /**
   * stdout/stderr of the serving container to Cloud Logging (`enableContainerLogging`; off by
   * default on v1beta1). On by default here: a failed start is explained from these lines.
   */
  container: z.boolean().default(true),
  /** Access logs (`enableAccessLogging`); `:deploy` cannot set it, so it applies from the first upgrade. */
  access: z.boolean().default(false),
});
