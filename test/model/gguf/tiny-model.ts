// A tiny byte-level BPE tokenizer beside a random checkpoint, so that small-vocabulary checkpoints can
// be exported to GGUF with a tokenizer and chat template (used by the GGUF loading and server tests).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomCheckpoint, type RandomCheckpointOptions } from '../../../src/model/random-checkpoint.js';

/**
 * A tiny byte-level BPE tokenizer (printable ASCII, Ġ for space, three chat control tokens, two merges)
 * and a chat template, so that checkpoints with a small vocabulary can be exported with a tokenizer.
 */
export function writeTinyTokenizer(dir: string): void {
  const vocab: Record<string, number> = {};
  for (let c = 0x21; c <= 0x7e; c++) vocab[String.fromCharCode(c)] = c - 0x21;
  vocab['Ġ'] = 94;
  vocab.th = 95;
  vocab['Ġth'] = 96;
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
  writeFileSync(
    path.join(dir, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      added_tokens: specials.map((content, i) => ({ id: 97 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: { type: 'NFC' },
      pre_tokenizer: byteLevel,
      post_processor: byteLevel,
      decoder: byteLevel,
      model: { type: 'BPE', vocab, merges: ['t h', 'Ġ th'] },
    }),
  );
  writeFileSync(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>',
      bos_token: null,
      add_bos_token: false,
      chat_template: "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    }),
  );
}

/** A random checkpoint in `dir` with the tiny tokenizer (vocabulary ≥ 100: the tokenizer has 100 ids). */
export function checkpointWithTokenizer(dir: string, options: Omit<RandomCheckpointOptions, 'dir'>): string {
  randomCheckpoint({ dir, eosTokenIds: [99, 97], ...options });
  writeTinyTokenizer(dir);
  return dir;
}

