// Poisoned outputs, llama.cpp test-backend-ops style: an output tensor is a view into a larger
// allocation whose every element starts as NaN, with guard regions on both sides holding a
// recognisable NaN payload. After the op, the view must hold no NaN (the reference has none) and
// the guards must be untouched (no out-of-bounds writes).
import type { Device, Tensor } from '../../src/runtime/index.js';

/** Guard elements on each side: 64 f32 = 256 bytes, so the view keeps the allocation's alignment. */
const GUARD = 64;
const GUARD_BITS = 0x7fc5a5a5; // a quiet NaN with a payload no kernel produces
const POISON_BITS = 0x7fc00000; // the canonical quiet NaN

export interface Poisoned {
  /** The output to pass to the op: every element NaN. */
  tensor: Tensor<'f32'>;
  /** Rejects when a write landed outside the view. */
  checkGuards(label?: string): Promise<void>;
}

export function poisoned(device: Device, shape: readonly number[]): Poisoned {
  const n = shape.reduce((a, b) => a * b, 1);
  const bits = new Uint32Array(n + 2 * GUARD).fill(POISON_BITS);
  bits.fill(GUARD_BITS, 0, GUARD);
  bits.fill(GUARD_BITS, GUARD + n);
  const whole = device.tensor(new Float32Array(bits.buffer), [n + 2 * GUARD]);
  return {
    tensor: whole.view(shape, { offset: GUARD }),
    async checkGuards(label = 'output') {
      const after = new Uint32Array((await whole.read()).buffer);
      for (let i = 0; i < after.length; i++) {
        if (i >= GUARD && i < GUARD + n) continue;
        if (after[i] !== GUARD_BITS) {
          const where = i < GUARD ? `${GUARD - i} before` : `${i - GUARD - n + 1} after`;
          throw new Error(`${label}: out-of-bounds write ${where} the tensor (guard bits 0x${after[i].toString(16)})`);
        }
      }
    },
  };
}

/** A NaN-filled tensor of any float dtype, for outputs that cannot be views (e.g. whole KV pools). */
export function nanFilled(n: number): Float32Array {
  return new Float32Array(new Uint32Array(n).fill(POISON_BITS).buffer);
}
