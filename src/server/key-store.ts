// API keys: `prlc_` + 32 random bytes in base64url. Only SHA-256 hashes are stored. A presented key is
// hashed and compared with every active key's hash in constant time (crypto.timingSafeEqual, no early
// exit), so response timing reveals nothing about how close a guess came.
//
// The active hashes are cached in memory and re-read when another connection (`paralon keys create` /
// `revoke` in another process) has committed to the database: PRAGMA data_version changes exactly then.
// A revoked key stops working on the next request.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './database.js';

const KEY_PREFIX = 'prlc_';
const KEY_PATTERN = /^prlc_[A-Za-z0-9_-]{43}$/;

export interface ApiKeyInfo {
  id: string;
  name: string;
  /** Recognisable but useless form of the key: prefix and last 4 characters. */
  hint: string;
  createdAt: Date;
  revokedAt: Date | null;
}

interface KeyRow {
  id: string;
  name: string;
  hint: string;
  created_at: number;
  revoked_at: number | null;
}

export class KeyStore {
  readonly #db: Db;
  readonly #insert;
  readonly #selectAll;
  readonly #selectActive;
  readonly #revoke;
  #active: { id: string; hash: Buffer }[] = [];
  #seenVersion = -1;

  constructor(db: Db) {
    this.#db = db;
    this.#insert = db.prepare('INSERT INTO api_keys (id, name, hash, hint, created_at) VALUES (?, ?, ?, ?, ?)');
    this.#selectAll = db.prepare('SELECT id, name, hint, created_at, revoked_at FROM api_keys ORDER BY created_at, id');
    this.#selectActive = db.prepare('SELECT id, hash FROM api_keys WHERE revoked_at IS NULL');
    this.#revoke = db.prepare('UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL');
  }

  /** Creates a key; the returned `key` is shown once and cannot be recovered later. */
  create(name: string): { key: string; info: ApiKeyInfo } {
    if (name.trim() === '') throw new Error('a key needs a non-empty name');
    const key = KEY_PREFIX + randomBytes(32).toString('base64url');
    const id = 'key_' + randomBytes(8).toString('hex');
    const createdAt = Date.now();
    const hint = `${KEY_PREFIX}…${key.slice(-4)}`;
    this.#insert.run(id, name, sha256(key).toString('hex'), hint, createdAt);
    this.#seenVersion = -1;
    return { key, info: { id, name, hint, createdAt: new Date(createdAt), revokedAt: null } };
  }

  list(): ApiKeyInfo[] {
    return (this.#selectAll.all() as KeyRow[]).map((r) => ({
      id: r.id,
      name: r.name,
      hint: r.hint,
      createdAt: new Date(r.created_at),
      revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
    }));
  }

  /** Revokes the active keys with this id or name; returns how many. */
  revoke(idOrName: string): number {
    const changes = this.#revoke.run(Date.now(), idOrName, idOrName).changes;
    this.#seenVersion = -1;
    return changes;
  }

  hasActiveKeys(): boolean {
    return this.#activeKeys().length > 0;
  }

  /** The id of the active key `presented` is, or null. */
  verify(presented: string): string | null {
    const keys = this.#activeKeys();
    if (!KEY_PATTERN.test(presented)) return null;
    const hash = sha256(presented);
    let match: string | null = null;
    for (const k of keys) if (timingSafeEqual(hash, k.hash) && match === null) match = k.id;
    return match;
  }

  #activeKeys(): { id: string; hash: Buffer }[] {
    const version = this.#db.pragma('data_version', { simple: true }) as number;
    if (version !== this.#seenVersion) {
      this.#active = (this.#selectActive.all() as { id: string; hash: string }[]).map((r) => ({
        id: r.id,
        hash: Buffer.from(r.hash, 'hex'),
      }));
      this.#seenVersion = version;
    }
    return this.#active;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
