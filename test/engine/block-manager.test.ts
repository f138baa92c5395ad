// KvBlockManager: allocation is all-or-nothing, refcounts let owners share blocks, full blocks are
// found again by their chained hash, freed blocks stay cached and are evicted least recently freed
// first, and a cached prefix never covers a prompt's last token.
import { describe, expect, it } from 'vitest';
import { KvBlockManager, type BlockOwner } from '../../src/kv/block-manager.js';

const BS = 4;

function owner(): BlockOwner {
  return { blockIds: [], blockHashes: [] };
}

/** Tokens 100·k + i, so sequences made from different k share nothing. */
function seq(k: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => 100 * k + i);
}

/** An owner that computed all of `tokens` and committed its full blocks. */
function computed(kv: KvBlockManager, tokens: number[]): BlockOwner {
  const o = owner();
  expect(kv.allocate(o, tokens.length)).toBe(true);
  kv.commitFullBlocks(o, tokens, tokens.length);
  return o;
}

describe('KvBlockManager', () => {
  it('allocates whole blocks, all or nothing, and frees them', () => {
    const kv = new KvBlockManager(5, BS);
    const a = owner();
    expect(kv.allocate(a, 9)).toBe(true); // 3 blocks
    expect(a.blockIds).toHaveLength(3);
    expect(new Set(a.blockIds).size).toBe(3);
    expect(kv.allocate(a, 12)).toBe(true); // still 3 blocks
    expect(a.blockIds).toHaveLength(3);
    const b = owner();
    expect(kv.allocate(b, 13)).toBe(false); // 4 blocks > 2 free: nothing taken
    expect(b.blockIds).toEqual([]);
    expect(kv.stats().usedBlocks).toBe(3);
    expect(kv.allocate(b, 8)).toBe(true);
    expect(kv.numFreeBlocks).toBe(0);
    expect(new Set([...a.blockIds, ...b.blockIds]).size).toBe(5);
    kv.free(a);
    kv.free(b);
    expect(a.blockIds).toEqual([]);
    expect(kv.stats().usedBlocks).toBe(0);
    expect(kv.numFreeBlocks).toBe(5);
  });

  it('rejects bad sizes', () => {
    expect(() => new KvBlockManager(0, BS)).toThrow(/numBlocks/);
    expect(() => new KvBlockManager(4, 0)).toThrow(/blockSize/);
    expect(() => new KvBlockManager(2.5, BS)).toThrow(/numBlocks/);
  });

  it('hashes a block together with everything before it', () => {
    const kv = new KvBlockManager(8, BS);
    const x = seq(1, 4);
    const a = [...seq(2, 4), ...x];
    const b = [...seq(3, 4), ...x];
    const ha0 = kv.hashBlock('', a, 0);
    const hb0 = kv.hashBlock('', b, 0);
    expect(ha0).not.toBe(hb0);
    // Block 1 holds the same tokens in both sequences, but its parent differs.
    expect(kv.hashBlock(ha0, a, 1)).not.toBe(kv.hashBlock(hb0, b, 1));
    expect(kv.hashBlock(ha0, a, 1)).toBe(kv.hashBlock(ha0, b, 1));
    // Deterministic, and sensitive to one token.
    expect(kv.hashBlock('', a, 0)).toBe(ha0);
    expect(kv.hashBlock('', [a[0], a[1], a[2], a[3] + 1], 0)).not.toBe(ha0);

    // Only a chain from block 0 is ever found: b's second block is not a's.
    const ownerA = computed(kv, [...a, 999]);
    expect(ownerA.blockHashes).toHaveLength(2);
    const o = owner();
    expect(kv.claimCachedPrefix(o, [...b, 5])).toBe(0);
    expect(o.blockIds).toEqual([]);
  });

  it('reuses the longest cached prefix and shares its blocks by reference count', () => {
    const kv = new KvBlockManager(10, BS);
    const prompt = seq(1, 13); // 3 full blocks + 1 token
    const first = computed(kv, prompt);
    expect(first.blockHashes).toHaveLength(3);
    expect(kv.stats()).toMatchObject({ usedBlocks: 4, cachedBlocks: 3 });

    // Shares 2 full blocks and diverges in the third.
    const second = owner();
    const other = [...prompt.slice(0, 10), 7, 7, 7, 7, 7];
    expect(kv.claimCachedPrefix(second, other)).toBe(8);
    expect(second.blockIds).toEqual(first.blockIds.slice(0, 2));
    expect(kv.stats().usedBlocks).toBe(4); // shared, not copied
    expect(kv.allocate(second, other.length)).toBe(true);
    expect(kv.stats().usedBlocks).toBe(6);

    // The first owner leaves: the shared blocks stay in use by the second.
    kv.free(first);
    expect(kv.stats().usedBlocks).toBe(4); // 2 shared + second's 2 own
    kv.free(second);
    expect(kv.stats().usedBlocks).toBe(0);
    // Still cached after both left.
    const third = owner();
    expect(kv.claimCachedPrefix(third, prompt)).toBe(12);
    kv.free(third);
  });

  it('counts prefix statistics only when told a prompt was admitted', () => {
    const kv = new KvBlockManager(8, BS);
    kv.free(computed(kv, seq(1, 9)));
    const o = owner();
    expect(kv.claimCachedPrefix(o, seq(1, 9))).toBe(8);
    kv.free(o); // given back (did not fit): no statistics
    expect(kv.stats()).toMatchObject({ prefixQueries: 0, prefixHitTokens: 0, prefixQueryTokens: 0 });
    kv.recordPrefixQuery(9, 8);
    kv.recordPrefixQuery(5, 0);
    expect(kv.stats()).toMatchObject({ prefixQueries: 2, prefixHitTokens: 8, prefixQueryTokens: 14 });
  });

  it('never claims the last token of a prompt, so the model still computes its logits', () => {
    const kv = new KvBlockManager(8, BS);
    const tokens = seq(1, 12);
    kv.free(computed(kv, [...tokens, 42])); // all 3 blocks of `tokens` cached
    const exact = owner();
    expect(kv.claimCachedPrefix(exact, tokens)).toBe(8); // the 3rd block holds the last token
    kv.free(exact);
    const longer = owner();
    expect(kv.claimCachedPrefix(longer, [...tokens, 42])).toBe(12);
    kv.free(longer);
    const one = owner();
    expect(kv.claimCachedPrefix(one, [tokens[0]])).toBe(0);
    const holder = computed(kv, [1]);
    expect(() => kv.claimCachedPrefix(holder, tokens)).toThrow(/already holds/);
  });

  it('commits only blocks whose tokens are all computed', () => {
    const kv = new KvBlockManager(8, BS);
    const tokens = seq(1, 11);
    const o = owner();
    kv.allocate(o, 11);
    kv.commitFullBlocks(o, tokens, 3);
    expect(o.blockHashes).toHaveLength(0);
    kv.commitFullBlocks(o, tokens, 7);
    expect(o.blockHashes).toHaveLength(1);
    kv.commitFullBlocks(o, tokens, 11);
    expect(o.blockHashes).toHaveLength(2);
    expect(o.blockHashes[1]).toBe(kv.hashBlock(o.blockHashes[0], tokens, 1));
    expect(kv.stats().cachedBlocks).toBe(2);
  });

  it('evicts the least recently freed block first, tails of a sequence before its head', () => {
    const kv = new KvBlockManager(6, BS);
    const a = seq(1, 12);
    const owned = computed(kv, a); // 3 blocks, all cached
    kv.free(owned); // freed tail first: eviction order is a[2], a[1], a[0] after the 3 never-used blocks
    const filler = owner();
    expect(kv.allocate(filler, 12)).toBe(true); // takes the 3 never-used blocks
    const probe = () => {
      const p = owner();
      const hit = kv.claimCachedPrefix(p, [...a, 0]);
      kv.free(p);
      return hit;
    };
    // Probing re-frees the claimed blocks in tail-first order, keeping the same relative order.
    expect(probe()).toBe(12);
    expect(kv.allocate(filler, 16)).toBe(true); // evicts a's last block
    expect(probe()).toBe(8);
    expect(kv.allocate(filler, 20)).toBe(true); // then its middle one
    expect(probe()).toBe(4);
    expect(kv.stats().cachedBlocks).toBe(1);
    kv.free(filler);
  });

  it('moves a reused block to the back of the eviction order', () => {
    const kv = new KvBlockManager(4, BS);
    const x = seq(1, 4);
    const y = seq(2, 4);
    kv.free(computed(kv, x)); // free order: 1 never-used… then x
    kv.free(computed(kv, y)); // … then y
    // Reuse x: it is claimed and freed again, so it becomes the most recently freed.
    const again = owner();
    expect(kv.claimCachedPrefix(again, [...x, 0])).toBe(4);
    kv.free(again);
    const filler = owner();
    expect(kv.allocate(filler, 12)).toBe(true); // 3 blocks: the 2 never-used ones, then y's
    const p = owner();
    expect(kv.claimCachedPrefix(p, [...y, 0])).toBe(0);
    expect(kv.claimCachedPrefix(owner(), [...x, 0])).toBe(4);
  });

  it('keeps one block per hash: a duplicate computed elsewhere does not unmap the original', () => {
    const kv = new KvBlockManager(4, BS);
    const x = [...seq(1, 4), 0];
    const first = computed(kv, x);
    const dup = computed(kv, x); // computed independently (e.g. both prefilled in the same step)
    expect(dup.blockHashes).toEqual(first.blockHashes);
    expect(dup.blockIds[0]).not.toBe(first.blockIds[0]);
    kv.free(dup);
    const filler = owner();
    expect(kv.allocate(filler, 8)).toBe(true); // reuses exactly the duplicate's 2 blocks
    const p = owner();
    expect(kv.claimCachedPrefix(p, x)).toBe(4);
    expect(p.blockIds[0]).toBe(first.blockIds[0]);
  });

  it('with prefix caching off, neither caches nor claims', () => {
    const kv = new KvBlockManager(4, BS, { prefixCaching: false });
    const x = seq(1, 9);
    const o = computed(kv, x);
    expect(o.blockHashes).toEqual([]);
    kv.free(o);
    expect(kv.claimCachedPrefix(owner(), x)).toBe(0);
    kv.recordPrefixQuery(9, 0);
    expect(kv.stats()).toMatchObject({ cachedBlocks: 0, prefixQueries: 0, usedBlocks: 0 });
  });
});
