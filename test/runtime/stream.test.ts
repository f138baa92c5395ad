// The execution model: compute never blocks the event loop, completions arrive in stream order,
// dispose frees, mapped files are used in place on host memory and copied elsewhere, the device
// list, and the host-side bf16/f16 conversions.
import { closeSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Device, fromBf16, fromF16, ops, toBf16, toF16 } from '../../src/runtime/index.js';
import { Rng } from '../reference/random.js';
import { roundBf16, roundF16 } from '../reference/rounding.js';
import { device, devicesUnderTest } from './devices.js';

const rng = new Rng('stream');

/** f32 bit pattern → value. */
function f32(bits: number): number {
  return new Float32Array(Uint32Array.of(bits).buffer)[0];
}

function tempFile(name: string, data: Uint8Array): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'paralon-stream-')), name);
  writeFileSync(file, data);
  return file;
}

for (const dut of devicesUnderTest()) {
  describe.skipIf(dut.skip)(`stream [${dut.label}]`, () => {
    const dev = () => device(dut.name);
    const tag = `[${dut.name}]`;

    it(`compute does not block the event loop ${tag}`, async () => {
      // cpu: 12 × (64 × 2048 × 2048) f32 multiply-adds, about a second of work on 2 cores; the
      // simulator runs every CUDA thread on the host, so it gets far fewer.
      const [M, N, K, reps] = dut.name === 'cpu' ? [64, 2048, 2048, 12] : dut.name === 'cuda-sim' ? [17, 512, 512, 3] : [512, 4096, 4096, 50];
      const x = dev().tensor(rng.normals(M * K), [M, K]);
      const w = dev().tensor(rng.normals(N * K), [N, K], 'bf16');
      const y = dev().empty([M, N]);
      await dev().synchronize();
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) ops.matmul(x, w, y);
      const enqueueMs = performance.now() - t0;
      await y.read();
      const totalMs = performance.now() - t0;
      clearInterval(timer);
      // Queuing returns at once (no compute on the JS thread) and the timer fires while the worker
      // computes: at least one tick per 10 ms of compute (a blocked loop would show none).
      expect(enqueueMs, `enqueue took ${enqueueMs.toFixed(1)} ms of ${totalMs.toFixed(1)} ms`).toBeLessThan(Math.max(5, totalMs / 10));
      expect(ticks, `${ticks} ticks in ${totalMs.toFixed(0)} ms`).toBeGreaterThanOrEqual(Math.min(20, Math.floor(totalMs / 10)));
      expect(totalMs).toBeGreaterThan(20); // enough work for the measurement to mean something
    });

    it(`reads resolve in stream order and see the data as of their place in it ${tag}`, async () => {
      const t = dev().tensor(Float32Array.of(1, 2, 3), [3]);
      const order: string[] = [];
      const first = t.read().then((v) => (order.push('first'), v));
      t.write(Float32Array.of(4, 5, 6));
      const gate = dev().tensor(Float32Array.of(1, 1, 1), [1, 3]);
      const out = dev().empty([1, 3]);
      ops.swiglu(gate, t.view([1, 3]), out);
      const second = t.read().then((v) => (order.push('second'), v));
      const third = out.read().then((v) => (order.push('third'), v));
      const sync = dev().synchronize().then(() => order.push('sync'));
      const [a, b, c] = await Promise.all([first, second, third, sync]);
      expect(order).toEqual(['first', 'second', 'third', 'sync']);
      expect(Array.from(a)).toEqual([1, 2, 3]);
      expect(Array.from(b)).toEqual([4, 5, 6]);
      const silu1 = 1 / (1 + Math.exp(-1));
      Array.from(c).forEach((v, i) => expect(v).toBeCloseTo(silu1 * (4 + i), 5));
    });

    it(`dispose frees the tensor and later use throws ${tag}`, async () => {
      const t = dev().tensor(Float32Array.of(1, 2), [2]);
      const v = t.view([1]);
      expect(t.disposed).toBe(false);
      t.dispose();
      expect(t.disposed).toBe(true);
      expect(v.disposed).toBe(false); // a view keeps the memory alive
      expect(Array.from(await v.read())).toEqual([1]);
      await expect(t.read()).rejects.toThrow(/^read: the tensor was disposed/);
      expect(() => t.write(Float32Array.of(0, 0))).toThrow(/^write: the tensor was disposed/);
      expect(() => t.view([1])).toThrow(/^view: the tensor was disposed/);
      expect(() => ops.swiglu(t, t, dev().empty([2]))).toThrow(/^swiglu: gate was disposed/);
      t.dispose(); // idempotent
    });

    it.skipIf(dut.name.startsWith('cuda:'))(`disposed memory goes back to the system ${tag}`, async () => {
      // 256 MiB written by an op (so its pages are really resident), then disposed.
      const rows = 16384;
      const hidden = 4096;
      const ids = new Int32Array(rows).map((_, i) => i % 3);
      const table = dev().tensor(rng.normals(3 * hidden), [3, hidden]);
      await dev().synchronize();
      const before = process.memoryUsage().rss;
      const big = dev().empty([rows, hidden]);
      ops.embedding(ids, table, big);
      await dev().synchronize();
      const held = process.memoryUsage().rss;
      big.dispose();
      await dev().synchronize();
      const after = process.memoryUsage().rss;
      const MiB = 2 ** 20;
      expect((held - before) / MiB, 'the op made 256 MiB resident').toBeGreaterThan(200);
      expect((held - after) / MiB, 'dispose released it').toBeGreaterThan(200);
    });

    it(`a mapped file's tensor is ${dut.name === 'cpu' ? 'used in place' : 'copied to the device'} ${tag}`, async () => {
      const values = rng.normals(12);
      const file = tempFile('weights.bin', new Uint8Array(Buffer.concat([Buffer.alloc(16, 7), Buffer.from(values.buffer)])));
      const mapped = dev().mapFile(file);
      expect(mapped.size).toBe(16 + 48);
      expect(Array.from(mapped.bytes(0, 4))).toEqual([7, 7, 7, 7]);
      const w = mapped.tensor(16, 'f32', [3, 4]);
      const x = dev().tensor(Float32Array.of(1, -1, 2, 0.5), [1, 4]);
      const y = dev().empty([1, 3]);
      ops.matmul(x, w, y);
      const expected = [0, 1, 2].map((n) => values[n * 4] - values[n * 4 + 1] + 2 * values[n * 4 + 2] + 0.5 * values[n * 4 + 3]);
      Array.from(await y.read()).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
      mapped.close(); // the tensor keeps its pages mapped
      // Rewrite the file in place (same inode, no truncation): a tensor used in place sees the
      // new bytes, a copy does not.
      const fd = openSync(file, 'r+');
      writeSync(fd, new Uint8Array(new Float32Array(12).fill(9).buffer), 0, 48, 16);
      closeSync(fd);
      const now = Array.from(await w.read());
      if (dev().hostMemory) expect(now).toEqual(new Array(12).fill(9));
      else expect(now).toEqual(Array.from(values));
      expect(dev().hostMemory).toBe(dut.name === 'cpu');
    });
  });
}

describe('devices', () => {
  it('Device.available() lists cpu and cuda-sim, and cuda:N only with a GPU', () => {
    const names = Device.available();
    expect(names.slice(0, 2)).toEqual(['cpu', 'cuda-sim']);
    const { count, built } = Device.cudaStatus();
    expect(names.length).toBe(2 + count);
    if (!built) expect(count).toBe(0);
    for (const name of names) {
      const d = Device.open(name as never);
      expect(d.name).toBe(name);
      expect(d.description.length).toBeGreaterThan(0);
      d.dispose();
    }
  });

  it('a cpu device honours its thread count', async () => {
    const d = Device.open('cpu', { threads: 1 });
    const x = d.tensor(Float32Array.of(2, 3), [1, 2]);
    const y = d.empty([1, 1]);
    ops.matmul(x, d.tensor(Float32Array.of(4, 5), [1, 2]), y);
    expect(Array.from(await y.read())).toEqual([23]);
    d.dispose();
  });
});

describe('bf16 and f16 conversions', () => {
  it('f32 → bf16 rounds to nearest even (hand-computed bit patterns)', () => {
    const cases: [number, number][] = [
      [f32(0x3f800000), 0x3f80], // 1
      [f32(0x3f808000), 0x3f80], // 1 + 2^−8: halfway, to even (down)
      [f32(0x3f818000), 0x3f82], // 1 + 3·2^−8: halfway, to even (up)
      [f32(0x3f808001), 0x3f81], // just above halfway
      [f32(0x3f80ffff), 0x3f81],
      [0.1, 0x3dcd], // 0x3DCCCCCD: lower half 0xCCCD > 0x8000
      [-2.5, 0xc020],
      [65504, 0x4780], // 0x477FE000 rounds up to 65536
      [f32(0x7f7fffff), 0x7f80], // f32 max overflows to +inf
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [-0, 0x8000],
      [f32(0x00008000), 0x0000], // subnormal, halfway: to even
      [f32(0x00018000), 0x0002],
    ];
    const got = toBf16(cases.map(([v]) => v));
    cases.forEach(([v, bits], i) => expect(got[i].toString(16), `bf16(${v})`).toBe(bits.toString(16)));
    const nan = toBf16([NaN])[0];
    expect((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0, 'NaN stays NaN').toBe(true);
  });

  it('f32 → f16 rounds to nearest even, with subnormals and overflow (hand-computed bit patterns)', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [1 + 2 ** -11, 0x3c00], // halfway, to even
      [1 + 3 * 2 ** -11, 0x3c02],
      [1 + 2 ** -11 + 2 ** -20, 0x3c01],
      [0.1, 0x2e66],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65519, 0x7bff], // below the midpoint to 65536
      [65520, 0x7c00], // the midpoint: to even, which is infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway between 0 and 2^−24: to even
      [3 * 2 ** -25, 0x0002], // halfway between 1 and 2 ulps: to even
      [2 ** -26, 0x0000],
      [-0, 0x8000],
    ];
    const got = toF16(cases.map(([v]) => v));
    cases.forEach(([v, bits], i) => expect(got[i].toString(16), `f16(${v})`).toBe(bits.toString(16)));
    const nan = toF16([NaN])[0];
    expect((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0, 'NaN stays NaN').toBe(true);
  });

  it('16-bit → f32 is exact', () => {
    expect(Array.from(fromBf16(Uint16Array.of(0x3f80, 0xc020, 0x7f80, 0x0001)))).toEqual([1, -2.5, Infinity, 2 ** -133]);
    expect(Array.from(fromF16(Uint16Array.of(0x3c00, 0x7bff, 0x0001, 0xfc00, 0x8000)))).toEqual([1, 65504, 2 ** -24, -Infinity, -0]);
    expect(Number.isNaN(fromF16(Uint16Array.of(0x7e00))[0])).toBe(true);
  });

  it('the conversions agree with the arithmetic rounding of the references on 24,000 random values', () => {
    const r = new Rng('conversions');
    const values = Array.from({ length: 20000 }, (_, i) => r.normal() * 2 ** r.int(-30, 20) * (i % 2 ? 1 : -1));
    // Exact ties of both formats (low 16 bits 0x8000 for bf16, low 13 bits 0x1000 for f16 normals).
    for (let i = 0; i < 2000; i++) {
      const sign = i % 2 ? 0x80000000 : 0;
      values.push(f32((sign | (r.int(1, 254) << 23) | (r.int(0, 128) << 16) | 0x8000) >>> 0));
      values.push(f32((sign | (r.int(113, 143) << 23) | (r.int(0, 1024) << 13) | 0x1000) >>> 0));
    }
    const bf = fromBf16(toBf16(values));
    const h = fromF16(toF16(values));
    const mismatches = values.flatMap((v, i) => [
      ...(Object.is(bf[i], roundBf16(v)) ? [] : [`bf16(${v}) = ${bf[i]}, expected ${roundBf16(v)}`]),
      ...(Object.is(h[i], roundF16(v)) ? [] : [`f16(${v}) = ${h[i]}, expected ${roundF16(v)}`]),
    ]);
    expect(mismatches.slice(0, 5)).toEqual([]);
  });
});
