import { type Command, Option } from 'commander';
import { z } from 'zod';
import { type StartedDeployment, startDeployment } from '../../client';
import {
  InvalidSpecError,
  parseDeploymentSpec,
  readDeploymentSpecDocument,
  type SpecIssue,
} from '../../spec';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  EXIT_BAD_INPUT,
  EXIT_CODES_HELP,
  EXIT_OK,
  NO_UI_LINK,
  exitOnUsageErrorWith2,
  parseFlags,
  processIo,
  reportError,
  taskQueueOption,
  withTemporal,
} from '../client-command';
import { follow, outcomeExitCode, outcomeJson, reportOutcome } from '../follow';

/**
 * `garden-deploy deploy -f spec.yaml [flags]`: deploys a spec (update-with-start of the durable
 * deployment: the first call creates it, a second with the same spec attaches, another spec is
 * refused with what differs), prints its workflow id and Temporal UI link, then follows it.
 */

/**
 * The flags that set spec fields: the one place each is spelled. Commander options, the flags
 * schema, "which flag set this field" in errors and the merge over the file all come from here.
 */
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

const DeployFlagsSchema = CommandFlagsSchema.extend({
  file: z.string().optional(),
  taskQueue: z.string().min(1),
  requestId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, '--request-id: 1-128 of letters, digits, ".", "_", ":" or "-"')
    .optional(),
  detach: z.boolean().default(false),
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
type DeployFlags = z.infer<typeof DeployFlagsSchema> & Record<string, unknown>;

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function register(program: Command): void {
  const command = program
    .command('deploy')
    .summary('deploy a spec (or attach to its deployment) and follow it until it serves')
    .description(
      'Deploy a model: validate the spec here, then create the durable deployment and send it the spec in one ' +
        'call. The same spec again attaches to the deployment; another spec is refused with what differs and ' +
        'which command changes it, and nothing changes. Prints the workflow id and Temporal UI link, shows live ' +
        'progress until it serves, then the endpoint, inference URL and smoke answers. Flags override the ' +
        `file's fields; both go through the same schema. ${EXIT_CODES_HELP}`,
    )
    .option('-f, --file <spec.yaml>', 'deployment spec (YAML or JSON; see examples/)');
  for (const flag of SPEC_FLAGS) {
    const option = new Option(flag.flags, flag.help);
    command.addOption('repeat' in flag && flag.repeat ? option.argParser(collect) : option);
  }
  command
    .addOption(taskQueueOption())
    .option('--request-id <id>', 'idempotency key: the same deploy again attaches to the same request')
    .option('--detach', 'return right after starting (follow later with `garden-deploy watch <id>`)')
    .option(
      '--json',
      'print one JSON document (start facts and outcome) on stdout; progress lines go to stderr',
    );
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (raw: unknown) => {
    process.exitCode = await runDeploy(raw, processIo);
  });
}

export async function runDeploy(raw: unknown, io: CommandIo): Promise<number> {
  let flags: DeployFlags;
  try {
    flags = parseFlags(DeployFlagsSchema, raw) as DeployFlags;
  } catch (err) {
    return reportError('deploy', err, io);
  }
  let document: unknown;
  try {
    document = await specDocument(flags);
    // Checked before connecting: a bad spec is reported even with Temporal down, and starts nothing.
    parseDeploymentSpec(document, specSource(flags));
  } catch (err) {
    if (err instanceof InvalidSpecError) {
      io.stderr(`garden-deploy deploy: ${withFlagHints(err, flags).message}\n`);
      return EXIT_BAD_INPUT;
    }
    return reportError('deploy', err, io);
  }
  return withTemporal('deploy', flags, io, async (temporal) => {
    const started = await startDeployment(temporal.client, document, {
      taskQueue: flags.taskQueue,
      ...(flags.requestId ? { requestId: flags.requestId } : {}),
    });
    const uiUrl = temporal.workflowUrl(started.workflowId);
    const facts = {
      workflowId: started.workflowId,
      runId: started.runId,
      started: started.started,
      requestId: started.requestId,
      namespace: temporal.namespace,
      uiUrl,
    };
    if (!flags.json) io.stdout(startedText(started, uiUrl));
    if (flags.detach) {
      if (flags.json) io.stdout(`${JSON.stringify(facts, null, 2)}\n`);
      else io.stdout(`Follow it with: garden-deploy watch ${started.workflowId}\n`);
      return EXIT_OK;
    }
    const outcome = await follow(temporal, started.workflowId, io, {
      json: flags.json,
      until: started.result(),
    });
    if (!flags.json) return reportOutcome(outcome, io);
    io.stdout(`${JSON.stringify({ ...facts, ...outcomeJson(outcome) }, null, 2)}\n`);
    return outcomeExitCode(outcome);
  });
}

function startedText(started: StartedDeployment, uiUrl: string | undefined): string {
  const lines = [
    started.started
      ? `Started ${started.workflowId}`
      : `Attached to ${started.workflowId}: it exists with this spec, nothing new was started` +
        (started.legacy ? ' (a garden-deploy 0.1 run, followed until it ends)' : ''),
    `  Temporal UI: ${uiUrl ?? NO_UI_LINK}`,
  ];
  if (started.waitingForWorker) {
    lines.push(
      '  No worker polls its task queue yet: the deployment waits for one (start `garden-deploy worker`); ' +
        'the spec is checked against the deployment once it runs.',
    );
  }
  return `${lines.join('\n')}\n`;
}

function specSource(flags: DeployFlags): string {
  return flags.file ? `(${flags.file}${hasSpecFlags(flags) ? ' + flags' : ''})` : '(from flags)';
}

function hasSpecFlags(flags: DeployFlags): boolean {
  return [...FLAG_BY_KEY.keys()].some((key) => flags[key] !== undefined);
}

type Doc = Record<string, unknown>;

/** The file's document with the flags merged over it; flag combinations that cannot work are issues. */
async function specDocument(flags: DeployFlags): Promise<unknown> {
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
function withFlagHints(err: InvalidSpecError, flags: DeployFlags): InvalidSpecError {
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
