import { type Command, Option } from 'commander';
import { z } from 'zod';
import { InvalidSpecError, parseDeploymentSpec, readDeploymentSpecDocument, type SpecIssue } from '../spec';

/**
 * A deployment spec from the command line: a YAML/JSON file (`-f`) with flags merged over its
 * fields, for `deploy` and `upgrade`. Each spec flag is spelled once, in SPEC_FLAGS: the commander
 * options, the flags schema, the merge and the "which flag set this field" hints come from it.
 */

/** A flag that sets a spec field. */
interface SpecFlag {
  /** Commander's flag syntax. */
  flags: string;
  help: string;
  /** The spec field it sets. */
  path: string[];
  /** Whole numbers become numbers (anything else stays a string for the schema to reject). */
  numeric?: boolean;
  /** Repeatable: each use appends a value. */
  repeat?: boolean;
  /** Given together (machine) or only with --private (psc). */
  group?: 'machine' | 'psc';
  /** Applied by hand in `specDocument` (booleans and flags that set more than one field). */
  special?: true;
}

const SPEC_FLAGS = [
  {
    flags: '--name <name>',
    help: 'deployment name (lowercase, digits, "-"; derives the workflow id and resource ids)',
    path: ['name'],
  },
  { flags: '--project <id>', help: 'GCP project to deploy in', path: ['project'] },
  { flags: '--region <region>', help: 'Vertex AI region, e.g. us-central1', path: ['region'] },
  {
    flags: '--model-uri <gs://bucket/path/>',
    help: 'Hugging Face–format model folder in GCS',
    path: ['model', 'uri'],
  },
  {
    flags: '--model-id <id>',
    help: 'model id in the Vertex Model Registry (default: the name)',
    path: ['model', 'id'],
  },
  { flags: '--endpoint-id <id>', help: 'endpoint id (default: the name)', path: ['endpoint', 'id'] },
  {
    flags: '--machine-type <type>',
    help: 'e.g. g2-standard-12; with the two options below (default: sized by validation)',
    path: ['machine', 'type'],
    group: 'machine',
  },
  {
    flags: '--accelerator-type <type>',
    help: 'e.g. NVIDIA_L4 or NVIDIA_H100_80GB',
    path: ['machine', 'acceleratorType'],
    group: 'machine',
  },
  {
    flags: '--accelerator-count <n>',
    help: 'accelerators per replica',
    path: ['machine', 'acceleratorCount'],
    numeric: true,
    group: 'machine',
  },
  {
    flags: '--min-replicas <n>',
    help: 'replicas that must be available (default 1)',
    path: ['replicas', 'min'],
    numeric: true,
  },
  {
    flags: '--max-replicas <n>',
    help: 'autoscaling ceiling (default: min)',
    path: ['replicas', 'max'],
    numeric: true,
  },
  { flags: '--public', help: 'public dedicated endpoint (the default)', path: ['access'], special: true },
  {
    flags: '--private',
    help: 'private endpoint reached through Private Service Connect (needs the PSC options)',
    path: ['access'],
    special: true,
  },
  {
    flags: '--allow-project <project>',
    help: 'PSC: project allowed to connect (repeat for more; must include the consumer project)',
    path: ['access', 'projectAllowlist'],
    repeat: true,
    group: 'psc',
  },
  {
    flags: '--consumer-project <project>',
    help: 'PSC: project of the consumer network, address and forwarding rule',
    path: ['access', 'consumerProject'],
    group: 'psc',
  },
  {
    flags: '--network <projects/P/global/networks/N>',
    help: 'PSC: consumer VPC network',
    path: ['access', 'network'],
    group: 'psc',
  },
  {
    flags: '--subnetwork <projects/P/regions/R/subnetworks/S>',
    help: 'PSC: subnetwork for the internal address',
    path: ['access', 'subnetwork'],
    group: 'psc',
  },
  {
    flags: '--psc-ip <ipv4>',
    help: 'PSC: internal IP to reserve (default: picked from the subnetwork)',
    path: ['access', 'ipAddress'],
    group: 'psc',
  },
  {
    flags: '--skip-smoke <reason>',
    help: 'run no smoke tests, for this reason',
    path: ['smoke', 'skipReason'],
    special: true,
  },
  {
    flags: '--rollback-window <duration>',
    help: 'how long a success stays open to `rollback`, e.g. 30m or 0 (default 0)',
    path: ['rollbackWindow'],
    numeric: true,
  },
  {
    flags: '--label <key=value>',
    help: 'label on the Vertex resources (repeat for more)',
    path: ['labels'],
    repeat: true,
    special: true,
  },
] as const satisfies readonly SpecFlag[];

/** `--model-uri <…>` → `modelUri`, as commander names the option. */
function keyOf(flag: SpecFlag): string {
  const long = /--([a-z-]+)/.exec(flag.flags)![1]!;
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

const FLAG_BY_KEY = new Map<string, SpecFlag>(SPEC_FLAGS.map((flag) => [keyOf(flag), flag]));
/** The spec field each flag sets, so errors name the flag the user typed. */
const FLAG_OF_PATH = new Map<string, string>(
  SPEC_FLAGS.filter((f) => f.path.join('.') !== 'access').map((f) => [
    f.path.join('.'),
    /^--[a-z-]+/.exec(f.flags)![0],
  ]),
);

/** The `-f` file and the spec flags, as commander hands them over. */
export const SpecFlagsSchema = z.object({
  file: z.string().optional(),
  ...Object.fromEntries(
    SPEC_FLAGS.map((flag) => [
      keyOf(flag),
      flag.flags.includes('<')
        ? 'repeat' in flag && flag.repeat
          ? z.array(z.string()).optional()
          : z.string().optional()
        : z.boolean().optional(),
    ]),
  ),
});
type SpecFlags = z.infer<typeof SpecFlagsSchema> & Record<string, unknown>;

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Adds `-f, --file` and every spec flag to `command`. */
export function addSpecOptions(command: Command): Command {
  command.option('-f, --file <spec.yaml>', 'deployment spec (YAML or JSON; see examples/)');
  for (const flag of SPEC_FLAGS) {
    const option = new Option(flag.flags, flag.help);
    command.addOption('repeat' in flag && flag.repeat ? option.argParser(collect) : option);
  }
  return command;
}

/**
 * The spec document (file + flags), checked against the schema: throws `InvalidSpecError` listing
 * every problem, each naming the flag that set the field.
 */
export async function specFromFlags(flags: SpecFlags): Promise<unknown> {
  try {
    const document = await specDocument(flags);
    parseDeploymentSpec(document, specSource(flags));
    return document;
  } catch (err) {
    if (err instanceof InvalidSpecError) throw withFlagHints(err, flags);
    throw err;
  }
}

function specSource(flags: SpecFlags): string {
  return flags.file ? `(${flags.file}${hasSpecFlags(flags) ? ' + flags' : ''})` : '(from flags)';
}

function hasSpecFlags(flags: SpecFlags): boolean {
  return [...FLAG_BY_KEY.keys()].some((key) => flags[key] !== undefined);
}

type Doc = Record<string, unknown>;

/** The file's document with the flags merged over it; flag combinations that cannot work are issues. */
async function specDocument(flags: SpecFlags): Promise<unknown> {
  const issues: SpecIssue[] = [];
  let document: Doc = {};
  if (flags.file) {
    document = await readSpecFile(flags.file);
  } else if (!hasSpecFlags(flags)) {
    throw new InvalidSpecError([
      {
        path: '',
        message:
          'give a spec file with -f spec.yaml, or at least --name, --project, --region and --model-uri',
      },
    ]);
  }
  const given = (group?: SpecFlag['group']) =>
    SPEC_FLAGS.filter(
      (flag): flag is (typeof SPEC_FLAGS)[number] =>
        flags[keyOf(flag)] !== undefined &&
        !('special' in flag) &&
        ('group' in flag ? flag.group : undefined) === group,
    );
  const apply = (flag: SpecFlag) => {
    const value = flags[keyOf(flag)];
    setPath(document, flag.path, flag.numeric ? numeric(value as string) : value);
  };
  for (const flag of given(undefined)) apply(flag);

  if (flags.skipSmoke !== undefined) {
    setPath(document, ['smoke', 'target'], 'skip');
    setPath(document, ['smoke', 'skipReason'], flags.skipSmoke);
  }
  const machine = given('machine');
  if (machine.length > 0) {
    if (!isDoc(document.machine) && machine.length < 3) {
      issues.push({
        path: 'machine',
        message: '--machine-type, --accelerator-type and --accelerator-count go together: give all three',
      });
    } else machine.forEach(apply);
  }

  if (flags.public && flags.private)
    issues.push({ path: 'access', message: 'give --public or --private, not both' });
  if (flags.public) document.access = { type: 'public' };
  if (flags.private && !(isDoc(document.access) && document.access.type === 'private')) {
    document.access = { type: 'private' };
  }
  const psc = given('psc');
  if (psc.length > 0) {
    if (!(isDoc(document.access) && document.access.type === 'private')) {
      const names = psc.map((flag) => FLAG_OF_PATH.get(flag.path.join('.')));
      issues.push({
        path: 'access',
        message: `${names.join(', ')} ${names.length === 1 ? 'needs' : 'need'} a private endpoint: add --private`,
      });
    } else psc.forEach(apply);
  }

  for (const label of (flags.label as string[] | undefined) ?? []) {
    const match = /^([^=]+)=(.*)$/.exec(label);
    if (!match) issues.push({ path: 'labels', message: `"${label}" is not key=value` });
    else setPath(document, ['labels', match[1] as string], match[2]);
  }

  if (issues.length > 0) {
    // Report the schema's findings too, so one run lists every problem.
    throw new InvalidSpecError([...issues, ...schemaIssues(document)], specSource(flags));
  }
  return document;
}

async function readSpecFile(file: string): Promise<Doc> {
  let fromFile: unknown;
  try {
    fromFile = await readDeploymentSpecDocument(file);
  } catch (err) {
    if (err instanceof InvalidSpecError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidSpecError(
      [
        {
          path: '',
          message: `cannot read the spec file${code ? ` (${code})` : ''}; check the path given to -f`,
        },
      ],
      `(${file})`,
    );
  }
  if (!isDoc(fromFile)) {
    throw new InvalidSpecError(
      [{ path: '', message: 'the file must hold a mapping of spec fields' }],
      `(${file})`,
    );
  }
  return fromFile;
}

function schemaIssues(document: unknown): SpecIssue[] {
  try {
    parseDeploymentSpec(document);
    return [];
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues;
    throw err;
  }
}

/** Names the flag behind each field the user set with one. */
function withFlagHints(err: InvalidSpecError, flags: SpecFlags): InvalidSpecError {
  if (!hasSpecFlags(flags)) return err;
  const issues = err.issues.map((issue) => {
    const flag = FLAG_OF_PATH.get(issue.path) ?? FLAG_OF_PATH.get(issue.path.replace(/\[\d+\]$/, ''));
    return flag ? { ...issue, path: `${issue.path} (${flag})` } : issue;
  });
  return new InvalidSpecError(issues, specSource(flags));
}

/** Whole numbers become numbers; anything else stays a string for the schema to reject by path. */
function numeric(value: string | undefined): number | string | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : value;
}

function isDoc(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function setPath(document: Doc, path: readonly string[], value: unknown): void {
  let node = document;
  for (const key of path.slice(0, -1)) {
    if (!isDoc(node[key])) node[key] = {};
    node = node[key] as Doc;
  }
  node[path[path.length - 1] as string] = value;
}
