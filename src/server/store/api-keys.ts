// API keys: `prlc_` + 32 random bytes in base64url. Only SHA-256 hashes are stored; a presented key is
// looked up by its hash (a unique index). Timing can reveal at most how the hash of a guess compares
// with stored hashes, which says nothing about any key: SHA-256 has no usable preimages.
import { createHash, randomBytes } from 'node:crypto';
import type { RateLimits } from './types.js';

const KEY_PREFIX = 'prlc_';
const KEY_PATTERN = /^prlc_[A-Za-z0-9_-]{43}$/;

export interface NewKey {
  key: string;
  id: string;
  hash: string;
  hint: string;
  createdAt: number;
}

export function newKey(name: string): NewKey {
  if (name.trim() === '') throw new Error('a key needs a non-empty name');
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  return {
    key,
    id: 'key_' + randomBytes(8).toString('hex'),
    hash: keyHash(key),
    hint: `${KEY_PREFIX}…${key.slice(-4)}`,
    createdAt: Date.now(),
  };
}

/** The stored hash of a presented key, or null when it cannot be a key at all. */
export function presentedKeyHash(presented: string): string | null {
  return KEY_PATTERN.test(presented) ? keyHash(presented) : null;
}

function keyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Checks limits given to `keys create` / `keys limits`: positive integers or null. */
export function checkLimits(limits: Partial<RateLimits>): void {
  for (const [name, value] of Object.entries(limits))
    if (value !== null && value !== undefined && (!Number.isSafeInteger(value) || value < 1))
      throw new Error(`the ${name} limit must be a positive integer or none, got ${value}`);
}
