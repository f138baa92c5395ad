// A GGUF alone tokenizes and renders chats exactly like the model's Hugging Face directory: Qwen3's
// real tokenizer files are converted to GGUF metadata (as llama.cpp's converter writes them), written
// to a GGUF, parsed back, and turned into the tokenizer.json / tokenizer_config.json the HF library
// loads; then token ids on the hard strings of test/tokenizer/fixtures, decodings, token bytes and
// rendered prompts are compared with the directory's tokenizer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../../src/engine/types.js';
import { Tokenizer } from '../../../src/tokenizer/index.js';
import {
  GgufMetadata,
  gguf,
  readGgufHeader,
  tokenizerFromGguf,
  tokenizerMetadataSource,
  tokenizerToGguf,
  writeGguf,
  type GgufTokenizer,
} from '../../../src/model/gguf/index.js';
import { fixtureKvs } from './fixture.js';
import { QWEN3_REFERENCE, QWEN3_TOKENIZER_DIR, loadQwen3Tokenizer } from '../../tokenizer/qwen3.js';

const MODEL_VOCAB = 151_936; // Qwen3's embedding rows: the tokenizer's 151,669 ids plus padding
const root = mkdtempSync(path.join(tmpdir(), 'paralon-gguf-tok-'));
let hf: Tokenizer;
let fromGguf: GgufTokenizer;
let gg: Tokenizer;

beforeAll(async () => {
  hf = await loadQwen3Tokenizer();
  const file = path.join(root, 'tokenizer-only.gguf');
  const source = tokenizerMetadataSource(QWEN3_TOKENIZER_DIR, MODEL_VOCAB, 151_645);
  writeGguf(file, new Map([['general.architecture', { kind: 'string', value: 'qwen3' }], ...tokenizerToGguf(source)]), []);
  const header = readGgufHeader(file);
  fromGguf = tokenizerFromGguf(new GgufMetadata(header.metadata, header.file));
  gg = new Tokenizer(fromGguf.tokenizerJson, fromGguf.tokenizerConfig);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('tokenizer from GGUF metadata (Qwen3)', () => {
  it('has the same vocabulary size, special ids and end-of-generation tokens', () => {
    expect(gg.vocabSize).toBe(hf.vocabSize);
    expect(gg.eosTokenId).toBe(hf.eosTokenId);
    expect(gg.padTokenId).toBe(hf.padTokenId);
    // HF's generation_config.json for Qwen3 ends on <|im_end|> and <|endoftext|>; llama.cpp does too.
    expect(fromGguf.eosTokenIds.sort()).toEqual([151_643, 151_645]);
  });

  it('encodes the hard strings to the same ids as the HF directory (and the Rust reference)', () => {
    for (const { text, ids } of QWEN3_REFERENCE.encodings) {
      expect(gg.encode(text), text).toEqual(ids);
      expect(gg.encode(text), text).toEqual(hf.encode(text));
    }
    const specials = 'x<|im_start|>user\n<think>a</think><tool_call>{"a":1}</tool_call><|endoftext|><|fim_prefix|>  \n\n\t';
    expect(gg.encode(specials)).toEqual(hf.encode(specials));
  });

  it('decodes like the HF directory, and gives every token the same bytes', () => {
    for (const { ids, text } of QWEN3_REFERENCE.decodings) expect(gg.decode(ids)).toBe(text);
    for (let id = 0; id < hf.vocabSize; id++) {
      const a = gg.tokenBytes(id);
      const b = hf.tokenBytes(id);
      if (a.length !== b.length || a.some((x, i) => x !== b[i])) throw new Error(`token ${id}: bytes differ`);
    }
  });

  it('marks as special what llama.cpp marks CONTROL: HF special tokens plus added <|…|> tokens', () => {
    const differ: string[] = [];
    for (let id = 0; id < hf.vocabSize; id++) if (gg.isSpecialToken(id) !== hf.isSpecialToken(id)) differ.push(gg.tokenText(id));
    expect(differ.every((t) => t.startsWith('<|') && t.endsWith('|>'))).toBe(true);
    expect(differ).toContain('<|fim_prefix|>');
    expect(gg.isSpecialToken(151_667)).toBe(false); // <think> stays a plain added token
  });

  it('renders the chat template to the same prompts and ids', () => {
    const chats: ChatMessage[][] = [
      [{ role: 'user', content: 'Hi' }],
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'First question' },
        { role: 'assistant', content: '<think>\nLet me think.\n</think>\n\nFirst answer' },
        { role: 'user', content: 'Ünïcödé 中文 👍🏽 <|im_end|> injected' },
      ],
    ];
    for (const messages of chats) {
      for (const options of [{}, { enableThinking: false }, { addGenerationPrompt: false }]) {
        const a = gg.encodeChat(messages, options);
        const b = hf.encodeChat(messages, options);
        expect(a.prompt).toBe(b.prompt);
        expect(a.ids).toEqual(b.ids);
      }
    }
  });
});

describe('tokenizer from GGUF metadata: add_bos_token', () => {
  it('puts BOS before every encoding when the GGUF asks for it', () => {
    const kvs = new Map(fixtureKvs());
    kvs.set('tokenizer.ggml.bos_token_id', gguf.u32(7));
    kvs.set('tokenizer.ggml.add_bos_token', gguf.bool(true));
    const t = tokenizerFromGguf(new GgufMetadata(kvs, 'bos.gguf'));
    const tok = new Tokenizer(t.tokenizerJson, t.tokenizerConfig);
    expect(tok.encode('abc')).toEqual([7, 5]);
    expect(tok.encode('abc', { addSpecialTokens: false })).toEqual([5]);
    expect(tok.bosTokenId).toBe(7);
  });
});
