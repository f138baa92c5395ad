// The CPU matmul kernels on each instruction-set path the addon can be built for — scalar, AVX2+FMA+F16C
// and AVX-512 (run only where this CPU has it) — against a float64 reference (isa/matmul-paths.cc): the
// addon itself is built for one path (-march=native), so a machine with AVX-512 also checks the AVX2
// path that CI machines without it run (its 2-row tiles for 9–64 rows, the SwiGLU epilogue), and a
// machine with AVX512-BF16 the fast-precision kernel (bf16 activations, vdpbf16ps), and a machine with
// AMX-BF16 the AMX tile GEMM on every path (it is built with function target attributes).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const nativeDir = path.join(here, '..', '..', 'native');
const cpuFlags = readFileSync('/proc/cpuinfo', 'utf8');
const has = (flag: string) => new RegExp(`\\b${flag}\\b`).test(cpuFlags);

const paths: { name: string; flags: string[]; runs: boolean }[] = [
  { name: 'scalar', flags: [], runs: true },
  { name: 'avx2', flags: ['-mavx2', '-mfma', '-mf16c'], runs: has('avx2') && has('fma') && has('f16c') },
  { name: 'avx512', flags: ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx2', '-mfma', '-mf16c'], runs: has('avx512f') && has('avx512bw') },
  // The same plus the fast-precision kernel (matmul_bf16.cc: bf16 x, vdpbf16ps) on its row counts.
  {
    name: 'avx512bf16',
    flags: ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx2', '-mfma', '-mf16c', '-mavx512bf16'],
    runs: has('avx512f') && has('avx512bw') && has('avx512_bf16'),
  },
];

const dir = mkdtempSync(path.join(tmpdir(), 'paralon-isa-matmul-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sources = ['matmul.cc', 'matmul_bf16.cc', 'matmul_amx.cc', 'quant_matmul.cc', 'quant_int8.cc', 'thread_pool.cc'].map((f) => path.join(nativeDir, 'cpu', f));

for (const isa of paths) {
  describe(`cpu matmul kernels [${isa.name}]`, () => {
    const exe = path.join(dir, `matmul-${isa.name}`);
    it('compile', () => {
      execFileSync('c++', ['-std=c++17', '-O2', '-pthread', ...isa.flags, `-I${nativeDir}`, '-o', exe, path.join(here, 'isa', 'matmul-paths.cc'), ...sources]);
    }, 300_000);
    it.skipIf(!isa.runs)(`matches the float64 reference on every row-count path${isa.runs ? '' : ' (skipped: this CPU lacks the instructions)'}`, () => {
      const out = execFileSync(exe, { encoding: 'utf8' });
      expect(out).toContain(`ISA ${isa.name === 'avx512bf16' ? 'avx512' : isa.name}, 0 failures`);
      if (isa.name === 'avx512bf16') expect(out).toContain('fast precision: checked');
      if (has('amx_bf16') && has('amx_tile')) expect(out).toContain('AMX tiles: checked');
      else console.log(`[${isa.name}] AMX tile GEMM not run: this CPU lacks AMX-BF16`);
    }, 120_000);
  });
}
