// A byte-level BPE tokenizer (Qwen's) both ways between Hugging Face files and GGUF metadata:
//
// - HF → GGUF, as llama.cpp's convert_hf_to_gguf.py writes it: tokenizer.ggml.model "gpt2", pre
//   "qwen2", every id up to the model's vocab_size ([PADn] UNUSED past the tokenizer's), token types
//   (added tokens that are special or look like <|…|> CONTROL, other added tokens USER_DEFINED), merges
//   "a b", EOS/padding/BOS ids, add_bos_token and the chat template.
// - GGUF → HF: the tokenizer.json and tokenizer_config.json objects @huggingface/tokenizers loads, with
//   the normalizer and pre-tokenizer the `pre` name stands for, so that a GGUF alone encodes and
//   renders prompts exactly like the model's HF directory. Every array is checked against the token
//   count and every id against the vocabulary; errors name the file and the key.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { GgufMetadata } from './metadata.js';
import { gguf, type GgufValue } from './types.js';

/** llama.cpp's token types (llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** The parts of tokenizer.json this module reads or writes. */
export interface HfTokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; [key: string]: unknown };
  added_tokens: { id: number; content: string; special: boolean; [key: string]: unknown }[];
  decoder: { type: string; decoders?: { type: string }[] } | null;
  [key: string]: unknown;
}

/** tokenizer_config.json's fields a GGUF carries. */
export type HfTokenizerConfig = {
  bos_token: string | null;
  eos_token: string | null;
  pad_token: string | null;
  unk_token: string | null;
  add_bos_token: boolean;
  chat_template?: string;
};

// --------------------------------------------------------------------------------- HF → GGUF

export interface TokenizerMetadataSource {
  tokenizerJson: HfTokenizerJson;
  tokenizerConfig: Record<string, unknown>;
  /** The model's vocabulary (embedding rows); ids past the tokenizer's become [PADn] UNUSED. */
  vocabSize: number;
  /** BOS id when tokenizer_config.json names none (config.json's bos_token_id). */
  bosTokenId?: number;
  /** EOS id when tokenizer_config.json names none. */
  eosTokenId?: number;
  chatTemplate?: string;
}

/** GGUF metadata for a byte-level BPE tokenizer. */
export function tokenizerToGguf(src: TokenizerMetadataSource): [string, GgufValue][] {
  const { tokenizerJson: tok, tokenizerConfig: cfg, vocabSize } = src;
  if (tok.model.type !== 'BPE') throw new Error(`GGUF export: tokenizer model ${tok.model.type}; only byte-level BPE is exported`);
  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(TokenType.UNUSED);
  for (const [text, id] of Object.entries(tok.model.vocab)) {
    if (id >= vocabSize) throw new Error(`GGUF export: token ${id} is past vocab_size ${vocabSize}`);
    tokens[id] = text;
    types[id] = TokenType.NORMAL;
  }
  const ids = new Map<string, number>();
  for (const t of tok.added_tokens) {
    if (t.id >= vocabSize) throw new Error(`GGUF export: added token ${t.id} is past vocab_size ${vocabSize}`);
    tokens[t.id] = t.content;
    types[t.id] = t.special || looksSpecial(t.content) ? TokenType.CONTROL : TokenType.USER_DEFINED;
    ids.set(t.content, t.id);
  }
  for (let i = 0; i < vocabSize; i++) tokens[i] ??= `[PAD${i}]`;
  const merges = tok.model.merges.map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));

  const special = (field: string): number | undefined => {
    const v = cfg[field];
    const text = typeof v === 'string' ? v : v && typeof v === 'object' && 'content' in v ? String((v as { content: unknown }).content) : undefined;
    if (text === undefined) return undefined;
    const id = ids.get(text) ?? tok.model.vocab[text];
    if (id === undefined) throw new Error(`GGUF export: tokenizer_config.json ${field} ${text} is not a token`);
    return id;
  };
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gguf.string('gpt2')],
    ['tokenizer.ggml.pre', gguf.string('qwen2')],
    ['tokenizer.ggml.tokens', gguf.strings(tokens)],
    ['tokenizer.ggml.token_type', gguf.i32s(types)],
    ['tokenizer.ggml.merges', gguf.strings(merges)],
  ];
  const eos = special('eos_token') ?? src.eosTokenId;
  if (eos !== undefined) out.push(['tokenizer.ggml.eos_token_id', gguf.u32(eos)]);
  const pad = special('pad_token');
  if (pad !== undefined) out.push(['tokenizer.ggml.padding_token_id', gguf.u32(pad)]);
  const bos = special('bos_token') ?? src.bosTokenId;
  if (bos !== undefined) out.push(['tokenizer.ggml.bos_token_id', gguf.u32(bos)]);
  out.push(['tokenizer.ggml.add_bos_token', gguf.bool(cfg.add_bos_token === true)]);
  if (src.chatTemplate !== undefined) out.push(['tokenizer.chat_template', gguf.string(src.chatTemplate)]);
  return out;
}

/** Reads tokenizer.json, tokenizer_config.json and the chat template of an HF directory. */
export function tokenizerMetadataSource(dir: string, vocabSize: number, eosTokenId?: number): TokenizerMetadataSource {
  const readJson = (name: string) => JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as unknown;
  const tokenizerConfig = readJson('tokenizer_config.json') as Record<string, unknown>;
  return {
    tokenizerJson: readJson('tokenizer.json') as HfTokenizerJson,
    tokenizerConfig,
    vocabSize,
    bosTokenId: readBosFromConfigs(dir),
    eosTokenId,
    chatTemplate: chatTemplateOf(dir, tokenizerConfig),
  };
}

/** The converter's test for added tokens that are control tokens even when not marked special. */
function looksSpecial(text: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(text) ||
    (text.startsWith('<|') && text.endsWith('|>')) ||
    (text.startsWith('<｜') && text.endsWith('｜>')) ||
    (text.startsWith('<unused') && text.endsWith('>'))
  );
}

/** config.json's or generation_config.json's bos_token_id (tokenizer_config.json's Qwen3 bos_token is null). */
function readBosFromConfigs(dir: string): number | undefined {
  for (const name of ['config.json', 'generation_config.json']) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    const v = (JSON.parse(readFileSync(file, 'utf8')) as { bos_token_id?: unknown }).bos_token_id;
    if (typeof v === 'number') return v;
  }
  return undefined;
}

function chatTemplateOf(dir: string, cfg: Record<string, unknown>): string | undefined {
  const file = path.join(dir, 'chat_template.jinja');
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const t = cfg.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t as { name: string; template: string }[]).find((x) => x.name === 'default')?.template;
  return undefined;
}

// --------------------------------------------------------------------------------- GGUF → HF

/**
 * The normalizer and pre-tokenizer of each supported tokenizer.ggml.pre, as the model's own
 * tokenizer.json has them (llama.cpp re-implements the same split regex per `pre` name).
 */
const PRE_TOKENIZERS: Record<string, { normalizer: unknown; preTokenizer: unknown }> = {
  qwen2: {
    normalizer: { type: 'NFC' },
    preTokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
          },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
  },
};

/** Token texts llama.cpp ends generation on (besides the eos/eot/eom ids), as in its vocabulary loader. */
const END_OF_GENERATION_TEXTS = new Set(['<|im_end|>', '<|endoftext|>', '<|eot_id|>', '<|eom_id|>', '<|end|>', '<end_of_turn>', '<|end_of_text|>']);

export interface GgufTokenizer {
  tokenizerJson: HfTokenizerJson;
  tokenizerConfig: HfTokenizerConfig;
  /** Every token id generation ends on: eos/eot/eom ids and control tokens llama.cpp treats as end of generation. */
  eosTokenIds: number[];
  bosTokenId?: number;
  /** Length of tokenizer.ggml.tokens (UNUSED padding included). */
  numTokens: number;
}

/** The HF tokenizer files a GGUF's tokenizer metadata stands for. */
export function tokenizerFromGguf(meta: GgufMetadata): GgufTokenizer {
  const file = meta.file;
  const model = meta.string('tokenizer.ggml.model');
  if (model !== 'gpt2') throw new Error(`${file}: tokenizer.ggml.model is "${model}"; only "gpt2" (byte-level BPE) is supported`);
  const pre = meta.string('tokenizer.ggml.pre', true) ?? 'default';
  const pipeline = PRE_TOKENIZERS[pre];
  if (!pipeline)
    throw new Error(`${file}: tokenizer.ggml.pre is "${pre}"; supported: ${Object.keys(PRE_TOKENIZERS).join(', ')}`);

  const tokens = meta.strings('tokenizer.ggml.tokens');
  const n = tokens.length;
  if (n === 0) throw new Error(`${file}: tokenizer.ggml.tokens is empty`);
  const types = meta.ints('tokenizer.ggml.token_type', true) ?? new Array<number>(n).fill(TokenType.NORMAL);
  if (types.length !== n)
    throw new Error(`${file}: tokenizer.ggml.token_type has ${types.length} entries, tokenizer.ggml.tokens has ${n}`);
  const scores = meta.get('tokenizer.ggml.scores');
  if (scores !== undefined && (scores.kind !== 'array' || scores.values.length !== n))
    throw new Error(`${file}: tokenizer.ggml.scores must be an array of ${n} entries, like tokenizer.ggml.tokens`);

  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const addedTokens: HfTokenizerJson['added_tokens'] = [];
  const seen = new Map<string, number>();
  for (let id = 0; id < n; id++) {
    const type = types[id];
    if (type === TokenType.UNUSED) continue;
    const text = tokens[id];
    const previous = seen.get(text);
    if (previous !== undefined) throw new Error(`${file}: tokenizer.ggml.tokens: "${text}" is both token ${previous} and token ${id}`);
    seen.set(text, id);
    if (type === TokenType.NORMAL) vocab[text] = id;
    else if (type === TokenType.CONTROL || type === TokenType.USER_DEFINED)
      addedTokens.push({
        id, content: text, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === TokenType.CONTROL,
      });
    else throw new Error(`${file}: tokenizer.ggml.token_type[${id}] is ${type}; a gpt2 vocabulary has NORMAL, CONTROL, USER_DEFINED or UNUSED tokens`);
  }

  const merges = meta.strings('tokenizer.ggml.merges').map((m, i): [string, string] => {
    const space = m.indexOf(' ');
    const pair: [string, string] = [m.slice(0, space), m.slice(space + 1)];
    if (space <= 0 || space === m.length - 1 || !(pair[0] in vocab) || !(pair[1] in vocab))
      throw new Error(`${file}: tokenizer.ggml.merges[${i}] "${m}" is not two vocabulary tokens separated by a space`);
    return pair;
  });

  const idKey = (key: string): number | undefined => {
    const id = meta.uint(key, 0, true);
    if (id !== undefined && (id >= n || types[id] === TokenType.UNUSED))
      throw new Error(`${file}: ${key} ${id} is not a token (the vocabulary has ${n} ids)`);
    return id;
  };
  const textOf = (id: number | undefined) => (id === undefined ? null : tokens[id]);
  const bos = idKey('tokenizer.ggml.bos_token_id');
  const eos = idKey('tokenizer.ggml.eos_token_id');
  const eot = idKey('tokenizer.ggml.eot_token_id');
  const eom = idKey('tokenizer.ggml.eom_token_id');
  const pad = idKey('tokenizer.ggml.padding_token_id');
  const unk = idKey('tokenizer.ggml.unknown_token_id');
  const addBos = meta.bool('tokenizer.ggml.add_bos_token') ?? false;
  if (addBos && bos === undefined) throw new Error(`${file}: tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id is missing`);
  const template = meta.string('tokenizer.chat_template', true);

  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizerJson: HfTokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: pipeline.normalizer,
    pre_tokenizer: pipeline.preTokenizer,
    post_processor: addBos ? bosPostProcessor(bos!, tokens[bos!]) : byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: textOf(unk), continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
  const eosIds = new Set([eos, eot, eom].filter((id): id is number => id !== undefined));
  for (const t of addedTokens) if (t.special && END_OF_GENERATION_TEXTS.has(t.content)) eosIds.add(t.id);
  return {
    tokenizerJson,
    tokenizerConfig: {
      bos_token: textOf(bos),
      eos_token: textOf(eos),
      pad_token: textOf(pad),
      unk_token: textOf(unk),
      add_bos_token: addBos,
      ...(template !== undefined ? { chat_template: template } : {}),
    },
    eosTokenIds: [...eosIds],
    ...(bos !== undefined ? { bosTokenId: bos } : {}),
    numTokens: n,
  };
}

/** tokenizers' TemplateProcessing that puts BOS before every sequence (add_bos_token). */
function bosPostProcessor(id: number, text: string): unknown {
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: text, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: text, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: text, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [text]: { id: text, ids: [id], tokens: [text] } },
  };
}
