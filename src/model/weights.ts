// Qwen3 weights on a device: every tensor the forward pass needs, named as in Hugging Face checkpoints,
// checked against the config (present, shape, dtype) before anything is placed. On a host-memory
// device (cpu) tensors are used in place from the file mapping; otherwise they are copied in stream
// order, with progress reported as the copies complete.
import type { Device, Tensor } from '../runtime/index.js';
import type { Qwen3Config } from './config.js';
import type { SafetensorsCheckpoint, TensorEntry } from './safetensors.js';

export interface LayerWeights {
  inputNorm: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  o: Tensor;
  qNorm: Tensor;
  kNorm: Tensor;
  postAttentionNorm: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
}

export interface Qwen3Weights {
  embedding: Tensor;
  layers: LayerWeights[];
  finalNorm: Tensor;
  /** The embedding itself when tie_word_embeddings. */
  lmHead: Tensor;
  /** Bytes of weight data placed. */
  bytes: number;
}

/** Called after each placed chunk: bytes done so far out of the total. */
export type LoadProgress = (loadedBytes: number, totalBytes: number) => void;

type LayerKey = keyof LayerWeights;

/** Checkpoint names and shapes of one layer's tensors. */
function layerSpec(c: Qwen3Config, i: number): [LayerKey, string, number[]][] {
  const p = `model.layers.${i}.`;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  return [
    ['inputNorm', `${p}input_layernorm.weight`, [c.hiddenSize]],
    ['q', `${p}self_attn.q_proj.weight`, [qDim, c.hiddenSize]],
    ['k', `${p}self_attn.k_proj.weight`, [kvDim, c.hiddenSize]],
    ['v', `${p}self_attn.v_proj.weight`, [kvDim, c.hiddenSize]],
    ['o', `${p}self_attn.o_proj.weight`, [c.hiddenSize, qDim]],
    ['qNorm', `${p}self_attn.q_norm.weight`, [c.headDim]],
    ['kNorm', `${p}self_attn.k_norm.weight`, [c.headDim]],
    ['postAttentionNorm', `${p}post_attention_layernorm.weight`, [c.hiddenSize]],
    ['gate', `${p}mlp.gate_proj.weight`, [c.intermediateSize, c.hiddenSize]],
    ['up', `${p}mlp.up_proj.weight`, [c.intermediateSize, c.hiddenSize]],
    ['down', `${p}mlp.down_proj.weight`, [c.hiddenSize, c.intermediateSize]],
  ];
}

const EMBEDDING = 'model.embed_tokens.weight';
const FINAL_NORM = 'model.norm.weight';
const LM_HEAD = 'lm_head.weight';

/**
 * Checks every tensor the config calls for and returns their entries, in load order. Tensors the
 * forward pass does not use are tolerated (as transformers does), except layers beyond
 * num_hidden_layers, which mean the config and the weights disagree.
 */
export function resolveEntries(checkpoint: SafetensorsCheckpoint, c: Qwen3Config) {
  const expect = (name: string, shape: number[], why = ''): TensorEntry => {
    const entry = checkpoint.get(name);
    if (!entry) throw new Error(`${checkpoint.files.join(', ')}: missing tensor ${name}${why}`);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i]))
      throw new Error(`${entry.file}: ${name}: shape [${entry.shape.join(', ')}], expected [${shape.join(', ')}] from config.json`);
    return entry;
  };
  for (const name of checkpoint.names) {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (layer && Number(layer[1]) >= c.numLayers)
      throw new Error(`${checkpoint.get(name)!.file}: ${name}: config.json has num_hidden_layers = ${c.numLayers}`);
  }
  const embedding = expect(EMBEDDING, [c.vocabSize, c.hiddenSize]);
  const layers = Array.from({ length: c.numLayers }, (_, i) => {
    const entries = layerSpec(c, i).map(([key, name, shape]) => [key, expect(name, shape)] as const);
    const qNorm = entries.find(([k]) => k === 'qNorm')![1];
    const kNorm = entries.find(([k]) => k === 'kNorm')![1];
    // qkNormRope reads both norm weights with one dtype.
    if (qNorm.dtype !== kNorm.dtype)
      throw new Error(`${kNorm.file}: ${kNorm.name}: dtype ${kNorm.dtype}, expected ${qNorm.dtype} like ${qNorm.name}`);
    return entries;
  });
  const finalNorm = expect(FINAL_NORM, [c.hiddenSize]);
  const lmHead = c.tieWordEmbeddings
    ? undefined
    : expect(LM_HEAD, [c.vocabSize, c.hiddenSize], ' (tie_word_embeddings is false)');
  return { embedding, layers, finalNorm, lmHead };
}

/** Places the checkpoint's weights on `device`; resolves once every copy has completed. */
export async function loadQwen3Weights(
  device: Device,
  checkpoint: SafetensorsCheckpoint,
  config: Qwen3Config,
  onProgress?: LoadProgress,
): Promise<Qwen3Weights> {
  const resolved = resolveEntries(checkpoint, config);
  const all = [resolved.embedding, ...resolved.layers.flatMap((l) => l.map(([, e]) => e)), resolved.finalNorm];
  if (resolved.lmHead) all.push(resolved.lmHead);
  const total = all.reduce((a, e) => a + e.byteLength, 0);

  // Copies are queued in chunks of about this many bytes, waiting for each chunk so that progress
  // is real and the staging of a large checkpoint does not run far ahead of the device.
  const chunkBytes = 256 * 1024 * 1024;
  const placed = new Map<TensorEntry, Tensor>();
  let loaded = 0;
  let pending = 0;
  try {
    for (const entry of all) {
      placed.set(entry, checkpoint.tensor(entry));
      pending += entry.byteLength;
      if (pending >= chunkBytes) {
        if (!device.hostMemory) await device.synchronize();
        loaded += pending;
        pending = 0;
        onProgress?.(loaded, total);
      }
    }
    if (!device.hostMemory) await device.synchronize();
  } catch (e) {
    for (const t of placed.values()) t.dispose();
    throw e;
  }
  onProgress?.(total, total);

  const get = (e: TensorEntry) => placed.get(e)!;
  const embedding = get(resolved.embedding);
  return {
    embedding,
    layers: resolved.layers.map((entries) => Object.fromEntries(entries.map(([k, e]) => [k, get(e)])) as unknown as LayerWeights),
    finalNorm: get(resolved.finalNorm),
    lmHead: resolved.lmHead ? get(resolved.lmHead) : embedding,
    bytes: total,
  };
}

/** Frees the weights (device copies; on cpu, the references to the mapping). */
export function disposeWeights(w: Qwen3Weights): void {
  const all = new Set<Tensor>([w.embedding, w.finalNorm, w.lmHead, ...w.layers.flatMap((l) => Object.values(l))]);
  for (const t of all) t.dispose();
}
