// Bad arguments: every class gets a clear error that names the op, thrown before anything is
// queued, and the device keeps working afterwards (the process never crashes).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Device, ops, ropeFrequencies, type AttentionBatch, type Tensor } from '../../src/runtime/index.js';
import { Rng } from '../reference/random.js';
import { device, devicesUnderTest } from './devices.js';

/** Calls `fn` and expects an error matching `message` (synchronous throw or rejected promise). */
async function expectOpError(fn: () => unknown, message: RegExp) {
  await expect(async () => fn()).rejects.toThrow(message);
}

const rng = new Rng('errors');
const f32 = (dev: Device, shape: number[]) => dev.tensor(rng.normals(shape.reduce((a, b) => a * b, 1)), shape);

/** A small paged cache: 4 blocks of 16 tokens, 2 KV heads of 64. */
function cache(dev: Device, dtype: 'f32' | 'bf16' = 'f32') {
  const shape = [4, 16, 2, 64];
  return { k: dev.tensor(rng.normals(4 * 16 * 2 * 64), shape, dtype), v: dev.tensor(rng.normals(4 * 16 * 2 * 64), shape, dtype) };
}

/** One decode query (4 q heads) over a sequence of `kvLen` tokens in blocks 2, 0. */
function decode(dev: Device, batch: Partial<AttentionBatch> = {}) {
  const q = f32(dev, [1, 4, 64]);
  const out = dev.empty([1, 4, 64]);
  const args = { qStart: Int32Array.of(0, 1), kvLen: Int32Array.of(20), blockTables: Int32Array.of(2, 0), maxBlocksPerSeq: 2, ...batch };
  return () => ops.attention(cache(dev), q, out, args);
}

type ErrorCase = [what: string, run: (dev: Device, other: Device) => unknown, message: RegExp];

const CASES: ErrorCase[] = [
  // shapes
  ['matmul: x and w disagree on K', (d) => ops.matmul(f32(d, [3, 96]), f32(d, [10, 97]), d.empty([3, 10])), /^matmul: x f32\[3, 96\] and w f32\[10, 97\] disagree on K/],
  ['matmul: out has the wrong shape', (d) => ops.matmul(f32(d, [3, 96]), f32(d, [10, 96]), d.empty([3, 11])), /^matmul: out f32\[3, 11\] must have 10 columns in all, the rows of w f32\[10, 96\]/],
  ['matmul: split outputs miss columns', (d) => ops.matmul(f32(d, [3, 96]), f32(d, [10, 96]), [d.empty([3, 4]), d.empty([3, 5])]), /^matmul: out f32\[3, 4\] \+ f32\[3, 5\] must have 10 columns in all/],
  ['matmul: split outputs overlap', (d) => { const y = d.empty([3, 10]); return ops.matmul(f32(d, [3, 96]), f32(d, [10, 96]), [y.view([3, 5]), y.view([3, 5], { offset: 3 })]); }, /^matmul: .*overlap/],
  ['matmul: a residual with split outputs', (d) => ops.matmul(f32(d, [3, 96]), f32(d, [10, 96]), [d.empty([3, 5]), d.empty([3, 5])], { residual: d.empty([3, 10]) }), /^matmul: a residual needs a single output tensor/],
  ['matmul: four split outputs', (d) => ops.matmul(f32(d, [3, 96]), f32(d, [8, 96]), [1, 2, 3, 4].map(() => d.empty([3, 2]))), /^matmul: out must be a tensor or a list of 1 to 3 tensors/],
  ['rmsnorm: weight length differs from the rows', (d) => ops.rmsnorm(f32(d, [2, 8]), f32(d, [9]), d.empty([2, 8]), { eps: 1e-6 }), /^rmsnorm: weight f32\[9\]: dimension 0 must be 8/],
  ['swiglu: up has another shape', (d) => ops.swiglu(f32(d, [2, 8]), f32(d, [2, 9]), d.empty([2, 8])), /^swiglu: up f32\[2, 9\] must have the shape of gate/],
  ['qkNormRope: odd head dimension', (d) => ops.qkNormRope(f32(d, [1, 2, 7]), f32(d, [1, 1, 7]), Int32Array.of(0), { rope: { invFreq: new Float64Array(3), attentionFactor: 1 } }), /^qkNormRope: head dimension 7 must be even/],
  ['qkNormRope: positions count differs from tokens', (d) => ops.qkNormRope(f32(d, [2, 2, 8]), f32(d, [2, 1, 8]), Int32Array.of(0), { rope: ropeFrequencies(8, { theta: 1e4 }) }), /^qkNormRope: positions has 1 entries for 2 tokens/],
  ['qkNormRope: frequencies for another head dimension', (d) => ops.qkNormRope(f32(d, [1, 2, 8]), f32(d, [1, 1, 8]), Int32Array.of(0), { rope: ropeFrequencies(6, { theta: 1e4 }) }), /^qkNormRope: invFreq has 3 entries for head dimension 8/],
  ['moeRoute: top-k above the experts', (d) => ops.moeRoute(f32(d, [2, 3]), d.empty([2, 4], 'i32'), d.empty([2, 4]), { renormalize: true }), /^moeRoute: ids i32\[2, 4\]: top-k must be between 1 and the 3 experts/],
  ['moeRoute: f32 ids', (d) => ops.moeRoute(f32(d, [2, 5]), d.empty([2, 2]), d.empty([2, 2]), { renormalize: false }), /^moeRoute: ids must be i32 \(got f32\[2, 2\]\)/],
  ['moeMatmul: x and the experts disagree on K', (d) => ops.moeMatmul(f32(d, [2, 7]), f32(d, [3, 4, 8]), d.empty([2, 2], 'i32'), d.empty([2, 2, 4])), /^moeMatmul: x f32\[2, 7\] and w f32\[3, 4, 8\] disagree on K/],
  ['moeMatmul: experts not stacked [E, N, K]', (d) => ops.moeMatmul(f32(d, [2, 8]), f32(d, [4, 8]), d.empty([2, 2], 'i32'), d.empty([2, 2, 4])), /^moeMatmul: w must have 3 dimensions \(got f32\[4, 8\]\)/],
  ['moeMatmul: y without the slot dimension', (d) => ops.moeMatmul(f32(d, [2, 8]), f32(d, [3, 4, 8]), d.empty([2, 2], 'i32'), d.empty([2, 3, 4])), /^moeMatmul: y f32\[2, 3, 4\]: dimension 1 must be 2/],
  ['moeCombine: weights for another top-k', (d) => ops.moeCombine(f32(d, [2, 3, 4]), f32(d, [2, 2]), d.empty([2, 4])), /^moeCombine: weights f32\[2, 2\]: dimension 1 must be 3/],
  ['attention: query heads not a multiple of KV heads', (d) => ops.attention(cache(d), f32(d, [1, 3, 64]), d.empty([1, 3, 64]), { qStart: Int32Array.of(0, 1), kvLen: Int32Array.of(1), blockTables: Int32Array.of(0), maxBlocksPerSeq: 1 }), /^attention: 3 query heads are not a multiple of 2 KV heads/],
  // dtypes
  ['matmul: bf16 activations', (d) => ops.matmul(d.tensor(rng.normals(96), [1, 96], 'bf16'), f32(d, [4, 96]), d.empty([1, 4])), /^matmul: x must be f32 \(got bf16\[1, 96\]\)/],
  ['matmul: i32 weights', (d) => ops.matmul(f32(d, [1, 4]), d.tensor(Int32Array.of(1, 2, 3, 4), [1, 4], 'i32'), d.empty([1, 1])), /^matmul: w must be f32 or bf16 or f16/],
  ['kvWrite: i32 cache', (d) => ops.kvWrite({ k: d.empty([4, 16, 2, 64], 'i32'), v: d.empty([4, 16, 2, 64], 'i32') }, f32(d, [1, 2, 64]), f32(d, [1, 2, 64]), Int32Array.of(0)), /^kvWrite: kCache must be f32 or bf16 or f16 or fp8 \(got i32/],
  ['kvWrite: scales on a bf16 cache', (d) => ops.kvWrite({ k: d.empty([4, 16, 2, 64], 'bf16'), v: d.empty([4, 16, 2, 64], 'bf16'), scales: Float64Array.of(2, 1) }, f32(d, [1, 2, 64]), f32(d, [1, 2, 64]), Int32Array.of(0)), /^kvWrite: kvScales other than \[1, 1\] need an fp8 cache/],
  ['kvWrite: one fp8 scale', (d) => ops.kvWrite({ k: d.empty([4, 16, 2, 64], 'fp8'), v: d.empty([4, 16, 2, 64], 'fp8'), scales: Float64Array.of(2) }, f32(d, [1, 2, 64]), f32(d, [1, 2, 64]), Int32Array.of(0)), /^kvWrite: kvScales must hold \[kScale, vScale\]/],
  ['kvWrite: zero fp8 scale', (d) => ops.kvWrite({ k: d.empty([4, 16, 2, 64], 'fp8'), v: d.empty([4, 16, 2, 64], 'fp8'), scales: Float64Array.of(1, 0) }, f32(d, [1, 2, 64]), f32(d, [1, 2, 64]), Int32Array.of(0)), /^kvWrite: kvScales must be positive finite f32 numbers/],
  ['kvWrite: K and V caches of different dtypes', (d) => ops.kvWrite({ k: cache(d, 'f32').k, v: cache(d, 'bf16').v }, f32(d, [1, 2, 64]), f32(d, [1, 2, 64]), Int32Array.of(0)), /^kvWrite: vCache must be f32/],
  ['sample: f16 logits', (d) => ops.sample(d.tensor(rng.normals(8), [1, 8], 'f16') as unknown as Tensor, [{ temperature: 1 }]), /^sample: logits must be f32/],
  // devices and lifetimes
  ['matmul: weights from another device', (d, other) => ops.matmul(f32(d, [1, 8]), f32(other, [4, 8]), d.empty([1, 4])), /^matmul: w lives on another device/],
  ['rmsnorm: residual from another device', (d, other) => ops.rmsnorm(f32(d, [1, 8]), f32(d, [8]), d.empty([1, 8]), { eps: 1e-6, residual: f32(other, [1, 8]) }), /^rmsnorm: residual lives on another device/],
  ['matmul: a disposed input', (d) => {
    const w = f32(d, [4, 8]);
    w.dispose();
    return ops.matmul(f32(d, [1, 8]), w, d.empty([1, 4]));
  }, /^matmul: w was disposed/],
  ['read: a disposed tensor', (d) => {
    const t = f32(d, [4]);
    t.dispose();
    return t.read();
  }, /^read: the tensor was disposed/],
  // index ranges
  ['embedding: token id = vocab', (d) => ops.embedding(Int32Array.of(3, 1001), f32(d, [1001, 8]), d.empty([2, 8])), /^embedding: ids\[1\] = 1001 is outside \[0, 1001\)/],
  ['embedding: negative token id', (d) => ops.embedding(Int32Array.of(-1), f32(d, [1001, 8]), d.empty([1, 8])), /^embedding: ids\[0\] = -1 is outside \[0, 1001\)/],
  ['kvWrite: slot outside the cache', (d) => ops.kvWrite(cache(d), f32(d, [2, 2, 64]), f32(d, [2, 2, 64]), Int32Array.of(5, 64)), /^kvWrite: slots\[1\] = 64 is outside \[0, 64\)/],
  ['kvWrite: negative slot', (d) => ops.kvWrite(cache(d), f32(d, [1, 2, 64]), f32(d, [1, 2, 64]), Int32Array.of(-3)), /^kvWrite: slots\[0\] = -3 is outside/],
  ['attention: block id outside the pool', (d) => decode(d, { blockTables: Int32Array.of(2, 4) })(), /^attention: blockTables\[0\]\[1\] = 4 is outside the pool of 4 blocks/],
  ['attention: negative block id in use', (d) => decode(d, { blockTables: Int32Array.of(-1, 0) })(), /^attention: blockTables\[0\]\[0\] = -1 is outside the pool/],
  ['attention: kvLen below the query tokens', (d) => ops.attention(cache(d), f32(d, [5, 4, 64]), d.empty([5, 4, 64]), { qStart: Int32Array.of(0, 5), kvLen: Int32Array.of(3), blockTables: Int32Array.of(0), maxBlocksPerSeq: 1 }), /^attention: kvLen\[0\] = 3 is less than its 5 query tokens/],
  ['attention: kvLen needs more blocks than the table has', (d) => decode(d, { kvLen: Int32Array.of(40) })(), /^attention: kvLen\[0\] = 40 needs 3 blocks but maxBlocksPerSeq is 2/],
  ['attention: qStart not starting at 0', (d) => decode(d, { qStart: Int32Array.of(1, 1) })(), /^attention: qStart must start at 0 and end at the number of query tokens 1/],
  ['attention: qStart with the wrong length', (d) => decode(d, { qStart: Int32Array.of(0, 1, 1) })(), /^attention: qStart must have 2 entries/],
  ['attention: decreasing qStart', (d) => ops.attention(cache(d), f32(d, [2, 4, 64]), d.empty([2, 4, 64]), { qStart: Int32Array.of(0, 3, 2), kvLen: Int32Array.of(5, 5), blockTables: Int32Array.of(0, 1), maxBlocksPerSeq: 1 }), /^attention: qStart must be non-decreasing/],
  // sampling parameters
  ['sample: topP = 0', (d) => ops.sample(f32(d, [1, 8]), [{ temperature: 1, topP: 0 }]), /^sample: topP must be in \(0, 1\] \(row 0\)/],
  ['sample: temperature NaN', (d) => ops.sample(f32(d, [2, 8]), [{ temperature: 1 }, { temperature: NaN }]), /^sample: params must be finite numbers \(row 1\)/],
  ['sample: negative temperature', (d) => ops.sample(f32(d, [1, 8]), [{ temperature: -0.5 }]), /^sample: temperature must be ≥ 0 \(row 0\)/],
  ['sample: minP above 1', (d) => ops.sample(f32(d, [1, 8]), [{ temperature: 1, minP: 1.5 }]), /^sample: minP must be in \[0, 1\]/],
  ['sample: repetition penalty 0', (d) => ops.sample(f32(d, [1, 8]), [{ temperature: 1, repetitionPenalty: 0 }]), /^sample: repetition penalty must be > 0/],
  ['sample: fractional seed', (d) => ops.sample(f32(d, [1, 8]), [{ temperature: 1, seed: 1.5 }]), /^sample: seed must be a non-negative integer/],
  ['sample: penalty token outside the vocabulary', (d) => ops.sample(f32(d, [1, 8]), [{ temperature: 1, penaltyTokens: Int32Array.of(8), penaltyCounts: Int32Array.of(1) }]), /^sample: penaltyTokens\[0\] = 8 is outside \[0, 8\)/],
  ['sample: one params row per logits row', (d) => ops.sample(f32(d, [2, 8]), [{ temperature: 1 }]), /^sample: params must hold 9 numbers per row/],
  ['sample: more than 20 top logprobs', (d) => ops.sample(f32(d, [1, 30]), [{ temperature: 1 }], { numTop: 21 }), /^sample: numTop must be an integer in \[0, 20\]/],
  // scalars
  ['rmsnorm: eps = 0', (d) => ops.rmsnorm(f32(d, [1, 8]), f32(d, [8]), d.empty([1, 8]), { eps: 0 }), /^rmsnorm: eps must be positive/],
  ['attention: NaN scale', (d) => ops.attention(cache(d), f32(d, [1, 4, 64]), d.empty([1, 4, 64]), { qStart: Int32Array.of(0, 1), kvLen: Int32Array.of(1), blockTables: Int32Array.of(0), maxBlocksPerSeq: 1 }, { scale: NaN }), /^attention: scale must be a finite number/],
  // overlap
  ['matmul: out overlapping x', (d) => {
    const buf = f32(d, [2, 8]);
    return ops.matmul(buf.view([1, 8]), f32(d, [8, 8]), buf.view([1, 8], { offset: 4 }));
  }, /^matmul: x must not overlap out/],
];

for (const dut of devicesUnderTest()) {
  describe.skipIf(dut.skip)(`errors [${dut.label}]`, () => {
    const dev = () => device(dut.name);
    const other = () => device(dut.name === 'cpu' ? 'cuda-sim' : 'cpu');
    const tag = `[${dut.name}]`;

    for (const [what, run, message] of CASES) {
      it(`${what} ${tag}`, async () => {
        await expectOpError(() => run(dev(), other()), message);
      });
    }

    it(`a read-only mapped tensor cannot be written ${tag}`, async () => {
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'paralon-errors-')), 'w.bin');
      writeFileSync(file, Buffer.from(rng.normals(64).buffer));
      const mapped = dev().mapFile(file);
      const t = mapped.tensor(0, 'f32', [8, 8]);
      if (dev().hostMemory) {
        await expectOpError(() => t.write(new Float32Array(64)), /^write: the tensor is a read-only mapping of /);
        await expectOpError(() => ops.matmul(f32(dev(), [8, 8]), f32(dev(), [8, 8]), t), /^matmul: out is a read-only mapped tensor/);
        await expectOpError(() => ops.rmsnorm(t, f32(dev(), [8]), t, { eps: 1e-6 }), /^rmsnorm: out is a read-only mapped tensor/);
        await expectOpError(() => ops.kvWrite({ k: t.view([1, 4, 2, 8]), v: t.view([1, 4, 2, 8]) }, f32(dev(), [1, 2, 8]), f32(dev(), [1, 2, 8]), Int32Array.of(0)), /^kvWrite: kCache is a read-only mapped tensor/);
      } else {
        // Off the host the mapping is copied into device memory: the copy is the device's own.
        expect(() => t.write(new Float32Array(64).fill(2))).not.toThrow();
        expect(Array.from(await t.read())).toEqual(new Array(64).fill(2));
      }
      await expectOpError(() => mapped.tensor(200, 'f32', [8, 8]), /^mapFile: .* runs past the end of the file/);
      mapped.close();
    });

    it(`the device still computes correctly after every error ${tag}`, async () => {
      const x = dev().tensor(Float32Array.of(1, 2, 3), [1, 3]);
      const w = dev().tensor(Float32Array.of(1, 0.5, -1, 2, 2, 2), [2, 3]);
      const y = dev().empty([1, 2]);
      ops.matmul(x, w, y);
      expect(Array.from(await y.read())).toEqual([-1, 12]);
      await dev().synchronize();
    });
  });
}

describe('device names', () => {
  it('an unknown device name is refused', () => {
    expect(() => Device.open('tpu' as never)).toThrow(/^Device: unknown device 'tpu' \(expected cpu, cuda:N or cuda-sim\)/);
    expect(() => Device.open('cuda:x' as never)).toThrow(/^Device: bad device name 'cuda:x'/);
    expect(() => Device.open('cpu', { threads: -1 })).toThrow(/threads must be a non-negative integer/);
  });

  const cuda = Device.cudaStatus();
  it.skipIf(cuda.count > 0)(
    `'cuda:0' without a GPU says why${cuda.count > 0 ? ' (skipped: this machine has a CUDA device)' : ''}`,
    () => {
      expect(cuda.reason).toMatch(/no CUDA device|built without CUDA/);
      expect(() => Device.open('cuda:0')).toThrow(/^Device: cuda:0: .*(no CUDA device|no CUDA backend|built without CUDA)/);
      expect(Device.available()).not.toContain('cuda:0');
    },
  );

  it('a disposed device refuses work with a clear error', async () => {
    const d = Device.open('cpu', { threads: 1 });
    const x = d.tensor(Float32Array.of(1, 2), [1, 2]);
    const out = d.empty([1, 2]);
    d.dispose();
    expect(d.disposed).toBe(true);
    await expectOpError(() => ops.swiglu(x, x, out), /^swiglu: the device was disposed/);
    await expectOpError(() => d.empty([4]), /^alloc: the device was disposed/);
    await expectOpError(() => x.read(), /^read: the device was disposed/);
    d.dispose(); // idempotent
  });
});
