// Table rows for embedding, matmul and swiglu.
import { ops, type Device } from '../../../src/runtime/index.js';
import { TOLERANCE } from '../../reference/compare.js';
import { embeddingRef, matmulRef, swigluRef } from '../../reference/dense.js';
import { poisoned } from '../../reference/poison.js';
import { Rng } from '../../reference/random.js';
import { storedAs, type WeightType } from '../../reference/rounding.js';
import { caseName, isCuda, once, type OpCase } from './op_case.js';

const WEIGHT_TYPES: WeightType[] = ['f32', 'bf16', 'f16'];

function embeddingCase(table: WeightType, vocab: number, hidden: number, numTokens: number): OpCase {
  const name = caseName('embedding', { table, vocab, hidden, T: numTokens });
  const inputs = once(() => {
    const rng = new Rng(name);
    const values = rng.normals(vocab * hidden);
    // First and last rows, a repeat, and random rows.
    const ids = Int32Array.from({ length: numTokens }, (_, t) =>
      t === 0 ? vocab - 1 : t === 1 ? 0 : t === 2 ? vocab - 1 : rng.int(0, vocab));
    return { values, ids };
  });
  return {
    name,
    async run(device: Device) {
      const { values, ids } = inputs();
      const out = poisoned(device, [numTokens, hidden]);
      ops.embedding(ids, device.tensor(values, [vocab, hidden], table), out.tensor);
      await out.checkGuards('out');
      return { out: await out.tensor.read() };
    },
    expected: once(() => ({ out: embeddingRef(inputs().ids, storedAs(inputs().values, table), hidden) })),
    tolerance: () => TOLERANCE.exact,
  };
}

type ResidualMode = 'none' | 'separate' | 'alias';

function matmulCase(w: WeightType, M: number, N: number, K: number, residual: ResidualMode): OpCase {
  const name = caseName('matmul', { w, M, N, K, residual });
  const inputs = once(() => {
    const rng = new Rng(name);
    return { x: rng.normals(M * K), w: rng.normals(N * K, 1 / Math.sqrt(K)), r: rng.normals(M * N) };
  });
  return {
    name,
    // The simulator runs M × N × K multiply-adds thread by thread on the host.
    heavyForSim: M * N * K > 60e6,
    async run(device: Device) {
      const { x, w: wv, r } = inputs();
      const xt = device.tensor(x, [M, K]);
      const wt = device.tensor(wv, [N, K], w);
      if (residual === 'alias') {
        const y = device.tensor(r, [M, N]);
        ops.matmul(xt, wt, y, { residual: y });
        return { y: await y.read() };
      }
      const y = poisoned(device, [M, N]);
      ops.matmul(xt, wt, y.tensor, residual === 'separate' ? { residual: device.tensor(r, [M, N]) } : {});
      await y.checkGuards('y');
      return { y: await y.tensor.read() };
    },
    expected: once(() => {
      const { x, w: wv, r } = inputs();
      return { y: matmulRef(x, storedAs(wv, w), M, N, K, residual === 'none' ? undefined : r) };
    }),
    // Above 16 rows the CUDA matmul runs bf16/f16 weights on tensor cores with x rounded to the
    // weight's type (native/cuda/matmul.cu, launch_matmul); the GEMV path below keeps x in f32.
    tolerance: (device) => (isCuda(device) && w !== 'f32' && M > 16 ? TOLERANCE.roundedActivations[w] : TOLERANCE.f32),
  };
}

/**
 * A fused projection: the product's columns split into one poisoned output per part (awkward widths
 * so part boundaries fall inside threads' W-row chunks and tiles). `w` is one dtype (one stacked
 * matrix) or a dtype per part (one matrix per output, as a checkpoint's q/k/v are kept).
 */
function splitMatmulCase(w: WeightType | WeightType[], M: number, cols: number[], K: number): OpCase {
  const N = cols.reduce((a, b) => a + b, 0);
  const name = caseName('matmul', { w: Array.isArray(w) ? w.join('+') : w, M, split: cols.join('+'), K });
  const types = Array.isArray(w) ? w : cols.map(() => w);
  const inputs = once(() => {
    const rng = new Rng(name);
    return { x: rng.normals(M * K), w: cols.map((n) => rng.normals(n * K, 1 / Math.sqrt(K))) };
  });
  return {
    name,
    async run(device: Device) {
      const { x, w: parts } = inputs();
      const outs = cols.map((n) => poisoned(device, [M, n]));
      const weights = Array.isArray(w)
        ? parts.map((values, j) => device.tensor(values, [cols[j], K], w[j]))
        : device.tensor(Float32Array.from(parts.flatMap((p) => Array.from(p))), [N, K], w);
      ops.matmul(device.tensor(x, [M, K]), weights, outs.map((o) => o.tensor));
      const result: Record<string, Float32Array> = {};
      for (const [j, o] of outs.entries()) {
        await o.checkGuards(`out${j}`);
        result[`out${j}`] = await o.tensor.read();
      }
      return result;
    },
    expected: once(() => {
      const { x, w: parts } = inputs();
      return Object.fromEntries(parts.map((values, j) => [`out${j}`, matmulRef(x, storedAs(values, types[j]), M, cols[j], K)]));
    }),
    tolerance: (device) => {
      const rounded = types.filter((t) => t !== 'f32');
      return isCuda(device) && rounded.length > 0 && M > 16 ? Math.max(...rounded.map((t) => TOLERANCE.roundedActivations[t])) : TOLERANCE.f32;
    },
  };
}

type SwigluMode = 'separate' | 'out=gate' | 'out=up';

function swigluCase(rows: number, dim: number, mode: SwigluMode): OpCase {
  const name = caseName('swiglu', { rows, dim, out: mode });
  const inputs = once(() => {
    const rng = new Rng(name);
    const gate = rng.normals(rows * dim, 3);
    // Saturated gates: e^−g overflows f32 for g < −88, silu must still be finite (→ −0).
    gate[0] = -100;
    gate[gate.length - 1] = 90;
    return { gate, up: rng.normals(rows * dim) };
  });
  return {
    name,
    async run(device: Device) {
      const { gate, up } = inputs();
      const g = device.tensor(gate, [rows, dim]);
      const u = device.tensor(up, [rows, dim]);
      if (mode !== 'separate') {
        const out = mode === 'out=gate' ? g : u;
        ops.swiglu(g, u, out);
        return { out: await out.read() };
      }
      const out = poisoned(device, [rows, dim]);
      ops.swiglu(g, u, out.tensor);
      await out.checkGuards('out');
      return { out: await out.tensor.read() };
    },
    expected: once(() => ({ out: swigluRef(inputs().gate, inputs().up) })),
    tolerance: () => TOLERANCE.elementwise,
  };
}

export function denseCases(): OpCase[] {
  const cases: OpCase[] = [];
  for (const table of WEIGHT_TYPES) {
    cases.push(embeddingCase(table, 1001, 96, 17));
    cases.push(embeddingCase(table, 257, 1001, 5));
  }
  const residuals: ResidualMode[] = ['none', 'separate', 'alias'];
  WEIGHT_TYPES.forEach((w, iw) => {
    [1, 3, 17, 129, 200].forEach((M, iM) => {
      [96, 1000, 1001].forEach((K, iK) => cases.push(matmulCase(w, M, 257, K, residuals[(iw + iM + iK) % 3])));
    });
    // The CPU's row-count thresholds: streaming ≤ 8, widened dot tiles 9..64, blocked GEMM above.
    cases.push(matmulCase(w, 9, 133, 1001, residuals[iw % 3]));
    cases.push(matmulCase(w, 64, 75, 333, residuals[(iw + 1) % 3]));
    cases.push(matmulCase(w, 65, 75, 333, residuals[(iw + 2) % 3]));
    cases.push(splitMatmulCase(w, 42, [75, 37, 37], 133));
    cases.push(matmulCase(w, 1, 3, 1001, 'separate'));
    cases.push(matmulCase(w, 129, 3, 96, 'alias'));
    // GEMV row chunks: M = 9..16 runs as 2 chunks of ⌈M/2⌉ rows in one launch (the last one partial at
    // odd M); a narrow N with K ≥ 4 lane sweeps splits K over the CTA's warps (few CTAs), also with
    // partial tails of the 16-byte-vector loop.
    cases.push(matmulCase(w, 9, 257, 1000, residuals[iw % 3]));
    cases.push(matmulCase(w, 16, 257, 96, residuals[(iw + 1) % 3]));
    cases.push(matmulCase(w, 1, 13, 1064, 'alias'));
    cases.push(matmulCase(w, 11, 13, 1064, 'separate'));
    // q/k/v-like and gate/up-like splits, decode (streaming) and prefill (blocked) row counts.
    cases.push(splitMatmulCase(w, 1, [75, 37, 37], 1001));
    cases.push(splitMatmulCase(w, 3, [13, 200], 96));
    cases.push(splitMatmulCase(w, 19, [75, 37, 37], 133));
  });
  // One matrix per output, in different dtypes (a checkpoint's q/k/v as they are).
  cases.push(splitMatmulCase(['bf16', 'f16', 'f32'], 1, [75, 37, 37], 1001));
  cases.push(splitMatmulCase(['f32', 'bf16'], 5, [13, 200], 96));
  cases.push(splitMatmulCase(['f16', 'bf16', 'bf16'], 23, [75, 37, 37], 133));
  for (const [rows, dim] of [[1, 96], [17, 1001], [3, 3072]])
    for (const mode of ['separate', 'out=gate', 'out=up'] as SwigluMode[]) cases.push(swigluCase(rows, dim, mode));
  return cases;
}
