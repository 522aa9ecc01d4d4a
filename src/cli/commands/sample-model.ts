import { type Command } from 'commander';
import {
  SAMPLE_FAMILIES,
  SAMPLE_VARIANTS,
  SAMPLE_VARIANT_NAMES,
  SampleModelOptionsError,
  type SampleModelResult,
  generateSampleModel,
} from '../../sample-model';
import { InvalidModelUriError, createStorage, isGcsUri } from '../../storage';

/** Exit codes: 0 written, 1 the write failed, 2 bad options. */
const EXIT_WRITE_FAILED = 1;
const EXIT_BAD_OPTIONS = 2;

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

/** "4GiB", "512MiB", "1e9", "1500000" → bytes. */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new SampleModelOptionsError(
      `--target-bytes: "${text}" is not a size; write e.g. 4GiB, 512MiB, 1e9 or a byte count`,
    );
  }
  return Math.round(Number(match[1]) * unit);
}

function toInteger(flag: string, text: string): number {
  if (!/^\s*-?\d+\s*$/.test(text)) {
    throw new SampleModelOptionsError(`--${flag}: "${text}" is not a whole number`);
  }
  return Number(text);
}

interface RawFlags {
  family?: string;
  architecture?: string;
  variant: string;
  shards?: string;
  layers?: string;
  hiddenSize?: string;
  targetBytes?: string;
  experts?: string;
  dtype: string;
  fill: string;
  seed?: string;
  json?: boolean;
  listVariants?: boolean;
}

export function register(program: Command): void {
  program
    .command('sample-model')
    .summary('write a tiny valid (or deliberately broken) Hugging Face model folder')
    .description(
      'Write a tiny but valid Hugging Face model folder (or one classic broken variant) to a local ' +
        'directory or gs://bucket/prefix (fake-gcs-server when STORAGE_EMULATOR_HOST is set). ' +
        'Exit code 0 written, 1 write failed, 2 bad options.',
    )
    .argument('[location]', 'local directory or gs://bucket/prefix')
    // Choices are checked by the options schema, so a bad value exits with code 2 like every bad option.
    .option('--family <family>', `model family: ${SAMPLE_FAMILIES.join(', ')} (default llama)`)
    .option(
      '--variant <variant>',
      `what to break: ${SAMPLE_VARIANT_NAMES.join(', ')} (see --list-variants)`,
      'valid',
    )
    .option('--shards <n>', 'number of safetensors files (1: model.safetensors, no index)', '2')
    .option('--layers <n>', 'decoder layers (default 2)')
    .option('--hidden-size <n>', 'hidden size, a multiple of 64 (default 64; larger for big --target-bytes)')
    .option('--target-bytes <size>', 'approximate weight bytes, e.g. 4GiB; adds layers until reached')
    .option('--experts <n>', 'routed experts of MoE families', '4')
    .option('--dtype <dtype>', 'weight dtype: BF16, F16 or F32', 'BF16')
    .option('--fill <fill>', 'tensor bytes: pattern (deterministic pseudo-random) or zeros', 'pattern')
    .option('--seed <n>', 'seed of the pattern fill', '1')
    .option('--json', 'print the result as JSON')
    .option('--list-variants', 'list the variants and what a validator must report for each, then exit')
    .action(async (location: string | undefined, flags: RawFlags) => {
      if (flags.listVariants) {
        process.stdout.write(formatVariants(flags.json === true));
        return;
      }
      if (location === undefined) {
        process.stderr.write(
          'garden-deploy sample-model: give a location (a local directory or gs://bucket/prefix)\n',
        );
        process.exitCode = EXIT_BAD_OPTIONS;
        return;
      }
      process.exitCode = await runSampleModel(location, flags);
    });
}

function formatVariants(json: boolean): string {
  if (json) return `${JSON.stringify(SAMPLE_VARIANTS, null, 2)}\n`;
  return Object.entries(SAMPLE_VARIANTS)
    .map(([name, v]) => `${name.padEnd(26)}${v.description}\n${' '.repeat(26)}→ ${v.expectedFinding}\n`)
    .join('');
}

export async function runSampleModel(location: string, flags: RawFlags): Promise<number> {
  let result: SampleModelResult;
  try {
    const options = {
      location,
      ...(flags.family === undefined ? {} : { family: flags.family }),
      ...(flags.architecture === undefined ? {} : { architecture: flags.architecture }),
      variant: flags.variant,
      dtype: flags.dtype,
      fill: flags.fill,
      ...(flags.shards === undefined ? {} : { shards: toInteger('shards', flags.shards) }),
      ...(flags.layers === undefined ? {} : { layers: toInteger('layers', flags.layers) }),
      ...(flags.hiddenSize === undefined ? {} : { hiddenSize: toInteger('hidden-size', flags.hiddenSize) }),
      ...(flags.targetBytes === undefined ? {} : { targetBytes: parseByteSize(flags.targetBytes) }),
      ...(flags.experts === undefined ? {} : { experts: toInteger('experts', flags.experts) }),
      ...(flags.seed === undefined ? {} : { seed: toInteger('seed', flags.seed) }),
    };
    // Typed loosely on purpose: generateSampleModel validates every field with zod.
    result = await generateSampleModel(options as Parameters<typeof generateSampleModel>[0], {
      ...(isGcsUri(location) ? { storage: createStorage() } : {}),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`garden-deploy sample-model: ${message}\n`);
    const badOption = err instanceof SampleModelOptionsError || err instanceof InvalidModelUriError;
    return badOption ? EXIT_BAD_OPTIONS : EXIT_WRITE_FAILED;
  }
  process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : formatResult(result));
  return 0;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function formatResult(r: SampleModelResult): string {
  const lines = [
    `Wrote a ${r.variant} ${r.family} sample model (${r.architecture}) to ${r.uri}`,
    `  ${r.files.length} files, ${formatBytes(r.totalBytes)}; ${r.tensorCount} tensors in ${r.shards} shard(s), ` +
      `${formatBytes(r.weightBytes)} of weights; hidden ${r.dims.hiddenSize}, ${r.dims.numLayers} layers, vocab ${r.dims.vocabSize}`,
    ...r.files.map((f) => `  ${f.name.padEnd(40)} ${formatBytes(f.bytes).padStart(10)}`),
  ];
  if (r.modelUri !== r.uri) lines.push(`  the model itself is at ${r.modelUri}`);
  lines.push(`A validator should report: ${r.expectedFinding}`);
  return `${lines.join('\n')}\n`;
}
