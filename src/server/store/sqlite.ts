// The embedded store: <data-dir>/paralon.db. WAL lets the CLI read usage and manage keys while servers
// write; synchronous=FULL makes every commit durable before it returns, so a usage row is on disk before
// the response's last byte. Admissions run in IMMEDIATE transactions: one writer at a time, so limits
// hold across every process sharing the file.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { checkLimits, newKey, presentedKeyHash } from './api-keys.js';
import { exceededLimit, hasWindowLimits, windowStart, windowState, WINDOW_MS } from './rate-window.js';
import { dailyOf, keyInfoOf, limitsOf, RECENT_COLUMNS, usageRecordOf, type DailyRow, type KeyRow, type UsageRow } from './rows.js';
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

type Db = Database.Database;

export const DATABASE_FILE = 'paralon.db';

/** Migrations by schema version (PRAGMA user_version): MIGRATIONS[v] upgrades version v to v + 1. */
export const SQLITE_MIGRATIONS = [
  `CREATE TABLE api_keys (
     id          TEXT PRIMARY KEY,
     name        TEXT NOT NULL,
     hash        TEXT NOT NULL UNIQUE,  -- SHA-256 hex of the whole key; the key itself is never stored
     hint        TEXT NOT NULL,         -- 'prlc_…' plus the last 4 characters, to recognise a key in lists
     created_at  INTEGER NOT NULL,      -- ms since the epoch
     revoked_at  INTEGER
   );
   CREATE TABLE usage (
     id                 INTEGER PRIMARY KEY,
     key_id             TEXT,           -- NULL when the server runs open (no keys)
     model              TEXT NOT NULL,
     endpoint           TEXT NOT NULL,
     prompt_tokens      INTEGER NOT NULL,
     completion_tokens  INTEGER NOT NULL,
     started_at         INTEGER NOT NULL,
     finished_at        INTEGER NOT NULL,
     finish_reason      TEXT NOT NULL   -- stop | length | cancelled | error
   );
   CREATE INDEX usage_by_key_and_time ON usage (key_id, started_at);`,
  // Rate limits, rows written at admission (running → completed | interrupted), replicas' heartbeats.
  `ALTER TABLE api_keys ADD COLUMN rpm INTEGER;
   ALTER TABLE api_keys ADD COLUMN tpm INTEGER;
   ALTER TABLE api_keys ADD COLUMN max_concurrent INTEGER;
   CREATE TABLE usage_v2 (
     id                 INTEGER PRIMARY KEY,
     request_id         TEXT NOT NULL,  -- the response's id without its prefix ('' for rows from schema 1)
     key_id             TEXT,
     model              TEXT NOT NULL,
     endpoint           TEXT NOT NULL,
     prompt_tokens      INTEGER NOT NULL,
     completion_tokens  INTEGER NOT NULL,
     started_at         INTEGER NOT NULL,
     finished_at        INTEGER,        -- NULL while running
     state              TEXT NOT NULL,  -- running | completed | interrupted
     finish_reason      TEXT,           -- stop | length | cancelled | error, once completed
     replica_id         TEXT NOT NULL,
     window_start       INTEGER,        -- the rate window it was counted in (NULL: none)
     reserved_tokens    INTEGER NOT NULL DEFAULT 0
   );
   INSERT INTO usage_v2 (id, request_id, key_id, model, endpoint, prompt_tokens, completion_tokens, started_at, finished_at, state, finish_reason, replica_id)
     SELECT id, '', key_id, model, endpoint, prompt_tokens, completion_tokens, started_at, finished_at, 'completed', finish_reason, '' FROM usage;
   DROP TABLE usage;
   ALTER TABLE usage_v2 RENAME TO usage;
   CREATE INDEX usage_by_key_and_time ON usage (key_id, started_at);
   CREATE INDEX usage_running ON usage (key_id) WHERE state = 'running';
   CREATE TABLE rate_windows (
     key_id        TEXT NOT NULL,
     window_start  INTEGER NOT NULL,
     requests      INTEGER NOT NULL,
     tokens        INTEGER NOT NULL,
     PRIMARY KEY (key_id, window_start)
   );
   CREATE TABLE replicas (
     id            TEXT PRIMARY KEY,
     heartbeat_at  INTEGER NOT NULL
   );`,
];

/** Opens (creating if needed) the database under `dataDir` and brings its schema up to date. */
export function openSqliteStore(dataDir: string): Store {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(path.join(dataDir, DATABASE_FILE));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // A second process (the CLI, another server) may hold the write lock for a moment.
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    migrate(db, dataDir);
  } catch (error) {
    db.close();
    throw error;
  }
  return {
    kind: 'sqlite',
    keys: new SqliteKeyStore(db),
    usage: new SqliteUsageLedger(db),
    replicas: new SqliteReplicaRegistry(db),
    close: async () => void db.close(),
  };
}

function migrate(db: Db, dataDir: string): void {
  // Inside one IMMEDIATE transaction: two processes opening a fresh directory at once migrate once.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SQLITE_MIGRATIONS.length)
      throw new StoreError(`${path.join(dataDir, DATABASE_FILE)} was written by a newer Paralon (schema ${version}; this one knows ${SQLITE_MIGRATIONS.length})`);
    for (let v = version; v < SQLITE_MIGRATIONS.length; v++) db.exec(SQLITE_MIGRATIONS[v]);
    db.pragma(`user_version = ${SQLITE_MIGRATIONS.length}`);
  }).immediate();
}

class SqliteKeyStore implements KeyStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  async create(name: string, limits: Partial<RateLimits> = {}) {
    checkLimits(limits);
    const k = newKey(name);
    const l = { rpm: limits.rpm ?? null, tpm: limits.tpm ?? null, maxConcurrent: limits.maxConcurrent ?? null };
    this.#db
      .prepare('INSERT INTO api_keys (id, name, hash, hint, created_at, rpm, tpm, max_concurrent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(k.id, name, k.hash, k.hint, k.createdAt, l.rpm, l.tpm, l.maxConcurrent);
    return { key: k.key, info: { id: k.id, name, hint: k.hint, createdAt: new Date(k.createdAt), revokedAt: null, limits: l } };
  }

  async list() {
    const rows = this.#db
      .prepare('SELECT id, name, hint, created_at, revoked_at, rpm, tpm, max_concurrent FROM api_keys ORDER BY created_at, rowid')
      .all() as KeyRow[];
    return rows.map(keyInfoOf);
  }

  async revoke(idOrName: string) {
    return this.#db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL')
      .run(Date.now(), idOrName, idOrName).changes;
  }

  async setLimits(idOrName: string, limits: Partial<RateLimits>) {
    checkLimits(limits);
    const columns = { rpm: limits.rpm, tpm: limits.tpm, max_concurrent: limits.maxConcurrent };
    const set = Object.entries(columns).filter(([, v]) => v !== undefined);
    if (set.length === 0) throw new Error('no limit to change: give --rpm, --tpm or --max-concurrent');
    return this.#db
      .prepare(`UPDATE api_keys SET ${set.map(([c]) => `${c} = ?`).join(', ')} WHERE (id = ? OR name = ?) AND revoked_at IS NULL`)
      .run(...set.map(([, v]) => v), idOrName, idOrName).changes;
  }

  async hasActiveKeys() {
    return this.#db.prepare('SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1').get() !== undefined;
  }

  async verify(presented: string): Promise<VerifiedKey | null> {
    const hash = presentedKeyHash(presented);
    if (hash === null) return null;
    const row = this.#db
      .prepare('SELECT id, rpm, tpm, max_concurrent FROM api_keys WHERE hash = ? AND revoked_at IS NULL')
      .get(hash) as (Pick<KeyRow, 'id' | 'rpm' | 'tpm' | 'max_concurrent'>) | undefined;
    return row ? { id: row.id, limits: limitsOf(row) } : null;
  }
}

const DAILY_COLUMNS = `date(started_at / 1000, 'unixepoch') AS date, key_id, model, COUNT(*) AS requests,
  SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens`;

class SqliteUsageLedger implements UsageLedger {
  readonly #db: Db;
  readonly #admit;
  readonly #complete;
  readonly #withdraw;

  constructor(db: Db) {
    this.#db = db;
    const insertRow = db.prepare(
      `INSERT INTO usage (request_id, key_id, model, endpoint, prompt_tokens, completion_tokens, started_at, state, replica_id, window_start, reserved_tokens)
       VALUES (?, ?, ?, ?, ?, 0, ?, 'running', ?, ?, ?)`,
    );
    const running = db.prepare("SELECT COUNT(*) AS n FROM usage WHERE key_id = ? AND state = 'running'");
    const window = db.prepare('SELECT requests, tokens FROM rate_windows WHERE key_id = ? AND window_start = ?');
    const count = db.prepare(
      `INSERT INTO rate_windows (key_id, window_start, requests, tokens) VALUES (?, ?, 1, ?)
       ON CONFLICT (key_id, window_start) DO UPDATE SET requests = requests + 1, tokens = tokens + excluded.tokens`,
    );
    const settle = db.prepare('UPDATE rate_windows SET requests = requests - ?, tokens = tokens + ? WHERE key_id = ? AND window_start = ?');
    const rowOf = db.prepare('SELECT key_id, window_start, reserved_tokens, prompt_tokens FROM usage WHERE id = ?');
    const finish = db.prepare(
      "UPDATE usage SET prompt_tokens = ?, completion_tokens = ?, finished_at = ?, finish_reason = ?, state = 'completed' WHERE id = ?",
    );
    const remove = db.prepare('DELETE FROM usage WHERE id = ?');

    this.#admit = db.transaction((r: AdmissionRequest): Admission => {
      const counted = r.keyId !== null && hasWindowLimits(r.limits);
      const start = windowStart(r.now);
      const used = (counted ? (window.get(r.keyId, start) as { requests: number; tokens: number } | undefined) : undefined) ?? { requests: 0, tokens: 0 };
      const active = r.keyId !== null && r.limits.maxConcurrent !== null ? (running.get(r.keyId) as { n: number }).n : 0;
      const exceeded = exceededLimit(r.limits, used, active, r.reservedTokens);
      if (exceeded) return { admitted: false, exceeded, window: windowState(r.now, used.requests, used.tokens) };
      if (counted) count.run(r.keyId, start, r.reservedTokens);
      const rowId = Number(
        insertRow.run(r.requestId, r.keyId, r.model, r.endpoint, r.promptTokens, r.now, r.replicaId, counted ? start : null, r.reservedTokens).lastInsertRowid,
      );
      return { admitted: true, rowId, window: windowState(r.now, used.requests + 1, used.tokens + r.reservedTokens) };
    });
    type Counted = { key_id: string | null; window_start: number | null; reserved_tokens: number; prompt_tokens: number };
    this.#complete = db.transaction((rowId: number, c: Completion) => {
      const row = rowOf.get(rowId) as Counted | undefined;
      if (!row) throw new Error(`usage row ${rowId} does not exist`);
      const promptTokens = c.promptTokens ?? row.prompt_tokens;
      finish.run(promptTokens, c.completionTokens, c.finishedAt, c.finishReason, rowId);
      if (row.window_start !== null) settle.run(0, promptTokens + c.completionTokens - row.reserved_tokens, row.key_id, row.window_start);
    });
    this.#withdraw = db.transaction((rowId: number) => {
      const row = rowOf.get(rowId) as Counted | undefined;
      if (!row) return;
      remove.run(rowId);
      if (row.window_start !== null) settle.run(1, -row.reserved_tokens, row.key_id, row.window_start);
    });
  }

  async admit(request: AdmissionRequest) {
    return this.#admit.immediate(request);
  }

  async complete(rowId: number, completion: Completion) {
    this.#complete.immediate(rowId, completion);
  }

  async withdraw(rowId: number) {
    this.#withdraw.immediate(rowId);
  }

  async dailyForKey(keyId: string | null, since = 0) {
    // `key_id IS ?` matches NULL too: the open server's requests are metered under no key.
    const rows = this.#db
      .prepare(`SELECT ${DAILY_COLUMNS} FROM usage WHERE key_id IS ? AND started_at >= ? GROUP BY date, model ORDER BY date, model`)
      .all(keyId, since) as DailyRow[];
    return rows.map(dailyOf);
  }

  async daily(since = 0) {
    const rows = this.#db
      .prepare(`SELECT ${DAILY_COLUMNS} FROM usage WHERE started_at >= ? GROUP BY date, key_id, model ORDER BY date, key_id, model`)
      .all(since) as DailyRow[];
    return rows.map(dailyOf);
  }

  async recent(limit: number) {
    const rows = this.#db.prepare(`SELECT ${RECENT_COLUMNS} FROM usage ORDER BY id DESC LIMIT ?`).all(limit) as UsageRow[];
    return rows.map(usageRecordOf);
  }
}

class SqliteReplicaRegistry implements ReplicaRegistry {
  readonly #heartbeat;
  readonly #sweep;

  constructor(db: Db) {
    const beat = db.prepare(
      'INSERT INTO replicas (id, heartbeat_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at',
    );
    const interruptOwn = db.prepare("UPDATE usage SET state = 'interrupted', finished_at = ? WHERE state = 'running' AND replica_id = ?");
    const interruptStale = db.prepare(
      `UPDATE usage SET state = 'interrupted', finished_at = ? WHERE state = 'running'
         AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = usage.replica_id AND r.heartbeat_at >= ?)`,
    );
    const forgetStale = db.prepare('DELETE FROM replicas WHERE heartbeat_at < ?');
    const dropWindows = db.prepare('DELETE FROM rate_windows WHERE window_start < ?');
    this.#heartbeat = db.transaction((id: string, now: number, starting: boolean) => {
      if (starting) interruptOwn.run(now, id);
      beat.run(id, now);
    });
    this.#sweep = db.transaction((staleBefore: number, now: number) => {
      const n = interruptStale.run(now, staleBefore).changes;
      forgetStale.run(staleBefore);
      dropWindows.run(windowStart(now) - WINDOW_MS);
      return n;
    });
  }

  async heartbeat(id: string, now: number, starting: boolean) {
    this.#heartbeat.immediate(id, now, starting);
  }

  async sweep(staleBefore: number, now: number) {
    return this.#sweep.immediate(staleBefore, now);
  }
}
