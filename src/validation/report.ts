import { z } from 'zod';
import { ACCELERATOR_TYPES } from '../spec/deployment-spec';
import { preview } from '../safetensors/header';
import { RULES, type RuleId, type Severity } from './rules';

/**
 * `ValidationReport`: the result of `validateModel`, JSON-serialisable and bounded in size because
 * it travels through Temporal history (findings capped per rule and in total, long strings cut,
 * object list capped), with its zod schema for every consumer that receives one.
 */

export const REPORT_SCHEMA_VERSION = 1;
export const DEFAULT_MAX_FINDINGS_PER_RULE = 10;
export const MAX_FINDINGS = 200;
export const MAX_MESSAGE_CHARS = 800;
export const MAX_REPORTED_OBJECTS = 2_000;
/** Total characters of object names in a report. */
export const MAX_REPORTED_NAME_CHARS = 200_000;

export const SeveritySchema = z.enum(['error', 'warning', 'info']);

export const FindingSchema = z.object({
  /** Stable rule id from the catalogue (`rules.ts`). */
  rule: z.string().max(100),
  severity: SeveritySchema,
  /** The file concerned, relative to the model folder. */
  file: z.string().max(400).optional(),
  /** What is wrong and how to fix it. */
  message: z.string().max(MAX_MESSAGE_CHARS + 1),
});
export type Finding = z.infer<typeof FindingSchema>;

const MachineSpecSchema = z.object({
  type: z.string(),
  acceleratorType: z.enum(ACCELERATOR_TYPES),
  acceleratorCount: z.number().int().positive(),
});

export const MachineFitSchema = z.object({
  machine: MachineSpecSchema,
  gpuMemoryBytes: z.number().int().nonnegative(),
  perGpuRequiredBytes: z.number().int().nonnegative(),
  perGpuUsableBytes: z.number().int().nonnegative(),
  fits: z.boolean(),
  tensorParallelValid: z.boolean(),
  maxContextTokens: z.number().int().nonnegative(),
});

export const SizingSchema = z.object({
  requirement: z.object({
    weightBytes: z.number().nonnegative(),
    kvBytesPerToken: z.number().nonnegative(),
    contextTokens: z.number().int().nonnegative(),
    maxPositionEmbeddings: z.number().int().positive().optional(),
    tensorParallelSizes: z.array(z.number().int().positive()),
    kvShardLimit: z.number().int().positive(),
    nativeQuantization: z.enum(['mxfp4', 'fp8']).optional(),
  }),
  /** Where `weightBytes` came from: the safetensors headers, the .bin file sizes, or config arithmetic. */
  weightBytesSource: z.enum(['headers', 'file-sizes', 'config']),
  recommended: MachineFitSchema.optional(),
  alternatives: z.array(MachineFitSchema),
  /** The machine the caller asked to check, if any. */
  chosen: MachineFitSchema.optional(),
});
export type Sizing = z.infer<typeof SizingSchema>;

export const ModelSummarySchema = z.object({
  /** Supported family id (`src/models`), when detected. */
  family: z.string().optional(),
  familyName: z.string().optional(),
  architecture: z.string().max(200).optional(),
  modelType: z.string().max(100).optional(),
  /** e.g. "Llama-3.1-8B-like". */
  sizeGuess: z.string().max(200).optional(),
  /** Parameters per config.json (MTP layers excluded). */
  parameterCount: z.number().nonnegative().optional(),
  activeParameterCount: z.number().nonnegative().optional(),
  /** Sum of tensor bytes in the weight files that will be loaded. */
  weightBytes: z.number().nonnegative().optional(),
  /** Dtype holding most weight bytes. */
  dtype: z.string().max(32).optional(),
  /** Weight bytes per dtype. */
  dtypeBytes: z.record(z.string().max(32), z.number().nonnegative()),
  weightFormat: z.enum(['safetensors', 'bin', 'none']),
  weightFiles: z.number().int().nonnegative(),
  tensorCount: z.number().int().nonnegative(),
  vocabSize: z.number().int().positive().optional(),
  maxPositionEmbeddings: z.number().int().positive().optional(),
  quantization: z.object({ method: z.string().max(64).optional(), native: z.boolean() }).optional(),
  chatTemplate: z.boolean().optional(),
});
export type ModelSummary = z.infer<typeof ModelSummarySchema>;

export const ObjectRecordSchema = z.object({
  name: z.string().max(1024),
  size: z.number().int().nonnegative(),
  /** GCS generation: later steps can pin exactly the bytes that were checked. */
  generation: z.string().max(32).optional(),
});

export const ValidationReportSchema = z.object({
  schemaVersion: z.literal(REPORT_SCHEMA_VERSION),
  location: z.string().max(2048),
  /** `unreadable`: the location itself could not be listed or read (bad URI, 403, 404). */
  status: z.enum(['ok', 'errors', 'unreadable']),
  checkedAt: z.string(),
  summary: z.object({
    errors: z.number().int().nonnegative(),
    warnings: z.number().int().nonnegative(),
    infos: z.number().int().nonnegative(),
  }),
  /** At most {@link MAX_FINDINGS}, errors first. */
  findings: z.array(FindingSchema).max(MAX_FINDINGS),
  /** Findings left out of `findings` (over the per-rule or total cap), counted per rule. */
  omitted: z.array(
    z.object({ rule: z.string(), severity: SeveritySchema, count: z.number().int().positive() }),
  ),
  model: ModelSummarySchema,
  sizing: SizingSchema.optional(),
  /** The model folder's objects (weights, config, tokenizer…) with generations; capped. */
  objects: z.array(ObjectRecordSchema).max(MAX_REPORTED_OBJECTS),
  objectsOmitted: z.number().int().nonnegative(),
  stats: z.object({
    objectsListed: z.number().int().nonnegative(),
    headersRead: z.number().int().nonnegative(),
    bytesRead: z.number().int().nonnegative(),
    durationMs: z.number().nonnegative(),
  }),
});
export type ValidationReport = z.infer<typeof ValidationReportSchema>;

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Collects findings under the caps; every `add` counts, so summaries stay exact when findings are dropped. */
export class FindingCollector {
  private readonly kept: Finding[] = [];
  private readonly perRule = new Map<string, number>();
  private readonly dropped = new Map<string, { rule: string; severity: Severity; count: number }>();
  private readonly counts: Record<Severity, number> = { error: 0, warning: 0, info: 0 };

  constructor(private readonly maxPerRule = DEFAULT_MAX_FINDINGS_PER_RULE) {}

  /** Adds a finding with the rule's default severity unless one is given. */
  add(rule: RuleId, message: string, options: { file?: string; severity?: Severity } = {}): void {
    const severity = options.severity ?? RULES[rule].severity;
    this.counts[severity]++;
    const key = `${rule}\u0000${severity}`;
    const seen = (this.perRule.get(key) ?? 0) + 1;
    this.perRule.set(key, seen);
    if (seen > this.maxPerRule) {
      const entry = this.dropped.get(key) ?? { rule, severity, count: 0 };
      entry.count++;
      this.dropped.set(key, entry);
      return;
    }
    const finding: Finding = { rule, severity, message: cut(message, MAX_MESSAGE_CHARS) };
    if (options.file !== undefined) finding.file = preview(options.file, 399);
    this.kept.push(finding);
  }

  has(rule: RuleId): boolean {
    return [...this.perRule.keys()].some((key) => key.startsWith(`${rule}\u0000`));
  }

  get errorCount(): number {
    return this.counts.error;
  }

  result(): Pick<ValidationReport, 'findings' | 'omitted' | 'summary'> {
    const sorted = [...this.kept].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
    const omitted = new Map([...this.dropped].map(([key, entry]) => [key, { ...entry }]));
    for (const finding of sorted.slice(MAX_FINDINGS)) {
      const key = `${finding.rule}\u0000${finding.severity}`;
      const entry = omitted.get(key) ?? { rule: finding.rule, severity: finding.severity, count: 0 };
      entry.count++;
      omitted.set(key, entry);
    }
    return {
      findings: sorted.slice(0, MAX_FINDINGS),
      omitted: [...omitted.values()],
      summary: { errors: this.counts.error, warnings: this.counts.warning, infos: this.counts.info },
    };
  }
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
