// The Qwen3 family's GGUF hyper-parameters beyond the dense basics: YaRN from the rope.scaling.* keys
// (llama.cpp's names and defaults, transformers' semantics) and qwen3moe's expert keys, each written
// by the exporter and read back, and each refusal naming the file and the key.
import { describe, expect, it } from 'vitest';
import { GgufMetadata, gguf, qwen3ConfigFromGguf, qwen3MoeConfigFromGguf, qwen3MoeToGguf, qwen3ToGguf, type GgufValue } from '../../../src/model/gguf/index.js';
import type { GgufModelFacts } from '../../../src/model/architecture.js';
import type { Qwen3Config } from '../../../src/model/qwen3.js';
import type { Qwen3MoeConfig } from '../../../src/model/qwen3-moe.js';
import { ropeFrequencies } from '../../../src/runtime/index.js';

const FACTS: GgufModelFacts = { vocabSize: 151, tied: true, dtype: 'f32', eosTokenIds: [150] };
const DENSE: Qwen3Config = {
  architecture: 'Qwen3ForCausalLM', hiddenSize: 64, intermediateSize: 96, numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 32,
  vocabSize: 151, rmsNormEps: Math.fround(1e-6), ropeTheta: 1_000_000, tieWordEmbeddings: true, maxPositionEmbeddings: 4096,
  dtype: 'f32', eosTokenIds: [150],
};
const MOE: Qwen3MoeConfig = {
  ...DENSE, architecture: 'Qwen3MoeForCausalLM', numExperts: 12, numExpertsPerTok: 3, moeIntermediateSize: 40,
  normTopkProb: true, decoderSparseStep: 1, mlpOnlyLayers: [],
};

const meta = (entries: [string, GgufValue][], file = 'm.gguf') => new GgufMetadata(new Map(entries), file);
const without = (entries: [string, GgufValue][], key: string) => entries.filter(([k]) => k !== key);

describe('YaRN in GGUF', () => {
  const yarn: Qwen3Config = { ...DENSE, ropeScaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 1024 }, maxPositionEmbeddings: 4096 };

  it('writes rope.scaling.type/factor/original_context_length and reads them back (context = factor × original)', () => {
    const keys = qwen3ToGguf(yarn);
    expect(Object.fromEntries(keys)).toMatchObject({
      'qwen3.rope.scaling.type': gguf.string('yarn'),
      'qwen3.rope.scaling.factor': gguf.f32(4),
      'qwen3.rope.scaling.original_context_length': gguf.u32(1024),
    });
    expect(qwen3ConfigFromGguf(meta(keys), FACTS)).toEqual(yarn);
  });

  it('writes beta_fast/beta_slow and the attention factor as the yarn_* keys the converter uses', () => {
    const c: Qwen3Config = { ...yarn, ropeScaling: { ...yarn.ropeScaling!, betaFast: 16, betaSlow: 2, attentionFactor: 1.25 } };
    expect(qwen3ConfigFromGguf(meta(qwen3ToGguf(c)), FACTS)).toEqual(c);
  });

  it('defaults original_context_length to context_length, and multiplies the scale by rope.scaling.attn_factor', () => {
    const keys: [string, GgufValue][] = [
      ...without(qwen3ToGguf(yarn), 'qwen3.rope.scaling.original_context_length'),
      ['qwen3.rope.scaling.attn_factor', gguf.f32(0.5)],
    ];
    const c = qwen3ConfigFromGguf(meta(keys), FACTS);
    expect(c.ropeScaling!.originalMaxPositionEmbeddings).toBe(4096);
    expect(c.maxPositionEmbeddings).toBe(4 * 4096);
    const plain = ropeFrequencies(32, { theta: 1e6, scaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 4096 } }).attentionFactor;
    expect(c.ropeScaling!.attentionFactor).toBeCloseTo(0.5 * plain, 12);
  });

  it('reads linear with factor 1 (llama.cpp\'s default) and none as plain RoPE', () => {
    for (const [type, factor] of [['linear', 1], ['none', 4]] as const) {
      const keys: [string, GgufValue][] = [...qwen3ToGguf(DENSE), ['qwen3.rope.scaling.type', gguf.string(type)], ['qwen3.rope.scaling.factor', gguf.f32(factor)]];
      expect(qwen3ConfigFromGguf(meta(keys), FACTS).ropeScaling).toBeUndefined();
    }
  });

  it('refuses other scalings and YaRN variants it does not run, naming the file and the key', () => {
    const base = qwen3ToGguf(yarn);
    const cases: [[string, GgufValue][], RegExp][] = [
      [[...without(base, 'qwen3.rope.scaling.type'), ['qwen3.rope.scaling.type', gguf.string('longrope')]], /^m\.gguf: qwen3\.rope\.scaling\.type "longrope"/],
      [[...without(base, 'qwen3.rope.scaling.factor'), ['qwen3.rope.scaling.factor', gguf.f32(0.5)]], /^m\.gguf: qwen3\.rope\.scaling\.factor must be ≥ 1/],
      [[...base, ['qwen3.rope.scaling.yarn_ext_factor', gguf.f32(0.5)]], /^m\.gguf: qwen3\.rope\.scaling\.yarn_ext_factor is 0\.5/],
      [[...base, ['qwen3.rope.scaling.yarn_log_multiplier', gguf.f32(0.1)]], /^m\.gguf: qwen3\.rope\.scaling\.yarn_log_multiplier/],
      [[...base, ['qwen3.rope.scaling.yarn_beta_slow', gguf.f32(40)]], /^m\.gguf: qwen3\.rope\.scaling\.yarn_beta_slow \(40\) must be below/],
      [[...base, ['qwen3.rope.scaling.original_context_length', gguf.string('x')]], /^m\.gguf: qwen3\.rope\.scaling\.original_context_length must be an integer/],
    ];
    for (const [keys, error] of cases) expect(() => qwen3ConfigFromGguf(meta(keys), FACTS)).toThrow(error);
  });

  it('refuses to write a scaling without a GGUF key (truncate: false)', () => {
    expect(() => qwen3ToGguf({ ...yarn, ropeScaling: { ...yarn.ropeScaling!, truncate: false } })).toThrow(/truncate = false has no GGUF key/);
  });
});

describe('qwen3moe hyper-parameters', () => {
  it('writes expert_count, expert_used_count, expert_feed_forward_length and reads the config back', () => {
    const keys = qwen3MoeToGguf(MOE);
    expect(Object.fromEntries(keys)).toMatchObject({
      'qwen3moe.expert_count': gguf.u32(12),
      'qwen3moe.expert_used_count': gguf.u32(3),
      'qwen3moe.expert_feed_forward_length': gguf.u32(40),
      'qwen3moe.feed_forward_length': gguf.u32(96),
      'qwen3moe.block_count': gguf.u32(3),
    });
    expect(qwen3MoeConfigFromGguf(meta(keys), FACTS)).toEqual(MOE);
  });

  it('takes the expert width from feed_forward_length / expert_used_count without the key (llama.cpp\'s fallback), and expert_weights_norm when stated', () => {
    const keys: [string, GgufValue][] = [...without(without(qwen3MoeToGguf(MOE), 'qwen3moe.expert_feed_forward_length'), 'qwen3moe.feed_forward_length'), ['qwen3moe.feed_forward_length', gguf.u32(120)]];
    expect(qwen3MoeConfigFromGguf(meta(keys), FACTS).moeIntermediateSize).toBe(40);
    expect(qwen3MoeConfigFromGguf(meta([...keys, ['qwen3moe.expert_weights_norm', gguf.bool(false)]]), FACTS).normTopkProb).toBe(false);
  });

  it('refuses bad expert keys by name', () => {
    const base = qwen3MoeToGguf(MOE);
    expect(() => qwen3MoeConfigFromGguf(meta(without(base, 'qwen3moe.expert_count')), FACTS)).toThrow(/^m\.gguf: missing metadata key qwen3moe\.expert_count/);
    expect(() => qwen3MoeConfigFromGguf(meta([...without(base, 'qwen3moe.expert_used_count'), ['qwen3moe.expert_used_count', gguf.u32(13)]]), FACTS)).toThrow(
      /^m\.gguf: qwen3moe\.expert_used_count \(13\) exceeds qwen3moe\.expert_count \(12\)/,
    );
    expect(() => qwen3MoeConfigFromGguf(meta([...base, ['qwen3moe.expert_gating_func', gguf.u32(2)]]), FACTS)).toThrow(/^m\.gguf: qwen3moe\.expert_gating_func is 2; Qwen3-MoE routes by softmax/);
    expect(() => qwen3MoeConfigFromGguf(meta([...without(base, 'qwen3moe.expert_feed_forward_length')].filter(([k]) => k !== 'qwen3moe.feed_forward_length')), FACTS)).toThrow(
      /^m\.gguf: missing metadata key qwen3moe\.expert_feed_forward_length/,
    );
  });

  it('refuses to write what llama.cpp\'s qwen3moe cannot run: dense layers, unnormalised top-k', () => {
    expect(() => qwen3MoeToGguf({ ...MOE, mlpOnlyLayers: [1] })).toThrow(/qwen3moe makes every layer sparse; this config has dense layers \(mlp_only_layers \[1\]/);
    expect(() => qwen3MoeToGguf({ ...MOE, decoderSparseStep: 2 })).toThrow(/decoder_sparse_step 2/);
    expect(() => qwen3MoeToGguf({ ...MOE, normTopkProb: false })).toThrow(/norm_topk_prob is false/);
  });
});
