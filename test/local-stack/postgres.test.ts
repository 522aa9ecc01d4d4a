import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresNotInstalledError, postgresBinDir } from '../../src/local-stack/postgres';

let dir: string | undefined;

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('postgresBinDir', () => {
  it('takes GARDEN_DEPLOY_POSTGRESQL_BIN when it holds initdb, postgres and pg_isready', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'garden-postgres-bin-'));
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'initdb'), '', { mode: 0o755 });

    const err = await postgresBinDir({ GARDEN_DEPLOY_POSTGRESQL_BIN: bin }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PostgresNotInstalledError);
    expect((err as Error).message).toContain(`no postgres, pg_isready in ${bin}`);
    expect((err as Error).message).toContain('./scripts/install-tools.sh');

    for (const program of ['postgres', 'pg_isready'])
      writeFileSync(path.join(bin, program), '', { mode: 0o755 });
    expect(await postgresBinDir({ GARDEN_DEPLOY_POSTGRESQL_BIN: bin })).toBe(bin);
  });
});
