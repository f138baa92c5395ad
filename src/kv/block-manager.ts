// The paged KV cache's bookkeeping (vLLM v1's KVCacheManager in spirit): it only allocates and frees
// blocks and answers "doesn't fit"; preemption is the scheduler's decision.
//
// Prefix caching: a full block is identified by a hash of its tokens chained with the hash of the
// block before it, so equal hashes mean equal prefixes. Freed blocks keep their contents and stay
// findable until the allocator reuses them, least recently freed first.
import { createHash } from 'node:crypto';

export interface BlockOwner {
  /** Block ids holding this sequence's tokens, in order. */
  blockIds: number[];
  /** Hashes of the owner's full blocks, in order (computed lazily, extended as blocks fill). */
  blockHashes: string[];
}

export interface KvBlockStats {
  numBlocks: number;
  blockSize: number;
  usedBlocks: number;
  cachedBlocks: number;
  prefixQueries: number;
  prefixHitTokens: number;
  prefixQueryTokens: number;
}

export class KvBlockManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly prefixCaching: boolean;
  readonly #refCount: Int32Array;
  readonly #hashOf: (string | null)[];
  readonly #byHash = new Map<string, number>();
  // Blocks nobody references, in eviction order (first = least recently freed). Map keeps insertion order.
  readonly #free = new Map<number, true>();
  #queries = 0;
  #hitTokens = 0;
  #queryTokens = 0;

  constructor(numBlocks: number, blockSize: number, options: { prefixCaching?: boolean } = {}) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new Error('KvBlockManager: numBlocks must be ≥ 1');
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error('KvBlockManager: blockSize must be ≥ 1');
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.prefixCaching = options.prefixCaching ?? true;
    this.#refCount = new Int32Array(numBlocks);
    this.#hashOf = new Array(numBlocks).fill(null);
    for (let i = 0; i < numBlocks; i++) this.#free.set(i, true);
  }

  get numFreeBlocks(): number {
    return this.#free.size;
  }

  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /**
   * Claims the cached blocks of the longest cached prefix of `tokens` for a new owner and returns how
   * many tokens they cover. At least one token is always left to compute, so the model produces logits.
   * Statistics are not counted here (a claim may be given back): see recordPrefixQuery.
   */
  claimCachedPrefix(owner: BlockOwner, tokens: readonly number[]): number {
    if (owner.blockIds.length > 0) throw new Error('claimCachedPrefix: owner already holds blocks');
    if (!this.prefixCaching) return 0;
    const fullBlocks = Math.floor((tokens.length - 1) / this.blockSize);
    let parent = '';
    for (let b = 0; b < fullBlocks; b++) {
      const hash = this.hashBlock(parent, tokens, b);
      const id = this.#byHash.get(hash);
      if (id === undefined) break;
      if (this.#refCount[id]++ === 0) this.#free.delete(id);
      owner.blockIds.push(id);
      owner.blockHashes.push(hash);
      parent = hash;
    }
    return owner.blockIds.length * this.blockSize;
  }

  /** Counts one admitted prompt of `numTokens` tokens, `numHitTokens` of them served from the cache. */
  recordPrefixQuery(numTokens: number, numHitTokens: number): void {
    if (!this.prefixCaching) return;
    this.#queries++;
    this.#queryTokens += numTokens;
    this.#hitTokens += numHitTokens;
  }

  /** Grows the owner's blocks to hold `numTokens` tokens; false (and nothing changed) if they don't fit. */
  allocate(owner: BlockOwner, numTokens: number): boolean {
    const need = this.blocksFor(numTokens) - owner.blockIds.length;
    if (need <= 0) return true;
    if (need > this.#free.size) return false;
    for (let i = 0; i < need; i++) {
      const id = this.#free.keys().next().value as number;
      this.#free.delete(id);
      this.#evictHash(id);
      this.#refCount[id] = 1;
      owner.blockIds.push(id);
    }
    return true;
  }

  /**
   * Records the hashes of the owner's blocks that became full now that `numComputed` of `tokens` are
   * in the cache, making them reusable by later requests with the same prefix.
   */
  commitFullBlocks(owner: BlockOwner, tokens: readonly number[], numComputed: number): void {
    if (!this.prefixCaching) return;
    const full = Math.min(Math.floor(numComputed / this.blockSize), owner.blockIds.length);
    for (let b = owner.blockHashes.length; b < full; b++) {
      const hash = this.hashBlock(b === 0 ? '' : owner.blockHashes[b - 1], tokens, b);
      owner.blockHashes.push(hash);
      const id = owner.blockIds[b];
      if (!this.#byHash.has(hash)) {
        this.#byHash.set(hash, id);
        this.#hashOf[id] = hash;
      }
    }
  }

  /** Releases the owner's blocks. Tail blocks are freed first so they are evicted before shared heads. */
  free(owner: BlockOwner): void {
    for (let i = owner.blockIds.length - 1; i >= 0; i--) {
      const id = owner.blockIds[i];
      if (--this.#refCount[id] === 0) this.#free.set(id, true);
      if (this.#refCount[id] < 0) throw new Error(`KvBlockManager: block ${id} freed twice`);
    }
    owner.blockIds.length = 0;
    owner.blockHashes.length = 0;
  }

  stats(): KvBlockStats {
    return {
      numBlocks: this.numBlocks,
      blockSize: this.blockSize,
      usedBlocks: this.numBlocks - this.#free.size,
      cachedBlocks: this.#byHash.size,
      prefixQueries: this.#queries,
      prefixHitTokens: this.#hitTokens,
      prefixQueryTokens: this.#queryTokens,
    };
  }

  /** Chained hash of block `b` of `tokens` (tokens b·blockSize … (b+1)·blockSize − 1). */
  hashBlock(parent: string, tokens: readonly number[], b: number): string {
    const ids = Int32Array.from(tokens.slice(b * this.blockSize, (b + 1) * this.blockSize));
    return createHash('sha256').update(parent).update(new Uint8Array(ids.buffer)).digest('base64');
  }

  #evictHash(id: number): void {
    const hash = this.#hashOf[id];
    if (hash !== null) {
      if (this.#byHash.get(hash) === id) this.#byHash.delete(hash);
      this.#hashOf[id] = null;
    }
  }
}
