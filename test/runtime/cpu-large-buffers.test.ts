// The CPU backend places buffers of 2 MiB and more on 2 MiB boundaries with huge-page advice (KV
// pools, logits): a decode over a large pool, its sequence's blocks scattered to the far end of the
// pool, must give bit for bit what the same keys give in a small pool.
import { describe, it } from 'vitest';
import { ops, type Device } from '../../src/runtime/index.js';
import { assertBitExact } from '../reference/compare.js';
import { Rng } from '../reference/random.js';
import { device } from './devices.js';

const HQ = 6;
const HKV = 3;
const D = 72;
const BLOCK = 13;
const CONTEXT = 61; // 5 blocks, the last one partly filled

function decode(dev: Device, numBlocks: number, table: number[], k: Float32Array, v: Float32Array, q: Float32Array) {
  const shape = [numBlocks, BLOCK, HKV, D];
  const cache = { k: dev.empty(shape, 'bf16'), v: dev.empty(shape, 'bf16') };
  const slots = Int32Array.from({ length: CONTEXT }, (_, j) => table[Math.floor(j / BLOCK)] * BLOCK + (j % BLOCK));
  ops.kvWrite(cache, dev.tensor(k, [CONTEXT, HKV, D]), dev.tensor(v, [CONTEXT, HKV, D]), slots);
  const out = dev.tensor(new Float32Array(HQ * D).fill(Number.NaN), [1, HQ, D]);
  ops.attention(cache, dev.tensor(q, [1, HQ, D]), out, {
    qStart: Int32Array.of(0, 1), kvLen: Int32Array.of(CONTEXT), blockTables: Int32Array.from(table), maxBlocksPerSeq: table.length,
  });
  return { out, cache };
}

describe('large buffers on cpu', () => {
  it('a decode over a pool of more than 2 MiB gives what a small pool gives, bit for bit', async () => {
    const dev = device('cpu');
    const rng = new Rng('large buffers');
    const k = rng.normals(CONTEXT * HKV * D);
    const v = rng.normals(CONTEXT * HKV * D);
    const q = rng.normals(HQ * D);
    const bigBlocks = 1031; // 1031 · 13 · 3 · 72 bf16 = 5.5 MiB per pool
    const small = decode(dev, 5, [0, 1, 2, 3, 4], k, v, q);
    const big = decode(dev, bigBlocks, [bigBlocks - 1, 517, 3, bigBlocks - 2, 1000], k, v, q);
    assertBitExact(await big.out.toFloat32(), await small.out.toFloat32(), 'attention out');
    const far = await big.cache.k.toFloat32();
    const near = await small.cache.k.toFloat32();
    const row = BLOCK * HKV * D;
    assertBitExact(far.subarray((bigBlocks - 1) * row, bigBlocks * row), near.subarray(0, row), 'K block 0 at the end of the large pool');
  });
});
