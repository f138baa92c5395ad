// CPU precision 'fast' (activations rounded to bf16, AVX512-BF16 dot products for bf16 weights) through
// the addon: the option's plumbing and fallback, matmuls against float64 references (strict on the
// bf16-rounded x, within the rounding bound of the exact result), and a small random bf16 Qwen3 whose
// fast logits stay close to the exact ones. The fast checks are skipped where the CPU (or build) lacks
// AVX512-BF16; the exact path's bit-for-bit behaviour is covered by the existing matmul tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device, fromBf16, ops, toBf16 } from '../../src/runtime/index.js';
import { CausalLM } from '../../src/model/step.js';
import { randomCheckpoint } from '../../src/model/random-checkpoint.js';
import { Rng } from '../reference/random.js';

const fast = Device.open('cpu', { precision: 'fast', threads: 2 });
const exact = Device.open('cpu', { precision: 'exact', threads: 2 });
// Fast precision may be in effect for quantized weights only (int8 dot products, test/runtime/int8-dot.test.ts).
const skip = fast.description.includes('bf16 dot products') ? false : `this CPU or build lacks AVX512-BF16 (${fast.description})`;
const root = mkdtempSync(path.join(tmpdir(), 'paralon-cpu-precision-'));
afterAll(() => {
  fast.dispose();
  exact.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('cpu precision option', () => {
  it('defaults to exact, reports what is in effect, and rejects unknown values', () => {
    expect(exact.precision).toBe('exact');
    const d = Device.open('cpu', { threads: 1 });
    expect(d.precision).toBe('exact');
    d.dispose();
    expect(['exact', 'fast']).toContain(fast.precision);
    expect(fast.description.includes('fast precision')).toBe(fast.precision === 'fast');
    expect(() => Device.open('cpu', { precision: 'fastest' as 'fast' })).toThrow(/precision must be 'exact' or 'fast'/);
    const sim = Device.open('cuda-sim', { precision: 'fast' });
    expect(sim.precision).toBe('exact'); // a CPU-only setting
    sim.dispose();
  });
});

describe.skipIf(skip)(`fast precision matmul${skip ? ` (skipped: ${skip})` : ''}`, () => {
  for (const M of [1, 3, 9, 17, 70, 300]) {
    it(`bf16 weights, M = ${M}: the float64 result of bf16-rounded x, within the rounding bound of the exact one`, async () => {
      const rng = new Rng(`cpu-precision ${M}`);
      const N = 133, K = M % 2 ? 1001 : 259;
      const x = Float32Array.from({ length: M * K }, () => rng.normal());
      const res = Float32Array.from({ length: M * N }, () => rng.normal());
      const wBits = toBf16(Float32Array.from({ length: N * K }, () => rng.normal() * 0.05));
      const w = fromBf16(wBits);
      const xr = fromBf16(toBf16(x));
      const y = fast.tensor(new Float32Array(M * N).fill(NaN), [M, N]);
      ops.matmul(fast.tensor(x, [M, K]), fast.tensor(wBits, [N, K], 'bf16'), y, { residual: fast.tensor(res, [M, N]) });
      const got = await y.toFloat32();
      let strict = 0, scale = 0, bound = 0;
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let e = res[m * N + n], r = e, abs = 0;
          for (let k = 0; k < K; k++) {
            const wv = w[n * K + k];
            e += x[m * K + k] * wv;
            r += xr[m * K + k] * wv;
            abs += Math.abs(x[m * K + k] * wv);
          }
          const g = got[m * N + n];
          scale = Math.max(scale, Math.abs(r));
          strict = Math.max(strict, Number.isFinite(g) ? Math.abs(g - r) : Infinity);
          // each x moves by ≤ 2^-9 relative when rounded to bf16: |Δy| ≤ 2^-9 · Σ|x·w| (2^-8 with room)
          bound = Math.max(bound, Math.abs(g - e) / (abs / 256 + 1e-6));
        }
      expect(strict / scale).toBeLessThanOrEqual(1e-5);
      expect(bound).toBeLessThanOrEqual(1);
    });
  }
});

describe.skipIf(skip)(`fast precision model${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const models: CausalLM[] = [];
  beforeAll(async () => {
    const dir = path.join(root, 'qwen3');
    randomCheckpoint({ dir, seed: 19, hiddenSize: 200, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 333, vocabSize: 301, numLayers: 3, dtype: 'bf16' });
    for (const d of [exact, fast]) models.push(await CausalLM.load(dir, d, { maxBatchTokens: 64, maxSeqs: 1, graphs: false }));
  });
  afterAll(() => models.forEach((m) => m.dispose()));

  it('keeps the logits of a random bf16 Qwen3 close to exact over a prefill and greedy decode steps', async () => {
    const rng = new Rng('cpu-precision model');
    const prompt = Array.from({ length: 37 }, () => Math.floor(rng.uniform(0, 301)));
    const table = [0, 1, 2, 3, 4, 5];
    const kvs = models.map((m) => m.createKvCache({ blockSize: 8, numBlocks: 6, dtype: 'f32' }));
    const softmax = (l: Float32Array) => {
      const m = Math.max(...l);
      const e = Array.from(l, (v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    };
    const argmax = (l: Float32Array) => l.reduce((b, v, i) => (v > l[b] ? i : b), 0);
    let chunk = { tokens: prompt, numCached: 0 };
    let agree = 0, maxProbDiff = 0, positions = 0;
    for (let step = 0; step < 9; step++) {
      const [le, lf] = await Promise.all(models.map((m, i) => m.forward([{ ...chunk, blockTable: table }], kvs[i]).toFloat32()));
      const pe = softmax(le), pf = softmax(lf);
      for (let j = 0; j < pe.length; j++) maxProbDiff = Math.max(maxProbDiff, Math.abs(pe[j] - pf[j]));
      positions++;
      // Top-1 agrees, or the exact run's top two were within the drift (a near tie the rounding may flip).
      const te = argmax(le), tf = argmax(lf);
      if (te === tf || Math.abs(pe[te] - pe[tf]) <= 2 * maxProbDiff) agree++;
      chunk = { tokens: [te], numCached: chunk.numCached + chunk.tokens.length }; // both follow the exact run
    }
    kvs.forEach((k) => k.dispose());
    expect(agree).toBe(positions);
    expect(maxProbDiff).toBeLessThan(0.02);
    expect(maxProbDiff).toBeGreaterThan(0); // the fast path did run
  });
});
