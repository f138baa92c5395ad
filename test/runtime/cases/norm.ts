// Table rows for rmsnorm (plain, + residual, sumOut, in-place aliases) and qkNormRope (plain RoPE and
// YaRN at positions beyond the original 32K context).
import { ops, type Device, type Tensor } from '../../../src/runtime/index.js';
import { TOLERANCE } from '../../reference/compare.js';
import { ropeFrequencies, type YarnScaling } from '../../../src/runtime/index.js';
import { normRopeRef, rmsnormRef, type RopeRef } from '../../reference/norm.js';
import { plainRopeRef, yarnRopeRef } from '../../reference/rope.js';
import { poisoned } from '../../reference/poison.js';
import { Rng } from '../../reference/random.js';
import { storedAs, type WeightType } from '../../reference/rounding.js';
import { caseName, once, type OpCase, type Outputs } from './op_case.js';

const EPS = 1e-6;

/**
 * How rmsnorm's tensors are wired:
 * - plain: out = rmsnorm(x)
 * - residual: out = rmsnorm(x + residual), no sum kept
 * - sum: sumOut (its own tensor) receives x + residual
 * - sum=residual: the transformer's residual stream update, sumOut aliases residual
 * - sum=x: sumOut aliases x (out is its own tensor)
 * - out=x: in place without residual
 */
type RmsMode = 'plain' | 'residual' | 'sum' | 'sum=residual' | 'sum=x' | 'out=x';

function rmsnormCase(weight: WeightType, rows: number, dim: number, mode: RmsMode): OpCase {
  const name = caseName('rmsnorm', { w: weight, rows, dim, mode });
  const inputs = once(() => {
    const rng = new Rng(name);
    // Rows of very different scales: the normalisation must not depend on the magnitude.
    const x = rng.normals(rows * dim);
    for (let r = 0; r < rows; r++) for (let j = 0; j < dim; j++) x[r * dim + j] *= 10 ** ((r % 5) - 2);
    return { x, residual: rng.normals(rows * dim), w: rng.uniforms(dim, 0.5, 1.5) };
  });
  const hasResidual = mode !== 'plain' && mode !== 'out=x';
  return {
    name,
    async run(device: Device) {
      const { x, residual, w } = inputs();
      const shape = [rows, dim];
      const xt = device.tensor(x, shape);
      const wt = device.tensor(w, [dim], weight);
      const rt = hasResidual ? device.tensor(residual, shape) : undefined;
      const outs: Outputs = {};
      if (mode === 'out=x') {
        ops.rmsnorm(xt, wt, xt, { eps: EPS });
        outs.out = await xt.read();
        return outs;
      }
      const out = poisoned(device, shape);
      let sumOut: Tensor | undefined;
      let sum: ReturnType<typeof poisoned> | undefined;
      if (mode === 'sum') sumOut = (sum = poisoned(device, shape)).tensor;
      else if (mode === 'sum=residual') sumOut = rt;
      else if (mode === 'sum=x') sumOut = xt;
      ops.rmsnorm(xt, wt, out.tensor, { eps: EPS, residual: rt, sumOut });
      await out.checkGuards('out');
      await sum?.checkGuards('sumOut');
      outs.out = await out.tensor.read();
      if (sumOut) outs.sum = await sumOut.toFloat32();
      return outs;
    },
    expected: once((): Record<string, Float64Array> => {
      const { x, residual, w } = inputs();
      const ref = rmsnormRef(x, storedAs(w, weight), dim, EPS, hasResidual ? residual : undefined);
      return mode === 'sum' || mode === 'sum=residual' || mode === 'sum=x' ? { out: ref.out, sum: ref.sum } : { out: ref.out };
    }),
    tolerance: () => TOLERANCE.f32,
  };
}

type QkWeights = 'both' | 'none' | 'q-only';

function qkNormRopeCase(
  weight: WeightType,
  numTokens: number,
  numQHeads: number,
  numKvHeads: number,
  headDim: number,
  weights: QkWeights,
  maxPosition: number,
  yarn?: YarnScaling,
): OpCase {
  const scaling = yarn
    ? { yarn: yarn.factor, orig: yarn.originalMaxPositionEmbeddings, ...(yarn.truncate === false ? { truncate: false } : {}),
        ...(yarn.betaFast !== undefined ? { betaFast: yarn.betaFast } : {}) }
    : {};
  const name = caseName('qkNormRope', {
    w: weight, T: numTokens, Hq: numQHeads, Hkv: numKvHeads, D: headDim, norm: weights, maxPos: maxPosition, ...scaling,
  });
  const theta = 1_000_000; // Qwen3's rope_theta
  const rope = ropeFrequencies(headDim, { theta, scaling: yarn });
  const ropeRef: RopeRef = yarn ? yarnRopeRef(headDim, theta, yarn) : plainRopeRef(headDim, theta);
  const inputs = once(() => {
    const rng = new Rng(name);
    const positions = Int32Array.from({ length: numTokens }, (_, t) => (t === 0 ? maxPosition : rng.int(0, maxPosition)));
    return {
      q: rng.normals(numTokens * numQHeads * headDim, 2),
      k: rng.normals(numTokens * numKvHeads * headDim, 2),
      qw: rng.uniforms(headDim, 0.5, 1.5),
      kw: rng.uniforms(headDim, 0.5, 1.5),
      positions,
    };
  });
  return {
    name,
    async run(device: Device) {
      const { q, k, qw, kw, positions } = inputs();
      const qt = device.tensor(q, [numTokens, numQHeads, headDim]);
      const kt = device.tensor(k, [numTokens, numKvHeads, headDim]);
      ops.qkNormRope(qt, kt, positions, {
        rope,
        eps: EPS,
        qWeight: weights !== 'none' ? device.tensor(qw, [headDim], weight) : undefined,
        kWeight: weights === 'both' ? device.tensor(kw, [headDim], weight) : undefined,
      });
      return { q: await qt.read(), k: await kt.read() };
    },
    expected: once(() => {
      const { q, k, qw, kw, positions } = inputs();
      return {
        q: normRopeRef(q, positions, numQHeads, headDim, ropeRef, EPS, weights !== 'none' ? storedAs(qw, weight) : undefined),
        k: normRopeRef(k, positions, numKvHeads, headDim, ropeRef, EPS, weights === 'both' ? storedAs(kw, weight) : undefined),
      };
    }),
    tolerance: () => TOLERANCE.f32,
  };
}

export function normCases(): OpCase[] {
  const cases: OpCase[] = [];
  const modes: RmsMode[] = ['plain', 'residual', 'sum', 'sum=residual', 'sum=x', 'out=x'];
  const shapes = [[1, 96], [3, 1000], [17, 1001], [5, 1024]];
  (['f32', 'bf16', 'f16'] as WeightType[]).forEach((w, iw) =>
    shapes.forEach(([rows, dim], is) => {
      cases.push(rmsnormCase(w, rows, dim, modes[(iw * 4 + is) % modes.length]));
      cases.push(rmsnormCase(w, rows, dim, modes[(iw * 4 + is + 3) % modes.length]));
    }),
  );
  for (const D of [64, 128]) {
    for (const [Hq, Hkv] of [[4, 4], [8, 2], [6, 3]]) {
      cases.push(qkNormRopeCase('bf16', 17, Hq, Hkv, D, 'both', 40_000));
      cases.push(qkNormRopeCase('f32', 1, Hq, Hkv, D, Hq === 6 ? 'q-only' : 'none', 31));
    }
  }
  cases.push(qkNormRopeCase('f16', 3, 16, 8, 128, 'both', 4096));
  // Head totals that leave the last 4-head CTA of a token partial (6, 2, 3), a 17-pair head and pairs
  // past 128 (four and eight pairs per lane).
  cases.push(qkNormRopeCase('f32', 11, 5, 1, 34, 'both', 999));
  cases.push(qkNormRopeCase('bf16', 2, 1, 1, 256, 'both', 12_345));
  cases.push(qkNormRopeCase('f32', 3, 2, 1, 384, 'q-only', 500));
  // Qwen3's model card YaRN (factor 4 over 32K) up to the extended context's last position.
  const qwen3Yarn: YarnScaling = { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 32_768 };
  cases.push(qkNormRopeCase('bf16', 13, 6, 2, 128, 'both', 131_071, qwen3Yarn));
  cases.push(qkNormRopeCase('f32', 5, 4, 4, 64, 'q-only', 100_000, qwen3Yarn));
  cases.push(qkNormRopeCase('f32', 7, 3, 1, 96, 'both', 70_000,
    { type: 'yarn', factor: 2.5, originalMaxPositionEmbeddings: 30_000, truncate: false, betaFast: 16 }));
  return cases;
}
