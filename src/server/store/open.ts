// Which store a process uses: PostgreSQL when a database URL is given (--database, PARALON_DATABASE_URL),
// else SQLite under the data directory.
import { openPostgresStore } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import { StoreError, type Store } from './types.js';

export interface StoreLocation {
  dataDir: string;
  /** postgres:// or postgresql:// URL; absent: SQLite under dataDir. */
  databaseUrl?: string;
}

export async function openStore(location: StoreLocation): Promise<Store> {
  if (location.databaseUrl === undefined) return openSqliteStore(location.dataDir);
  if (!/^postgres(ql)?:\/\//.test(location.databaseUrl))
    throw new StoreError('--database (PARALON_DATABASE_URL) must be a postgres:// or postgresql:// URL');
  return openPostgresStore(location.databaseUrl);
}

/** Runs `fn` on the store and closes it. */
export async function withStore<T>(location: StoreLocation, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(location);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
