import type { Command } from 'commander';
import pc from 'picocolors';
import { z } from 'zod';
import { type DeploymentSummary, type ListFilters, listDeployments } from '../../client';
import {
  addConnectionOptions,
  type CommandIo,
  CommandFlagsSchema,
  EXIT_OK,
  exitOnUsageErrorWith2,
  processIo,
  withTemporal,
} from '../client-command';
import { useColor } from '../follow';
import { displayStage } from '../progress-view';

/** `garden-deploy list`: deployments found by their search attributes. */

const ListFlagsSchema = CommandFlagsSchema.extend({
  stage: z.string().optional(),
  model: z.string().optional(),
  region: z.string().optional(),
  project: z.string().optional(),
  name: z.string().optional(),
  all: z.boolean().default(false),
  running: z.boolean().default(false),
  limit: z.string().optional(),
});

export function register(program: Command): void {
  const command = program
    .command('list')
    .summary('list deployments by stage, model, region or project')
    .description(
      'List deployments through the Temporal visibility store (search attributes DeployStage, ModelUri, ' +
        'GcpRegion, GcpProject, DeploymentName), newest first, latest run each. By default only those that may ' +
        'hold resources: running (deploying, serving, blocked), or ended without cleaning up (terminated; a ' +
        'garden-deploy 0.1 deployment that served and was not torn down). Visibility lags a few seconds behind. ' +
        'Exit codes: 0 listed ' +
        '(even if empty); 2 bad filter or Temporal unreachable.',
    )
    .option('--stage <stage>', 'e.g. SERVING, DEPLOYING, FAILED, ROLLED_BACK')
    .option('--model <gs://prefix>', 'model URI, or a prefix of it (e.g. gs://bucket/models/)')
    .option('--region <region>', 'e.g. us-central1')
    .option('--project <id>', 'GCP project')
    .option('--name <name>', 'deployment name')
    .option('--running', 'only deployments whose workflow is running')
    .option('--all', 'also finished ones: failed, cancelled, rolled back, torn down')
    .option('--limit <n>', 'at most this many (default 100, at most 1000)')
    .option('--json', 'print the deployments as a JSON array');
  exitOnUsageErrorWith2(addConnectionOptions(command)).action(async (raw: unknown) => {
    process.exitCode = await runList(raw, processIo);
  });
}

export async function runList(raw: unknown, io: CommandIo): Promise<number> {
  const flags = ListFlagsSchema.parse(raw);
  // Passed on as given: the library's filter schema says what is wrong with which value.
  const filters = {
    stage: flags.stage,
    modelUri: flags.model,
    region: flags.region,
    project: flags.project,
    name: flags.name,
    scope: flags.all ? 'all' : flags.running ? 'running' : 'active',
    limit:
      flags.limit === undefined ? undefined : /^\d+$/.test(flags.limit) ? Number(flags.limit) : flags.limit,
  } as ListFilters;
  return withTemporal('list', flags, io, async (temporal) => {
    const deployments = await listDeployments(temporal.client, filters);
    if (flags.json) io.stdout(`${JSON.stringify(deployments, null, 2)}\n`);
    else io.stdout(formatTable(deployments, flags.all));
    return EXIT_OK;
  });
}

function formatTable(deployments: DeploymentSummary[], all: boolean): string {
  if (deployments.length === 0) {
    return all
      ? 'No deployments match.\n'
      : 'No deployments that may hold resources match (--all includes ended ones).\n';
  }
  const c = pc.createColors(useColor());
  const header = ['NAME', 'STAGE', 'WORKFLOW', 'PROJECT', 'REGION', 'STARTED', 'MODEL'];
  const rows = deployments.map((d) => [
    d.deployment ?? d.workflowId,
    displayStage(d.stage, d.teardown) ?? '?',
    d.status,
    d.project ?? '',
    d.region ?? '',
    d.startedAt.slice(0, 16).replace('T', ' '),
    d.modelUri ?? '',
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${c.bold(line(header))}\n${rows.map(line).join('\n')}\n`;
}
