// The tensor shapes of the models the benchmarks stand for (from their config.json files).
export interface ModelShape {
  name: string;
  hidden: number;
  intermediate: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocab: number;
  numLayers: number;
}

export const modelShapes: Record<string, ModelShape> = {
  '0.6b': { name: 'Qwen3-0.6B', hidden: 1024, intermediate: 3072, numHeads: 16, numKvHeads: 8, headDim: 128, vocab: 151936, numLayers: 28 },
  '8b': { name: 'Qwen3-8B', hidden: 4096, intermediate: 12288, numHeads: 32, numKvHeads: 8, headDim: 128, vocab: 151936, numLayers: 36 },
};

/** The matmuls of one layer (and the LM head): [name, N (out), K (in)]. */
export function projections(s: ModelShape): [string, number, number][] {
  return [
    ['q_proj', s.numHeads * s.headDim, s.hidden],
    ['k_proj', s.numKvHeads * s.headDim, s.hidden],
    ['o_proj', s.hidden, s.numHeads * s.headDim],
    ['gate_proj', s.intermediate, s.hidden],
    ['down_proj', s.hidden, s.intermediate],
    ['lm_head', s.vocab, s.hidden],
  ];
}
