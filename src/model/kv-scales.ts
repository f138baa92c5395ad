// fp8 KV cache scales stored in a checkpoint, as vLLM reads them: per layer a scalar
// `model.layers.N.self_attn.k_scale` and `v_scale` (llm-compressor / ModelOpt exports), or one
// `kv_scale` for both (older exports). A stored e4m3 element e means e · scale. Checkpoints without
// them get scale 1 (vLLM's default), which holds magnitudes 2^-9 … 448.
import type { Checkpoint, TensorEntry } from './weights.js';

/** The dequantization scales of one layer's K and V cache. */
export interface KvScales {
  k: number;
  v: number;
}

const FLOAT_DTYPES = new Set(['f32', 'bf16', 'f16']);

/**
 * Every layer's scales, or undefined when the checkpoint has none. A checkpoint with scales for some
 * layers only, or a scale that is not a positive finite float scalar, is refused by file and tensor.
 */
export async function readKvScales(checkpoint: Checkpoint, numLayers: number): Promise<KvScales[] | undefined> {
  const entryOf = (layer: number, name: string) => checkpoint.get(`model.layers.${layer}.self_attn.${name}`);
  const layers = Array.from({ length: numLayers }, (_, i) => {
    const both = entryOf(i, 'kv_scale');
    return { k: entryOf(i, 'k_scale') ?? both, v: entryOf(i, 'v_scale') ?? both };
  });
  const present = layers.filter((l) => l.k || l.v).length;
  if (present === 0) return undefined;
  const missing = layers.findIndex((l) => !l.k || !l.v);
  if (missing >= 0) {
    const what = !layers[missing].k ? 'k_scale' : 'v_scale';
    throw new Error(`${checkpoint.files.join(', ')}: missing tensor model.layers.${missing}.self_attn.${what} (other layers have fp8 KV scales)`);
  }
  const scales: KvScales[] = [];
  for (const l of layers) scales.push({ k: await scalar(checkpoint, l.k!), v: await scalar(checkpoint, l.v!) });
  return scales;
}

async function scalar(checkpoint: Checkpoint, entry: TensorEntry): Promise<number> {
  const where = `${entry.file}: ${entry.name}`;
  if (!FLOAT_DTYPES.has(entry.dtype)) throw new Error(`${where}: dtype ${entry.dtype}, expected a float scalar`);
  if (entry.shape.reduce((a, b) => a * b, 1) !== 1) throw new Error(`${where}: shape [${entry.shape.join(', ')}], expected a scalar`);
  const tensor = checkpoint.tensor(entry);
  try {
    const [value] = await tensor.toFloat32();
    if (!(Number.isFinite(value) && value > 0)) throw new Error(`${where}: ${value} is not a positive finite scale`);
    return value;
  } finally {
    tensor.dispose();
  }
}
