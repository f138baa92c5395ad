// CPU precision 'fast' on both of its kernels: the AMX-BF16 tile GEMM (native/cpu/matmul_amx.cc, used
// from 3 rows on where the CPU has AMX) and the AVX512-BF16 dot-product kernel (matmul_bf16.cc, forced
// with PARALON_CPU_AMX=0), each against a float64 reference on awkward sizes: M, N, K off every tile
// multiple (16 x rows and W rows per tile, 32 k per tile), a short last W-row group in either A tile,
// K % 32 tails, more x rows than one work unit's chunk (256), split outputs (parts of one W and separate
// W tensors), the residual and the SwiGLU epilogue. Outputs are poisoned with NaN before each run.
//
// Tolerance: the kernels multiply bf16(x) by the bf16 weights exactly and accumulate in f32, so against
// the float64 product of bf16-rounded x the error is f32 accumulation only (≤ 1e-5 of the output scale
// at these K); against the exact product each x element moved by ≤ 2^-9 relative, so
// |Δy| ≤ 2^-9 · Σ|x·w| (checked with a factor 2 of room). Each half is skipped, with the reason in its
// title, where the CPU lacks the instructions.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Device, fromBf16, ops, toBf16, type Tensor } from '../../src/runtime/index.js';
import { Rng } from '../reference/random.js';
import { assertClose } from '../reference/compare.js';
import { pagedCases } from '../runtime/cases/paged.js';

const cpuFlags = (() => {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
})();
const hostHasAmx = /\bamx_bf16\b/.test(cpuFlags) && /\bamx_tile\b/.test(cpuFlags);

const amx = Device.open('cpu', { precision: 'fast', threads: 2 });
process.env.PARALON_CPU_AMX = '0';
const dot = Device.open('cpu', { precision: 'fast', threads: 2 });
delete process.env.PARALON_CPU_AMX;
afterAll(() => {
  amx.dispose();
  dot.dispose();
});

const amxOn = amx.description.includes('AMX-BF16 tiles');
const skipAmx = amxOn ? false : `no AMX-BF16 here (${hostHasAmx ? 'the CPU has it, but Linux refused the tile state or the build lacks it' : 'the CPU lacks it'}: ${amx.description})`;
const skipDot = dot.precision === 'fast' ? false : `this CPU or build lacks AVX512-BF16 (${dot.description})`;

describe('AMX dispatch', () => {
  it('is used where the CPU has AMX-BF16, and PARALON_CPU_AMX=0 turns it off', () => {
    if (amx.precision === 'fast' && hostHasAmx) {
      expect(amxOn, `${amx.description}: the CPU reports AMX-BF16 but the backend did not enable it`).toBe(true);
    } else {
      console.log(`AMX not expected here: ${amx.description}`);
    }
    expect(dot.description.includes('AMX')).toBe(false);
    const exact = Device.open('cpu', { precision: 'exact', threads: 1 });
    expect(exact.description.includes('AMX')).toBe(false);
    exact.dispose();
  });
});

interface Case {
  M: number;
  K: number;
  /** Output widths: one entry → one output; several → a split output (parts), from one W or separate W tensors. */
  widths: number[];
  separate?: boolean;
  residual?: boolean;
  swiglu?: boolean;
}

const cases: Case[] = [
  { M: 3, K: 259, widths: [133], residual: true },
  { M: 9, K: 1001, widths: [52] }, // 52 = 32 + 20: the second A tile's group is short
  { M: 17, K: 64, widths: [17] }, // one full group + 1 row; K a multiple of 32 (no tail)
  { M: 33, K: 95, widths: [200], residual: true },
  { M: 64, K: 130, widths: [48, 20, 20] }, // fused q/k/v-like parts of one W
  { M: 70, K: 77, widths: [40, 9], separate: true },
  { M: 300, K: 161, widths: [75], residual: true }, // two x-row chunks (256 + 44)
  { M: 21, K: 203, widths: [2 * 37], swiglu: true },
  { M: 277, K: 96, widths: [2 * 50], swiglu: true },
];

const label = (c: Case) =>
  `M=${c.M} K=${c.K} N=${c.widths.join('+')}${c.separate ? ' (separate W)' : ''}${c.residual ? ' +residual' : ''}${c.swiglu ? ' swiglu' : ''}`;

async function check(device: Device, c: Case) {
  const rng = new Rng(`cpu-precision-amx ${label(c)}`);
  const { M, K } = c;
  const N = c.widths.reduce((a, b) => a + b, 0);
  const x = Float32Array.from({ length: M * K }, () => rng.normal());
  const xr = fromBf16(toBf16(x));
  const wBits = toBf16(Float32Array.from({ length: N * K }, () => rng.normal() * 0.05));
  const w = fromBf16(wBits);
  const res = c.residual ? Float32Array.from({ length: M * N }, () => rng.normal()) : undefined;
  // e: float64 of the exact x; r: of bf16(x); abs: Σ|x·w| per output.
  const e = new Float64Array(M * N), r = new Float64Array(M * N), abs = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let se = res ? res[m * N + n] : 0, sr = se, sa = 0;
      for (let k = 0; k < K; k++) {
        const wv = w[n * K + k];
        se += x[m * K + k] * wv;
        sr += xr[m * K + k] * wv;
        sa += Math.abs(x[m * K + k] * wv);
      }
      e[m * N + n] = se;
      r[m * N + n] = sr;
      abs[m * N + n] = sa;
    }
  const xt = device.tensor(x, [M, K]);
  let got: Float32Array, want: (m: number, n: number) => { e: number; r: number; abs: number }, cols: number;
  if (c.swiglu) {
    const I = N / 2;
    const y = device.tensor(new Float32Array(M * I).fill(NaN), [M, I]);
    ops.matmul(xt, device.tensor(wBits, [N, K], 'bf16'), y, { epilogue: 'swiglu' });
    got = await y.toFloat32();
    cols = I;
    // silu(g)·u: the error bound of g and u carried through (|d(silu(g)u)| ≤ |u|·1.1·|dg| + |silu(g)|·|du|).
    const silu = (g: number) => g / (1 + Math.exp(-g));
    want = (m, n) => {
      const g = m * N + n, u = m * N + I + n;
      return {
        e: silu(e[g]) * e[u],
        r: silu(r[g]) * r[u],
        abs: 1.1 * Math.abs(e[u]) * abs[g] + Math.abs(silu(e[g])) * abs[u] + abs[g] * abs[u] / 256,
      };
    };
  } else {
    const outs = c.widths.map((width) => device.tensor(new Float32Array(M * width).fill(NaN), [M, width]));
    let weight: Tensor | Tensor[];
    if (c.separate) {
      let row = 0;
      weight = c.widths.map((width) => {
        const t = device.tensor(wBits.slice(row * K, (row + width) * K), [width, K], 'bf16');
        row += width;
        return t;
      });
    } else {
      weight = device.tensor(wBits, [N, K], 'bf16');
    }
    ops.matmul(xt, weight, outs.length === 1 ? outs[0] : outs, res ? { residual: device.tensor(res, [M, N]) } : {});
    const parts = await Promise.all(outs.map((o) => o.toFloat32()));
    got = new Float32Array(M * N);
    let col = 0;
    c.widths.forEach((width, j) => {
      for (let m = 0; m < M; m++) for (let n = 0; n < width; n++) got[m * N + col + n] = parts[j][m * width + n];
      col += width;
    });
    cols = N;
    want = (m, n) => ({ e: e[m * N + n], r: r[m * N + n], abs: abs[m * N + n] });
  }
  let strict = 0, scale = 0, bound = 0;
  for (let m = 0; m < M; m++)
    for (let n = 0; n < cols; n++) {
      const g = got[m * cols + n];
      const ref = want(m, n);
      scale = Math.max(scale, Math.abs(ref.r));
      strict = Math.max(strict, Number.isFinite(g) ? Math.abs(g - ref.r) : Infinity);
      bound = Math.max(bound, Number.isFinite(g) ? Math.abs(g - ref.e) / (ref.abs / 256 + 1e-6) : Infinity);
    }
  expect(strict / scale).toBeLessThanOrEqual(1e-5);
  expect(bound).toBeLessThanOrEqual(1);
}

describe.skipIf(skipAmx)(`fast precision, AMX-BF16 tiles${skipAmx ? ` (skipped: ${skipAmx})` : ''}`, () => {
  for (const c of cases) it(label(c), () => check(amx, c));
});

describe.skipIf(skipDot)(`fast precision, AVX512-BF16 dot products (PARALON_CPU_AMX=0)${skipDot ? ` (skipped: ${skipDot})` : ''}`, () => {
  for (const c of cases) it(label(c), () => check(dot, c));
});

// Prefill attention over a bf16 cache under fast precision (native/cpu/attention_bf16.cc): every bf16
// attention case of the op table (prefills, chunks after cached tokens, decodes, mixed batches; GQA
// ratios 1, 2, 4; D = 64 and 128; shuffled blocks, poisoned outputs) against the float64 reference,
// with the tolerance of rounded activations where a sequence has more than one new token (the case's
// own tolerance for a fast CPU device, as for CUDA's bf16 tensor-core prefill), f32's elsewhere.
const hostHasBf16 = /\bavx512_bf16\b/.test(cpuFlags);
describe.skipIf(amx.precision !== 'fast')(`fast precision attention, bf16 cache${amx.precision !== 'fast' ? ' (skipped: no fast precision here)' : ''}`, () => {
  const attention = pagedCases().filter((c) => c.name.startsWith('attention(') && c.name.includes('cache=bf16'));
  it('has cases', () => expect(attention.length).toBeGreaterThan(10));
  for (const c of attention)
    it(c.name, async () => {
      const out = (await c.run(amx)).out;
      assertClose(out, c.expected().out, c.tolerance(amx), 'out vs reference');
      if (hostHasBf16 && c.name.includes('batch=prefill') && c.name.includes('D=128')) {
        // the bf16 kernel ran: not the exact kernel's bits
        const exact = Device.open('cpu', { precision: 'exact', threads: 2 });
        const ref = (await c.run(exact)).out;
        exact.dispose();
        expect(out.some((v, i) => v !== ref[i])).toBe(true);
      }
    });
});
