// Quantized tensors (q8_0, q4_k, q5_k, q6_k) on every device: shapes need whole blocks, views and
// offsets respect blocks, bytes round-trip, and only matmul and embedding take them. Their op
// numerics are rows of the op table (cases/quantized.ts, run by ops.test.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ops, quantDTypes } from '../../src/runtime/index.js';
import { dequantize, quantize } from '../../src/quant/index.js';
import { assertClose, TOLERANCE } from '../reference/compare.js';
import { Rng } from '../reference/random.js';
import { device, devicesUnderTest } from './devices.js';

for (const dut of devicesUnderTest()) {
  describe.skipIf(dut.skip)(`quantized tensors [${dut.label}]`, () => {
    it('need whole blocks along the last dimension', () => {
      const dev = device(dut.name);
      expect(() => dev.empty([4, 100], 'q4_k')).toThrow('alloc: q4_k[4, 100]: the last dimension must be a multiple of the 256-value block');
      expect(() => dev.empty([4, 48], 'q8_0')).toThrow('alloc: q8_0[4, 48]: the last dimension must be a multiple of the 32-value block');
      expect(() => dev.tensor(new Uint8Array(10), [1, 256], 'q4_k')).toThrow('write: data has 10 bytes but the tensor q4_k[1, 256] has 144');
    });

    it('size and view by blocks', async () => {
      const dev = device(dut.name);
      const t = dev.empty([4, 512], 'q6_k');
      expect(t.byteLength).toBe(4 * 2 * 210);
      expect(t.view([1, 512], { offset: 2 * 512 }).byteLength).toBe(420);
      expect(() => t.view([1, 256], { offset: 100 })).toThrow('q6_k: 100 elements are not whole blocks of 256');
      expect(() => t.view([1, 2304])).toThrow('view: q6_k[1, 2304] at byte offset 0 does not fit in q6_k[4, 512]');
      await expect(t.toFloat32()).rejects.toThrow('is quantized');
    });

    it('read back their blocks byte for byte, views included', async () => {
      const dev = device(dut.name);
      for (const dtype of quantDTypes) {
        const blocks = quantize(new Rng(`read back ${dtype}`).normals(3 * 256), dtype);
        const t = dev.tensor(blocks, [3, 256], dtype);
        expect(await t.read()).toEqual(blocks);
        const row = blocks.length / 3;
        expect(await t.view([1, 256], { offset: 256 }).read()).toEqual(blocks.subarray(row, 2 * row));
      }
    });

    it('map from a file in place (cpu) or by upload, and multiply from there', async () => {
      const dev = device(dut.name);
      const dir = mkdtempSync(path.join(tmpdir(), 'paralon-quant-'));
      try {
        const blocks = quantize(new Rng('mapped').normals(3 * 512), 'q4_k');
        const file = path.join(dir, 'w.bin');
        writeFileSync(file, Buffer.concat([Buffer.alloc(64, 7), Buffer.from(blocks)]));
        const mapped = dev.mapFile(file);
        const w = mapped.tensor(64, 'q4_k', [3, 512]);
        expect(await w.read()).toEqual(blocks);
        expect(() => mapped.tensor(64, 'q4_k', [4, 512])).toThrow('runs past the end of the file');
        expect(() => mapped.tensor(64, 'q4_k', [3, 500])).toThrow('mapFile: q4_k[3, 500]: the last dimension must be a multiple of the 256-value block');
        const y = ops.matmul(dev.tensor(new Float32Array(512).fill(1), [1, 512]), w, dev.empty([1, 3]));
        const deq = dequantize(blocks, 'q4_k');
        const expected = Float64Array.from({ length: 3 }, (_, n) => deq.subarray(n * 512, (n + 1) * 512).reduce((a, b) => a + b, 0));
        assertClose(await y.read(), expected, TOLERANCE.f32, 'row sums');
        mapped.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('are matmul weights and embedding tables only', () => {
      const dev = device(dut.name);
      for (const dtype of quantDTypes) {
        expect(dev.supports('matmul', dtype)).toBe(true);
        expect(dev.supports('embedding', dtype)).toBe(true);
        expect(dev.supports('rmsnorm', dtype)).toBe(false);
      }
      const w = dev.empty([256], 'q4_k');
      expect(() => ops.rmsnorm(dev.empty([1, 256]), w, dev.empty([1, 256]), { eps: 1e-6 })).toThrow('rmsnorm: weight must be f32 or bf16 or f16 (got q4_k[256])');
    });
  });
}
