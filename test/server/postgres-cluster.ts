// A throwaway PostgreSQL for tests: initdb + pg_ctl from Debian's postgresql-15 in a temp directory,
// listening on 127.0.0.1 at a free port, trust authentication (loopback only), removed at stop. As root
// the server runs as the `postgres` user (PostgreSQL refuses root). Without the binaries the caller
// skips with the printed reason, except under CI=true, where a missing PostgreSQL fails the run.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './fixture.js';

const BIN = process.env.PARALON_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  /** A fresh, empty database's URL. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** Why PostgreSQL tests cannot run here, or null when they can. Throws under CI=true. */
export function postgresUnavailable(): string | null {
  const missing = ['initdb', 'pg_ctl'].filter((b) => !existsSync(path.join(BIN, b)));
  if (missing.length === 0) return null;
  const reason = `PostgreSQL binaries missing in ${BIN} (${missing.join(', ')}): apt-get install postgresql`;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: PostgreSQL tests must run)`);
  console.warn(`skipping the PostgreSQL tests: ${reason}`);
  return reason;
}

export async function startPostgres(): Promise<PostgresCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'paralon-pg-'));
  chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  // runuser keeps the environment minimal; -- separates its options from the command's.
  const run = (bin: string, args: string[]) => {
    const command = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, bin), ...args]] : [path.join(BIN, bin), args];
    const r = spawnSync(command[0] as string, command[1] as string[], { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`${bin} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  // fsync stays on (the default): the tests rely on commits being durable. The socket lives in `dir`.
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c max_connections=200 -c shared_buffers=16MB`;
  run('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let databases = 0;
  return {
    url,
    async createDatabase() {
      const name = `paralon_test_${++databases}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
