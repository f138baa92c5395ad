// The fleet store: one PostgreSQL database shared by every replica (--database postgres://…). A pool of
// connections (pg.Pool); every write is its own committed transaction, durable when COMMIT returns (the
// server's synchronous_commit, on by default). Admissions lock the key's row (SELECT … FOR UPDATE) so
// concurrent replicas check and count one request at a time per key; different keys do not wait.
import pg from 'pg';
import { checkLimits, newKey, presentedKeyHash } from './api-keys.js';
import { exceededLimit, hasWindowLimits, windowStart, windowState, WINDOW_MS } from './rate-window.js';
import { dailyOf, keyInfoOf, limitsOf, RECENT_COLUMNS, usageRecordOf } from './rows.js';
import {
  StoreError,
  type Admission,
  type AdmissionRequest,
  type Completion,
  type KeyStore,
  type RateLimits,
  type ReplicaRegistry,
  type Store,
  type UsageLedger,
  type VerifiedKey,
} from './types.js';

/** Migrations by schema version: POSTGRES_MIGRATIONS[v] upgrades version v to v + 1. */
export const POSTGRES_MIGRATIONS = [
  `CREATE TABLE api_keys (
     id              TEXT PRIMARY KEY,
     name            TEXT NOT NULL,
     hash            TEXT NOT NULL UNIQUE,  -- SHA-256 hex of the whole key; the key itself is never stored
     hint            TEXT NOT NULL,
     created_at      BIGINT NOT NULL,       -- ms since the epoch
     revoked_at      BIGINT,
     rpm             INTEGER,
     tpm             INTEGER,
     max_concurrent  INTEGER
   );
   CREATE TABLE usage (
     id                 BIGSERIAL PRIMARY KEY,
     request_id         TEXT NOT NULL,         -- the response's id without its prefix
     key_id             TEXT,
     model              TEXT NOT NULL,
     endpoint           TEXT NOT NULL,
     prompt_tokens      INTEGER NOT NULL,
     completion_tokens  INTEGER NOT NULL,
     started_at         BIGINT NOT NULL,
     finished_at        BIGINT,
     state              TEXT NOT NULL CHECK (state IN ('running', 'completed', 'interrupted')),
     finish_reason      TEXT,
     replica_id         TEXT NOT NULL,
     window_start       BIGINT,
     reserved_tokens    INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX usage_by_key_and_time ON usage (key_id, started_at);
   CREATE INDEX usage_running ON usage (key_id) WHERE state = 'running';
   CREATE TABLE rate_windows (
     key_id        TEXT NOT NULL,
     window_start  BIGINT NOT NULL,
     requests      INTEGER NOT NULL,
     tokens        BIGINT NOT NULL,
     PRIMARY KEY (key_id, window_start)
   );
   CREATE TABLE replicas (
     id            TEXT PRIMARY KEY,
     heartbeat_at  BIGINT NOT NULL
   );`,
  // Keys list in creation order; two keys created in the same millisecond were ordered by their random
  // ids. Existing rows are numbered in the table's physical order, which is their insertion order
  // unless they were updated (revoked, limits changed) since.
  `ALTER TABLE api_keys ADD COLUMN created_seq BIGSERIAL;`,
];

/** Any number: the advisory lock that serialises migrations of replicas starting together. */
const MIGRATION_LOCK = 0x70726c63;

// BIGINT (int8) columns and COUNT/SUM results arrive as strings by default; every value here is far
// below 2^53 (ms timestamps, token counts).
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export async function openPostgresStore(url: string): Promise<Store> {
  const pool = new pg.Pool({ connectionString: url, max: 10, types, connectionTimeoutMillis: 10_000 });
  // An idle client whose connection breaks emits 'error' on the pool; the next query reconnects.
  pool.on('error', () => {});
  try {
    await migrate(pool);
  } catch (error) {
    await pool.end();
    throw new StoreError(`the PostgreSQL database ${redact(url)}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return {
    kind: 'postgres',
    keys: new PostgresKeyStore(pool),
    usage: new PostgresUsageLedger(pool),
    replicas: new PostgresReplicaRegistry(pool),
    close: () => pool.end(),
  };
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

async function migrate(pool: pg.Pool): Promise<void> {
  await transaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS paralon_schema (version INTEGER NOT NULL, migrated_at BIGINT NOT NULL)');
    const { rows } = await c.query<{ version: number }>('SELECT version FROM paralon_schema');
    const version = rows[0]?.version ?? 0;
    if (version > POSTGRES_MIGRATIONS.length)
      throw new Error(`it was written by a newer Paralon (schema ${version}; this one knows ${POSTGRES_MIGRATIONS.length})`);
    for (let v = version; v < POSTGRES_MIGRATIONS.length; v++) await c.query(POSTGRES_MIGRATIONS[v]);
    if (rows.length === 0) await c.query('INSERT INTO paralon_schema VALUES ($1, $2)', [POSTGRES_MIGRATIONS.length, Date.now()]);
    else if (version < POSTGRES_MIGRATIONS.length)
      await c.query('UPDATE paralon_schema SET version = $1, migrated_at = $2', [POSTGRES_MIGRATIONS.length, Date.now()]);
  });
}

async function transaction<T>(pool: pg.Pool, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

class PostgresKeyStore implements KeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(name: string, limits: Partial<RateLimits> = {}) {
    checkLimits(limits);
    const k = newKey(name);
    const l = { rpm: limits.rpm ?? null, tpm: limits.tpm ?? null, maxConcurrent: limits.maxConcurrent ?? null };
    await this.pool.query(
      'INSERT INTO api_keys (id, name, hash, hint, created_at, rpm, tpm, max_concurrent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [k.id, name, k.hash, k.hint, k.createdAt, l.rpm, l.tpm, l.maxConcurrent],
    );
    return { key: k.key, info: { id: k.id, name, hint: k.hint, createdAt: new Date(k.createdAt), revokedAt: null, limits: l } };
  }

  async list() {
    const { rows } = await this.pool.query(
      'SELECT id, name, hint, created_at, revoked_at, rpm, tpm, max_concurrent FROM api_keys ORDER BY created_at, created_seq',
    );
    return rows.map(keyInfoOf);
  }

  async revoke(idOrName: string) {
    const r = await this.pool.query('UPDATE api_keys SET revoked_at = $1 WHERE (id = $2 OR name = $2) AND revoked_at IS NULL', [
      Date.now(),
      idOrName,
    ]);
    return r.rowCount ?? 0;
  }

  async setLimits(idOrName: string, limits: Partial<RateLimits>) {
    checkLimits(limits);
    const columns = { rpm: limits.rpm, tpm: limits.tpm, max_concurrent: limits.maxConcurrent };
    const set = Object.entries(columns).filter(([, v]) => v !== undefined);
    if (set.length === 0) throw new Error('no limit to change: give --rpm, --tpm or --max-concurrent');
    const r = await this.pool.query(
      `UPDATE api_keys SET ${set.map(([c], i) => `${c} = $${i + 2}`).join(', ')} WHERE (id = $1 OR name = $1) AND revoked_at IS NULL`,
      [idOrName, ...set.map(([, v]) => v)],
    );
    return r.rowCount ?? 0;
  }

  async hasActiveKeys() {
    return ((await this.pool.query('SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1')).rowCount ?? 0) > 0;
  }

  async verify(presented: string): Promise<VerifiedKey | null> {
    const hash = presentedKeyHash(presented);
    if (hash === null) return null;
    const { rows } = await this.pool.query('SELECT id, rpm, tpm, max_concurrent FROM api_keys WHERE hash = $1 AND revoked_at IS NULL', [hash]);
    return rows[0] ? { id: rows[0].id, limits: limitsOf(rows[0]) } : null;
  }
}

const DAILY_COLUMNS = `to_char(to_timestamp(started_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS date, key_id, model,
  COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens`;

class PostgresUsageLedger implements UsageLedger {
  constructor(private readonly pool: pg.Pool) {}

  async admit(r: AdmissionRequest): Promise<Admission> {
    const insertRow = (c: pg.ClientBase | pg.Pool, windowStartAt: number | null) =>
      c.query<{ id: number }>(
        `INSERT INTO usage (request_id, key_id, model, endpoint, prompt_tokens, completion_tokens, started_at, state, replica_id, window_start, reserved_tokens)
         VALUES ($1, $2, $3, $4, $5, 0, $6, 'running', $7, $8, $9) RETURNING id`,
        [r.requestId, r.keyId, r.model, r.endpoint, r.promptTokens, r.now, r.replicaId, windowStartAt, r.reservedTokens],
      );
    const limited = r.keyId !== null && (hasWindowLimits(r.limits) || r.limits.maxConcurrent !== null);
    if (!limited) {
      const { rows } = await insertRow(this.pool, null);
      return { admitted: true, rowId: rows[0].id, window: windowState(r.now, 0, 0) };
    }
    return transaction(this.pool, async (c) => {
      // Serialises this key's admissions across replicas until COMMIT.
      await c.query('SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE', [r.keyId]);
      const counted = hasWindowLimits(r.limits);
      const start = windowStart(r.now);
      const window = counted
        ? (await c.query<{ requests: number; tokens: number }>('SELECT requests, tokens FROM rate_windows WHERE key_id = $1 AND window_start = $2', [r.keyId, start])).rows[0]
        : undefined;
      const used = window ?? { requests: 0, tokens: 0 };
      const active =
        r.limits.maxConcurrent !== null
          ? (await c.query<{ n: number }>("SELECT COUNT(*) AS n FROM usage WHERE key_id = $1 AND state = 'running'", [r.keyId])).rows[0].n
          : 0;
      const exceeded = exceededLimit(r.limits, used, active, r.reservedTokens);
      if (exceeded) return { admitted: false, exceeded, window: windowState(r.now, used.requests, used.tokens) } as const;
      if (counted)
        await c.query(
          `INSERT INTO rate_windows (key_id, window_start, requests, tokens) VALUES ($1, $2, 1, $3)
           ON CONFLICT (key_id, window_start) DO UPDATE SET requests = rate_windows.requests + 1, tokens = rate_windows.tokens + EXCLUDED.tokens`,
          [r.keyId, start, r.reservedTokens],
        );
      const { rows } = await insertRow(c, counted ? start : null);
      return { admitted: true, rowId: rows[0].id, window: windowState(r.now, used.requests + 1, used.tokens + r.reservedTokens) } as const;
    });
  }

  async complete(rowId: number, c: Completion) {
    await transaction(this.pool, async (client) => {
      const { rows } = await client.query(
        `UPDATE usage SET prompt_tokens = COALESCE($5, prompt_tokens), completion_tokens = $1, finished_at = $2, finish_reason = $3,
           state = 'completed' WHERE id = $4
         RETURNING key_id, window_start, reserved_tokens, prompt_tokens`,
        [c.completionTokens, c.finishedAt, c.finishReason, rowId, c.promptTokens ?? null],
      );
      const row = rows[0];
      if (!row) throw new Error(`usage row ${rowId} does not exist`);
      if (row.window_start !== null)
        await client.query('UPDATE rate_windows SET tokens = tokens + $1 WHERE key_id = $2 AND window_start = $3', [
          row.prompt_tokens + c.completionTokens - row.reserved_tokens,
          row.key_id,
          row.window_start,
        ]);
    });
  }

  async withdraw(rowId: number) {
    await transaction(this.pool, async (client) => {
      const { rows } = await client.query('DELETE FROM usage WHERE id = $1 RETURNING key_id, window_start, reserved_tokens', [rowId]);
      const row = rows[0];
      if (row && row.window_start !== null)
        await client.query('UPDATE rate_windows SET requests = requests - 1, tokens = tokens - $1 WHERE key_id = $2 AND window_start = $3', [
          row.reserved_tokens,
          row.key_id,
          row.window_start,
        ]);
    });
  }

  async dailyForKey(keyId: string | null, since = 0) {
    const { rows } = await this.pool.query(
      `SELECT ${DAILY_COLUMNS} FROM usage WHERE key_id IS NOT DISTINCT FROM $1 AND started_at >= $2 GROUP BY date, key_id, model ORDER BY date, model`,
      [keyId, since],
    );
    return rows.map(dailyOf);
  }

  async daily(since = 0) {
    const { rows } = await this.pool.query(
      `SELECT ${DAILY_COLUMNS} FROM usage WHERE started_at >= $1 GROUP BY date, key_id, model ORDER BY date, key_id, model`,
      [since],
    );
    return rows.map(dailyOf);
  }

  async recent(limit: number) {
    const { rows } = await this.pool.query(`SELECT ${RECENT_COLUMNS} FROM usage ORDER BY id DESC LIMIT $1`, [limit]);
    return rows.map(usageRecordOf);
  }
}

class PostgresReplicaRegistry implements ReplicaRegistry {
  constructor(private readonly pool: pg.Pool) {}

  async heartbeat(id: string, now: number, starting: boolean) {
    await transaction(this.pool, async (c) => {
      if (starting) await c.query("UPDATE usage SET state = 'interrupted', finished_at = $1 WHERE state = 'running' AND replica_id = $2", [now, id]);
      await c.query('INSERT INTO replicas (id, heartbeat_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at', [
        id,
        now,
      ]);
    });
  }

  async sweep(staleBefore: number, now: number) {
    return transaction(this.pool, async (c) => {
      const r = await c.query(
        `UPDATE usage SET state = 'interrupted', finished_at = $1 WHERE state = 'running'
           AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = usage.replica_id AND r.heartbeat_at >= $2)`,
        [now, staleBefore],
      );
      await c.query('DELETE FROM replicas WHERE heartbeat_at < $1', [staleBefore]);
      await c.query('DELETE FROM rate_windows WHERE window_start < $1', [windowStart(now) - WINDOW_MS]);
      return r.rowCount ?? 0;
    });
  }
}
