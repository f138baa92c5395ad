import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tokenizer } from '../../src/tokenizer/index.js';
import { Tokenizer as TokenizerClass } from '../../src/tokenizer/index.js';
import { QWEN3_REFERENCE, QWEN3_TOKENIZER_DIR, loadQwen3Tokenizer } from './qwen3.js';

let tok: Tokenizer;
beforeAll(async () => {
  tok = await loadQwen3Tokenizer();
});

const utf8 = new TextEncoder();
const concatBytes = (ids: number[]) => Uint8Array.from(ids.flatMap((id) => [...tok.tokenBytes(id)]));

describe('Tokenizer (Qwen3)', () => {
  it('reads ids and sizes from the config', () => {
    expect(tok.vocabSize).toBe(QWEN3_REFERENCE.vocabSize);
    expect(tok.vocabSize).toBe(151669);
    expect(tok.eosTokenId).toBe(151645); // <|im_end|>
    expect(tok.padTokenId).toBe(151643); // <|endoftext|>
    expect(tok.bosTokenId).toBeNull(); // Qwen3 adds no BOS
    expect(tok.tokenToId('<think>')).toBe(151667);
    expect(tok.tokenToId('</think>')).toBe(151668);
  });

  it('encodes exactly as the Rust tokenizers library', () => {
    for (const { text, ids } of QWEN3_REFERENCE.encodings) {
      expect(tok.encode(text, { addSpecialTokens: false }), JSON.stringify(text)).toEqual(ids);
      // Qwen3's post-processor adds nothing (no BOS/EOS).
      expect(tok.encode(text), JSON.stringify(text)).toEqual(ids);
    }
  });

  it('round-trips hard strings (up to the NFC normalizer)', () => {
    for (const { text } of QWEN3_REFERENCE.encodings) {
      expect(tok.decode(tok.encode(text)), JSON.stringify(text)).toBe(text.normalize('NFC'));
    }
  });

  it('decodes exactly as the Rust tokenizers library, partial UTF-8 and special tokens included', () => {
    for (const { ids, text, textSkipSpecial } of QWEN3_REFERENCE.decodings) {
      expect(tok.decode(ids), JSON.stringify(ids)).toBe(text);
      expect(tok.decode(ids, { skipSpecialTokens: true }), JSON.stringify(ids)).toBe(textSkipSpecial);
    }
  });

  it('maps special-token text, user text included, to single ids', () => {
    const ids = tok.encode('a<|im_start|>b<|im_end|><think>c</think>');
    expect(ids.filter((id) => id >= 151643)).toEqual([151644, 151645, 151667, 151668]);
    expect(tok.isSpecialToken(151645)).toBe(true);
    expect(tok.isSpecialToken(151643)).toBe(true);
    expect(tok.isSpecialToken(151667)).toBe(false); // <think> is an added, non-special token
    expect(tok.isSpecialToken(9707)).toBe(false);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('ab<think>c</think>');
  });

  it('gives every token its raw bytes', () => {
    for (const { text } of QWEN3_REFERENCE.encodings) {
      const ids = tok.encode(text);
      expect(concatBytes(ids), JSON.stringify(text)).toEqual(utf8.encode(text.normalize('NFC')));
    }
    expect([...tok.tokenBytes(tok.encode(' world')[0])]).toEqual([...utf8.encode(' world')]);
    expect([...tok.tokenBytes(151644)]).toEqual([...utf8.encode('<|im_start|>')]);
    // Every byte value has a token of its own (byte-level BPE never needs an unknown token).
    const singleBytes = new Set<number>();
    for (let id = 0; id < tok.vocabSize; id++) {
      const b = tok.tokenBytes(id);
      if (b.length === 1) singleBytes.add(b[0]);
    }
    expect(singleBytes.size).toBe(256);
    // A copy each time: changing it does not corrupt the table.
    tok.tokenBytes(0).fill(0xff);
    expect(tok.tokenBytes(0)).toEqual(Uint8Array.of(0x21));
  });

  it('shows a token on its own as text, U+FFFD for a partial character', () => {
    const ids = tok.encode('\u{13000}'); // 𓀀: four bytes, split across tokens
    expect(ids.length).toBeGreaterThan(1);
    expect(tok.tokenText(ids[0])).toBe('\uFFFD');
    expect(tok.tokenText(tok.encode('Hello')[0])).toBe('Hello');
    expect(tok.tokenText(151645)).toBe('<|im_end|>');
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([151669])).toThrow(RangeError);
    expect(() => tok.tokenBytes(-1)).toThrow(RangeError);
    expect(() => tok.tokenText(1.5)).toThrow(RangeError);
  });

  it('encodes a chat without adding special tokens again', () => {
    const { prompt, ids } = tok.encodeChat([{ role: 'user', content: 'Hi' }]);
    expect(prompt).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(ids).toEqual([151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198]);
    expect(tok.decode(ids)).toBe(prompt);
  });

  it('rejects tokenizers that are not byte-level BPE', async () => {
    const parsed = JSON.parse(await readFile(path.join(QWEN3_TOKENIZER_DIR, 'tokenizer.json'), 'utf8'));
    parsed.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
    expect(() => new TokenizerClass(parsed, {})).toThrow(/only byte-level BPE/);
  });
});

describe('Tokenizer.fromDirectory on a minimal byte-level vocabulary', () => {
  /** GPT-2's bytes_to_unicode, written out independently of src/tokenizer/byte-level.ts. */
  function gpt2ByteAlphabet(): string[] {
    const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    let extra = 0;
    return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : 256 + extra++));
  }

  it('reads chat_template.jinja, object-form special tokens, and maps bytes both ways', async () => {
    const alphabet = gpt2ByteAlphabet();
    const tokenizerJson = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [
        { id: 256, content: '<|end|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      ],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false,
        vocab: Object.fromEntries(alphabet.map((ch, b) => [ch, b])), merges: [] },
    };
    const config = { eos_token: { content: '<|end|>', special: true }, chat_template: 'unused' };
    const dir = await mkdtemp(path.join(tmpdir(), 'paralon-tokenizer-'));
    try {
      await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
      await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
      await writeFile(path.join(dir, 'chat_template.jinja'), '{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}');
      const t = await TokenizerClass.fromDirectory(dir);
      expect(t.vocabSize).toBe(257);
      expect(t.eosTokenId).toBe(256);
      expect(t.bosTokenId).toBeNull();
      const text = 'a é\n\x00\u{1F600}';
      const ids = t.encode(text);
      expect(ids).toEqual([...utf8.encode(text)]); // no merges: one token per byte
      expect(ids.map((id) => t.tokenBytes(id)[0])).toEqual(ids);
      expect(t.decode([...ids, 256])).toBe(text + '<|end|>');
      expect(t.decode([...ids, 256], { skipSpecialTokens: true })).toBe(text);
      expect(t.chatTemplate?.render([{ role: 'user', content: 'x' }])).toBe('[user] x<|end|>');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
