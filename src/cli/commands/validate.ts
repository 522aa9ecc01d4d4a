import type { Storage } from '@google-cloud/storage';
import type { Command } from 'commander';
import pc from 'picocolors';
import { z } from 'zod';
import { MODEL_FAMILIES } from '../../models';
import { ACCELERATOR_TYPES, chatRequired, type DeploymentSpec } from '../../spec/deployment-spec';
import { InvalidSpecError, loadDeploymentSpecFile } from '../../spec/load';
import { createStorage, isGcsUri, StorageAccessError } from '../../storage';
import {
  DEFAULT_CONTEXT_LENGTH,
  deploymentSettingsOf,
  describeMachine,
  type Finding,
  formatBytes,
  formatParameters,
  InvalidValidationOptionsError,
  type MachineFit,
  RULES,
  type Severity,
  type ValidateOptions,
  type ValidationReport,
  validateModel,
} from '../../validation';

/**
 * `garden-deploy validate <gs://bucket/prefix | ./dir>`: pre-flight checks of a model folder;
 * `--spec spec.yaml` checks the spec's model (or the given location) with the spec's machine,
 * context length and serving settings (container args, capacity, replicas).
 * Exit codes: 0 no errors (warnings allowed), 1 the model or settings have errors, 2 the location
 * could not be read (bad URI, 403, 404, storage unavailable) or the options or spec are invalid.
 */

export const EXIT_OK = 0;
export const EXIT_ERRORS = 1;
export const EXIT_UNREADABLE = 2;

const positiveInt = (what: string, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${what} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(1, `${what} must be at least 1`).max(max, `${what} must be at most ${max}`));

const CliOptionsSchema = z
  .strictObject({
    json: z.boolean().default(false),
    machineType: z.string().optional(),
    acceleratorType: z
      .enum(ACCELERATOR_TYPES, {
        message: `--accelerator-type must be one of ${ACCELERATOR_TYPES.join(', ')}`,
      })
      .optional(),
    acceleratorCount: positiveInt('--accelerator-count', 16).optional(),
    contextLength: positiveInt('--context-length', 10_485_760).optional(),
    requireChat: z.boolean().default(false),
    family: z
      .enum(MODEL_FAMILIES.map((f) => f.id) as [string, ...string[]], {
        message: `--family must be one of ${MODEL_FAMILIES.map((f) => f.id).join(', ')}`,
      })
      .optional(),
    concurrency: positiveInt('--concurrency', 64).optional(),
    maxHeaderBytes: positiveInt('--max-header-bytes', 100_000_000).optional(),
    nativeQuantization: z.boolean().default(true),
    spec: z.string().min(1).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.spec !== undefined && (o.machineType ?? o.acceleratorType ?? o.acceleratorCount) !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message:
          '--spec takes the machine from the spec: drop --machine-type, --accelerator-type and --accelerator-count',
      });
    }
    const given = [o.machineType, o.acceleratorType, o.acceleratorCount].filter(
      (v) => v !== undefined,
    ).length;
    if (given !== 0 && given !== 3) {
      ctx.addIssue({
        code: 'custom',
        message:
          '--machine-type, --accelerator-type and --accelerator-count go together: give all three or none',
      });
    }
  });
type CliOptions = z.output<typeof CliOptionsSchema>;

export interface ValidateIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  storage?: Storage;
  /** Colour the human report (default: when stdout is a TTY and NO_COLOR is unset). */
  color?: boolean;
}

export function register(program: Command): void {
  program
    .command('validate')
    .summary('check a model folder before deploying it (headers only, seconds)')
    .description(
      'Check a Hugging Face model folder before deploying it: files, config.json family, safetensors headers ' +
        '(ranged reads only), index, tensor shapes, quantization, tokenizer and chat template, and the Vertex machine ' +
        'it needs; with --spec, also the deployment settings against the model and machine (vLLM args, capacity, replicas). ' +
        'Exit code 0: no errors; 1: the model or settings have errors; 2: the location could not be read, or bad options or spec.',
    )
    .argument(
      '[location]',
      'gs://bucket/path/to/model or a local directory (default with --spec: its model.uri)',
    )
    .option('--json', 'print the report as JSON')
    .option(
      '--spec <file>',
      'check as this deployment spec would deploy: its machine, validation.contextLength, container args, capacity and replicas',
    )
    .option(
      '--machine-type <type>',
      'check this machine type, e.g. g2-standard-24 (with the two options below)',
    )
    .option('--accelerator-type <type>', 'e.g. NVIDIA_L4')
    .option('--accelerator-count <n>', 'GPUs per replica, e.g. 2')
    .option('--context-length <tokens>', `KV-cache room to size for (default ${DEFAULT_CONTEXT_LENGTH})`)
    .option('--require-chat', 'a missing chat template is an error (the deployment uses /chat/completions)')
    .option('--family <id>', 'the family you expect (error if config.json declares another)')
    .option('--concurrency <n>', 'reads in flight at once (default 16)')
    .option(
      '--max-header-bytes <n>',
      'largest safetensors header to download (default 32 MiB, at most 100,000,000)',
    )
    .option('--no-native-quantization', 'reject gpt-oss MXFP4 / DeepSeek FP8 release formats too')
    .option('--rules', 'list every rule id with its default severity and exit')
    .action(async (location: string | undefined, raw: Record<string, unknown>) => {
      const { rules, ...options } = raw;
      if (rules) {
        process.stdout.write(formatRuleCatalogue());
        return;
      }
      process.exitCode = await runValidate(location, options, {
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
      });
    });
}

/** The command without process globals: returns the exit code. */
export async function runValidate(
  location: string | undefined,
  rawOptions: Record<string, unknown>,
  io: ValidateIo,
): Promise<number> {
  const parsed = CliOptionsSchema.safeParse(rawOptions);
  if (!parsed.success) {
    io.stderr(`garden-deploy validate: ${parsed.error.issues.map((i) => i.message).join('; ')}\n`);
    return EXIT_UNREADABLE;
  }
  const cli = parsed.data;
  let spec: DeploymentSpec | undefined;
  if (cli.spec !== undefined) {
    try {
      spec = await loadDeploymentSpecFile(cli.spec);
    } catch (err) {
      const reason = err instanceof InvalidSpecError ? err.message : unreadableFile(err);
      if (reason === undefined) throw err;
      io.stderr(`garden-deploy validate: ${reason}\n`);
      return EXIT_UNREADABLE;
    }
    location ??= spec.model.uri;
  }
  if (!location) {
    io.stderr(
      'garden-deploy validate: give a model location (gs://bucket/path or a local directory), --spec or --rules\n',
    );
    return EXIT_UNREADABLE;
  }
  let report: ValidationReport;
  try {
    report = await validateModel(
      location,
      { ...toValidateOptions(cli), ...specOptions(spec, cli) },
      {
        ...(isGcsUri(location) ? { storage: io.storage ?? createStorage() } : {}),
      },
    );
  } catch (err) {
    if (err instanceof StorageAccessError || err instanceof InvalidValidationOptionsError) {
      io.stderr(`garden-deploy validate: ${err.message}\n`);
      return EXIT_UNREADABLE;
    }
    throw err;
  }
  if (cli.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const color = io.color ?? (Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
    io.stdout(formatReport(report, { color }));
  }
  return report.status === 'unreadable'
    ? EXIT_UNREADABLE
    : report.status === 'errors'
      ? EXIT_ERRORS
      : EXIT_OK;
}

function toValidateOptions(cli: CliOptions): ValidateOptions {
  return {
    ...(cli.machineType && cli.acceleratorType && cli.acceleratorCount
      ? {
          machine: {
            type: cli.machineType,
            acceleratorType: cli.acceleratorType,
            acceleratorCount: cli.acceleratorCount,
          },
        }
      : {}),
    ...(cli.contextLength === undefined ? {} : { contextLength: cli.contextLength }),
    requireChat: cli.requireChat,
    ...(cli.family === undefined ? {} : { expectedFamily: cli.family }),
    ...(cli.concurrency === undefined ? {} : { concurrency: cli.concurrency }),
    ...(cli.maxHeaderBytes === undefined ? {} : { maxHeaderBytes: cli.maxHeaderBytes }),
    allowNativeQuantization: cli.nativeQuantization,
  };
}

/** What a spec adds: its machine (unless auto), context length and serving settings; CLI flags win. */
function specOptions(spec: DeploymentSpec | undefined, cli: CliOptions): ValidateOptions {
  if (!spec) return {};
  return {
    ...(spec.machine === 'auto' ? {} : { machine: spec.machine }),
    contextLength: cli.contextLength ?? spec.validation.contextLength,
    requireChat: cli.requireChat || chatRequired(spec),
    deployment: deploymentSettingsOf(spec),
  };
}

/** A spec file that cannot be read (missing, a directory, no permission), said plainly. */
function unreadableFile(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOENT' && code !== 'EISDIR' && code !== 'EACCES') return undefined;
  return `cannot read the spec file: ${(err as Error).message}`;
}

const SECTIONS: Array<{ severity: Severity; title: string; mark: string }> = [
  { severity: 'error', title: 'Errors', mark: '✖' },
  { severity: 'warning', title: 'Warnings', mark: '▲' },
  { severity: 'info', title: 'Info', mark: '●' },
];

/** The human report: model summary, machine, findings grouped by severity, verdict. */
export function formatReport(report: ValidationReport, options: { color: boolean }): string {
  const c = pc.createColors(options.color);
  const paint: Record<Severity, (s: string) => string> = { error: c.red, warning: c.yellow, info: c.cyan };
  const lines: string[] = [c.bold(`Validation of ${report.location}`), ''];
  const m = report.model;
  if (report.status !== 'unreadable') {
    const what = [
      m.sizeGuess,
      m.familyName && m.architecture ? `${m.familyName} (${m.architecture})` : m.architecture,
      m.parameterCount === undefined ? undefined : `${formatParameters(m.parameterCount)} parameters`,
      m.weightBytes === undefined
        ? undefined
        : `${formatBytes(m.weightBytes)} of weights${m.dtype ? ` (${m.dtype})` : ''}`,
      m.weightFiles > 0 ? `${m.weightFiles} ${m.weightFormat} file(s), ${m.tensorCount} tensors` : undefined,
    ].filter(Boolean);
    lines.push(`${c.bold('Model')}    ${what.length > 0 ? what.join(' · ') : 'not identified'}`);
    const s = report.sizing;
    if (s) {
      const fit = (f: MachineFit): string =>
        `${describeMachine(f)} — ${formatBytes(f.perGpuRequiredBytes)} of ${formatBytes(f.perGpuUsableBytes)} per GPU, context up to ${f.maxContextTokens.toLocaleString('en-US')} tokens`;
      lines.push(
        `${c.bold('Machine')}  ${s.recommended ? `recommended ${fit(s.recommended)}` : c.red('no single-node Vertex machine fits')}` +
          ` (sized for ${s.requirement.contextTokens.toLocaleString('en-US')} tokens, TP ∈ {${s.requirement.tensorParallelSizes.join(', ')}})`,
      );
      if (s.chosen)
        lines.push(`         chosen ${fit(s.chosen)}${s.chosen.fits ? '' : c.red(' — does not fit')}`);
      if (s.alternatives.length > 0) {
        lines.push(`         also fits: ${s.alternatives.map((a) => describeMachine(a)).join('; ')}`);
      }
    }
    lines.push('');
  }
  for (const section of SECTIONS) {
    const findings = report.findings.filter((f) => f.severity === section.severity);
    const omitted = report.omitted.filter((o) => o.severity === section.severity);
    const total = findings.length + omitted.reduce((n, o) => n + o.count, 0);
    if (total === 0) continue;
    lines.push(paint[section.severity](c.bold(`${section.title} (${total})`)));
    for (const finding of findings)
      lines.push(...formatFinding(finding, section.mark, paint[section.severity], c.dim));
    for (const o of omitted) lines.push(c.dim(`  … ${o.count} more ${o.rule} finding(s) not shown`));
    lines.push('');
  }
  const { errors, warnings, infos } = report.summary;
  const verdict =
    report.status === 'unreadable'
      ? c.red(c.bold('Could not read the model location.'))
      : errors > 0
        ? c.red(c.bold(`${errors} error(s): fix them before deploying.`))
        : c.green(c.bold('No errors: ready to deploy.'));
  lines.push(`${verdict} ${c.dim(`(${errors} errors, ${warnings} warnings, ${infos} info)`)}`);
  lines.push(
    c.dim(
      `Listed ${report.stats.objectsListed} objects, read ${report.stats.headersRead} safetensors headers ` +
        `(${report.stats.bytesRead.toLocaleString('en-US')} bytes) in ${(report.stats.durationMs / 1000).toFixed(1)} s.`,
    ),
  );
  return `${lines.join('\n')}\n`;
}

function formatFinding(
  finding: Finding,
  mark: string,
  paint: (s: string) => string,
  dim: (s: string) => string,
): string[] {
  return [
    `  ${paint(mark)} ${paint(finding.rule)}${finding.file ? dim(`  ${finding.file}`) : ''}`,
    `    ${finding.message}`,
  ];
}

export function formatRuleCatalogue(): string {
  const width = Math.max(...Object.keys(RULES).map((id) => id.length));
  return (
    Object.entries(RULES)
      .map(([id, rule]) => `${id.padEnd(width)}  ${rule.severity.padEnd(7)}  ${rule.description}`)
      .join('\n') + '\n'
  );
}
