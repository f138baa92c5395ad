// CPU fast precision for quantized weights (native/cpu/quant_int8.cc): activations quantized to int8
// blocks as ggml does (q8_0 / q8_K) and integer dot products, on each instruction-set path this CPU
// runs — the scalar reference, AVX2, AVX512-VNNI — forced through PARALON_CPU_INT8_ISA. Each result is
// checked twice against float64 references of the dequantized weights, on awkward sizes with poisoned
// outputs:
// - strict: against the product with the int8-rounded activations (test/reference/q8-activations.ts),
//   within the f32 accumulation bound — the kernels' integer sums are exact;
// - against the exact product within the activation rounding's own bound, Σ_k |W[n,k]|·|x[k] − x̂[k]|
//   per output (plus f32 slack): the error fast precision may add and nothing more.
// Above 16 rows fast precision runs the exact kernels without AMX (checked too; AMX off here), AMX
// tiles with it (cpu-precision-amx-quant.test.ts). Also: the kernels compile for
// baseline x86-64 and AVX2-only builds (their AVX-512 code behind target attributes).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Device, ops, quantDTypes, type QuantDType } from '../../src/runtime/index.js';
import { dequantize, quantize } from '../../src/quant/index.js';
import { assertClose, compare, TOLERANCE } from '../reference/compare.js';
import { matmulRef, swigluRef } from '../reference/dense.js';
import { moeMatmulRef } from '../reference/moe.js';
import { poisoned } from '../reference/poison.js';
import { q8Activations } from '../reference/q8-activations.js';
import { Rng } from '../reference/random.js';

const cpuFlags = readFileSync('/proc/cpuinfo', 'utf8');
const has = (...flags: string[]) => flags.every((f) => new RegExp(`\\b${f}\\b`).test(cpuFlags));
const paths = [
  { isa: 'scalar', runs: true },
  { isa: 'avx2', runs: has('avx2', 'fma', 'f16c') },
  { isa: 'vnni512', runs: has('avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx2', 'fma', 'f16c') },
] as const;

// AMX off: above 16 rows an AMX CPU would take the tiles (cpu-precision-amx-quant.test.ts), and this
// file checks the int8 kernels and their 16-row boundary.
function openForced(isa: string): Device {
  process.env.PARALON_CPU_INT8_ISA = isa;
  process.env.PARALON_CPU_AMX = '0';
  try {
    return Device.open('cpu', { precision: 'fast', threads: 2 });
  } finally {
    delete process.env.PARALON_CPU_INT8_ISA;
    delete process.env.PARALON_CPU_AMX;
  }
}

/** |exact − got| ≤ Σ_k |W[n,k]|·|x[k] − x̂[k]| + 1e-5·max|exact| for every output. */
function expectWithinRoundingBound(got: Float32Array, exact: Float64Array, x: Float32Array, xq: Float64Array, w: Float64Array, M: number, N: number, K: number) {
  const scale = exact.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let bound = 0;
      for (let k = 0; k < K; k++) bound += Math.abs(w[n * K + k]) * Math.abs(x[m * K + k] - xq[m * K + k]);
      const err = Math.abs(got[m * N + n] - exact[m * N + n]);
      if (!(err <= bound + 1e-5 * scale)) expect(`y[${m}, ${n}]: error ${err} > bound ${bound}`).toBe('within the bound');
    }
}

const matmulCases: { w: QuantDType; M: number; N: number; blocks: number; residual: boolean }[] = quantDTypes.flatMap((w) => [
  { w, M: 1, N: 37, blocks: 3, residual: false },
  { w, M: 3, N: 29, blocks: 2, residual: true },
  { w, M: 8, N: 19, blocks: 1, residual: false },
  { w, M: 9, N: 23, blocks: 2, residual: true },
  { w, M: 16, N: 41, blocks: 3, residual: false },
]);

for (const path of paths) {
  describe.skipIf(!path.runs)(`int8 dot products [${path.isa}]${path.runs ? '' : ' (skipped: this CPU lacks the instructions)'}`, () => {
    let dev: Device | undefined;
    const device = () => (dev ??= openForced(path.isa));
    afterAll(() => dev?.dispose());

    it('is the path in effect', () => {
      expect(device().precision).toBe('fast');
      expect(device().description).toContain(`int8 dot products for quantized weights (${path.isa}, fast precision)`);
    });

    for (const c of matmulCases) {
      const K = c.blocks * (c.w === 'q8_0' ? 96 : 256);
      it(`matmul w=${c.w} M=${c.M} N=${c.N} K=${K}${c.residual ? ' +residual' : ''}`, async () => {
        const rng = new Rng(`int8 ${c.w} ${c.M} ${c.N} ${K}`);
        const blocks = quantize(rng.normals(c.N * K, 1 / Math.sqrt(K)), c.w);
        const x = rng.normals(c.M * K);
        const r = c.residual ? rng.normals(c.M * c.N) : undefined;
        const y = poisoned(device(), [c.M, c.N]);
        ops.matmul(device().tensor(x, [c.M, K]), device().tensor(blocks, [c.N, K], c.w), y.tensor, r ? { residual: device().tensor(r, [c.M, c.N]) } : {});
        await y.checkGuards('y');
        const got = await y.tensor.read();
        const w = dequantize(blocks, c.w);
        const xq = q8Activations(x, c.w);
        assertClose(got, matmulRef(xq, w, c.M, c.N, K, r), TOLERANCE.f32, 'y vs the product of int8-rounded x');
        const exact = matmulRef(x, w, c.M, c.N, K, r);
        expectWithinRoundingBound(got, exact, x, xq, w, c.M, c.N, K);
        expect(compare(got, exact).maxRel).toBeGreaterThan(TOLERANCE.f32); // the int8 path ran, not the exact one
      });
    }

    it('Q4_K_M-style parts (q4_k, q4_k, q6_k) into poisoned outputs', async () => {
      const rng = new Rng('int8 parts');
      const K = 512, M = 9, cols = [45, 13, 13], types: QuantDType[] = ['q4_k', 'q4_k', 'q6_k'];
      const x = rng.normals(M * K);
      const blocks = cols.map((n, j) => quantize(rng.normals(n * K, 1 / Math.sqrt(K)), types[j]));
      const outs = cols.map((n) => poisoned(device(), [M, n]));
      ops.matmul(device().tensor(x, [M, K]), blocks.map((b, j) => device().tensor(b, [cols[j], K], types[j])), outs.map((o) => o.tensor));
      const xq = q8Activations(x, 'q4_k');
      for (const [j, o] of outs.entries()) {
        await o.checkGuards(`out${j}`);
        assertClose(await o.tensor.read(), matmulRef(xq, dequantize(blocks[j], types[j]), M, cols[j], K), TOLERANCE.f32, `out${j}`);
      }
    });

    for (const [w, M] of [['q4_k', 1], ['q8_0', 11], ['q6_k', 4]] as const) {
      it(`swiglu epilogue w=${w} M=${M}`, async () => {
        const rng = new Rng(`int8 swiglu ${w} ${M}`);
        const I = 37, K = w === 'q8_0' ? 160 : 512;
        const x = rng.normals(M * K);
        const stored = [0, 1].map(() => quantize(rng.normals(I * K, 1.5 / Math.sqrt(K)), w));
        const out = poisoned(device(), [M, I]);
        ops.matmul(device().tensor(x, [M, K]), stored.map((s) => device().tensor(s, [I, K], w)), out.tensor, { epilogue: 'swiglu' });
        await out.checkGuards('out');
        const xq = q8Activations(x, w);
        const [gate, up] = stored.map((s) => matmulRef(xq, dequantize(s, w), M, I, K));
        assertClose(await out.tensor.read(), swigluRef(gate, up), TOLERANCE.f32, 'out vs reference');
      });
    }

    it('MoE expert matmul (the same kernels per expert) into a poisoned output', async () => {
      const rng = new Rng('int8 moe');
      const T = 7, E = 4, k = 2, N = 19, K = 512;
      const ids = Int32Array.from({ length: T * k }, (_, i) => (i % k === 0 ? i % E : (i + 1) % E));
      const x = rng.normals(T * K);
      const blocks = quantize(rng.normals(E * N * K, 1 / Math.sqrt(K)), 'q4_k');
      const y = poisoned(device(), [T, k, N]);
      ops.moeMatmul(device().tensor(x, [T, K]), device().tensor(blocks, [E, N, K], 'q4_k'), device().tensor(ids, [T, k], 'i32'), y.tensor);
      await y.checkGuards('y');
      const xq = q8Activations(x, 'q4_k'); // rows of 512: whole q8_K blocks per token
      assertClose(await y.tensor.read(), moeMatmulRef(xq, false, dequantize(blocks, 'q4_k'), ids, T, k, E, N, K), TOLERANCE.f32, 'y vs int8-rounded x');
    });

    it('above 16 rows, without AMX, runs the exact kernels (the blocked GEMM measured faster there)', async () => {
      const rng = new Rng('int8 above');
      const M = 17, N = 29, K = 512;
      const blocks = quantize(rng.normals(N * K, 1 / Math.sqrt(K)), 'q6_k');
      const x = rng.normals(M * K);
      const y = poisoned(device(), [M, N]);
      ops.matmul(device().tensor(x, [M, K]), device().tensor(blocks, [N, K], 'q6_k'), y.tensor);
      await y.checkGuards('y');
      assertClose(await y.tensor.read(), matmulRef(x, dequantize(blocks, 'q6_k'), M, N, K), TOLERANCE.f32, 'y vs the exact product');
    });

    it('a non-finite activation makes its row NaN, as on the exact path; other rows stay exact', async () => {
      const K = 256, N = 5;
      const rng = new Rng('int8 nan');
      const x = rng.normals(2 * K);
      x[17] = NaN;
      const blocks = quantize(rng.normals(N * K, 0.05), 'q4_k');
      const y = ops.matmul(device().tensor(x, [2, K]), device().tensor(blocks, [N, K], 'q4_k'), device().empty([2, N]));
      const got = await y.read();
      expect(Array.from(got.subarray(0, N)).every(Number.isNaN)).toBe(true);
      const xq = q8Activations(x.subarray(K), 'q4_k');
      assertClose(got.subarray(N), matmulRef(xq, dequantize(blocks, 'q4_k'), 1, N, K), TOLERANCE.f32, 'row 1');
    });
  });
}

describe('int8 kernels build portably', () => {
  // The addon is built with -march=native; the AVX2 and AVX512-VNNI kernels carry target attributes and
  // are picked by CPUID, so a baseline x86-64 or AVX2-only build must still compile all of them.
  const native = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native');
  for (const [name, flags] of [['x86-64 baseline', []], ['AVX2 only', ['-mavx2', '-mfma', '-mf16c']]] as const)
    it.skipIf(process.arch !== 'x64')(`compiles for ${name}`, () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'paralon-int8-'));
      try {
        execFileSync('c++', ['-std=c++17', '-O1', '-Werror', ...flags, `-I${native}`, '-c', path.join(native, 'cpu', 'quant_int8.cc'), '-o', path.join(dir, 'q.o')]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 180_000);
});

describe('int8 path selection', () => {
  it('refuses an unknown forced path by name', () => {
    process.env.PARALON_CPU_INT8_ISA = 'sse9';
    try {
      expect(() => Device.open('cpu', { precision: 'fast' })).toThrow(/PARALON_CPU_INT8_ISA must be scalar, avx2 or vnni512, got 'sse9'/);
    } finally {
      delete process.env.PARALON_CPU_INT8_ISA;
    }
  });
  it('leaves the exact path alone', () => {
    const exact = Device.open('cpu', { precision: 'exact', threads: 1 });
    expect(exact.description).not.toContain('int8');
    exact.dispose();
  });
});
