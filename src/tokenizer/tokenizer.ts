// A Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json [+ chat_template.jinja])
// for byte-level BPE vocabularies (Qwen, Llama 3, GPT-2 style). Encoding and whole-sequence decoding
// go through @huggingface/tokenizers; this class adds what generation needs on top: the raw bytes of
// every token (incremental detokenization, logprobs' `bytes`), special-token ids from the config and
// the chat template.
//
// Special tokens in text: like the HF tokenizers (split_special_tokens=False, Qwen3's setting), encode()
// maps the text of any added token — "<|im_start|>", "<|im_end|>", "<think>", ... — to its single id,
// wherever it appears, user-supplied message content included. That is what the chat template needs
// for its own markup, and it matches what transformers and vLLM feed the model for the same messages.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { ChatMessage, ChatTemplateOptions } from '../engine/types.js';
import { writeByteLevelBytes } from './byte-level.js';
import { ChatTemplate, type ChatTemplateSource } from './chat-template.js';

/** A special token as tokenizer_config.json writes it: a string, or a serialized AddedToken. */
type SpecialTokenField = string | { content: string } | null | undefined;

/** The fields of tokenizer_config.json this runtime reads (the file holds more). */
export interface TokenizerConfig {
  bos_token?: SpecialTokenField;
  eos_token?: SpecialTokenField;
  pad_token?: SpecialTokenField;
  unk_token?: SpecialTokenField;
  chat_template?: ChatTemplateSource;
  [key: string]: unknown;
}

interface TokenizerJson {
  model: { type: string };
  decoder: { type: string; decoders?: { type: string }[] } | null;
  added_tokens: { id: number; content: string; special: boolean }[];
}

export interface EncodeOptions {
  /** Apply the tokenizer's post-processor (BOS/EOS insertion where it has one). Default true, as in HF. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (<|im_end|>, <|endoftext|>, ...; not <think>, which Qwen3 marks non-special). */
  skipSpecialTokens?: boolean;
}

export interface EncodedChat {
  /** The rendered prompt text. */
  prompt: string;
  ids: number[];
}

export class Tokenizer {
  /** Number of token ids (highest id + 1); the model's embedding table may be padded beyond it. */
  readonly vocabSize: number;
  /** null where the config names none (Qwen3 adds no BOS). */
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  /** null where the directory has no chat template. */
  readonly chatTemplate: ChatTemplate | null;

  private readonly hf: HfTokenizer;
  /** Token id → its bytes: byteTable[byteOffsets[id] .. byteOffsets[id + 1]). */
  private readonly byteTable: Uint8Array;
  private readonly byteOffsets: Uint32Array;
  private readonly specialIds: Set<number>;
  private readonly addedTokens: readonly { id: number; content: string }[];
  private readonly textDecoder = new TextDecoder('utf-8', { ignoreBOM: true });

  /** Reads tokenizer.json, tokenizer_config.json and, when present, chat_template.jinja. */
  static async fromDirectory(dir: string): Promise<Tokenizer> {
    const readJson = async (name: string) => JSON.parse(await readFile(path.join(dir, name), 'utf8'));
    const [tokenizerJson, config] = await Promise.all([
      readJson('tokenizer.json'),
      readJson('tokenizer_config.json'),
    ]);
    // Newer checkpoints keep the template in its own file, which then wins over the config's copy.
    const templateFile = await readFile(path.join(dir, 'chat_template.jinja'), 'utf8').catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      },
    );
    return new Tokenizer(tokenizerJson, templateFile === undefined ? config : { ...config, chat_template: templateFile });
  }

  constructor(tokenizerJson: TokenizerJson, config: TokenizerConfig) {
    if (tokenizerJson.model.type !== 'BPE' || !usesByteLevelDecoder(tokenizerJson)) {
      throw new Error(
        `unsupported tokenizer: model ${tokenizerJson.model.type}, decoder ${tokenizerJson.decoder?.type}; ` +
          'only byte-level BPE (Qwen, Llama 3, GPT-2 style) is supported',
      );
    }
    this.hf = new HfTokenizer(tokenizerJson, config);

    // The BPE model's id → string array (built by the library from tokenizer.json's vocab).
    const vocab = this.hf.model?.vocab ?? [];
    let maxId = vocab.length - 1;
    for (const t of tokenizerJson.added_tokens) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;
    this.addedTokens = tokenizerJson.added_tokens.map((t) => ({ id: t.id, content: t.content }));
    this.specialIds = new Set(tokenizerJson.added_tokens.filter((t) => t.special).map((t) => t.id));
    [this.byteTable, this.byteOffsets] = buildByteTable(vocab, tokenizerJson.added_tokens, this.vocabSize);

    const idOf = (field: SpecialTokenField, name: string): number | null => {
      const content = specialTokenText(field);
      if (content === null) return null;
      const id = this.hf.token_to_id(content);
      if (id === undefined) throw new Error(`tokenizer_config.json: ${name} ${JSON.stringify(content)} is not in the vocabulary`);
      return id;
    };
    this.bosTokenId = idOf(config.bos_token, 'bos_token');
    this.eosTokenId = idOf(config.eos_token, 'eos_token');
    this.padTokenId = idOf(config.pad_token, 'pad_token');
    this.chatTemplate =
      config.chat_template === undefined || config.chat_template === null
        ? null
        : new ChatTemplate(config.chat_template, {
            bos_token: specialTokenText(config.bos_token),
            eos_token: specialTokenText(config.eos_token),
            pad_token: specialTokenText(config.pad_token),
            unk_token: specialTokenText(config.unk_token),
          });
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids) this.checkId(id);
    return this.hf.decode(ids as number[], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /**
   * Renders messages with the chat template and encodes the result, as transformers'
   * apply_chat_template(tokenize=True) does: without adding special tokens again (the template
   * writes its own BOS/markup).
   */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): EncodedChat {
    if (this.chatTemplate === null) throw new Error('this tokenizer has no chat template');
    const prompt = this.chatTemplate.render(messages, options);
    return { prompt, ids: this.encode(prompt, { addSpecialTokens: false }) };
  }

  /** The raw bytes a token stands for (a fresh copy); special tokens give their text's UTF-8. */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    return this.byteTable.slice(this.byteOffsets[id], this.byteOffsets[id + 1]);
  }

  /**
   * The token on its own as text (OpenAI logprobs' `token`): a token holding part of a multi-byte
   * character shows U+FFFD there; `tokenBytes` has the exact bytes.
   */
  tokenText(id: number): string {
    this.checkId(id);
    return this.textDecoder.decode(this.byteTable.subarray(this.byteOffsets[id], this.byteOffsets[id + 1]));
  }

  isSpecialToken(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * Every token as tokenizer.json spells it, in id order: BPE tokens in the byte-level alphabet, added
   * tokens as their text, '' for ids without a token (what grammar engines index the vocabulary by).
   */
  encodedVocab(): string[] {
    const vocab: readonly (string | undefined)[] = this.hf.model?.vocab ?? [];
    const out = Array.from({ length: this.vocabSize }, (_, id) => vocab[id] ?? '');
    for (const t of this.addedTokens) out[t.id] = t.content;
    return out;
  }

  /** The id of a vocabulary or added token given its exact text ("<think>", "<|im_end|>"). */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }
}

function usesByteLevelDecoder(json: TokenizerJson): boolean {
  const d = json.decoder;
  if (d === null) return false;
  return d.type === 'ByteLevel' || (d.type === 'Sequence' && (d.decoders ?? []).some((x) => x.type === 'ByteLevel'));
}

function specialTokenText(field: SpecialTokenField): string | null {
  return typeof field === 'string' ? field : (field?.content ?? null);
}

/**
 * Every token's bytes in one flat table (≈1 MB for Qwen3's 151,669 tokens), written in id order with no
 * per-token allocation: vocabulary strings mapped back through the byte-level alphabet, added tokens
 * as the UTF-8 of their text (as HF decodes them).
 */
function buildByteTable(
  vocab: readonly (string | undefined)[],
  addedTokens: TokenizerJson['added_tokens'],
  vocabSize: number,
): [Uint8Array, Uint32Array] {
  const tokenOf: (string | undefined)[] = Array.from({ length: vocabSize }, (_, id) => vocab[id]);
  const isAdded = new Uint8Array(vocabSize);
  for (const t of addedTokens) {
    tokenOf[t.id] = t.content;
    isAdded[t.id] = 1;
  }
  let totalChars = 0;
  for (const token of tokenOf) totalChars += token?.length ?? 0;

  const utf8 = new TextEncoder();
  let table = new Uint8Array(totalChars + 1024);
  const offsets = new Uint32Array(vocabSize + 1);
  let cursor = 0;
  for (let id = 0; id < vocabSize; id++) {
    const token = tokenOf[id] ?? '';
    // A UTF-16 unit is at most 3 UTF-8 bytes; byte-level strings take exactly one byte per unit.
    if (cursor + 3 * token.length > table.length) {
      const grown = new Uint8Array(2 * table.length + 3 * token.length);
      grown.set(table.subarray(0, cursor));
      table = grown;
    }
    if (isAdded[id] === 0 && writeByteLevelBytes(token, table, cursor)) cursor += token.length;
    else cursor += utf8.encodeInto(token, table.subarray(cursor)).written;
    offsets[id + 1] = cursor;
  }
  return [table.slice(0, cursor), offsets];
}
