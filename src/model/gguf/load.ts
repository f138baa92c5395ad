// Opening a GGUF model: the architecture by `general.architecture` (the registry), its config from the
// `<arch>.*` keys, the end-of-generation tokens and sampling defaults from the metadata, and the
// tensors under their Hugging Face names so that the weight specs and the loader work unchanged.
// Tensors stay in the memory-mapped file (used in place on cpu); a tensor whose element type the
// runtime cannot run is refused by name.
import type { Device, Tensor } from '../../runtime/index.js';
import { isQuantized, type QuantDType } from '../../runtime/dtype.js';
import type { AnyArchitecture, GgufModelFacts, ModelConfig } from '../architecture.js';
import type { GenerationDefaults, WeightDType } from '../config.js';
import { ggufArchitecture } from '../registry.js';
import type { Checkpoint, TensorEntry } from '../weights.js';
import { GgufCheckpoint, type GgufTensorEntry } from './checkpoint.js';
import type { GgufMetadata } from './metadata.js';
import { hfTensorName } from './tensor-names.js';
import { tokenizerFromGguf, type GgufTokenizer } from './tokenizer-metadata.js';
import type { GgmlTypeName } from './types.js';

/**
 * Tensors are used in place from the mapping (page-aligned), so their data must start 16-byte aligned
 * for the kernels' vector loads; llama.cpp's writers align to 32. A file with a smaller
 * general.alignment may place them anywhere.
 */
const TENSOR_ALIGNMENT = 16;

/** GGUF element types the runtime runs, as runtime dtypes (the block types read in place by the kernels). */
const RUNTIME_DTYPE: Partial<Record<GgmlTypeName, WeightDType | QuantDType>> = {
  F32: 'f32', F16: 'f16', BF16: 'bf16', Q8_0: 'q8_0', Q4_K: 'q4_k', Q5_K: 'q5_k', Q6_K: 'q6_k',
};

export interface GgufModel {
  arch: AnyArchitecture;
  config: ModelConfig;
  generation: GenerationDefaults;
  tokenizer: GgufTokenizer;
  /** The weights under HF names; close it once the weights are placed. */
  checkpoint: GgufWeights;
}

/** A GGUF checkpoint seen through Hugging Face tensor names (the loader's Checkpoint). */
export class GgufWeights implements Checkpoint {
  readonly files: string[];
  readonly #gguf: GgufCheckpoint;
  readonly #entries = new Map<string, TensorEntry>();
  readonly #sources = new Map<TensorEntry, GgufTensorEntry>();

  constructor(gguf: GgufCheckpoint) {
    this.#gguf = gguf;
    this.files = gguf.files;
    for (const name of gguf.names) {
      const hf = hfTensorName(name);
      if (hf === undefined) continue; // tensors the architectures do not read (rope_freqs, …)
      const src = gguf.get(name)!;
      if (src.fileOffset % TENSOR_ALIGNMENT !== 0)
        throw new Error(`${src.file}: tensor ${name}: data at byte ${src.fileOffset} is not ${TENSOR_ALIGNMENT}-byte aligned (general.alignment is too small)`);
      const dtype = RUNTIME_DTYPE[src.type];
      if (!dtype)
        throw new Error(`${src.file}: tensor ${name}: element type ${src.type} is not one Paralon runs (${Object.keys(RUNTIME_DTYPE).join(', ')})`);
      const entry: TensorEntry = { name: hf, file: src.file, dtype, shape: src.shape, byteOffset: src.fileOffset, byteLength: src.byteLength };
      this.#entries.set(hf, entry);
      this.#sources.set(entry, src);
    }
  }

  get names(): string[] {
    return [...this.#entries.keys()];
  }

  get(name: string): TensorEntry | undefined {
    return this.#entries.get(name);
  }

  tensor(entry: TensorEntry): Tensor {
    const src = this.#sources.get(entry);
    if (!src) throw new Error(`${entry.file}: ${entry.name}: not a tensor of this checkpoint`);
    return this.#gguf.tensor(src, entry.dtype);
  }

  close(): void {
    this.#gguf.close();
  }
}

/** Maps `file` (or its split set) on `device` and reads everything but the weights' bytes. */
export function openGgufModel(device: Device, file: string): GgufModel {
  const gguf = GgufCheckpoint.open(device, file);
  try {
    const meta = gguf.metadata;
    const arch = ggufArchitecture(meta.string('general.architecture'), meta.file);
    const tokenizer = tokenizerFromGguf(meta);
    const checkpoint = new GgufWeights(gguf);
    const embedding = checkpoint.get('model.embed_tokens.weight');
    if (!embedding) throw new Error(`${gguf.files.join(', ')}: missing tensor token_embd.weight`);
    const facts: GgufModelFacts = {
      vocabSize: embedding.shape[0],
      tied: checkpoint.get('lm_head.weight') === undefined,
      // A quantized file's float dtype (the KV cache's 'auto') is bf16.
      dtype: isQuantized(embedding.dtype) ? 'bf16' : embedding.dtype,
      eosTokenIds: tokenizer.eosTokenIds,
    };
    const config = arch.parseGgufConfig!(meta, facts) as ModelConfig;
    if (tokenizer.numTokens > config.vocabSize)
      throw new Error(`${meta.file}: tokenizer.ggml.tokens has ${tokenizer.numTokens} tokens, token_embd.weight only ${config.vocabSize} rows`);
    return { arch, config, generation: generationDefaults(meta, tokenizer), tokenizer, checkpoint };
  } catch (e) {
    gguf.close();
    throw e;
  }
}

/** llama.cpp's `general.sampling.*` keys (written by some converters) and the tokenizer's special ids. */
function generationDefaults(meta: GgufMetadata, tokenizer: GgufTokenizer): GenerationDefaults {
  const out: GenerationDefaults = { eosTokenIds: [...tokenizer.eosTokenIds] };
  if (tokenizer.bosTokenId !== undefined) out.bosTokenId = tokenizer.bosTokenId;
  const unit = (key: string, field: 'topP' | 'minP') => {
    const v = meta.float(key, undefined, true);
    if (v === undefined) return;
    if (v < 0 || v > 1) throw new Error(`${meta.file}: ${key} must be in [0, 1] (got ${v})`);
    out[field] = v;
  };
  const temperature = meta.float('general.sampling.temp', undefined, true);
  if (temperature !== undefined) {
    if (temperature < 0) throw new Error(`${meta.file}: general.sampling.temp must be ≥ 0 (got ${temperature})`);
    out.temperature = temperature;
  }
  unit('general.sampling.top_p', 'topP');
  unit('general.sampling.min_p', 'minP');
  const topK = meta.uint('general.sampling.top_k', 0, true);
  if (topK !== undefined) out.topK = topK;
  const repeat = meta.float('general.sampling.penalty_repeat', 0, true);
  if (repeat !== undefined) out.repetitionPenalty = repeat;
  return out;
}
