// The server's SQLite database (<data-dir>/paralon.db): API keys and usage rows. WAL lets the CLI read
// usage and manage keys while a server writes; synchronous=FULL makes every commit durable before it
// returns, so a usage row written when a request ends survives a crash of the process or the machine.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

export const DATABASE_FILE = 'paralon.db';

/** Migrations by schema version (PRAGMA user_version): MIGRATIONS[v] upgrades version v to v + 1. */
const MIGRATIONS = [
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
];

/** Opens (creating if needed) the database under `dataDir` and brings its schema up to date. */
export function openDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(path.join(dataDir, DATABASE_FILE));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // A second process (the CLI, another server) may hold the write lock for a moment.
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: Db): void {
  // Inside one IMMEDIATE transaction: two processes opening a fresh directory at once migrate once.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length)
      throw new Error(`the database was written by a newer Paralon (schema ${version}; this one knows ${MIGRATIONS.length})`);
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}
