import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TOOLS } from '../../src/local-stack/tools';

const repoRoot = path.resolve(__dirname, '../..');
const composeFile = path.join(repoRoot, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  entrypoint?: string[];
  command?: string[];
  healthcheck?: unknown;
  restart?: string;
  depends_on?: Record<string, { condition: string }>;
  volumes?: Array<string | { source?: string }>;
}

const compose = YAML.parse(readFileSync(composeFile, 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;

const composeVersion = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
const composeMissing =
  composeVersion.error !== undefined || composeVersion.status !== 0
    ? `docker compose is not available here (${composeVersion.error?.message ?? composeVersion.stderr.trim()})`
    : undefined;

describe('docker-compose.yml', () => {
  it('waits only on conditions its services can meet', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        const target = services[dependency];
        expect(target, `${name} depends on unknown ${dependency}`).toBeDefined();
        if (condition === 'service_healthy') {
          expect(target?.healthcheck, `${name} waits for ${dependency} to be healthy`).toBeDefined();
        }
        if (condition === 'service_completed_successfully') {
          expect(target?.restart, `${dependency} must exit for ${name} to start`).toBeUndefined();
        }
        // A service outside every profile cannot wait for one that only some profiles start.
        if (!service.profiles) expect(target?.profiles, `${name} → ${dependency}`).toBeUndefined();
      }
    }
  });

  it('runs the same fake-gcs-server as the local stack and files that exist in this repository', () => {
    expect(services['fake-gcs']?.image).toBe(`fsouza/fake-gcs-server:${TOOLS.fakeGcs.version.slice(1)}`);

    const setup = services['temporal-setup']?.entrypoint ?? [];
    const script = setup.find((arg) => arg.startsWith('dist/'));
    expect(script).toBe('dist/local-stack/cluster-setup.js');
    expect(existsSync(path.join(repoRoot, 'src/local-stack/cluster-setup.ts'))).toBe(true);

    for (const service of Object.values(services)) {
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0] : volume.source;
        if (source?.startsWith('./')) expect(existsSync(path.join(repoRoot, source)), source).toBe(true);
      }
    }
  });

  it('runs the Temporal server, SQL tool and UI the native test cluster builds, on config/temporal/', () => {
    const server = TOOLS.temporalServer.version.slice(1);
    expect(TOOLS.temporalSqlTool.version).toBe(TOOLS.temporalServer.version);
    expect(services.temporal?.image).toBe(`temporalio/server:${server}`);
    expect(services['temporal-schema']?.image).toMatch(new RegExp(`^temporalio/admin-tools:${server}-`));
    expect(services['temporal-ui']?.image).toBe(`temporalio/ui:${TOOLS.temporalUi.version.slice(1)}`);

    for (const [name, script] of [
      ['temporal', 'start-server.sh'],
      ['temporal-schema', 'setup-schema.sh'],
    ] as const) {
      const service = services[name];
      expect(service?.volumes, name).toContain('./config/temporal:/etc/garden-deploy/temporal:ro');
      expect(service?.entrypoint, name).toEqual(['/bin/sh', `/etc/garden-deploy/temporal/${script}`]);
      expect(existsSync(path.join(repoRoot, 'config/temporal', script)), script).toBe(true);
    }
  });

  it.skipIf(composeMissing !== undefined)(
    `is accepted by docker compose config in every profile${composeMissing ? ` (skipped: ${composeMissing})` : ''}`,
    () => {
      for (const profiles of [[], ['local'], ['cloud'], ['local', 'cloud']]) {
        const result = spawnSync(
          'docker',
          ['compose', '-f', composeFile, ...profiles.flatMap((p) => ['--profile', p]), 'config', '--quiet'],
          { encoding: 'utf8', env: { ...process.env, HOME: process.env.HOME ?? '/nonexistent' } },
        );
        expect(result.stderr, `profiles ${profiles.join(',') || '(none)'}`).toBe('');
        expect(result.status).toBe(0);
      }
    },
  );
});
