// Hugging Face checkpoint configuration shared by every architecture: reading config.json and
// generation_config.json (the checkpoint's sampling defaults and end-of-sequence tokens), the fields
// every decoder-only model has, and typed field access whose errors name the file and the field.
// Each architecture parses its own fields (see its file); the registry picks the architecture.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from './architecture.js';

/** The weight dtypes a checkpoint may declare (torch_dtype / dtype). */
export type WeightDType = 'bf16' | 'f16' | 'f32';

/** Sampling defaults and stop tokens from generation_config.json (absent fields: not set). */
export interface GenerationDefaults {
  eosTokenIds: number[];
  bosTokenId?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
}

/** Reads `dir/config.json` as JSON (not yet validated: the registry hands it to its architecture). */
export function readConfigJson(dir: string): { json: unknown; file: string } {
  const file = path.join(dir, 'config.json');
  if (!existsSync(file)) throw new Error(`${file}: not found (a Hugging Face checkpoint directory has a config.json)`);
  return { json: readJson(file), file };
}

/**
 * Reads `dir/generation_config.json`; without one, the defaults are only config.json's EOS tokens
 * (pass `config` so they can be used).
 */
export function readGenerationDefaults(dir: string, config?: ModelConfig): GenerationDefaults {
  const file = path.join(dir, 'generation_config.json');
  if (!existsSync(file)) return { eosTokenIds: config ? [...config.eosTokenIds] : [] };
  return parseGenerationDefaults(readJson(file), file, config);
}

export function readJson(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * The fields every decoder-only transformer shares (attention shape, vocabulary, norm epsilon,
 * tying, context length, dtype, EOS), validated; an architecture parses the rest itself.
 */
export function parseDecoderFields(f: Fields, source: string, architecture: string): ModelConfig {
  const hiddenSize = f.int('hidden_size', { min: 1 });
  const numHeads = f.int('num_attention_heads', { min: 1 });
  const numKvHeads = f.int('num_key_value_heads', { min: 1, optional: true }) ?? numHeads;
  // transformers' Qwen3Config defaults head_dim to 128 (not hidden / heads) when the file omits it.
  const headDim = f.int('head_dim', { min: 2, optional: true }) ?? 128;
  if (numHeads % numKvHeads !== 0)
    throw new Error(`${source}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  if (headDim % 2 !== 0) throw new Error(`${source}: head_dim (${headDim}) must be even for rotary embeddings`);

  const dtypeName = f.str('torch_dtype', { optional: true }) ?? f.str('dtype', { optional: true }) ?? 'bfloat16';
  const dtype = WEIGHT_DTYPES[dtypeName];
  if (!dtype)
    throw new Error(`${source}: torch_dtype "${dtypeName}" is not supported (bfloat16, float16 or float32)`);

  const vocabSize = f.int('vocab_size', { min: 1 });
  const eosTokenIds = f.tokenIds('eos_token_id');
  for (const id of eosTokenIds)
    if (id >= vocabSize) throw new Error(`${source}: eos_token_id ${id} is outside the vocabulary of ${vocabSize}`);

  return {
    architecture,
    hiddenSize,
    numLayers: f.int('num_hidden_layers', { min: 1 }),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps: f.num('rms_norm_eps', { min: Number.MIN_VALUE, optional: true }) ?? 1e-6,
    tieWordEmbeddings: f.bool('tie_word_embeddings', { optional: true }) ?? false,
    maxPositionEmbeddings: f.int('max_position_embeddings', { min: 1 }),
    dtype,
    eosTokenIds,
  };
}

/** Validates a parsed generation_config.json; token ids are checked against the config's vocabulary. */
export function parseGenerationDefaults(json: unknown, source = 'generation_config.json', config?: ModelConfig): GenerationDefaults {
  const f = new Fields(json, source);
  const out: GenerationDefaults = { eosTokenIds: f.tokenIds('eos_token_id') };
  if (out.eosTokenIds.length === 0 && config) out.eosTokenIds = [...config.eosTokenIds];
  const bos = f.tokenIds('bos_token_id');
  if (bos.length > 1) throw new Error(`${source}: bos_token_id must be a single token id`);
  if (bos.length === 1) out.bosTokenId = bos[0];
  if (config) {
    for (const id of [...out.eosTokenIds, ...bos])
      if (id >= config.vocabSize)
        throw new Error(`${source}: token id ${id} is outside the vocabulary of ${config.vocabSize}`);
  }
  // do_sample: false means greedy decoding in transformers, whatever temperature says.
  const doSample = f.bool('do_sample', { optional: true });
  const temperature = f.num('temperature', { min: 0, optional: true });
  if (doSample === false) out.temperature = 0;
  else if (temperature !== undefined) out.temperature = temperature;
  const topP = f.num('top_p', { min: 0, optional: true });
  if (topP !== undefined) {
    if (topP === 0 || topP > 1) throw new Error(`${source}: top_p must be in (0, 1] (got ${topP})`);
    out.topP = topP;
  }
  const topK = f.int('top_k', { min: 0, optional: true });
  if (topK !== undefined) out.topK = topK;
  const minP = f.num('min_p', { min: 0, optional: true });
  if (minP !== undefined) {
    if (minP > 1) throw new Error(`${source}: min_p must be in [0, 1] (got ${minP})`);
    out.minP = minP;
  }
  const repetition = f.num('repetition_penalty', { min: Number.MIN_VALUE, optional: true });
  if (repetition !== undefined) out.repetitionPenalty = repetition;
  return out;
}

const WEIGHT_DTYPES: Record<string, WeightDType> = {
  bfloat16: 'bf16',
  float16: 'f16',
  float32: 'f32',
  'torch.bfloat16': 'bf16',
  'torch.float16': 'f16',
  'torch.float32': 'f32',
};

/** Typed, validated access to the fields of one JSON object; errors name the file and the field. */
export class Fields {
  readonly #obj: Record<string, unknown>;
  readonly #source: string;

  constructor(json: unknown, source: string) {
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw new Error(`${source}: expected a JSON object`);
    this.#obj = json as Record<string, unknown>;
    this.#source = source;
  }

  value(key: string): unknown {
    const v = this.#obj[key];
    return v === null ? undefined : v;
  }

  #fail(key: string, what: string): never {
    throw new Error(`${this.#source}: ${key} must be ${what} (got ${JSON.stringify(this.#obj[key])})`);
  }

  #missing(key: string): never {
    throw new Error(`${this.#source}: ${key} is missing`);
  }

  num(key: string, o: { min?: number; optional: true }): number | undefined;
  num(key: string, o?: { min?: number; optional?: boolean }): number;
  num(key: string, o: { min?: number; optional?: boolean } = {}): number | undefined {
    const v = this.value(key);
    if (v === undefined) return o.optional ? undefined : this.#missing(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.#fail(key, 'a finite number');
    if (o.min !== undefined && v < o.min) this.#fail(key, o.min === Number.MIN_VALUE ? 'positive' : `≥ ${o.min}`);
    return v;
  }

  int(key: string, o: { min?: number; optional: true }): number | undefined;
  int(key: string, o?: { min?: number; optional?: boolean }): number;
  int(key: string, o: { min?: number; optional?: boolean } = {}): number | undefined {
    const v = this.num(key, { optional: o.optional });
    if (v === undefined) return undefined;
    if (!Number.isSafeInteger(v)) this.#fail(key, 'an integer');
    if (o.min !== undefined && v < o.min) this.#fail(key, `an integer ≥ ${o.min}`);
    return v;
  }

  bool(key: string, o: { optional?: boolean } = {}): boolean | undefined {
    const v = this.value(key);
    if (v === undefined) return o.optional ? undefined : this.#missing(key);
    if (typeof v !== 'boolean') this.#fail(key, 'true or false');
    return v;
  }

  str(key: string, o: { optional?: boolean } = {}): string | undefined {
    const v = this.value(key);
    if (v === undefined) return o.optional ? undefined : this.#missing(key);
    if (typeof v !== 'string') this.#fail(key, 'a string');
    return v;
  }

  object(key: string): Record<string, unknown> | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.#fail(key, 'an object');
    return v as Record<string, unknown>;
  }

  /** A token id or a list of them (eos_token_id may be either); absent: []. */
  tokenIds(key: string): number[] {
    const v = this.value(key);
    if (v === undefined) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((id) => Number.isSafeInteger(id) && id >= 0)) this.#fail(key, 'a token id or a list of token ids');
    return [...new Set(list as number[])];
  }
}
