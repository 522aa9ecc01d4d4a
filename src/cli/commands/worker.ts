import type { Command } from 'commander';
import { API_BUDGET_VARIABLES, GCP_BASE_URL_VARIABLES } from '../../worker/config';
import { main } from '../../worker/main';

export function register(program: Command): void {
  program
    .command('worker')
    .summary('run a worker that executes deployments')
    .description(
      'Run a worker: executes deployments (workflows and their Vertex AI / Compute activities) from a task queue ' +
        'until Ctrl-C/SIGTERM, then lets running activities finish for GARDEN_DEPLOY_SHUTDOWN_GRACE. ' +
        'Temporal: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE ' +
        '(else localhost:7233; `garden-deploy dev` sets them for its own worker). Payload encryption: GARDEN_DEPLOY_CODEC_KEYS ' +
        '(the keyring JSON) or GARDEN_DEPLOY_CODEC_KEY_FILE (a file holding it), the same keys as the clients. ' +
        'Google: Application Default Credentials; ' +
        'GARDEN_DEPLOY_GCP_QUOTA_PROJECT (billed for API quota); GARDEN_DEPLOY_PSC_SKIP_TLS_VERIFY (default false: ' +
        'smoke calls to a PSC internal IP verify its certificate against access.tlsServerName; true skips the check, ' +
        "as Google's SDK does); " +
        `${Object.keys(GCP_BASE_URL_VARIABLES).join(', ')} and STORAGE_EMULATOR_HOST for emulators. ` +
        `Tuning: GARDEN_DEPLOY_TASK_QUEUE, ${Object.keys(API_BUDGET_VARIABLES).join(', ')} (calls/s per project and region), ` +
        'GARDEN_DEPLOY_API_BUDGET_WORKERS (workers sharing those budgets), GARDEN_DEPLOY_MAX_CONCURRENT_ACTIVITIES, ' +
        'GARDEN_DEPLOY_MAX_CONCURRENT_WORKFLOW_TASKS, GARDEN_DEPLOY_HEARTBEAT_THROTTLE (default 1s, at most 60s: a cancel ' +
        'reaches a running activity with its next heartbeat), GARDEN_DEPLOY_LOG_LEVEL, GARDEN_DEPLOY_WORKFLOW_BUNDLE. ' +
        'Metrics: GARDEN_DEPLOY_METRICS_ADDRESS (host:port, e.g. 127.0.0.1:9464; off when unset) serves Prometheus ' +
        "metrics at /metrics, the SDK's (temporal_*) and the deployments' (garden_deploy_*). " +
        'Logs are JSON lines on stdout. Exit code 0 after a clean stop, 1 when the worker fails, 2 on invalid configuration.',
    )
    .option('--task-queue <name>', 'task queue to poll (overrides GARDEN_DEPLOY_TASK_QUEUE)')
    .action(async (options: { taskQueue?: string }) => {
      process.exitCode = await main({
        ...process.env,
        ...(options.taskQueue !== undefined ? { GARDEN_DEPLOY_TASK_QUEUE: options.taskQueue } : {}),
      });
    });
}
