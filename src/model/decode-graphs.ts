// Decode steps as graphs (CUDA graphs, or the CPU backend's recorded op lists): the first decode step
// of a shape is recorded (Device.captureGraph), later ones replay it with their own metadata — one
// launch per step instead of ~13 per layer, and no per-op work in JavaScript.
//
// A graph is recorded for a batch-size bucket and a block-table width (both rounded up, so a few
// graphs serve every step). A batch smaller than its bucket is padded with copies of its first
// sequence: the copies compute exactly what that sequence computes and write the same K/V to the same
// slot, so they change nothing, and their logits rows are ignored. On a host-memory device (the CPU)
// padded rows cost real compute (the 9–64-row matmuls are not memory-bound there) while recording is
// cheap, so each batch size gets its own graph instead.
import type { AttentionBatch, Device, DeviceGraph } from '../runtime/index.js';
import type { KvCachePool } from '../kv/pool.js';

/** The host metadata of one forward step: what the ops read besides tensors. */
export interface StepMeta {
  tokens: Int32Array;
  positions: Int32Array;
  slots: Int32Array;
  lastRows: Int32Array;
  attention: AttentionBatch;
}

/** Queues the step's ops for `numSeqs` sequences of one new token each, reading `meta`. */
export type RecordStep = (meta: StepMeta, numSeqs: number) => void;

interface Entry {
  graph: DeviceGraph;
  meta: StepMeta;
  inputs: Int32Array[];
}

const MAX_GRAPHS = 32;

export class DecodeGraphs {
  readonly #device: Device;
  readonly #maxSeqs: number;
  readonly #maxPositions: number;
  readonly #exactBatches: boolean;
  readonly #graphs = new Map<string, Entry>(); // least recently used first
  #kv: KvCachePool | undefined;

  /** maxSeqs bounds the batch buckets; maxPositions (the longest context) the block-table widths. */
  constructor(device: Device, maxSeqs: number, maxPositions: number) {
    this.#device = device;
    this.#maxSeqs = maxSeqs;
    this.#maxPositions = maxPositions;
    this.#exactBatches = device.hostMemory;
  }

  get size(): number {
    return this.#graphs.size;
  }

  /** Runs the decode step `meta` (numSeqs sequences, one token each) through a graph, recording it first if needed. */
  run(meta: StepMeta, numSeqs: number, kv: KvCachePool, record: RecordStep): void {
    if (kv !== this.#kv) {
      this.dispose(); // graphs write into the cache they were recorded with
      this.#kv = kv;
    }
    const seqs = this.#exactBatches ? numSeqs : bucket(numSeqs, this.#maxSeqs);
    const needed = meta.attention.maxBlocksPerSeq;
    const width = Math.max(needed, Math.min(nextPowerOfTwo(needed), Math.ceil(this.#maxPositions / kv.blockSize)));
    const key = `${seqs}x${width}`;
    let entry = this.#graphs.get(key);
    if (entry) {
      this.#graphs.delete(key);
      pad(entry.meta, meta, numSeqs, seqs);
    } else {
      const padded = allocate(seqs, width);
      pad(padded, meta, numSeqs, seqs);
      const inputs = stepInputs(padded);
      entry = { meta: padded, inputs, graph: this.#device.captureGraph(inputs, () => record(padded, seqs)) };
      if (this.#graphs.size >= MAX_GRAPHS) this.#evictOldest();
    }
    this.#graphs.set(key, entry);
    entry.graph.replay(entry.inputs);
  }

  dispose(): void {
    for (const e of this.#graphs.values()) e.graph.dispose();
    this.#graphs.clear();
    this.#kv = undefined;
  }

  #evictOldest(): void {
    const [key, entry] = this.#graphs.entries().next().value as [string, Entry];
    entry.graph.dispose();
    this.#graphs.delete(key);
  }
}

/** Batch-size buckets: powers of two up to 8, then multiples of 8, never above maxSeqs. */
export function bucket(numSeqs: number, maxSeqs: number): number {
  const b = numSeqs <= 8 ? nextPowerOfTwo(numSeqs) : Math.ceil(numSeqs / 8) * 8;
  return Math.min(b, maxSeqs);
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(n, 1)));
}

function allocate(seqs: number, width: number): StepMeta {
  return {
    tokens: new Int32Array(seqs),
    positions: new Int32Array(seqs),
    slots: new Int32Array(seqs),
    lastRows: Int32Array.from({ length: seqs }, (_, i) => i),
    attention: {
      qStart: Int32Array.from({ length: seqs + 1 }, (_, i) => i),
      kvLen: new Int32Array(seqs),
      blockTables: new Int32Array(seqs * width),
      maxBlocksPerSeq: width,
    },
  };
}

/** The step's int32 metadata arrays: a graph's inputs, and what an eager step stages in one upload (Device.stageStep). */
export function stepInputs(m: StepMeta): Int32Array[] {
  return [m.tokens, m.positions, m.slots, m.lastRows, m.attention.qStart, m.attention.kvLen, m.attention.blockTables];
}

/** Copies the step into the graph's arrays; rows numSeqs.. repeat sequence 0. */
function pad(dst: StepMeta, src: StepMeta, numSeqs: number, seqs: number): void {
  const width = dst.attention.maxBlocksPerSeq;
  const srcWidth = src.attention.maxBlocksPerSeq;
  const tables = dst.attention.blockTables;
  tables.fill(0);
  for (let i = 0; i < seqs; i++) {
    const s = i < numSeqs ? i : 0;
    dst.tokens[i] = src.tokens[s];
    dst.positions[i] = src.positions[s];
    dst.slots[i] = src.slots[s];
    dst.attention.kvLen[i] = src.attention.kvLen[s];
    tables.set(src.attention.blockTables.subarray(s * srcWidth, (s + 1) * srcWidth), i * width);
  }
}
