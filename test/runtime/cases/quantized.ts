// Table rows for matmul and embedding with ggml-quantized weights (q8_0, q4_k, q5_k, q6_k), against the
// float64 product of the dequantized blocks (src/quant's reference) with f64 activations.
import { dtypeBlock, ops, quantDTypes, type Device, type QuantDType } from '../../../src/runtime/index.js';
import { dequantize, quantize } from '../../../src/quant/index.js';
import { TOLERANCE } from '../../reference/compare.js';
import { embeddingRef, matmulRef } from '../../reference/dense.js';
import { poisoned } from '../../reference/poison.js';
import { Rng } from '../../reference/random.js';
import { caseName, isCuda, once, type OpCase } from './op_case.js';

type ResidualMode = 'none' | 'separate' | 'alias';

function quantMatmulCase(w: QuantDType, M: number, N: number, K: number, residual: ResidualMode): OpCase {
  const name = caseName('matmul', { w, M, N, K, residual });
  const inputs = once(() => {
    const rng = new Rng(name);
    const blocks = quantize(rng.normals(N * K, 1 / Math.sqrt(K)), w);
    return { x: rng.normals(M * K), blocks, r: rng.normals(M * N) };
  });
  return {
    name,
    async run(device: Device) {
      const { x, blocks, r } = inputs();
      const xt = device.tensor(x, [M, K]);
      const wt = device.tensor(blocks, [N, K], w);
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
      const { x, blocks, r } = inputs();
      return { y: matmulRef(x, dequantize(blocks, w), M, N, K, residual === 'none' ? undefined : r) };
    }),
    // Activations stay f32 and meet the dequantized weights in f32 (CPU; CUDA GEMV): the f32 bound of
    // float weights. Above 16 rows CUDA runs tensor cores on x and the decoded W tiles rounded to f16.
    tolerance: (device) => (isCuda(device) && M > 16 ? TOLERANCE.roundedActivations.f16 : TOLERANCE.f32),
  };
}

/** A fused projection of quantized parts (rows of blocks stacked): one poisoned output per part. */
function quantSplitMatmulCase(w: QuantDType, M: number, cols: number[], K: number): OpCase {
  const N = cols.reduce((a, b) => a + b, 0);
  const name = caseName('matmul', { w, M, split: cols.join('+'), K });
  const inputs = once(() => {
    const rng = new Rng(name);
    return { x: rng.normals(M * K), blocks: quantize(rng.normals(N * K, 1 / Math.sqrt(K)), w) };
  });
  return {
    name,
    async run(device: Device) {
      const { x, blocks } = inputs();
      const outs = cols.map((n) => poisoned(device, [M, n]));
      ops.matmul(device.tensor(x, [M, K]), device.tensor(blocks, [N, K], w), outs.map((o) => o.tensor));
      const result: Record<string, Float32Array> = {};
      for (const [j, o] of outs.entries()) {
        await o.checkGuards(`out${j}`);
        result[`out${j}`] = await o.tensor.read();
      }
      return result;
    },
    expected: once(() => {
      const { x, blocks } = inputs();
      const y = matmulRef(x, dequantize(blocks, w), M, N, K);
      const result: Record<string, Float64Array> = {};
      let c0 = 0;
      cols.forEach((n, j) => {
        const part = new Float64Array(M * n);
        for (let m = 0; m < M; m++) for (let c = 0; c < n; c++) part[m * n + c] = y[m * N + c0 + c];
        result[`out${j}`] = part;
        c0 += n;
      });
      return result;
    }),
    tolerance: (device) => (isCuda(device) && M > 16 ? TOLERANCE.roundedActivations.f16 : TOLERANCE.f32),
  };
}

/**
 * A fused projection whose parts stay separate matrices in their own block types, as a Q4_K_M file
 * keeps q/k as Q4_K next to a Q6_K v: one poisoned output per part.
 */
function quantPartsMatmulCase(types: QuantDType[], M: number, cols: number[], K: number): OpCase {
  const name = caseName('matmul', { w: types.join('+'), M, split: cols.join('+'), K });
  const inputs = once(() => {
    const rng = new Rng(name);
    return { x: rng.normals(M * K), blocks: cols.map((n, j) => quantize(rng.normals(n * K, 1 / Math.sqrt(K)), types[j])) };
  });
  return {
    name,
    async run(device: Device) {
      const { x, blocks } = inputs();
      const outs = cols.map((n) => poisoned(device, [M, n]));
      const weights = blocks.map((b, j) => device.tensor(b, [cols[j], K], types[j]));
      ops.matmul(device.tensor(x, [M, K]), weights, outs.map((o) => o.tensor));
      const result: Record<string, Float32Array> = {};
      for (const [j, o] of outs.entries()) {
        await o.checkGuards(`out${j}`);
        result[`out${j}`] = await o.tensor.read();
      }
      return result;
    },
    expected: once(() => {
      const { x, blocks } = inputs();
      return Object.fromEntries(blocks.map((b, j) => [`out${j}`, matmulRef(x, dequantize(b, types[j]), M, cols[j], K)]));
    }),
    tolerance: (device) => (isCuda(device) && M > 16 ? TOLERANCE.roundedActivations.f16 : TOLERANCE.f32),
  };
}

function quantEmbeddingCase(table: QuantDType, vocab: number, hidden: number, numTokens: number): OpCase {
  const name = caseName('embedding', { table, vocab, hidden, T: numTokens });
  const inputs = once(() => {
    const rng = new Rng(name);
    const blocks = quantize(rng.normals(vocab * hidden), table);
    const ids = Int32Array.from({ length: numTokens }, (_, t) =>
      t === 0 ? vocab - 1 : t === 1 ? 0 : t === 2 ? vocab - 1 : rng.int(0, vocab));
    return { blocks, ids };
  });
  return {
    name,
    async run(device: Device) {
      const { blocks, ids } = inputs();
      const out = poisoned(device, [numTokens, hidden]);
      ops.embedding(ids, device.tensor(blocks, [vocab, hidden], table), out.tensor);
      await out.checkGuards('out');
      return { out: await out.tensor.read() };
    },
    expected: once(() => ({ out: embeddingRef(inputs().ids, dequantize(inputs().blocks, table), hidden) })),
    // One f32 multiply-add (d·q − m) per value: within f32 rounding of the exact dequantized value.
    tolerance: () => TOLERANCE.elementwise,
  };
}

export function quantizedCases(): OpCase[] {
  const cases: OpCase[] = [];
  for (const w of quantDTypes) {
    const k1 = dtypeBlock[w].elements === 32 ? 96 : 256;
    // M: decode (1), the small-batch kernels (3, 8), CPU's blocked GEMM (9+), CUDA's tensor-core tiles
    // (37: BM 64, 70: BM 128, two N tiles); N odd and not a multiple of any tile; K one or several blocks.
    cases.push(
      quantMatmulCase(w, 1, 37, 3 * 256, 'none'),
      quantMatmulCase(w, 1, 13, k1, 'alias'),
      quantMatmulCase(w, 3, 29, 2 * 256, 'separate'),
      quantMatmulCase(w, 8, 19, k1, 'none'),
      quantMatmulCase(w, 9, 23, 2 * 256, 'none'),
      quantMatmulCase(w, 37, 41, 3 * 256, 'separate'),
      quantMatmulCase(w, 70, 130, 2 * 256, 'alias'),
      quantSplitMatmulCase(w, 1, [45, 13, 13], 256),
      quantSplitMatmulCase(w, 19, [29, 37], 512),
    );
    cases.push(quantEmbeddingCase(w, 11, dtypeBlock[w].elements === 32 ? 160 : 512, 6));
  }
  // Q4_K_M's layers: q and k in Q4_K, v in Q6_K; gate/up with a Q8_0 part. Decode and tensor-core rows.
  cases.push(quantPartsMatmulCase(['q4_k', 'q4_k', 'q6_k'], 1, [45, 13, 13], 256));
  cases.push(quantPartsMatmulCase(['q4_k', 'q8_0'], 3, [29, 37], 512));
  cases.push(quantPartsMatmulCase(['q5_k', 'q4_k', 'q6_k'], 37, [45, 13, 13], 256));
  return cases;
}
