// A causal language model on Paralon's ops, for any registered architecture: the model-neutral step
// machinery around an architecture's layer loop. A step is a batch of sequences each contributing new
// tokens (a prefill chunk, possibly after cached tokens, or one decode token); everything is queued on
// the device stream and logits stay on the device for ops.sample.
//
// Per step: validate the batch and fill the metadata (token ids, positions, KV slots, block tables)
// → embedding → the architecture's layers → gather the last token of each sequence → final rmsnorm →
// LM head. Decode steps replay graphs where the device records them (decode-graphs.ts).
//
// Activations are f32 and live in workspace tensors allocated once for the largest batch; each step
// takes views of them (views allocate nothing on the device).
import { ops, type Device, type Tensor } from '../runtime/index.js';
import { KvCachePool, type KvCachePoolOptions, type KvCacheShape } from '../kv/pool.js';
import { allocateAll, type AnyArchitecture, type DecoderWeights, type ModelConfig } from './architecture.js';
import { readGenerationDefaults, type ConfigOverrides, type GenerationDefaults } from './config.js';
import { DecodeGraphs, stepInputs, type StepMeta } from './decode-graphs.js';
import { readModelConfig } from './registry.js';
import { SafetensorsCheckpoint } from './safetensors.js';
import { disposeWeights, loadDecoderWeights, type Checkpoint, type LoadProgress } from './weights.js';

/** One sequence's share of a forward step. */
export interface SequenceChunk {
  /** The new token ids: a prefill chunk or a single decode token (at least one). */
  tokens: ArrayLike<number>;
  /** Tokens of this sequence already in the KV cache; the new ones take positions numCached, numCached + 1, … */
  numCached: number;
  /** The sequence's KV blocks in order, covering at least numCached + tokens.length tokens. */
  blockTable: ArrayLike<number>;
}

export interface ForwardOptions {
  /**
   * Logits for every new token ([numTokens, vocab], a new tensor the caller disposes) instead of the
   * last token of each sequence. For tests, evaluation and prompt echo; not the serving path.
   */
  allLogits?: boolean;
  /**
   * The final norm's output for the last token of each sequence ([numSeqs, hidden], a view of the
   * workspace valid until the next forward) instead of logits: last-token pooling for embeddings.
   */
  lastHidden?: boolean;
  /**
   * Keeps the step's hidden states readable by rowLogits until the next forward (no decode-graph
   * replay, whose workspace is padded): for scoring prompt rows.
   */
  keepHidden?: boolean;
}

/**
 * Rows rowLogits projects at most per call: [rows, vocab] f32 (74 MiB at Qwen3's vocabulary) is the only
 * large buffer prompt scoring needs. Enough rows that a GPU reads the LM head once per 128 rows, not per
 * row (at 32 the projection would be bound by reading the head); few enough that a long prompt never
 * holds its [tokens, vocab] logits.
 */
export const ROW_LOGITS_CHUNK = 128;

export interface CausalLMOptions {
  /** Most new tokens in one forward step (sizes the activation workspace). Default 1024. */
  maxBatchTokens?: number;
  /** Most sequences in one forward step (sizes the logits workspace). Default 64. */
  maxSeqs?: number;
  /** Replay decode steps as graphs (see decode-graphs.ts). Default: when the device records graphs. */
  graphs?: boolean;
}

/** What a model is loaded for: text generation (logits) or embeddings (the last hidden state, no LM head). */
export type ModelTask = 'generate' | 'embed';

export interface CausalLMLoadOptions extends CausalLMOptions {
  onProgress?: LoadProgress;
  /** Default 'generate'. 'embed' loads no LM head (embedding checkpoints such as Qwen3-Embedding have none). */
  task?: ModelTask;
  /** Replaces fields of config.json (e.g. its rope_scaling). */
  overrides?: ConfigOverrides;
}

/** Device activations for the largest step, and host arrays for the per-step metadata. */
interface Workspace {
  hidden: Tensor<'f32'>; // [maxT, hidden]: the residual stream
  normed: Tensor<'f32'>; // [maxT, hidden]: rmsnorm outputs, the matmul inputs
  scratch: Tensor<'f32'>; // [maxT × architecture's scratchWidth]: the layer loop's own activations
  last: Tensor<'f32'>; // [maxSeqs, hidden]: last token of each sequence
  logits: Tensor<'f32'> | undefined; // [maxSeqs, vocab], absent for embeddings
  tokens: Int32Array;
  positions: Int32Array;
  slots: Int32Array;
  lastRows: Int32Array;
  qStart: Int32Array;
  kvLen: Int32Array;
  blockTables: Int32Array; // grows with the longest block table seen
}

export class CausalLM<C extends ModelConfig = ModelConfig> {
  readonly device: Device;
  readonly architecture: AnyArchitecture;
  readonly config: C;
  readonly generation: GenerationDefaults;
  readonly weights: DecoderWeights<unknown>;
  readonly maxBatchTokens: number;
  readonly maxSeqs: number;
  readonly task: ModelTask;
  readonly #ws: Workspace;
  readonly #graphs: DecodeGraphs | undefined;
  #disposed = false;
  /** New tokens of the last forward when it kept its hidden states (0: none readable). */
  #keptRows = 0;
  /** [ROW_LOGITS_CHUNK, vocab], allocated on the first rowLogits. */
  #rowLogits: Tensor<'f32'> | undefined;

  constructor(
    device: Device,
    architecture: AnyArchitecture,
    config: C,
    generation: GenerationDefaults,
    weights: DecoderWeights<unknown>,
    options: CausalLMOptions & { task?: ModelTask } = {},
  ) {
    this.maxBatchTokens = options.maxBatchTokens ?? 1024;
    this.maxSeqs = options.maxSeqs ?? 64;
    for (const [key, v] of Object.entries({ maxBatchTokens: this.maxBatchTokens, maxSeqs: this.maxSeqs }))
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`CausalLM: ${key} must be a positive integer (got ${v})`);
    this.device = device;
    this.architecture = architecture;
    this.config = config;
    this.generation = generation;
    this.weights = weights;
    this.task = options.task ?? 'generate';
    this.#ws = allocateWorkspace(device, config, architecture.scratchWidth(config), this.maxBatchTokens, this.maxSeqs, this.task);
    if (options.graphs ?? device.supportsGraphs)
      this.#graphs = new DecodeGraphs(device, Math.min(this.maxSeqs, this.maxBatchTokens), config.maxPositionEmbeddings);
  }

  /** Decode graphs recorded so far (0 when graphs are off). */
  get graphCount(): number {
    return this.#graphs?.size ?? 0;
  }

  /**
   * Reads a Hugging Face checkpoint directory (config.json, generation_config.json, safetensors) onto
   * `device`, as the architecture the registry finds for its config.
   */
  static async load(dir: string, device: Device, options: CausalLMLoadOptions = {}): Promise<CausalLM> {
    const { arch, config } = readModelConfig(dir, options.overrides);
    const generation = readGenerationDefaults(dir, config);
    const checkpoint = SafetensorsCheckpoint.open(device, dir);
    try {
      return await CausalLM.fromCheckpoint(device, arch, config, generation, checkpoint, options);
    } finally {
      checkpoint.close();
    }
  }

  /** Places `checkpoint`'s weights for `arch` and builds the model (the caller closes the checkpoint). */
  static async fromCheckpoint<C extends ModelConfig>(
    device: Device,
    arch: AnyArchitecture,
    config: C,
    generation: GenerationDefaults,
    checkpoint: Checkpoint,
    options: CausalLMLoadOptions = {},
  ): Promise<CausalLM<C>> {
    const weights = await loadDecoderWeights(device, checkpoint, arch, config, options.onProgress, { lmHead: (options.task ?? 'generate') === 'generate' });
    try {
      return new CausalLM(device, arch, config, generation, weights, options);
    } catch (e) {
      disposeWeights(weights);
      throw e;
    }
  }

  /** What a KV cache for this model stores per token. */
  get kvShape(): KvCacheShape {
    return { numLayers: this.config.numLayers, numKvHeads: this.config.numKvHeads, headDim: this.config.headDim };
  }

  /** A KV cache pool shaped for this model, on its device; an fp8 pool gets the checkpoint's scales unless given others. */
  createKvCache(options: KvCachePoolOptions): KvCachePool {
    const fp8Scales = options.dtype === 'fp8' ? (options.fp8Scales ?? this.weights.kvScales) : options.fp8Scales;
    return new KvCachePool(this.device, this.kvShape, { ...options, fp8Scales });
  }

  /**
   * Queues one forward step. Returns logits [numSeqs, vocab] for the last new token of each sequence:
   * a view of the workspace, valid until the next forward (sample from it before then). With
   * `allLogits`, a new [numTokens, vocab] tensor. The new tokens' K and V are written to `kv` at the
   * slots their block tables give.
   */
  forward(batch: readonly SequenceChunk[], kv: KvCachePool, options: ForwardOptions = {}): Tensor<'f32'> {
    if (this.#disposed) throw new Error('CausalLM: forward after dispose');
    if (this.task === 'embed' && !options.lastHidden)
      throw new Error('forward: this model was loaded for embeddings (no LM head); ask for lastHidden');
    this.#keptRows = 0;
    const { numTokens: T, maxBlocksPerSeq } = this.#prepare(batch, kv);
    const S = batch.length;
    const ws = this.#ws;
    const meta: StepMeta = {
      tokens: ws.tokens.subarray(0, T),
      positions: ws.positions.subarray(0, T),
      slots: ws.slots.subarray(0, T),
      lastRows: ws.lastRows.subarray(0, S),
      attention: {
        qStart: ws.qStart.subarray(0, S + 1),
        kvLen: ws.kvLen.subarray(0, S),
        blockTables: ws.blockTables.subarray(0, S * maxBlocksPerSeq),
        maxBlocksPerSeq,
      },
    };
    if (options.lastHidden) return this.#queue(meta, T, S, kv, 'lastHidden');
    if (this.#graphs && T === S && !options.allLogits && !options.keepHidden) {
      this.#graphs.run(meta, S, kv, (padded, seqs) => this.#queue(padded, seqs, seqs, kv, 'lastLogits'));
      return ws.logits!.view([S, this.config.vocabSize]);
    }
    const logits = this.#queue(meta, T, S, kv, options.allLogits ? 'allLogits' : 'lastLogits');
    if (options.keepHidden) this.#keptRows = T;
    return logits;
  }

  /**
   * Logits [rows.length, vocab] of rows of the last forward's new tokens (indices into the step's
   * tokens, all sequences concatenated), from hidden states it kept (`keepHidden`). At most
   * ROW_LOGITS_CHUNK rows per call; a view of a buffer the next rowLogits call overwrites.
   */
  rowLogits(rows: Int32Array): Tensor<'f32'> {
    if (this.#disposed) throw new Error('CausalLM: rowLogits after dispose');
    if (this.#keptRows === 0) throw new Error('rowLogits: the last forward did not keep its hidden states (keepHidden)');
    const n = rows.length;
    if (n < 1 || n > ROW_LOGITS_CHUNK) throw new Error(`rowLogits: ${n} rows; 1 to ${ROW_LOGITS_CHUNK} per call`);
    for (const r of rows)
      if (!Number.isInteger(r) || r < 0 || r >= this.#keptRows)
        throw new Error(`rowLogits: row ${r} is outside the last step's ${this.#keptRows} tokens`);
    const c = this.config;
    const w = this.weights;
    this.#rowLogits ??= this.device.empty([ROW_LOGITS_CHUNK, c.vocabSize]);
    // The layers are done with `normed`: it holds the gathered rows (as the last-token path does).
    const hidden = this.#ws.hidden.view([this.#keptRows, c.hiddenSize]);
    const picked = this.#ws.normed.view([n, c.hiddenSize]);
    ops.embedding(rows, hidden, picked);
    ops.rmsnorm(picked, w.finalNorm, picked, { eps: c.rmsNormEps });
    const logits = this.#rowLogits.view([n, c.vocabSize]);
    ops.matmul(picked, w.lmHead, logits);
    return logits;
  }

  /** Queues the ops of one step: T new tokens of S sequences described by `meta`. */
  #queue(meta: StepMeta, T: number, S: number, kv: KvCachePool, output: 'lastLogits' | 'allLogits' | 'lastHidden'): Tensor<'f32'> {
    const c = this.config;
    const w = this.weights;
    const ws = this.#ws;
    const H = c.hiddenSize;
    const eps = c.rmsNormEps;
    const hidden = ws.hidden.view([T, H]);
    const normed = ws.normed.view([T, H]);

    // One upload of the step's metadata on a CUDA device (ignored while a graph records, and on the CPU).
    this.device.stageStep(stepInputs(meta));
    ops.embedding(meta.tokens, w.embedding, hidden);
    this.architecture.forwardLayers({ config: c, weights: w, kv, meta, numTokens: T, numSeqs: S, hidden, normed, scratch: ws.scratch });

    if (output === 'allLogits') {
      ops.rmsnorm(hidden, w.finalNorm, normed, { eps });
      const logits = this.device.empty([T, c.vocabSize]);
      ops.matmul(normed, w.lmHead, logits);
      return logits;
    }
    // Only the last token of each sequence needs logits: gather those rows (embedding over the f32
    // hidden states as the table), then norm and project S rows instead of T.
    const last = ws.last.view([S, H]);
    ops.embedding(meta.lastRows, hidden, last);
    ops.rmsnorm(last, w.finalNorm, last, { eps });
    if (output === 'lastHidden') return last;
    const logits = ws.logits!.view([S, c.vocabSize]);
    ops.matmul(last, w.lmHead, logits);
    return logits;
  }

  /** Validates the batch and fills the host metadata arrays of the workspace. */
  #prepare(batch: readonly SequenceChunk[], kv: KvCachePool): { numTokens: number; maxBlocksPerSeq: number } {
    const c = this.config;
    const ws = this.#ws;
    const S = batch.length;
    if (S < 1 || S > this.maxSeqs) throw new Error(`forward: ${S} sequences; this model was set up for 1 to ${this.maxSeqs}`);
    if (kv.device !== this.device) throw new Error('forward: the KV cache lives on another device');
    const shape = kv.shape;
    if (shape.numLayers !== c.numLayers || shape.numKvHeads !== c.numKvHeads || shape.headDim !== c.headDim)
      throw new Error(`forward: the KV cache holds ${shape.numLayers} layers × ${shape.numKvHeads} heads × ${shape.headDim}; ` +
        `the model needs ${c.numLayers} × ${c.numKvHeads} × ${c.headDim}`);
    const bs = kv.blockSize;

    let T = 0;
    let maxBlocksPerSeq = 1;
    for (const seq of batch) {
      const n = seq.tokens.length;
      if (n < 1) throw new Error('forward: every sequence must bring at least one new token');
      T += n;
      maxBlocksPerSeq = Math.max(maxBlocksPerSeq, Math.ceil((seq.numCached + n) / bs));
    }
    if (T > this.maxBatchTokens) throw new Error(`forward: ${T} new tokens; this model was set up for at most ${this.maxBatchTokens}`);
    if (ws.blockTables.length < S * maxBlocksPerSeq) ws.blockTables = new Int32Array(S * maxBlocksPerSeq * 2);
    ws.blockTables.fill(0, 0, S * maxBlocksPerSeq);

    let t = 0;
    ws.qStart[0] = 0;
    batch.forEach((seq, s) => {
      const { tokens, numCached, blockTable } = seq;
      const kvLen = numCached + tokens.length;
      if (!Number.isSafeInteger(numCached) || numCached < 0)
        throw new Error(`forward: sequence ${s}: numCached must be a non-negative integer (got ${numCached})`);
      if (kvLen > c.maxPositionEmbeddings)
        throw new Error(`forward: sequence ${s}: ${kvLen} tokens exceed max_position_embeddings (${c.maxPositionEmbeddings})`);
      const blocks = Math.ceil(kvLen / bs);
      if (blockTable.length < blocks)
        throw new Error(`forward: sequence ${s}: ${kvLen} tokens need ${blocks} blocks of ${bs}; its block table has ${blockTable.length}`);
      for (let j = 0; j < blocks; j++) {
        const id = blockTable[j];
        if (!Number.isInteger(id) || id < 0 || id >= kv.numBlocks)
          throw new Error(`forward: sequence ${s}: block table entry ${j} = ${id} is outside the pool of ${kv.numBlocks} blocks`);
        ws.blockTables[s * maxBlocksPerSeq + j] = id;
      }
      for (let i = 0; i < tokens.length; i++, t++) {
        const id = tokens[i];
        if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
          throw new Error(`forward: sequence ${s}: token ${id} is outside the vocabulary of ${c.vocabSize}`);
        const pos = numCached + i;
        ws.tokens[t] = id;
        ws.positions[t] = pos;
        ws.slots[t] = blockTable[Math.floor(pos / bs)] * bs + (pos % bs);
      }
      ws.qStart[s + 1] = t;
      ws.kvLen[s] = kvLen;
      ws.lastRows[s] = t - 1;
    });
    return { numTokens: T, maxBlocksPerSeq };
  }

  /** Frees the workspace and the weights. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#graphs?.dispose();
    for (const t of [this.#ws.hidden, this.#ws.normed, this.#ws.scratch, this.#ws.last, this.#ws.logits, this.#rowLogits]) t?.dispose();
    disposeWeights(this.weights);
  }
}

function allocateWorkspace(device: Device, c: ModelConfig, scratchWidth: number, maxT: number, maxS: number, task: ModelTask): Workspace {
  return allocateAll(device, `CausalLM: cannot allocate the workspace for ${maxT} tokens and ${maxS} sequences`, (alloc) => ({
    hidden: alloc([maxT, c.hiddenSize]),
    normed: alloc([maxT, c.hiddenSize]),
    scratch: alloc([maxT * scratchWidth]),
    last: alloc([maxS, c.hiddenSize]),
    logits: task === 'generate' ? alloc([maxS, c.vocabSize]) : undefined, // embeddings compute no logits
    tokens: new Int32Array(maxT),
    positions: new Int32Array(maxT),
    slots: new Int32Array(maxT),
    lastRows: new Int32Array(maxS),
    qStart: new Int32Array(maxS + 1),
    kvLen: new Int32Array(maxS),
    blockTables: new Int32Array(maxS * 64),
  }));
}
