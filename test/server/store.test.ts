// The store interface, one suite run against SQLite and PostgreSQL: keys (hashes only, limits, revoke),
// usage rows written at admission and completed, rate limits (rpm, tpm, concurrency) holding across two
// replicas admitting at once, interrupted rows of dead replicas, and migrations refusing a newer schema.
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tempDir } from './fixture.js';
import { postgresUnavailable, startPostgres, type PostgresCluster } from './postgres-cluster.js';
import { openStore, type StoreLocation } from '../../src/server/store/open.js';
import { DATABASE_FILE, SQLITE_MIGRATIONS } from '../../src/server/store/sqlite.js';
import { POSTGRES_MIGRATIONS } from '../../src/server/store/postgres.js';
import { WINDOW_MS, windowStart } from '../../src/server/store/rate-window.js';
import { NO_LIMITS, type AdmissionRequest, type RateLimits, type Store } from '../../src/server/store/types.js';

interface Backend {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty store location. */
  location(): Promise<StoreLocation>;
  /** The stored hash of a key id, read directly. */
  storedHash(location: StoreLocation, id: string): Promise<string>;
  /** Sets the schema version beyond what this build knows. */
  bumpSchema(location: StoreLocation): Promise<void>;
}

const skipPostgres = postgresUnavailable();
let cluster: PostgresCluster | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  if (!skipPostgres) cluster = await startPostgres();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function pgQuery(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    async location() {
      const dataDir = tempDir('store');
      dirs.push(dataDir);
      return { dataDir };
    },
    async storedHash({ dataDir }, id) {
      const db = new Database(path.join(dataDir, DATABASE_FILE), { readonly: true });
      try {
        return (db.prepare('SELECT hash FROM api_keys WHERE id = ?').get(id) as { hash: string }).hash;
      } finally {
        db.close();
      }
    },
    async bumpSchema({ dataDir }) {
      const db = new Database(path.join(dataDir, DATABASE_FILE));
      db.pragma(`user_version = ${SQLITE_MIGRATIONS.length + 1}`);
      db.close();
    },
  },
  {
    name: 'postgres',
    async location() {
      return { dataDir: '/nonexistent', databaseUrl: await cluster!.createDatabase() };
    },
    async storedHash({ databaseUrl }, id) {
      return (await pgQuery(databaseUrl!, 'SELECT hash FROM api_keys WHERE id = $1', [id]))[0].hash;
    },
    async bumpSchema({ databaseUrl }) {
      await pgQuery(databaseUrl!, 'UPDATE paralon_schema SET version = $1', [POSTGRES_MIGRATIONS.length + 1]);
    },
  },
];

let requests = 0;
const request = (over: Partial<AdmissionRequest>): AdmissionRequest => ({
  requestId: `req-${++requests}`,
  keyId: null,
  limits: NO_LIMITS,
  model: 'm',
  endpoint: 'chat.completions',
  promptTokens: 7,
  reservedTokens: 17,
  replicaId: 'replica-a',
  now: Date.now(),
  ...over,
});

/** Admission time in the middle of a window, so a test never straddles two. */
const midWindow = () => windowStart(Date.now()) + WINDOW_MS / 2;

describe.each(backends)('$name store', (backend) => {
  const it_ = backend.name === 'postgres' && skipPostgres ? it.skip : it;
  let location: StoreLocation;
  let store: Store;
  // A second store on the same database: another replica.
  let other: Store;

  beforeAll(async () => {
    if (backend.name === 'postgres' && skipPostgres) return;
    location = await backend.location();
    store = await openStore(location);
    other = await openStore(location);
    await store.replicas.heartbeat('replica-a', Date.now(), true);
    await other.replicas.heartbeat('replica-b', Date.now(), true);
  }, 30_000);
  afterAll(async () => {
    await store?.close();
    await other?.close();
  });

  it_('keeps keys as SHA-256 hashes, with limits, visible to other replicas, revocable', async () => {
    const { key, info } = await store.keys.create('alice', { rpm: 5, maxConcurrent: 2 });
    expect(key).toMatch(/^prlc_[A-Za-z0-9_-]{43}$/);
    expect(await backend.storedHash(location, info.id)).toBe(createHash('sha256').update(key).digest('hex'));
    expect(info.limits).toEqual({ rpm: 5, tpm: null, maxConcurrent: 2 });
    expect(await other.keys.verify(key)).toEqual({ id: info.id, limits: info.limits });
    expect(await other.keys.verify(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'))).toBeNull();
    expect(await other.keys.verify('not a key')).toBeNull();
    expect(await other.keys.hasActiveKeys()).toBe(true);

    expect(await other.keys.setLimits('alice', { rpm: null, tpm: 1000 })).toBe(1);
    expect((await store.keys.verify(key))?.limits).toEqual({ rpm: null, tpm: 1000, maxConcurrent: 2 });
    await expect(store.keys.setLimits('alice', { rpm: 0 })).rejects.toThrow(/rpm limit must be a positive integer/);
    await expect(store.keys.setLimits('alice', {})).rejects.toThrow(/no limit to change/);
    expect(await store.keys.setLimits('nobody', { rpm: 3 })).toBe(0);

    expect(await other.keys.revoke(info.id)).toBe(1);
    expect(await store.keys.verify(key)).toBeNull();
    expect((await store.keys.list()).find((k) => k.id === info.id)?.revokedAt).toBeInstanceOf(Date);
    await expect(store.keys.create('  ')).rejects.toThrow(/non-empty name/);
  });

  it_('lists keys in creation order, also when many are created in the same millisecond', async () => {
    const names = Array.from({ length: 24 }, (_, i) => `order-${i}`);
    const now = vi.spyOn(Date, 'now').mockReturnValue(Date.now()); // one creation time for all
    try {
      for (const name of names) await store.keys.create(name);
    } finally {
      now.mockRestore();
    }
    const listed = (await other.keys.list()).map((k) => k.name).filter((n) => n.startsWith('order-'));
    expect(listed).toEqual(names);
  });

  it_('writes a row at admission (running, 0 completion tokens) and completes it', async () => {
    const admission = await store.usage.admit(request({ promptTokens: 11, requestId: 'abc' }));
    expect(admission.admitted).toBe(true);
    if (!admission.admitted) return;
    const [running] = await other.usage.recent(1);
    expect(running).toMatchObject({ requestId: 'abc', keyId: null, promptTokens: 11, completionTokens: 0, state: 'running', finishReason: null, finishedAt: null, replicaId: 'replica-a' });
    const finishedAt = Date.now();
    await store.usage.complete(admission.rowId, { completionTokens: 5, finishedAt, finishReason: 'length' });
    const [done] = await other.usage.recent(1);
    expect(done).toMatchObject({ promptTokens: 11, completionTokens: 5, state: 'completed', finishReason: 'length', finishedAt });

    // Tokens known only once the request ran (embeddings): the completion sets the prompt tokens.
    const oneShot = await store.usage.admit(request({ promptTokens: 0, reservedTokens: 0 }));
    if (oneShot.admitted) await store.usage.complete(oneShot.rowId, { promptTokens: 9, completionTokens: 0, finishedAt, finishReason: 'stop' });
    expect((await other.usage.recent(1))[0]).toMatchObject({ promptTokens: 9, completionTokens: 0, state: 'completed' });

    const withdrawn = await store.usage.admit(request({}));
    if (withdrawn.admitted) await store.usage.withdraw(withdrawn.rowId);
    expect((await store.usage.recent(1))[0]).toMatchObject({ state: 'completed', promptTokens: 9 });
    await expect(store.usage.complete(987_654, { completionTokens: 1, finishedAt, finishReason: 'stop' })).rejects.toThrow(/usage row 987654/);
  });

  it_('sums usage per UTC day and key', async () => {
    const { info } = await store.keys.create('daily');
    const day = Date.UTC(2026, 0, 2, 23, 59);
    for (const [p, c] of [[3, 4], [5, 6]]) {
      const a = await store.usage.admit(request({ keyId: info.id, promptTokens: p, now: day }));
      if (a.admitted) await other.usage.complete(a.rowId, { completionTokens: c, finishedAt: day + 1, finishReason: 'stop' });
    }
    const expected = { date: '2026-01-02', keyId: info.id, model: 'm', requests: 2, promptTokens: 8, completionTokens: 10 };
    expect(await other.usage.dailyForKey(info.id)).toEqual([expected]);
    expect(await other.usage.dailyForKey(info.id, Date.UTC(2026, 0, 3))).toEqual([]);
    expect((await store.usage.daily()).filter((d) => d.keyId === info.id)).toEqual([expected]);
    expect((await store.usage.dailyForKey(null)).length).toBeGreaterThan(0);
  });

  /** Two replicas admit `count` requests of one key at once; returns the admitted ones' row ids. */
  async function admitConcurrently(keyId: string, limits: RateLimits, count: number, over: Partial<AdmissionRequest> = {}) {
    const now = midWindow();
    const results = await Promise.all(
      Array.from({ length: count }, (_, i) => (i % 2 ? other : store).usage.admit(request({ keyId, limits, now, replicaId: i % 2 ? 'replica-b' : 'replica-a', ...over }))),
    );
    return results;
  }

  it_('holds requests per minute across two replicas admitting at once', async () => {
    const limits = { ...NO_LIMITS, rpm: 7 };
    const { info } = await store.keys.create('rpm', limits);
    const results = await admitConcurrently(info.id, limits, 19);
    expect(results.filter((r) => r.admitted)).toHaveLength(7);
    const refused = results.filter((r) => !r.admitted);
    expect(refused.every((r) => !r.admitted && r.exceeded === 'requests' && r.window.requests === 7)).toBe(true);
    expect(refused[0].window.resetAt).toBe(windowStart(midWindow()) + WINDOW_MS);
    // The next window starts from zero.
    const next = await store.usage.admit(request({ keyId: info.id, limits, now: midWindow() + WINDOW_MS }));
    expect(next).toMatchObject({ admitted: true, window: { requests: 1 } });
  });

  it_('holds concurrent requests across replicas and frees a slot when one completes', async () => {
    const limits = { ...NO_LIMITS, maxConcurrent: 3 };
    const { info } = await store.keys.create('concurrent', limits);
    const results = await admitConcurrently(info.id, limits, 11);
    const admitted = results.filter((r) => r.admitted);
    expect(admitted).toHaveLength(3);
    expect(results.find((r) => !r.admitted)).toMatchObject({ exceeded: 'concurrent' });
    if (!admitted[0].admitted) return;
    await other.usage.complete(admitted[0].rowId, { completionTokens: 1, finishedAt: Date.now(), finishReason: 'stop' });
    expect((await store.usage.admit(request({ keyId: info.id, limits }))).admitted).toBe(true);
    expect((await store.usage.admit(request({ keyId: info.id, limits }))).admitted).toBe(false);
  });

  it_('reserves tokens per minute at admission and settles them to the tokens used', async () => {
    const limits = { ...NO_LIMITS, tpm: 100 };
    const { info } = await store.keys.create('tpm', limits);
    const now = midWindow();
    const results = await admitConcurrently(info.id, limits, 9, { promptTokens: 10, reservedTokens: 30, now });
    const admitted = results.filter((r) => r.admitted);
    expect(admitted).toHaveLength(3);
    expect(results.find((r) => !r.admitted)).toMatchObject({ exceeded: 'tokens', window: { tokens: 90 } });
    // Each used 10 prompt + 3 completion tokens of its 30: 51 tokens freed.
    for (const a of admitted) if (a.admitted) await store.usage.complete(a.rowId, { completionTokens: 3, finishedAt: now, finishReason: 'stop' });
    const more = await other.usage.admit(request({ keyId: info.id, limits, promptTokens: 10, reservedTokens: 61, now }));
    expect(more).toMatchObject({ admitted: true, window: { tokens: 39 + 61 } });
    // A withdrawn admission gives its reservation back.
    if (more.admitted) await other.usage.withdraw(more.rowId);
    expect(await store.usage.admit(request({ keyId: info.id, limits, reservedTokens: 61, now }))).toMatchObject({ admitted: true, window: { tokens: 100 } });
  });

  it_('marks a dead replica’s running rows interrupted, keeping their prompt tokens', async () => {
    const t0 = Date.now();
    await store.replicas.heartbeat('doomed', t0, true);
    const a = await store.usage.admit(request({ replicaId: 'doomed', promptTokens: 23, now: t0 }));
    const b = await store.usage.admit(request({ replicaId: 'replica-a', promptTokens: 4, now: t0 }));
    // The live replicas keep beating, 'doomed' went silent 20 s ago.
    await store.replicas.heartbeat('replica-a', t0 + 20_000, false);
    await other.replicas.heartbeat('replica-b', t0 + 20_000, false);
    expect(await other.replicas.sweep(t0 + 10_000, t0 + 20_000)).toBe(1);
    const rows = await store.usage.recent(2);
    expect(rows[1]).toMatchObject({ replicaId: 'doomed', promptTokens: 23, completionTokens: 0, state: 'interrupted', finishedAt: t0 + 20_000 });
    expect(rows[0]).toMatchObject({ replicaId: 'replica-a', state: 'running' });
    // A replica restarting under its own id interrupts its previous life's rows at once.
    await store.replicas.heartbeat('replica-a', t0 + 21_000, true);
    expect((await store.usage.recent(1))[0]).toMatchObject({ state: 'interrupted', promptTokens: 4 });
    expect(a.admitted && b.admitted).toBe(true);
  });

  it_('refuses to open a database written by a newer Paralon', async () => {
    const fresh = await backend.location();
    await (await openStore(fresh)).close();
    await backend.bumpSchema(fresh);
    await expect(openStore(fresh)).rejects.toThrow(/written by a newer Paralon/);
  });
});

describe('SQLite schema 1 → 2', () => {
  it('keeps the rows and keys of a database written before rate limits', async () => {
    const dataDir = tempDir('store-v1');
    dirs.push(dataDir);
    const db = new Database(path.join(dataDir, DATABASE_FILE));
    db.exec(SQLITE_MIGRATIONS[0]);
    db.prepare("INSERT INTO api_keys VALUES ('key_1', 'old', 'h', 'prlc_…abcd', 1, NULL)").run();
    db.prepare("INSERT INTO usage VALUES (1, 'key_1', 'm', 'completions', 3, 4, 10, 20, 'stop')").run();
    db.pragma('user_version = 1');
    db.close();
    const store = await openStore({ dataDir });
    try {
      expect(await store.usage.recent(5)).toEqual([
        { requestId: '', keyId: 'key_1', model: 'm', endpoint: 'completions', promptTokens: 3, completionTokens: 4, startedAt: 10, finishedAt: 20, state: 'completed', finishReason: 'stop', replicaId: '' },
      ]);
      expect((await store.keys.list())[0]).toMatchObject({ id: 'key_1', limits: NO_LIMITS });
    } finally {
      await store.close();
    }
  });
});
