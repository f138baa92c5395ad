// Graphs: a decode-shaped step (embedding → norm → projections → QK-norm + RoPE → KV write → paged
// attention → output projection) recorded once and replayed with new metadata must compute what the
// same ops compute eagerly; replays are checked like the ops they stand for; what cannot be
// recorded is refused with a clear error.
import { describe, expect, it } from 'vitest';
import { ops, ropeFrequencies, type Device, type DeviceGraph } from '../../src/runtime/index.js';
import { assertBitExact, assertClose, TOLERANCE } from '../reference/compare.js';
import { Rng } from '../reference/random.js';
import { device, devicesUnderTest } from './devices.js';

const VOCAB = 37;
const HIDDEN = 72;
const HQ = 4;
const HKV = 2;
const D = 64;
const BLOCK = 16;
const NUM_BLOCKS = 11;
const MAX_BLOCKS = 9; // 144 tokens: more decode splits than the eager path picks for these contexts
const B = 3;

const rng = new Rng('graph');
const weights = {
  embedding: rng.normals(VOCAB * HIDDEN),
  norm: rng.uniforms(HIDDEN, 0.5, 1.5),
  q: rng.normals(HQ * D * HIDDEN, 0.1),
  k: rng.normals(HKV * D * HIDDEN, 0.1),
  v: rng.normals(HKV * D * HIDDEN, 0.1),
  o: rng.normals(HIDDEN * HQ * D, 0.1),
  qNorm: rng.uniforms(D, 0.5, 1.5),
  kNorm: rng.uniforms(D, 0.5, 1.5),
};
const pools = { k: rng.normals(NUM_BLOCKS * BLOCK * HKV * D), v: rng.normals(NUM_BLOCKS * BLOCK * HKV * D) };

/** One model's worth of state on a device: bf16 weights, a bf16 paged cache and the activations. */
function state(dev: Device) {
  const cacheShape = [NUM_BLOCKS, BLOCK, HKV, D];
  return {
    embedding: dev.tensor(weights.embedding, [VOCAB, HIDDEN], 'bf16'),
    norm: dev.tensor(weights.norm, [HIDDEN], 'bf16'),
    q: dev.tensor(weights.q, [HQ * D, HIDDEN], 'bf16'),
    k: dev.tensor(weights.k, [HKV * D, HIDDEN], 'bf16'),
    v: dev.tensor(weights.v, [HKV * D, HIDDEN], 'bf16'),
    o: dev.tensor(weights.o, [HIDDEN, HQ * D], 'bf16'),
    qNorm: dev.tensor(weights.qNorm, [D], 'bf16'),
    kNorm: dev.tensor(weights.kNorm, [D], 'bf16'),
    cache: { k: dev.tensor(pools.k, cacheShape, 'bf16'), v: dev.tensor(pools.v, cacheShape, 'bf16') },
    hidden: dev.empty([B, HIDDEN]),
    normed: dev.empty([B, HIDDEN]),
    qa: dev.empty([B, HQ, D]),
    ka: dev.empty([B, HKV, D]),
    va: dev.empty([B, HKV, D]),
    attn: dev.empty([B, HQ, D]),
  };
}
type State = ReturnType<typeof state>;

/** The step's metadata, as the model runner keeps it: one set of arrays rewritten in place. */
interface Meta {
  ids: Int32Array;
  positions: Int32Array;
  slots: Int32Array;
  qStart: Int32Array;
  kvLen: Int32Array;
  blockTables: Int32Array;
}
const newMeta = (): Meta => ({
  ids: new Int32Array(B), positions: new Int32Array(B), slots: new Int32Array(B),
  qStart: Int32Array.from({ length: B + 1 }, (_, i) => i), kvLen: new Int32Array(B),
  blockTables: new Int32Array(B * MAX_BLOCKS),
});
const inputsOf = (m: Meta) => [m.ids, m.positions, m.slots, m.qStart, m.kvLen, m.blockTables];

/** Fills `m` for sequences whose new token sits at context length kvLens[s] (distinct blocks per sequence). */
function fill(m: Meta, ids: number[], kvLens: number[], tables: number[][]) {
  for (let s = 0; s < B; s++) {
    const pos = kvLens[s] - 1;
    m.ids[s] = ids[s];
    m.positions[s] = pos;
    m.kvLen[s] = kvLens[s];
    m.blockTables.fill(0, s * MAX_BLOCKS, (s + 1) * MAX_BLOCKS);
    m.blockTables.set(tables[s], s * MAX_BLOCKS);
    m.slots[s] = tables[s][Math.floor(pos / BLOCK)] * BLOCK + (pos % BLOCK);
  }
}

function step(st: State, m: Meta) {
  ops.embedding(m.ids, st.embedding, st.hidden);
  ops.rmsnorm(st.hidden, st.norm, st.normed, { eps: 1e-6 });
  ops.matmul(st.normed, st.q, st.qa.view([B, HQ * D]));
  ops.matmul(st.normed, st.k, st.ka.view([B, HKV * D]));
  ops.matmul(st.normed, st.v, st.va.view([B, HKV * D]));
  ops.qkNormRope(st.qa, st.ka, m.positions, { rope: ropeFrequencies(D, { theta: 1e6 }), eps: 1e-6, qWeight: st.qNorm, kWeight: st.kNorm });
  ops.kvWrite(st.cache, st.ka, st.va, m.slots);
  ops.attention(st.cache, st.qa, st.attn, { qStart: m.qStart, kvLen: m.kvLen, blockTables: m.blockTables, maxBlocksPerSeq: MAX_BLOCKS });
  ops.matmul(st.attn.view([B, HQ * D]), st.o, st.hidden, { residual: st.hidden });
}

const STEPS: [ids: number[], kvLens: number[], tables: number[][]][] = [
  [[3, 36, 17], [5, 17, 33], [[4], [0, 7], [9, 2, 5]]],
  [[0, 8, 21], [40, 1, 70], [[4, 1, 3], [6], [9, 2, 5, 8, 10]]],
];

async function snapshot(st: State) {
  return { hidden: await st.hidden.toFloat32(), k: await st.cache.k.toFloat32(), v: await st.cache.v.toFloat32() };
}

for (const d of devicesUnderTest()) {
  describe.skipIf(d.skip)(`graphs on ${d.label}`, () => {
    it('a replayed step computes what the eager ops compute, with each replay\'s metadata', async () => {
      const dev = device(d.name);
      expect(dev.supportsGraphs).toBe(true);
      const eager = state(dev);
      const graphed = state(dev);
      const meta = newMeta();
      fill(meta, ...STEPS[0]);
      const untouched = await snapshot(graphed);
      const graph = dev.captureGraph(inputsOf(meta), () => step(graphed, meta));
      const recorded = await snapshot(graphed);
      assertBitExact(recorded.hidden, untouched.hidden, 'hidden after the capture (nothing runs while recording)');
      assertBitExact(recorded.k, untouched.k, 'K cache after the capture');
      try {
        for (const s of STEPS) {
          fill(meta, ...s);
          step(eager, meta);
          graph.replay(inputsOf(meta));
          const want = await snapshot(eager);
          const got = await snapshot(graphed);
          assertBitExact(got.k, want.k, 'K cache');
          assertBitExact(got.v, want.v, 'V cache');
          // Attention splits its contexts differently in the graph (sized for MAX_BLOCKS): f32 reassociation.
          assertClose(got.hidden, want.hidden, TOLERANCE.f32, 'hidden');
        }
      } finally {
        graph.dispose();
      }
    });

    it('keeps the tensors it uses alive after the caller disposes them', async () => {
      const dev = device(d.name);
      const st = state(dev);
      const ref = state(dev);
      const meta = newMeta();
      fill(meta, ...STEPS[1]);
      const graph = dev.captureGraph(inputsOf(meta), () => step(st, meta));
      for (const t of [st.q, st.k, st.v, st.o, st.embedding]) t.dispose();
      graph.replay(inputsOf(meta));
      step(ref, meta);
      const out = await st.hidden.toFloat32();
      assertClose(out, await ref.hidden.toFloat32(), TOLERANCE.f32, 'hidden');
      graph.dispose();
      expect(graph.disposed).toBe(true);
    });

    it('checks every replay like the ops it stands for, and queues nothing when a check fails', async () => {
      const dev = device(d.name);
      const st = state(dev);
      const meta = newMeta();
      fill(meta, ...STEPS[0]);
      const graph: DeviceGraph = dev.captureGraph(inputsOf(meta), () => step(st, meta));
      graph.replay(inputsOf(meta));
      const before = await snapshot(st);
      const bad = (edit: (m: Meta) => void) => {
        const m = newMeta();
        fill(m, ...STEPS[0]);
        edit(m);
        return inputsOf(m);
      };
      expect(() => graph.replay(bad((m) => (m.ids[1] = VOCAB)))).toThrow(/^replay: embedding: ids\[1\] = 37 is outside \[0, 37\)/);
      expect(() => graph.replay(bad((m) => (m.slots[2] = NUM_BLOCKS * BLOCK)))).toThrow(/^replay: kvWrite: slots\[2\] = 176 is outside/);
      expect(() => graph.replay(bad((m) => (m.positions[0] = -1)))).toThrow(/^replay: qkNormRope: positions\[0\] = -1/);
      expect(() => graph.replay(bad((m) => (m.blockTables[MAX_BLOCKS] = NUM_BLOCKS)))).toThrow(/^replay: attention: blockTables\[1\]\[0\] = 11 is outside the pool/);
      expect(() => graph.replay(bad((m) => (m.kvLen[0] = MAX_BLOCKS * BLOCK + 1)))).toThrow(/^replay: attention: kvLen\[0\] = 145 needs 10 blocks but maxBlocksPerSeq is 9/);
      expect(() => graph.replay(bad((m) => m.qStart.set([0, 2, 2, 3])))).toThrow(/^replay: attention: a captured attention takes one query token per sequence \(sequence 0 has 2\)/);
      expect(() => graph.replay([meta.ids])).toThrow(/^replay: inputs must be an array of 6 Int32Array, as captured/);
      expect(() => graph.replay([new Int32Array(B + 1), ...inputsOf(meta).slice(1)])).toThrow(/^replay: inputs\[0\] must be an Int32Array of 3 elements/);
      const after = await snapshot(st);
      assertBitExact(after.hidden, before.hidden, 'hidden after refused replays');
      assertBitExact(after.k, before.k, 'K cache after refused replays');
      graph.dispose();
      expect(() => graph.replay(inputsOf(meta))).toThrow(/^replay: the graph was disposed/);
    });

    it('refuses what cannot be recorded, and the device keeps working', async () => {
      const dev = device(d.name);
      const st = state(dev);
      const meta = newMeta();
      fill(meta, ...STEPS[0]);
      const refused = (record: () => void, message: RegExp) => {
        expect(() => dev.captureGraph(inputsOf(meta), record)).toThrow(message);
      };
      // Calls that answer with a promise: refused by a throw or a rejection; the capture goes on.
      const rejected = async (call: () => Promise<unknown>, message: RegExp) => {
        let pending: Promise<unknown> = Promise.resolve();
        dev.captureGraph(inputsOf(meta), () => {
          try {
            pending = call();
          } catch (e) {
            pending = Promise.reject(e);
          }
        }).dispose();
        await expect(pending).rejects.toThrow(message);
      };
      await rejected(() => st.hidden.toFloat32(), /^read: not allowed while a graph is being captured/);
      await rejected(() => dev.synchronize(), /^synchronize: not allowed while a graph is being captured/);
      await rejected(() => ops.sample(st.hidden, [{ temperature: 0 }, { temperature: 0 }, { temperature: 0 }]), /^sample: not allowed while a graph is being captured/);
      refused(() => st.hidden.write(new Float32Array(B * HIDDEN)), /^write: not allowed while a graph is being captured/);
      refused(() => dev.captureGraph([], () => {}), /^beginCapture: a capture is already in progress/);
      // A prefill (two query tokens for a sequence) is not a decode step.
      const prefill = { ...meta, qStart: Int32Array.of(0, 2, 2, 3) };
      refused(() => step(st, prefill), /^attention: a captured attention takes one query token per sequence \(sequence 0 has 2\)/);
      refused(() => {
        meta.ids[0] = 5;
        ops.embedding(meta.ids, st.embedding, st.hidden);
      }, /^embedding: a graph input changed between beginCapture and this op/);
      fill(meta, ...STEPS[0]);
      // Still usable: an eager step and a new capture run.
      step(st, meta);
      const graph = dev.captureGraph(inputsOf(meta), () => step(st, meta));
      graph.replay(inputsOf(meta));
      await dev.synchronize();
      graph.dispose();
    });
  });
}

describe('graphs on cpu', () => {
  // A replay runs its ops back to back on the stream worker and the pool: many tiny parallel ops
  // (the pool's workers spinning or waking between them), each replay with new ids, must give
  // exactly the eager results.
  it('replay many small ops with new inputs each time, bit for bit as the eager ops', async () => {
    const dev = device('cpu');
    const rows = 5;
    const dim = 203;
    const table = dev.tensor(rng.normals(VOCAB * dim), [VOCAB, dim]);
    const weight = dev.tensor(rng.uniforms(dim, 0.5, 1.5), [dim], 'bf16');
    const make = () => ({ x: dev.empty([rows, dim]), y: dev.empty([rows, dim]), z: dev.empty([rows, dim]) });
    const chain = (t: ReturnType<typeof make>, ids: Int32Array) => {
      for (let i = 0; i < 60; i++) {
        ops.embedding(ids, table, t.x);
        ops.rmsnorm(t.x, weight, t.y, { eps: 1e-6, residual: t.z, sumOut: t.z });
        ops.swiglu(t.y, t.x, t.z);
      }
    };
    const eager = make();
    const graphed = make();
    for (const t of [eager, graphed]) t.z.write(new Float32Array(rows * dim).fill(0.25));
    const ids = new Int32Array(rows);
    const graph = dev.captureGraph([ids], () => chain(graphed, ids));
    const draw = new Rng('many small ops');
    for (let r = 0; r < 40; r++) {
      for (let i = 0; i < rows; i++) ids[i] = draw.int(0, VOCAB);
      chain(eager, ids);
      graph.replay([ids]);
    }
    assertBitExact(await graphed.z.toFloat32(), await eager.z.toFloat32(), 'z after 40 replays of 180 ops');
    graph.dispose();
  });
});
