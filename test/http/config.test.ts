import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenLine } from '../../src/http/auth';
import { DEFAULT_BODY_LIMIT, SERVE_OPTIONS, serveConfig, serveOptions } from '../../src/http/config';

/** serve's options: one table → flags and variables, checked by one schema. */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'serve-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The options as commander hands them over, from `args` and `env`. */
function flagsOf(args: string[], env: Record<string, string> = {}): Record<string, unknown> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const command = new Command('serve').exitOverride();
    for (const option of serveOptions()) command.addOption(option);
    command.parse(args, { from: 'user' });
    return command.opts();
  } finally {
    for (const key of Object.keys(env)) {
      if (key in saved) process.env[key] = saved[key];
      else delete process.env[key];
    }
  }
}

const quiet = () => {};

describe('serve configuration', () => {
  it('reads every option from its flag or its variable, with the defaults of the table', async () => {
    const file = path.join(dir, 'tokens');
    await writeFile(file, `${tokenLine('ci', 'x'.repeat(32))}\n`, { mode: 0o600 });
    const config = serveConfig(
      flagsOf(['--listen', '[::1]:9090'], {
        [SERVE_OPTIONS.tokenFile.env]: file,
        [SERVE_OPTIONS.tokens.env]: tokenLine('ops', 'y'.repeat(32)),
        [SERVE_OPTIONS.oidcAudience.env]:
          'https://api.example.test, https://api.example.test/v1/events/pubsub',
        [SERVE_OPTIONS.allowServiceAccount.env]: 'a@p.iam.gserviceaccount.com, b@p.iam.gserviceaccount.com',
        [SERVE_OPTIONS.rateLimit.env]: '10',
      }),
      quiet,
    );
    expect(config).toMatchObject({
      host: '::1',
      port: 9090,
      bodyLimit: DEFAULT_BODY_LIMIT,
      rateLimit: { perMinute: 10, burst: 30 },
      auth: {
        oidc: {
          audiences: ['https://api.example.test', 'https://api.example.test/v1/events/pubsub'],
          allowedServiceAccounts: ['a@p.iam.gserviceaccount.com', 'b@p.iam.gserviceaccount.com'],
          certsUrl: 'https://www.googleapis.com/oauth2/v3/certs',
        },
      },
    });
    expect(config.auth.tokens.map((t) => t.name)).toEqual(['ci', 'ops']);
  });

  it('reads the storage-event options from flags or variables, with the defaults of the table', () => {
    const tokens = tokenLine('ci', 'w'.repeat(32));
    expect(serveConfig(flagsOf(['--tokens', tokens]), quiet)).toMatchObject({
      events: {
        buckets: [],
        prefix: '',
        markerName: 'garden-deploy.yaml',
        statusName: 'garden-deploy.status.json',
        maxMarkerBytes: 64 * 1024,
      },
    });
    expect(serveConfig(flagsOf(['--tokens', tokens]), quiet).pubsubSubscription).toBe(undefined);
    const config = serveConfig(
      flagsOf(['--tokens', tokens, '--events-prefix', 'models', '--events-marker', 'deploy.json'], {
        [SERVE_OPTIONS.eventsBuckets.env]: 'a-bucket, b-bucket',
        [SERVE_OPTIONS.eventsStatus.env]: 'deploy.status',
        [SERVE_OPTIONS.pubsubSubscription.env]: 'projects/my-project/subscriptions/garden',
      }),
      quiet,
    );
    expect(config).toMatchObject({
      // A folder prefix: models/ (not models-old/).
      events: {
        buckets: ['a-bucket', 'b-bucket'],
        prefix: 'models/',
        markerName: 'deploy.json',
        statusName: 'deploy.status',
      },
      pubsubSubscription: 'projects/my-project/subscriptions/garden',
    });
  });

  it.each([
    [[], /no credentials/],
    [['--oidc-audience', 'https://x.test'], /needs --allow-service-account/],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--listen', 'nowhere'],
      /^--listen must be host:port[^;]*$/,
    ],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--listen', '127.0.0.1:70000'],
      /--listen: the port must be at most 65535/,
    ],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--metrics-address', '[::1]:99999'],
      /--metrics-address: the port must be at most 65535/,
    ],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--body-limit', '10'],
      /--body-limit must be at least 1024/,
    ],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--rate-limit', 'fast'],
      /--rate-limit must be a whole number/,
    ],
    [['--oidc-audience', 'a', '--allow-service-account', 'not-an-email'], /takes email addresses/],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--pubsub-subscription', 'garden'],
      /--pubsub-subscription \(GARDEN_DEPLOY_PUBSUB_SUBSCRIPTION\) must be projects\/PROJECT\/subscriptions\/SUBSCRIPTION/,
    ],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--events-marker', 'garden-deploy.status.json'],
      /--events-status \(GARDEN_DEPLOY_EVENTS_STATUS\) must differ from the marker name/,
    ],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--events-marker', 'a/b.yaml'],
      /--events-marker \(GARDEN_DEPLOY_EVENTS_MARKER\) must be an object name/,
    ],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--events-buckets', 'ok-bucket,Not_A_Bucket'],
      /--events-buckets \(GARDEN_DEPLOY_EVENTS_BUCKETS\) takes bucket names/,
    ],
    [
      ['--tokens', tokenLine('ci', 'z'.repeat(32)), '--events-prefix', '/models'],
      /--events-prefix \(GARDEN_DEPLOY_EVENTS_PREFIX\) must be an object-name prefix/,
    ],
  ])('refuses %j', (args, message) => {
    expect(() => serveConfig(flagsOf(args), quiet)).toThrow(message);
  });

  it('every option is in the README table, by flag and variable', async () => {
    const readme = await readFile(path.resolve(__dirname, '../../README.md'), 'utf8');
    for (const option of Object.values(SERVE_OPTIONS)) {
      expect(readme, option.flags).toContain(`| \`${option.flags}\``);
      expect(readme, option.env).toContain(`\`${option.env}\``);
    }
  });
});
