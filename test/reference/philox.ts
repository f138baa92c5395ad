// Philox4x32-10 and the sampling uniforms of native/philox.h, in exact integer arithmetic (doubles
// hold every 48-bit partial product exactly), so a test can predict the token a seeded draw picks.

/** hi and lo 32-bit halves of a · b for 32-bit unsigned a, b. */
function mulhilo(a: number, b: number): [number, number] {
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const t = a * bl; // < 2^48, exact
  const u = a * bh; // < 2^48, exact
  const low = (u % 65536) * 65536 + t; // < 2^49, exact
  const lo = low % 4294967296;
  const hi = Math.floor(u / 65536) + Math.floor(low / 4294967296);
  return [hi >>> 0, lo >>> 0];
}

export function philox4x32_10(ctr: [number, number, number, number], key0: number, key1: number): number[] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0);
  let k0 = key0 >>> 0;
  let k1 = key1 >>> 0;
  for (let round = 0; round < 10; round++) {
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** The top 23 bits of Philox's first output for token `index` of the draw (seed, offset). */
export function philoxBits23(seed: number, offset: number, index: number): number {
  const ctr: [number, number, number, number] = [index, offset % 4294967296, Math.floor(offset / 4294967296), 0];
  return philox4x32_10(ctr, seed % 4294967296, Math.floor(seed / 4294967296))[0] >>> 9;
}

/** philox_uniform exactly as native/philox.h computes it in f32: (bits + 0.5) · 2^−23, at most 1 − 2^−24. */
export function philoxUniformF32(seed: number, offset: number, index: number): number {
  return Math.fround(Math.fround(philoxBits23(seed, offset, index)) + 0.5) / 8388608;
}

/** Gumbel noise −log(−log u) in float64 of the same uniform. */
export function gumbel(seed: number, offset: number, index: number): number {
  return -Math.log(-Math.log(philoxUniformF32(seed, offset, index)));
}
