// float64 references for the mixture-of-experts ops of native/ops.h (moeRoute, moeMatmul,
// moeCombine) and for a whole Qwen3-MoE sparse block written the way transformers' Qwen3MoeSparseMoeBlock
// computes it (softmax → top-k → optional renormalisation → Σ weight · down(silu(gate x) · up x)).

export interface RouteRef {
  /** [T, k] expert ids, best first (equal logits: lower expert first). */
  ids: Int32Array;
  /** [T, k] their softmax probabilities (renormalised over the k when asked). */
  weights: Float64Array;
}

export function moeRouteRef(logits: ArrayLike<number>, T: number, E: number, k: number, renormalize: boolean): RouteRef {
  const ids = new Int32Array(T * k);
  const weights = new Float64Array(T * k);
  for (let t = 0; t < T; t++) {
    const row = Array.from({ length: E }, (_, e) => logits[t * E + e]);
    const order = row.map((_, e) => e).sort((a, b) => row[b] - row[a] || a - b);
    const max = row[order[0]];
    const p = row.map((v) => Math.exp(v - max));
    const total = p.reduce((s, v) => s + v, 0);
    const chosen = order.slice(0, k);
    const denom = renormalize ? chosen.reduce((s, e) => s + p[e], 0) : total;
    chosen.forEach((e, j) => {
      ids[t * k + j] = e;
      weights[t * k + j] = p[e] / denom;
    });
  }
  return { ids, weights };
}

/**
 * y[t, j, :] = x_t · w[ids[t, j]]ᵀ, w [E, N, K]; x_t is x[t] (xPerSlot false) or x[t, j] (true).
 * An id outside [0, E) gives a zero row.
 */
export function moeMatmulRef(
  x: ArrayLike<number>,
  xPerSlot: boolean,
  w: ArrayLike<number>,
  ids: ArrayLike<number>,
  T: number,
  k: number,
  E: number,
  N: number,
  K: number,
): Float64Array {
  const y = new Float64Array(T * k * N);
  for (let t = 0; t < T; t++)
    for (let j = 0; j < k; j++) {
      const e = ids[t * k + j];
      if (e < 0 || e >= E) continue;
      const xo = (xPerSlot ? t * k + j : t) * K;
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let i = 0; i < K; i++) acc += x[xo + i] * w[(e * N + n) * K + i];
        y[(t * k + j) * N + n] = acc;
      }
    }
  return y;
}

/** out[t] = residual[t] + Σ_j weights[t, j] · y[t, j]. */
export function moeCombineRef(
  y: ArrayLike<number>,
  weights: ArrayLike<number>,
  T: number,
  k: number,
  N: number,
  residual?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(T * N);
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      let sum = residual ? residual[t * N + n] : 0;
      for (let j = 0; j < k; j++) sum += weights[t * k + j] * y[(t * k + j) * N + n];
      out[t * N + n] = sum;
    }
  return out;
}

/** One expert's weights, [out, in] as checkpoints store them. */
export interface ExpertRef {
  gate: ArrayLike<number>; // [I, H]
  up: ArrayLike<number>; // [I, H]
  down: ArrayLike<number>; // [H, I]
}

/**
 * Qwen3MoeSparseMoeBlock on normed activations x [T, H]: router [E, H] logits, top-k routing, and the
 * weighted sum of the chosen experts' SwiGLU MLPs. Returns [T, H] (without the residual).
 */
export function moeBlockRef(
  x: ArrayLike<number>,
  router: ArrayLike<number>,
  experts: readonly ExpertRef[],
  T: number,
  H: number,
  I: number,
  k: number,
  renormalize: boolean,
): Float64Array {
  const E = experts.length;
  const logits = new Float64Array(T * E);
  for (let t = 0; t < T; t++)
    for (let e = 0; e < E; e++) {
      let acc = 0;
      for (let i = 0; i < H; i++) acc += x[t * H + i] * router[e * H + i];
      logits[t * E + e] = acc;
    }
  const route = moeRouteRef(logits, T, E, k, renormalize);
  const out = new Float64Array(T * H);
  const act = new Float64Array(I);
  for (let t = 0; t < T; t++)
    for (let j = 0; j < k; j++) {
      const ex = experts[route.ids[t * k + j]];
      const wt = route.weights[t * k + j];
      for (let i = 0; i < I; i++) {
        let g = 0;
        let u = 0;
        for (let h = 0; h < H; h++) {
          g += x[t * H + h] * ex.gate[i * H + h];
          u += x[t * H + h] * ex.up[i * H + h];
        }
        act[i] = (g / (1 + Math.exp(-g))) * u;
      }
      for (let h = 0; h < H; h++) {
        let d = 0;
        for (let i = 0; i < I; i++) d += act[i] * ex.down[h * I + i];
        out[t * H + h] += wt * d;
      }
    }
  return out;
}
