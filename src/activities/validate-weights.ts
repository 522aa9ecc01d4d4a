import { createHash } from 'node:crypto';
import { cancellationSignal } from '@temporalio/activity';
import {
  chatRequired,
  type DeploymentSpec,
  type DeploymentSpecInput,
  InvalidSpecError,
  deploymentIds,
  parseDeploymentSpec,
} from '../spec';
import { deploymentSettingsOf, type Finding, type ValidationReport, validateModel } from '../validation';
import {
  type Attempted,
  NON_RETRYABLE_ERRORS,
  type ValidatedDeployment,
  type ValidationSummary,
  type WeightsFingerprint,
} from './contract';
import type { ActivityContext } from './deps';
import { bounded, currentAttempt, permanentFailure, toActivityFailure } from './failures';
import { beat, keepAlive } from './runtime';

/** Machines offered to the quota check besides the recommended one. */
const MAX_MACHINE_CANDIDATES = 5;

/** Object generations kept in the summary; the digest covers all of them. */
const MAX_GENERATIONS = 64;

/** Findings kept in the summary (history and the progress query carry it). */
const MAX_HIGHLIGHTS = 5;
const MAX_HIGHLIGHT_CHARS = 400;
/** Errors spelled out in the failure message. */
const MAX_ERRORS_IN_MESSAGE = 3;

/**
 * Parses the spec and checks the model folder before anything billable exists: every problem the
 * validator finds ends the deployment here, with what to fix. `machine: auto` becomes the
 * validator's recommendation.
 */
export function validateWeightsActivity(ctx: ActivityContext) {
  return async function validateWeights(
    specInput: DeploymentSpecInput,
  ): Promise<Attempted<ValidatedDeployment>> {
    const spec = parseSpec(specInput);
    beat({ phase: 'starting', uri: spec.model.uri });
    let report: ValidationReport;
    try {
      report = await keepAlive(() =>
        validateModel(
          spec.model.uri,
          {
            ...(spec.machine === 'auto' ? {} : { machine: spec.machine }),
            contextLength: spec.validation.contextLength,
            requireChat: chatRequired(spec),
            deployment: deploymentSettingsOf(spec),
            signal: cancellationSignal(),
            onProgress: (progress) => beat({ uri: spec.model.uri, ...progress }),
          },
          { storage: ctx.storage },
        ),
      );
    } catch (err) {
      throw toActivityFailure(err, `validating the model at ${spec.model.uri}`);
    }
    const validation = summarizeReport(report);
    if (report.status !== 'ok') {
      throw permanentFailure(NON_RETRYABLE_ERRORS.weightsInvalid, failureMessage(report), { validation });
    }
    const machine = spec.machine === 'auto' ? report.sizing?.recommended?.machine : spec.machine;
    if (!machine) {
      throw permanentFailure(
        NON_RETRYABLE_ERRORS.weightsInvalid,
        `no Vertex AI machine can be recommended for ${spec.model.uri}: the validator could not size the model; ` +
          'set machine (type, acceleratorType, acceleratorCount) in the spec explicitly.',
        { validation },
      );
    }
    // With `machine: auto`, the other machines that fit, best first: the quota check may need one.
    const machines =
      spec.machine === 'auto'
        ? (report.sizing?.alternatives ?? [])
            .filter((fit) => fit.fits && fit.tensorParallelValid && fit.machine.type !== machine.type)
            .map((fit) => fit.machine)
            .slice(0, MAX_MACHINE_CANDIDATES)
        : [];
    return {
      spec: { ...spec, machine },
      ids: deploymentIds(spec),
      validation,
      ...(machines.length ? { machines: [machine, ...machines] } : {}),
      attempt: currentAttempt(),
    };
  };
}

function parseSpec(input: DeploymentSpecInput): DeploymentSpec {
  try {
    return parseDeploymentSpec(input);
  } catch (err) {
    if (!(err instanceof InvalidSpecError)) throw err;
    throw permanentFailure(
      NON_RETRYABLE_ERRORS.invalidSpec,
      `${err.message}\nFix these fields and start the deployment again.`,
    );
  }
}

function describeFinding(finding: Finding): string {
  return `${finding.rule}${finding.file ? ` (${finding.file})` : ''}: ${finding.message}`;
}

/** The report condensed for history: counts, what the model is, and the top findings. */
export function summarizeReport(report: ValidationReport): ValidationSummary {
  const { model } = report;
  // Findings come errors first; a clean report shows its warnings.
  const highlights = report.findings
    .filter((f) => f.severity !== 'info')
    .slice(0, MAX_HIGHLIGHTS)
    .map((f) => bounded(describeFinding(f), MAX_HIGHLIGHT_CHARS));
  const recommended = report.sizing?.recommended?.machine;
  return {
    ok: report.status === 'ok',
    errors: report.summary.errors,
    warnings: report.summary.warnings,
    highlights,
    ...(model.family !== undefined ? { family: model.family } : {}),
    ...(model.sizeGuess !== undefined ? { sizeGuess: model.sizeGuess } : {}),
    ...(model.parameterCount !== undefined ? { parameterCount: model.parameterCount } : {}),
    ...(model.weightBytes !== undefined ? { weightBytes: model.weightBytes } : {}),
    ...(model.dtype !== undefined ? { dtype: model.dtype } : {}),
    ...(recommended ? { recommendedMachine: recommended } : {}),
    ...(report.objects.length > 0 ? { weights: weightsFingerprint(report) } : {}),
  };
}

/** What was validated, by name, size and GCS generation: the same bytes give the same digest. */
function weightsFingerprint(report: ValidationReport): WeightsFingerprint {
  const objects = [...report.objects].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hash = createHash('sha256');
  for (const o of objects) hash.update(`${o.name}\0${o.size}\0${o.generation ?? ''}\n`);
  // Objects beyond the report's cap still change the digest through their count.
  hash.update(`+${report.objectsOmitted}`);
  const generations = Object.fromEntries(
    objects
      .filter((o) => o.generation !== undefined)
      .slice(0, MAX_GENERATIONS)
      .map((o) => [o.name, o.generation!]),
  );
  return {
    objects: objects.length + report.objectsOmitted,
    bytes: objects.reduce((sum, o) => sum + o.size, 0),
    digest: hash.digest('hex').slice(0, 16),
    ...(Object.keys(generations).length ? { generations } : {}),
  };
}

function failureMessage(report: ValidationReport): string {
  const errors = report.findings.filter((f) => f.severity === 'error');
  const shown = errors.slice(0, MAX_ERRORS_IN_MESSAGE).map((f) => `  - ${describeFinding(f)}`);
  const more = report.summary.errors - shown.length;
  const headline =
    report.status === 'unreadable'
      ? `cannot read the model at ${report.location}`
      : `the model at ${report.location} failed validation with ${report.summary.errors} error(s)`;
  return [
    `${headline}; nothing was deployed. Fix the weights and start the deployment again:`,
    ...shown,
    ...(more > 0
      ? [`  … and ${more} more (run \`garden-deploy validate ${report.location}\` for the full report)`]
      : []),
  ].join('\n');
}
