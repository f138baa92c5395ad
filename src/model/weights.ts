// A decoder's weights on a device, for any architecture: the tensors its weight spec names (Hugging
// Face naming) are checked against the config (present, shape, dtype) before anything is placed. On a
// host-memory device (cpu) single tensors are used in place from the file mapping; otherwise they are
// copied in stream order, with progress reported as the copies complete. Stacked weights (MoE experts)
// are concatenated once at load into a tensor of their own, unless the checkpoint stores the stack
// (GGUF's ffn_*_exps), which is then used as any single tensor.
import { ops, type Device, type Tensor } from '../runtime/index.js';
import type { AnyArchitecture, DecoderWeights, ModelConfig, WeightSpec } from './architecture.js';
import type { WeightDType } from './config.js';
import type { QuantDType } from '../runtime/dtype.js';
import { readKvScales } from './kv-scales.js';

/** One tensor of a checkpoint: where its bytes are and what they are. */
export interface TensorEntry {
  name: string;
  /** The file's base name, for messages. */
  file: string;
  /** Float dtypes from any checkpoint; ggml block types (q8_0, …) from GGUF files. */
  dtype: WeightDType | QuantDType;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  byteOffset: number;
  byteLength: number;
}

/** What the loader reads weights from: a safetensors directory, a GGUF file, … (names in HF naming). */
export interface Checkpoint {
  /** Base names of the files, for messages. */
  readonly files: string[];
  readonly names: Iterable<string>;
  get(name: string): TensorEntry | undefined;
  /** The entry's bytes as a tensor on the checkpoint's device (in place on cpu). */
  tensor(entry: TensorEntry): Tensor;
}

/** Called after each placed chunk: bytes done so far out of the total. */
export type LoadProgress = (loadedBytes: number, totalBytes: number) => void;

const EMBEDDING = 'model.embed_tokens.weight';
const FINAL_NORM = 'model.norm.weight';
const LM_HEAD = 'lm_head.weight';

type Resolved = { spec: WeightSpec; entries: TensorEntry[] };

/**
 * Checks every tensor the architecture calls for and returns their entries. Tensors the forward pass
 * does not use are tolerated (as transformers does), except layers beyond num_hidden_layers, which
 * mean the config and the weights disagree.
 */
export function resolveWeights(named: Checkpoint, arch: AnyArchitecture, c: ModelConfig, options: { lmHead?: boolean } = {}) {
  const checkpoint = withModelPrefix(named);
  const files = () => checkpoint.files.join(', ');
  const expect = (name: string, shape: number[], why = ''): TensorEntry => {
    const entry = checkpoint.get(name);
    if (!entry) throw new Error(`${files()}: missing tensor ${name}${why}`);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i]))
      throw new Error(`${entry.file}: ${name}: shape [${entry.shape.join(', ')}], expected [${shape.join(', ')}] from config.json`);
    return entry;
  };
  const resolve = (spec: WeightSpec): Resolved => {
    if (spec.stackedAs !== undefined && checkpoint.get(spec.stackedAs)) {
      const shape = spec.shapes[0];
      if (spec.shapes.some((s) => s.join() !== shape.join()))
        throw new Error(`${spec.stackedAs}: the stacked tensors must share one shape`);
      return { spec, entries: [expect(spec.stackedAs, [spec.names.length, ...shape])] };
    }
    const entries = spec.names.map((name, i) => expect(name, spec.shapes[i]));
    if (spec.layout !== 'parts')
      for (const e of entries.slice(1))
        if (e.dtype !== entries[0].dtype)
          throw new Error(`${e.file}: ${e.name}: dtype ${e.dtype}, expected ${entries[0].dtype} like ${entries[0].name} (they are stacked at load)`);
    return { spec, entries };
  };
  for (const name of checkpoint.names) {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (layer && Number(layer[1]) >= c.numLayers)
      throw new Error(`${checkpoint.get(name)!.file}: ${name}: config.json has num_hidden_layers = ${c.numLayers}`);
  }
  const single = (name: string, shape: number[], why?: string): Resolved => ({ spec: { names: [name], shapes: [shape] }, entries: [expect(name, shape, why)] });
  const embedding = single(EMBEDDING, [c.vocabSize, c.hiddenSize]);
  const layers = Array.from({ length: c.numLayers }, (_, i) => {
    const specs = arch.layerWeights(c, i) as Record<string, WeightSpec>;
    const resolved = Object.fromEntries(Object.entries(specs).map(([key, spec]) => [key, resolve(spec)]));
    for (const [a, b] of arch.sameDtype ?? []) {
      const [ea, eb] = [resolved[a].entries[0], resolved[b].entries[0]];
      if (ea.dtype !== eb.dtype) throw new Error(`${eb.file}: ${eb.name}: dtype ${eb.dtype}, expected ${ea.dtype} like ${ea.name}`);
    }
    return resolved;
  });
  const finalNorm = single(FINAL_NORM, [c.hiddenSize]);
  const lmHead = c.tieWordEmbeddings || options.lmHead === false ? undefined : single(LM_HEAD, [c.vocabSize, c.hiddenSize], ' (tie_word_embeddings is false)');
  return { embedding, layers, finalNorm, lmHead };
}

/** Places the checkpoint's weights on `device`; resolves once every copy has completed. */
export async function loadDecoderWeights<L>(
  device: Device,
  checkpoint: Checkpoint,
  arch: AnyArchitecture,
  config: ModelConfig,
  onProgress?: LoadProgress,
  options: { lmHead?: boolean } = {},
): Promise<DecoderWeights<L>> {
  const resolved = resolveWeights(checkpoint, arch, config, options);
  const kvScales = await readKvScales(checkpoint, config.numLayers);
  const all: Resolved[] = [resolved.embedding, ...resolved.layers.flatMap((l) => Object.values(l)), resolved.finalNorm];
  if (resolved.lmHead) all.push(resolved.lmHead);
  const bytesOf = (r: Resolved) => r.entries.reduce((a, e) => a + e.byteLength, 0);
  const total = all.reduce((a, r) => a + bytesOf(r), 0);

  // Copies are queued in chunks of about this many bytes, waiting for each chunk so that progress
  // is real and the staging of a large checkpoint does not run far ahead of the device.
  const chunkBytes = 256 * 1024 * 1024;
  const placed = new Map<Resolved, Tensor | Tensor[]>();
  let loaded = 0;
  let pending = 0;
  try {
    for (const r of all) {
      placed.set(r, r.spec.layout === 'parts' ? r.entries.map((e) => checkpoint.tensor(e)) : place(device, checkpoint, r.entries));
      pending += bytesOf(r);
      if (pending >= chunkBytes) {
        await device.synchronize();
        loaded += pending;
        pending = 0;
        onProgress?.(loaded, total);
      }
    }
    // Stacked weights are copied even on cpu: every copy must be done before the mapping may go.
    await device.synchronize();
  } catch (e) {
    for (const t of [...placed.values()].flat()) t.dispose();
    throw e;
  }
  onProgress?.(total, total);

  const get = (r: Resolved) => placed.get(r)!;
  const embedding = get(resolved.embedding) as Tensor;
  return {
    embedding,
    layers: resolved.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, r]) => [k, get(r)])) as L),
    finalNorm: get(resolved.finalNorm) as Tensor,
    lmHead: resolved.lmHead ? (get(resolved.lmHead) as Tensor) : embedding,
    bytes: total,
    kvScales,
  };
}

/**
 * The checkpoint under transformers' `*ForCausalLM` names. A bare `*Model` checkpoint (embedding
 * models such as Qwen3-Embedding save `embed_tokens.weight`, `layers.N.…`, `norm.weight`) is read
 * through an adapter that adds the `model.` prefix.
 */
function withModelPrefix(checkpoint: Checkpoint): Checkpoint {
  if (checkpoint.get(EMBEDDING) || !checkpoint.get(EMBEDDING.slice('model.'.length))) return checkpoint;
  const bare = (name: string) => (name.startsWith('model.') ? name.slice('model.'.length) : undefined);
  return {
    files: checkpoint.files,
    names: [...checkpoint.names].map((n) => (n === LM_HEAD ? n : `model.${n}`)),
    get: (name) => {
      const b = bare(name);
      return b === undefined ? checkpoint.get(name) : checkpoint.get(b);
    },
    tensor: (entry) => checkpoint.tensor(entry),
  };
}

/** One tensor as the checkpoint gives it, or several concatenated along dimension 0 into a new one. */
function place(device: Device, checkpoint: Checkpoint, entries: TensorEntry[]): Tensor {
  if (entries.length === 1) return checkpoint.tensor(entries[0]);
  const rest = entries[0].shape.slice(1);
  const rows = entries.reduce((a, e) => a + e.shape[0], 0);
  const fused = device.empty([rows, ...rest], entries[0].dtype);
  const rowElements = rest.reduce((a, b) => a * b, 1);
  let row = 0;
  try {
    for (const e of entries) {
      const part = checkpoint.tensor(e);
      ops.copy(fused.view(e.shape, { offset: row * rowElements }), part);
      part.dispose(); // frees run in stream order: after the copy
      row += e.shape[0];
    }
  } catch (e) {
    fused.dispose();
    throw e;
  }
  return fused;
}

/** Frees the weights (device copies; on cpu, the references to the mapping). */
export function disposeWeights(w: DecoderWeights<unknown>): void {
  const all = new Set<Tensor>([w.embedding, w.finalNorm, w.lmHead, ...w.layers.flatMap((l) => (Object.values(l as object) as (Tensor | Tensor[])[]).flat())]);
  for (const t of all) t.dispose();
}
