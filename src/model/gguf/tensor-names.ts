// llama.cpp's tensor names (token_embd, blk.N.attn_q, …) ⇄ Hugging Face names (model.embed_tokens,
// model.layers.N.self_attn.q_proj, …) for the Llama-family layout that llama.cpp's converter maps
// them from. The loaders and the weight specs speak HF names; GGUF files are renamed at the edge.
// Mixture-of-experts layers (qwen3moe): the router, and each projection's experts stacked into one
// 3-D tensor ([E, rows, cols] row-major; ggml's ne = {cols, rows, E}). HF checkpoints hold one tensor
// per expert (mlp.experts.N.gate_proj.weight); the stacked tensors get the HF-style names
// mlp.experts.gate_proj.weight … that the weight specs accept in their place (architecture.ts `stacked`).

/** Per layer: HF suffix → GGUF suffix. */
const LAYER_TENSORS: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'mlp.gate.weight': 'ffn_gate_inp.weight',
  'mlp.experts.gate_proj.weight': 'ffn_gate_exps.weight',
  'mlp.experts.up_proj.weight': 'ffn_up_exps.weight',
  'mlp.experts.down_proj.weight': 'ffn_down_exps.weight',
};
const GLOBAL_TENSORS: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};
const HF_OF_GLOBAL = Object.fromEntries(Object.entries(GLOBAL_TENSORS).map(([hf, g]) => [g, hf]));
const HF_OF_LAYER = Object.fromEntries(Object.entries(LAYER_TENSORS).map(([hf, g]) => [g, hf]));

/** The GGUF name of an HF tensor, or undefined for one this map does not know. */
export function ggufTensorName(hfName: string): string | undefined {
  const global = GLOBAL_TENSORS[hfName];
  if (global) return global;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const local = m && LAYER_TENSORS[m[2]];
  return m && local ? `blk.${m[1]}.${local}` : undefined;
}

/** The HF name of a GGUF tensor, or undefined for one this map does not know (rope_freqs, …). */
export function hfTensorName(ggufName: string): string | undefined {
  const global = HF_OF_GLOBAL[ggufName];
  if (global) return global;
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  const local = m && HF_OF_LAYER[m[2]];
  return m && local ? `model.layers.${m[1]}.${local}` : undefined;
}

/** An HF per-expert tensor name's layer, expert and the HF name of its stacked tensor; undefined for others. */
export function expertTensor(hfName: string): { layer: number; expert: number; stacked: string } | undefined {
  const m = /^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$/.exec(hfName);
  return m ? { layer: Number(m[1]), expert: Number(m[2]), stacked: `model.layers.${m[1]}.mlp.experts.${m[3]}.weight` } : undefined;
}
