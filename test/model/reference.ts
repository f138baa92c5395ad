// A float64 Qwen3 / Qwen3-MoE forward pass written plainly from the Hugging Face modelling code,
// sharing nothing with src/: it parses config.json and the safetensors files itself (fs, not the
// addon), widens every weight to float64, and runs whole sequences with dense causal attention (no
// paging, no cache). RoPE follows config.json's rope_scaling (plain or YaRN: test/reference/rope.ts);
// sparse layers run Qwen3MoeSparseMoeBlock (test/reference/moe.ts).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { moeBlockRef, type ExpertRef } from '../reference/moe.js';
import type { RopeRef } from '../reference/norm.js';
import { plainRopeRef, yarnRopeRef } from '../reference/rope.js';

interface RefConfig {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  rope: RopeRef;
  tied: boolean;
  moe?: {
    experts: number;
    topK: number;
    intermediate: number;
    normTopk: boolean;
    sparseStep: number;
    mlpOnly: number[];
  };
}

/** Options of a reference run. */
export interface ReferenceRun {
  /**
   * Tokens before the sequence whose keys and values are all zero (a KV cache whose first
   * `zeroPrefix` slots hold zeros): the sequence starts at position zeroPrefix, and every query also
   * attends those keys (score 0, value 0). Lets a test reach positions beyond 32K cheaply.
   */
  zeroPrefix?: number;
  /** Each K and V element of a layer as the KV cache stores it (e.g. rounded to fp8); default: kept exactly. */
  storeKv?: (x: number, which: 'k' | 'v', layer: number) => number;
}

type Weights = Map<string, Float64Array>;

export class ReferenceQwen3 {
  readonly config: RefConfig;
  readonly #w: Weights;

  private constructor(config: RefConfig, weights: Weights) {
    this.config = config;
    this.#w = weights;
  }

  static load(dir: string): ReferenceQwen3 {
    const j = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const config: RefConfig = {
      hidden: j.hidden_size,
      intermediate: j.intermediate_size,
      layers: j.num_hidden_layers,
      heads: j.num_attention_heads,
      kvHeads: j.num_key_value_heads,
      headDim: j.head_dim,
      vocab: j.vocab_size,
      eps: j.rms_norm_eps,
      rope: ropeOfConfig(j),
      tied: j.tie_word_embeddings,
      moe: j.num_experts
        ? {
            experts: j.num_experts,
            topK: j.num_experts_per_tok,
            intermediate: j.moe_intermediate_size,
            normTopk: j.norm_topk_prob,
            sparseStep: j.decoder_sparse_step ?? 1,
            mlpOnly: j.mlp_only_layers ?? [],
          }
        : undefined,
    };
    const weights: Weights = new Map();
    const index = path.join(dir, 'model.safetensors.index.json');
    const files = existsSync(index)
      ? [...new Set(Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map as Record<string, string>))]
      : ['model.safetensors'];
    for (const f of files) readSafetensors(path.join(dir, f), weights);
    return new ReferenceQwen3(config, weights);
  }

  #get(name: string): Float64Array {
    const w = this.#w.get(name);
    if (!w) throw new Error(`reference: missing ${name}`);
    return w;
  }

  /** Logits [tokens.length][vocab] of a whole sequence starting at position 0 (or after a zero prefix). */
  logits(tokens: readonly number[], run: ReferenceRun = {}): Float64Array[] {
    return this.lastLogits(tokens, tokens.length, run);
  }

  /** Logits of the last `count` positions only (the LM head is most of a long sequence's cost). */
  lastLogits(tokens: readonly number[], count: number, run: ReferenceRun = {}): Float64Array[] {
    const head = this.#get(this.config.tied ? 'model.embed_tokens.weight' : 'lm_head.weight');
    return this.hidden(tokens, run).slice(tokens.length - count).map((row) => matvec(head, row));
  }

  /** The same model with some weights replaced (HF names), e.g. by the dequantized values of a GGUF. */
  withWeights(replace: ReadonlyMap<string, Float64Array>): ReferenceQwen3 {
    const weights: Weights = new Map(this.#w);
    for (const [name, w] of replace) {
      const old = this.#get(name);
      if (old.length !== w.length) throw new Error(`reference: ${name} has ${old.length} values, the replacement ${w.length}`);
      weights.set(name, w);
    }
    return new ReferenceQwen3(this.config, weights);
  }

  /** The final norm's output [tokens.length][hidden] of a whole sequence starting at position 0 (or after a zero prefix). */
  hidden(tokens: readonly number[], run: ReferenceRun = {}): Float64Array[] {
    const c = this.config;
    const prefix = run.zeroPrefix ?? 0;
    const n = tokens.length;
    const D = c.headDim;
    const group = c.heads / c.kvHeads;
    const embed = this.#get('model.embed_tokens.weight');
    const x = tokens.map((id) => embed.slice(id * c.hidden, (id + 1) * c.hidden));

    for (let l = 0; l < c.layers; l++) {
      const p = `model.layers.${l}.`;
      const qs: Float64Array[] = [];
      const ks: Float64Array[] = [];
      const vs: Float64Array[] = [];
      for (let t = 0; t < n; t++) {
        const h = rmsnorm(x[t], this.#get(`${p}input_layernorm.weight`), c.eps);
        const q = matvec(this.#get(`${p}self_attn.q_proj.weight`), h);
        const k = matvec(this.#get(`${p}self_attn.k_proj.weight`), h);
        for (let hd = 0; hd < c.heads; hd++) normRopeHead(q, hd * D, D, this.#get(`${p}self_attn.q_norm.weight`), c.eps, c.rope, prefix + t);
        for (let hd = 0; hd < c.kvHeads; hd++) normRopeHead(k, hd * D, D, this.#get(`${p}self_attn.k_norm.weight`), c.eps, c.rope, prefix + t);
        const v = matvec(this.#get(`${p}self_attn.v_proj.weight`), h);
        if (run.storeKv) {
          k.forEach((e, i) => (k[i] = run.storeKv!(e, 'k', l)));
          v.forEach((e, i) => (v[i] = run.storeKv!(e, 'v', l)));
        }
        qs.push(q);
        ks.push(k);
        vs.push(v);
      }
      for (let t = 0; t < n; t++) {
        const attn = new Float64Array(c.heads * D);
        for (let hd = 0; hd < c.heads; hd++) {
          const kvh = Math.floor(hd / group);
          const scores = new Float64Array(t + 1);
          // The zero prefix: `prefix` keys of score 0 whose values are 0 (they only add to the sum).
          let max = prefix > 0 ? 0 : -Infinity;
          for (let j = 0; j <= t; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += qs[t][hd * D + d] * ks[j][kvh * D + d];
            scores[j] = s / Math.sqrt(D);
            max = Math.max(max, scores[j]);
          }
          let sum = prefix * Math.exp(-max);
          for (let j = 0; j <= t; j++) sum += scores[j] = Math.exp(scores[j] - max);
          for (let j = 0; j <= t; j++)
            for (let d = 0; d < D; d++) attn[hd * D + d] += (scores[j] / sum) * vs[j][kvh * D + d];
        }
        addInto(x[t], matvec(this.#get(`${p}self_attn.o_proj.weight`), attn));
      }
      const m = c.moe;
      if (m && !m.mlpOnly.includes(l) && (l + 1) % m.sparseStep === 0) {
        const H = c.hidden;
        const normed = new Float64Array(n * H);
        for (let t = 0; t < n; t++) normed.set(rmsnorm(x[t], this.#get(`${p}post_attention_layernorm.weight`), c.eps), t * H);
        const experts: ExpertRef[] = Array.from({ length: m.experts }, (_, e) => ({
          gate: this.#get(`${p}mlp.experts.${e}.gate_proj.weight`),
          up: this.#get(`${p}mlp.experts.${e}.up_proj.weight`),
          down: this.#get(`${p}mlp.experts.${e}.down_proj.weight`),
        }));
        const out = moeBlockRef(normed, this.#get(`${p}mlp.gate.weight`), experts, n, H, m.intermediate, m.topK, m.normTopk);
        for (let t = 0; t < n; t++) addInto(x[t], out.subarray(t * H, (t + 1) * H));
        continue;
      }
      for (let t = 0; t < n; t++) {
        const h = rmsnorm(x[t], this.#get(`${p}post_attention_layernorm.weight`), c.eps);
        const g = matvec(this.#get(`${p}mlp.gate_proj.weight`), h);
        const u = matvec(this.#get(`${p}mlp.up_proj.weight`), h);
        for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
        addInto(x[t], matvec(this.#get(`${p}mlp.down_proj.weight`), g));
      }
    }
    return x.map((row) => rmsnorm(row, this.#get('model.norm.weight'), c.eps));
  }
}

/** y = W · x for W [rows, x.length] row-major. */
function matvec(w: Float64Array, x: Float64Array): Float64Array {
  const k = x.length;
  const y = new Float64Array(w.length / k);
  for (let r = 0; r < y.length; r++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += w[r * k + i] * x[i];
    y[r] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

function addInto(x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

/** The rotation config.json asks for: theta^(−2i/D), or YaRN's frequencies and cos/sin scale. */
function ropeOfConfig(j: Record<string, unknown>): RopeRef {
  const D = j.head_dim as number;
  const theta = j.rope_theta as number;
  const s = j.rope_scaling as Record<string, unknown> | null | undefined;
  if (!s) return plainRopeRef(D, theta);
  if (s.rope_type !== 'yarn' || s.mscale !== undefined || s.mscale_all_dim !== undefined)
    throw new Error(`reference: rope_scaling ${JSON.stringify(s)} is not the YaRN this reference runs`);
  return yarnRopeRef(D, theta, {
    factor: s.factor as number,
    originalMaxPositionEmbeddings: (s.original_max_position_embeddings as number) ?? (j.max_position_embeddings as number),
    betaFast: s.beta_fast as number | undefined,
    betaSlow: s.beta_slow as number | undefined,
    truncate: s.truncate as boolean | undefined,
    attentionFactor: s.attention_factor as number | undefined,
  });
}

/** Qwen3's per-head RMSNorm then rotate-half RoPE at `pos`, in place on v[off, off + D). */
function normRopeHead(v: Float64Array, off: number, D: number, w: Float64Array, eps: number, rope: RopeRef, pos: number): void {
  const h = rmsnorm(v.subarray(off, off + D), w, eps);
  const half = D / 2;
  for (let i = 0; i < half; i++) {
    const a = pos * rope.invFreq[i];
    const c = rope.attentionFactor * Math.cos(a);
    const s = rope.attentionFactor * Math.sin(a);
    v[off + i] = h[i] * c - h[i + half] * s;
    v[off + i + half] = h[i + half] * c + h[i] * s;
  }
}

/** Reads every tensor of a safetensors file into `out`, widened to float64. */
function readSafetensors(file: string, out: Weights): void {
  const buf = readFileSync(file);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8'));
  const base = 8 + headerLength;
  for (const [name, e] of Object.entries(header as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>)) {
    if (name === '__metadata__') continue;
    const [begin, end] = e.data_offsets;
    const bytes = buf.subarray(base + begin, base + end);
    const n = e.shape.reduce((a, b) => a * b, 1);
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (e.dtype === 'F32') v[i] = bytes.readFloatLE(4 * i);
      else if (e.dtype === 'BF16') v[i] = bf16(bytes.readUInt16LE(2 * i));
      else if (e.dtype === 'F16') v[i] = f16(bytes.readUInt16LE(2 * i));
      else throw new Error(`reference: ${name}: dtype ${e.dtype}`);
    }
    out.set(name, v);
  }
}

const scratch = new DataView(new ArrayBuffer(4));
function bf16(bits: number): number {
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

function f16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
