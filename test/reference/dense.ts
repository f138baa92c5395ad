// float64 references for the row-wise ops of native/ops.h: embedding, matmul, swiglu.
// Inputs are the values the backend reads (16-bit weights already rounded: see rounding.ts).

/** out[t, :] = table[ids[t], :]. table [vocab, hidden]. */
export function embeddingRef(ids: ArrayLike<number>, table: ArrayLike<number>, hidden: number): Float64Array {
  const out = new Float64Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++)
    for (let j = 0; j < hidden; j++) out[t * hidden + j] = table[ids[t] * hidden + j];
  return out;
}

/** y[M, N] = x[M, K] · w[N, K]ᵀ (+ residual[M, N]). */
export function matmulRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  M: number,
  N: number,
  K: number,
  residual?: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[m * K + k] * w[n * K + k];
      y[m * N + n] = acc + (residual ? residual[m * N + n] : 0);
    }
  }
  return y;
}

/** out = silu(gate) · up = gate / (1 + e^−gate) · up, elementwise. */
export function swigluRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]);
}
