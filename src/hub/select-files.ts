// Which files of a repository a model needs: the config, generation config, tokenizer files and the
// safetensors weights (every shard of the index), or the one GGUF file a quant tag picks (with its
// split parts). Never the whole repository: READMEs, other formats and other quantizations stay remote.
import { HubError } from './errors.js';

export type ModelFormat = 'safetensors' | 'gguf';

/**
 * Read by the loader when present; config.json and the tokenizer pair are required. modules.json (and
 * the pooling settings beside it) marks a sentence-transformers checkpoint, served as an embedding model.
 */
export const METADATA_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'modules.json',
  'config_sentence_transformers.json',
  'sentence_bert_config.json',
  '1_Pooling/config.json',
] as const;
export const REQUIRED_METADATA = ['config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
export const SAFETENSORS_SINGLE = 'model.safetensors';

/** The quant tag llama.cpp's `-hf` picks when none is given, then the first GGUF file. */
export const DEFAULT_QUANT = 'Q4_K_M';

const SPLIT_PART = /-(\d{5})-of-(\d{5})\.gguf$/i;
// Quantization names as they end GGUF file names: Q4_K_M, IQ2_XXS, Q8_0, BF16, F16, F32, MXFP4, TQ1_0 …
const QUANT_IN_NAME = /(?:^|[-._])((?:I?Q|TQ)\d\w*?|BF16|F16|F32|MXFP4\w*)(?:-\d{5}-of-\d{5})?\.gguf$/i;

export interface FileSelection {
  format: ModelFormat;
  /** Files to fetch now (repo-relative paths). */
  files: string[];
  /** The path the loader opens: '' (the snapshot directory) or the GGUF file (its first part when split). */
  entry: string;
  /** True when the weights are listed by model.safetensors.index.json, fetched first and read. */
  indexed: boolean;
}

/** The quant tag in a GGUF file name (Q4_K_M for Qwen3-8B-Q4_K_M.gguf), or null. */
export function quantOf(file: string): string | null {
  const m = QUANT_IN_NAME.exec(file.split('/').pop()!);
  return m === null ? null : m[1].toUpperCase();
}

function isModelGguf(file: string): boolean {
  return file.toLowerCase().endsWith('.gguf') && !/mmproj/i.test(file);
}

/** Picks the files of `repo` (its file list `names`) for `quant` (GGUF repos only). */
export function selectFiles(repo: string, names: readonly string[], quant?: string): FileSelection {
  const ggufs = names.filter(isModelGguf).sort();
  const hasSafetensors = names.includes(SAFETENSORS_INDEX) || names.includes(SAFETENSORS_SINGLE);
  if (quant !== undefined || (!hasSafetensors && ggufs.length > 0)) return selectGguf(repo, ggufs, quant);
  if (!hasSafetensors)
    throw new HubError(`${repo} has neither ${SAFETENSORS_SINGLE}, ${SAFETENSORS_INDEX} nor .gguf files, so Paralon cannot load it (its files: ${preview(names)})`, true);
  const missing = REQUIRED_METADATA.filter((f) => !names.includes(f));
  if (missing.length > 0) throw new HubError(`${repo} lacks ${missing.join(', ')}, which Paralon needs next to the weights`, true);
  const metadata = METADATA_FILES.filter((f) => names.includes(f));
  const indexed = names.includes(SAFETENSORS_INDEX);
  return { format: 'safetensors', files: [...metadata, indexed ? SAFETENSORS_INDEX : SAFETENSORS_SINGLE], entry: '', indexed };
}

/** The shard files model.safetensors.index.json names (its weight_map values), checked to be plain names. */
export function shardsOfIndex(indexJson: string, source: string): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(indexJson) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new HubError(`${source}: not JSON (${(e as Error).message})`, false);
  }
  if (typeof weightMap !== 'object' || weightMap === null) throw new HubError(`${source}: weight_map is missing`, false);
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  for (const s of shards)
    if (typeof s !== 'string' || !/^[\w.-]+\.safetensors$/.test(s)) throw new HubError(`${source}: weight_map names '${String(s)}', not a .safetensors file name`, false);
  return (shards as string[]).sort();
}

function selectGguf(repo: string, ggufs: string[], quant: string | undefined): FileSelection {
  if (ggufs.length === 0) throw new HubError(`${repo} has no .gguf files, so the tag ':${quant}' picks nothing; drop the tag to load its safetensors`, true);
  const tag = (quant ?? DEFAULT_QUANT).toUpperCase();
  let picked = ggufs.filter((f) => quantOf(f) === tag);
  if (picked.length === 0) {
    if (quant !== undefined) {
      const tags = [...new Set(ggufs.map(quantOf).filter((t) => t !== null))].sort();
      throw new HubError(`${repo} has no GGUF file for the quant tag '${quant}'; it has ${tags.length > 0 ? tags.join(', ') : preview(ggufs)}`, true);
    }
    picked = [ggufs[0]];
  }
  // A split model is every part of the first file's set; a whole file is itself.
  const first = picked[0];
  const split = SPLIT_PART.exec(first);
  const files = split === null ? [first] : ggufs.filter((f) => f.replace(SPLIT_PART, '') === first.replace(SPLIT_PART, '') && SPLIT_PART.test(f));
  if (split !== null && files.length !== Number(split[2]))
    throw new HubError(`${repo}: ${first} is part of ${Number(split[2])} files but the repository has ${files.length} of them`, false);
  return { format: 'gguf', files, entry: files[0], indexed: false };
}

function preview(names: readonly string[]): string {
  const shown = names.slice(0, 12).join(', ');
  return names.length > 12 ? `${shown}, … (${names.length} files)` : shown || 'none';
}
