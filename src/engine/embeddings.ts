// Embeddings from a decoder (Qwen3-Embedding's recipe): each input ends with the end-of-text token,
// runs through the model causally, and its embedding is the final norm's output at that last token
// (last-token pooling), optionally truncated to its first `dimensions` values (Matryoshka), then
// L2-normalised.
//
// Inputs are packed into forward steps within the model's token and sequence budgets; a long input
// is prefilled in chunks and pooled at its final chunk. Calls run one at a time, each holding KV
// blocks only while it runs.
import type { KvBlockManager, BlockOwner } from '../kv/block-manager.js';
import type { KvCachePool } from '../kv/pool.js';
import type { CausalLM, SequenceChunk } from '../model/index.js';
import { RequestError } from './engine.js';

export interface EmbedOptions {
  /** Keep the first `dimensions` values before normalising (default: all of the hidden size). */
  dimensions?: number;
}

export interface EmbedResult {
  /** One unit vector per input, in input order. */
  embeddings: Float32Array[];
  /** Tokens run, end tokens included (what usage meters). */
  promptTokens: number;
}

interface Pending {
  index: number;
  tokens: number[];
  done: number; // tokens already in the cache
  owner: BlockOwner;
}

export class Embedder {
  readonly #lm: CausalLM;
  readonly #kv: KvCachePool;
  readonly #blocks: KvBlockManager;
  readonly #endToken: number;
  readonly #maxLen: number;
  #queue: Promise<unknown> = Promise.resolve();

  /** `endToken` is appended to every input that does not already end with it. */
  constructor(lm: CausalLM, kv: KvCachePool, blocks: KvBlockManager, endToken: number, maxLen: number) {
    this.#lm = lm;
    this.#kv = kv;
    this.#blocks = blocks;
    this.#endToken = endToken;
    this.#maxLen = maxLen;
  }

  /** Embeds token-id inputs; errors name the input (RequestError: the caller's fault). */
  embed(inputs: readonly (readonly number[])[], options: EmbedOptions = {}): Promise<EmbedResult> {
    const H = this.#lm.config.hiddenSize;
    const dims = options.dimensions ?? H;
    if (!Number.isInteger(dims) || dims < 1 || dims > H)
      throw new RequestError(`dimensions must be an integer from 1 to ${H} (the model's hidden size); got ${dims}`, 'dimensions');
    if (inputs.length === 0) throw new RequestError('the input list is empty', 'input');
    const vocab = this.#lm.config.vocabSize;
    const sequences = inputs.map((input, i) => {
      if (input.length === 0) throw new RequestError(`input ${i} is empty`, 'input');
      for (const id of input)
        if (!Number.isInteger(id) || id < 0 || id >= vocab)
          throw new RequestError(`input ${i}: token id ${id} is outside the vocabulary of ${vocab}`, 'input');
      const tokens = input[input.length - 1] === this.#endToken ? [...input] : [...input, this.#endToken];
      if (tokens.length > this.#maxLen)
        throw new RequestError(`input ${i} has ${tokens.length} tokens with its end token; the model's context length is ${this.#maxLen}`, 'input');
      return tokens;
    });
    const run = this.#queue.then(() => this.#run(sequences, dims));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #run(sequences: number[][], dims: number): Promise<EmbedResult> {
    const lm = this.#lm;
    const H = lm.config.hiddenSize;
    const out: Float32Array[] = new Array(sequences.length);
    const waiting: Pending[] = sequences.map((tokens, index) => ({ index, tokens, done: 0, owner: { blockIds: [], blockHashes: [] } }));
    const running: Pending[] = [];
    try {
      while (waiting.length > 0 || running.length > 0) {
        // Admit inputs while their blocks fit (a whole input's blocks are claimed at once).
        while (waiting.length > 0 && running.length < lm.maxSeqs && this.#blocks.allocate(waiting[0].owner, waiting[0].tokens.length))
          running.push(waiting.shift()!);
        if (running.length === 0)
          throw new RequestError(`input ${waiting[0].index} needs ${waiting[0].tokens.length} tokens of KV cache; the pool holds ${this.#kv.maxTokens}`, 'input');
        // One step: every running input brings its next chunk, within the token budget.
        let budget = lm.maxBatchTokens;
        const step: { p: Pending; n: number }[] = [];
        for (const p of running) {
          if (budget === 0) break;
          const n = Math.min(p.tokens.length - p.done, budget);
          step.push({ p, n });
          budget -= n;
        }
        const batch: SequenceChunk[] = step.map(({ p, n }) => ({ tokens: p.tokens.slice(p.done, p.done + n), numCached: p.done, blockTable: p.owner.blockIds }));
        const last = await lm.forward(batch, this.#kv, { lastHidden: true }).read();
        step.forEach(({ p, n }, row) => {
          p.done += n;
          if (p.done < p.tokens.length) return;
          out[p.index] = normalised(last.subarray(row * H, row * H + dims));
          this.#blocks.free(p.owner);
          running.splice(running.indexOf(p), 1);
        });
      }
    } finally {
      for (const p of [...running, ...waiting]) this.#blocks.free(p.owner);
    }
    return { embeddings: out, promptTokens: sequences.reduce((a, s) => a + s.length, 0) };
  }
}

/** v / |v| in float64, as a new Float32Array (a zero vector stays zero). */
function normalised(v: Float32Array): Float32Array {
  let sq = 0;
  for (const x of v) sq += x * x;
  const scale = sq > 0 ? 1 / Math.sqrt(sq) : 0;
  return Float32Array.from(v, (x) => x * scale);
}
