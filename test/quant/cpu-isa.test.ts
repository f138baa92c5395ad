// The CPU block decoders (native/cpu/quant.h) on each instruction-set path the addon can be built for —
// scalar, AVX2+FMA+F16C, and AVX-512 (run only where this CPU has it) — against ggml's own dequantized
// values (test/quant/fixtures/ggml-golden.json), bit for bit. The addon itself is built for one path
// (-march=native); this compiles a small harness per path with the system C++ compiler, so a machine
// with AVX-512 also checks the AVX2 path CI machines without it run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { quantDTypes, type QuantDType } from '../../src/runtime/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const nativeDir = path.join(here, '..', '..', 'native');
const golden = JSON.parse(readFileSync(path.join(here, 'fixtures', 'ggml-golden.json'), 'utf8')) as {
  formats: Record<QuantDType, { blocks: string; dequantized: string }>;
};
const cpuFlags = readFileSync('/proc/cpuinfo', 'utf8');
const hasAvx512 = /\bavx512f\b/.test(cpuFlags) && /\bavx512bw\b/.test(cpuFlags);
const hasAvx2 = /\bavx2\b/.test(cpuFlags) && /\bfma\b/.test(cpuFlags) && /\bf16c\b/.test(cpuFlags);

const paths: { name: string; flags: string[]; runs: boolean }[] = [
  { name: 'scalar', flags: [], runs: true },
  { name: 'avx2', flags: ['-mavx2', '-mfma', '-mf16c'], runs: hasAvx2 },
  { name: 'avx512', flags: ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx2', '-mfma', '-mf16c'], runs: hasAvx512 },
  { name: 'avx512f-only', flags: ['-mavx512f', '-mavx2', '-mfma', '-mf16c'], runs: /\bavx512f\b/.test(cpuFlags) },
];

const dir = mkdtempSync(path.join(tmpdir(), 'paralon-isa-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const isa of paths) {
  describe(`block decoders [${isa.name}]`, () => {
    const exe = path.join(dir, `decode-${isa.name}`);
    it('compile', () => {
      execFileSync('c++', ['-std=c++17', '-O2', ...isa.flags, `-I${nativeDir}`, '-o', exe, path.join(here, 'isa', 'decode-blocks.cc')]);
    }, 120_000);
    for (const dtype of quantDTypes) {
      it.skipIf(!isa.runs)(`${dtype} decodes to ggml's values${isa.runs ? '' : ' (skipped: this CPU lacks the instructions)'}`, () => {
        const blocks = path.join(dir, `${dtype}.q`);
        writeFileSync(blocks, Buffer.from(golden.formats[dtype].blocks, 'base64'));
        const out = execFileSync(exe, [dtype, blocks], { maxBuffer: 1 << 24 });
        const ours = new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4);
        const ggml = Buffer.from(golden.formats[dtype].dequantized, 'base64');
        expect(Buffer.from(ours.buffer, ours.byteOffset, ours.byteLength).equals(ggml)).toBe(true);
      });
    }
  });
}
