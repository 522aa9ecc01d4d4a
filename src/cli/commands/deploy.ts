import type { Command } from 'commander';
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
  processIo,
  reportError,
  taskQueueOption,
  withTemporal,
} from '../client-command';
import { follow, outcomeExitCode, outcomeJson, reportOutcome } from '../follow';

/**
 * `garden-deploy deploy -f spec.yaml [flags]`: starts a deployment (or attaches to the running one
 * of the same project/region/name), prints its workflow id and Temporal UI link, then follows it.
 */

const DeployFlagsSchema = CommandFlagsSchema.extend({
  file: z.string().optional(),
  name: z.string().optional(),
  project: z.string().optional(),
  region: z.string().optional(),
  modelUri: z.string().optional(),
  modelId: z.string().optional(),
  endpointId: z.string().optional(),
  machineType: z.string().optional(),
  acceleratorType: z.string().optional(),
  acceleratorCount: z.string().optional(),
  minReplicas: z.string().optional(),
  maxReplicas: z.string().optional(),
  public: z.boolean().optional(),
  private: z.boolean().optional(),
  allowProject: z.array(z.string()).optional(),
  consumerProject: z.string().optional(),
  network: z.string().optional(),
  subnetwork: z.string().optional(),
  pscIp: z.string().optional(),
  skipSmoke: z.string().optional(),
  rollbackWindow: z.string().optional(),
  label: z.array(z.string()).optional(),
  taskQueue: z.string().min(1),
  detach: z.boolean().default(false),
});
type DeployFlags = z.infer<typeof DeployFlagsSchema>;

/** The spec field each flag sets, so errors name the flag the user typed. */
const FLAG_OF_PATH: Record<string, string> = {
  name: '--name',
  project: '--project',
  region: '--region',
  model: '--model-uri',
  'model.uri': '--model-uri',
  'model.id': '--model-id',
  'endpoint.id': '--endpoint-id',
  'machine.type': '--machine-type',
  'machine.acceleratorType': '--accelerator-type',
  'machine.acceleratorCount': '--accelerator-count',
  'replicas.min': '--min-replicas',
  'replicas.max': '--max-replicas',
  'access.projectAllowlist': '--allow-project',
  'access.consumerProject': '--consumer-project',
  'access.network': '--network',
  'access.subnetwork': '--subnetwork',
  'access.ipAddress': '--psc-ip',
  'smoke.skipReason': '--skip-smoke',
  rollbackWindow: '--rollback-window',
  labels: '--label',
};

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function register(program: Command): void {
  const command = program
    .command('deploy')
    .summary('start a deployment (or attach to it) and follow it until it serves')
    .description(
      'Deploy a model: validate the spec here, start the deployment workflow (or attach to the running ' +
        'one with the same project/region/name), print its workflow id and Temporal UI link, then show live ' +
        'progress until it serves (or, with a rollback window, until it serves within it) and print the ' +
        "endpoint, inference URL and smoke answers. Flags override the file's fields; both go through the " +
        `same schema. ${EXIT_CODES_HELP}`,
    )
    .option('-f, --file <spec.yaml>', 'deployment spec (YAML or JSON; see examples/)')
    .option(
      '--name <name>',
      'deployment name (lowercase, digits, "-"; derives the workflow id and resource ids)',
    )
    .option('--project <id>', 'GCP project to deploy in')
    .option('--region <region>', 'Vertex AI region, e.g. us-central1')
    .option('--model-uri <gs://bucket/path/>', 'Hugging Face–format model folder in GCS')
    .option('--model-id <id>', 'model id in the Vertex Model Registry (default: the name)')
    .option('--endpoint-id <id>', 'endpoint id (default: the name)')
    .option(
      '--machine-type <type>',
      'e.g. g2-standard-12; with the two options below (default: sized by validation)',
    )
    .option('--accelerator-type <type>', 'e.g. NVIDIA_L4 or NVIDIA_H100_80GB')
    .option('--accelerator-count <n>', 'accelerators per replica')
    .option('--min-replicas <n>', 'replicas that must be available (default 1)')
    .option('--max-replicas <n>', 'autoscaling ceiling (default: min)')
    .option('--public', 'public dedicated endpoint (the default)')
    .option('--private', 'private endpoint reached through Private Service Connect (needs the PSC options)')
    .option('--allow-project <project>', 'PSC: project allowed to connect (repeat for more)', collect)
    .option(
      '--consumer-project <project>',
      'PSC: project of the consumer network, address and forwarding rule',
    )
    .option('--network <projects/P/global/networks/N>', 'PSC: consumer VPC network')
    .option('--subnetwork <projects/P/regions/R/subnetworks/S>', 'PSC: subnetwork for the internal address')
    .option('--psc-ip <ipv4>', 'PSC: internal IP to reserve (default: picked from the subnetwork)')
    .option('--skip-smoke <reason>', 'run no smoke tests, for this reason')
    .option(
      '--rollback-window <duration>',
      'how long a success stays open to `rollback`, e.g. 30m or 0 (default 0)',
    )
    .option('--label <key=value>', 'label on the Vertex resources (repeat for more)', collect)
    .addOption(taskQueueOption())
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
  const flags = DeployFlagsSchema.parse(raw);
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
    const started = await startDeployment(temporal.client, document, { taskQueue: flags.taskQueue });
    const uiUrl = temporal.workflowUrl(started.workflowId);
    const facts = {
      workflowId: started.workflowId,
      runId: started.runId,
      started: started.started,
      sameSpec: started.sameSpec,
      namespace: temporal.namespace,
      uiUrl,
    };
    if (flags.json) {
      if (flags.detach) {
        io.stdout(`${JSON.stringify(facts, null, 2)}\n`);
        return EXIT_OK;
      }
      const outcome = await follow(temporal, started.workflowId, io, { json: true, stopWhenServing: true });
      io.stdout(`${JSON.stringify({ ...facts, ...outcomeJson(outcome) }, null, 2)}\n`);
      return outcomeExitCode(outcome);
    }
    io.stdout(startedText(started, uiUrl));
    if (flags.detach) {
      io.stdout(`Follow it with: garden-deploy watch ${started.workflowId}\n`);
      return EXIT_OK;
    }
    const outcome = await follow(temporal, started.workflowId, io, { json: false, stopWhenServing: true });
    return reportOutcome(outcome, io);
  });
}

function startedText(started: StartedDeployment, uiUrl: string | undefined): string {
  const lines = [
    started.started
      ? `Started ${started.workflowId}`
      : `Attached to the running ${started.workflowId} (it was already running; nothing new was started)`,
  ];
  if (started.sameSpec === false) {
    lines.push(
      '  It was started from a different spec: this one was NOT applied. To deploy it, cancel the running ' +
        `deployment first (garden-deploy cancel ${started.workflowId}), then deploy again.`,
    );
  }
  lines.push(`  Temporal UI: ${uiUrl ?? NO_UI_LINK}`);
  return `${lines.join('\n')}\n`;
}

function specSource(flags: DeployFlags): string {
  return flags.file ? `(${flags.file}${hasSpecFlags(flags) ? ' + flags' : ''})` : '(from flags)';
}

const SPEC_FLAG_KEYS = [
  'name',
  'project',
  'region',
  'modelUri',
  'modelId',
  'endpointId',
  'machineType',
  'acceleratorType',
  'acceleratorCount',
  'minReplicas',
  'maxReplicas',
  'public',
  'private',
  'allowProject',
  'consumerProject',
  'network',
  'subnetwork',
  'pscIp',
  'skipSmoke',
  'rollbackWindow',
  'label',
] as const satisfies ReadonlyArray<keyof DeployFlags>;

function hasSpecFlags(flags: DeployFlags): boolean {
  return SPEC_FLAG_KEYS.some((key) => flags[key] !== undefined);
}

type Doc = Record<string, unknown>;

/** The file's document with the flags merged over it; flag combinations that cannot work are issues. */
async function specDocument(flags: DeployFlags): Promise<unknown> {
  const issues: SpecIssue[] = [];
  let document: Doc = {};
  if (flags.file) {
    let fromFile: unknown;
    try {
      fromFile = await readDeploymentSpecDocument(flags.file);
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
        `(${flags.file})`,
      );
    }
    if (!isDoc(fromFile)) {
      throw new InvalidSpecError(
        [{ path: '', message: 'the file must hold a mapping of spec fields' }],
        `(${flags.file})`,
      );
    }
    document = fromFile;
  } else if (!hasSpecFlags(flags)) {
    throw new InvalidSpecError([
      {
        path: '',
        message:
          'give a spec file with -f spec.yaml, or at least --name, --project, --region and --model-uri',
      },
    ]);
  }
  const set = (path: string[], value: unknown) => {
    if (value !== undefined) setPath(document, path, value);
  };
  set(['name'], flags.name);
  set(['project'], flags.project);
  set(['region'], flags.region);
  set(['model', 'uri'], flags.modelUri);
  set(['model', 'id'], flags.modelId);
  set(['endpoint', 'id'], flags.endpointId);
  set(['replicas', 'min'], numeric(flags.minReplicas));
  set(['replicas', 'max'], numeric(flags.maxReplicas));
  set(['rollbackWindow'], numeric(flags.rollbackWindow));
  if (flags.skipSmoke !== undefined) {
    set(['smoke', 'target'], 'skip');
    set(['smoke', 'skipReason'], flags.skipSmoke);
  }

  const machineFlags = [flags.machineType, flags.acceleratorType, flags.acceleratorCount];
  if (machineFlags.some((value) => value !== undefined)) {
    if (!isDoc(document.machine) && machineFlags.some((value) => value === undefined)) {
      issues.push({
        path: 'machine',
        message: '--machine-type, --accelerator-type and --accelerator-count go together: give all three',
      });
    } else {
      set(['machine', 'type'], flags.machineType);
      set(['machine', 'acceleratorType'], flags.acceleratorType);
      set(['machine', 'acceleratorCount'], numeric(flags.acceleratorCount));
    }
  }

  if (flags.public && flags.private)
    issues.push({ path: 'access', message: 'give --public or --private, not both' });
  if (flags.public) document.access = { type: 'public' };
  if (flags.private && !(isDoc(document.access) && document.access.type === 'private')) {
    document.access = { type: 'private' };
  }
  const pscFlags = {
    allowProject: '--allow-project',
    consumerProject: '--consumer-project',
    network: '--network',
    subnetwork: '--subnetwork',
    pscIp: '--psc-ip',
  } as const;
  const givenPsc = (Object.keys(pscFlags) as Array<keyof typeof pscFlags>).filter(
    (key) => flags[key] !== undefined,
  );
  if (givenPsc.length > 0) {
    if (!(isDoc(document.access) && document.access.type === 'private')) {
      issues.push({
        path: 'access',
        message: `${givenPsc.map((key) => pscFlags[key]).join(', ')} ${givenPsc.length === 1 ? 'needs' : 'need'} a private endpoint: add --private`,
      });
    } else {
      set(['access', 'projectAllowlist'], flags.allowProject);
      set(['access', 'consumerProject'], flags.consumerProject);
      set(['access', 'network'], flags.network);
      set(['access', 'subnetwork'], flags.subnetwork);
      set(['access', 'ipAddress'], flags.pscIp);
    }
  }

  for (const label of flags.label ?? []) {
    const match = /^([^=]+)=(.*)$/.exec(label);
    if (!match) issues.push({ path: 'labels', message: `"${label}" is not key=value` });
    else set(['labels', match[1] as string], match[2]);
  }

  if (issues.length > 0) {
    // Report the schema's findings too, so one run lists every problem.
    const schema = schemaIssues(document);
    throw new InvalidSpecError([...issues, ...schema], specSource(flags));
  }
  return document;
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
    const flag = FLAG_OF_PATH[issue.path] ?? FLAG_OF_PATH[issue.path.replace(/\[\d+\]$/, '')];
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

function setPath(document: Doc, path: string[], value: unknown): void {
  let node = document;
  for (const key of path.slice(0, -1)) {
    if (!isDoc(node[key])) node[key] = {};
    node = node[key] as Doc;
  }
  node[path[path.length - 1] as string] = value;
}
