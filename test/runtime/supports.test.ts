// Backend capabilities: every backend answers for every op of the contract, and an unknown op or
// dtype is an error that names it.
import { describe, expect, it } from 'vitest';
import type { OpName } from '../../src/runtime/index.js';
import { device, devicesUnderTest } from './devices.js';

const CORE_OPS: OpName[] = ['embedding', 'matmul', 'rmsnorm', 'qkNormRope', 'swiglu', 'kvWrite', 'attention', 'sample'];

for (const dut of devicesUnderTest()) {
  describe.skipIf(dut.skip)(`supports [${dut.label}]`, () => {
    it('runs every core op on the float weight dtypes', () => {
      const dev = device(dut.name);
      for (const op of CORE_OPS)
        for (const dtype of ['f32', 'bf16', 'f16'] as const) expect(dev.supports(op, dtype)).toBe(true);
    });

    it('runs the mixture-of-experts ops (optional in the contract) with float experts', () => {
      const dev = device(dut.name);
      for (const op of ['moeRoute', 'moeMatmul', 'moeCombine'] as const)
        for (const dtype of ['f32', 'bf16', 'f16'] as const) expect(dev.supports(op, dtype)).toBe(true);
    });

    it('reads quantized blocks in matmul, embedding and moeMatmul only', () => {
      const dev = device(dut.name);
      for (const dtype of ['q8_0', 'q4_k', 'q5_k', 'q6_k'] as const) {
        for (const op of ['matmul', 'embedding', 'moeMatmul'] as const) expect(dev.supports(op, dtype)).toBe(true);
        for (const op of ['rmsnorm', 'moeRoute', 'moeCombine'] as const) expect(dev.supports(op, dtype)).toBe(false);
      }
    });

    it('answers for the matmul SwiGLU epilogue (optional): every backend runs it on every matrix dtype', () => {
      const dev = device(dut.name);
      for (const dtype of ['f32', 'bf16', 'f16', 'q8_0', 'q4_k', 'q5_k', 'q6_k'] as const)
        expect(dev.supports('matmulSwiglu', dtype)).toBe(true);
    });

    it('names an unknown op or dtype', () => {
      const dev = device(dut.name);
      expect(() => dev.supports('conv2d' as OpName)).toThrow(/supports: unknown op 'conv2d'/);
      expect(() => dev.supports('matmul', 'q9' as 'f32')).toThrow(/supports: unknown dtype 'q9'/);
    });
  });
}
