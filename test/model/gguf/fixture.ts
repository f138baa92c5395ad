// A small valid GGUF for the hostile-file and fuzz tests: qwen3 keys, a tiny byte-level BPE tokenizer
// and a few tensors of float and block types with awkward shapes.
import { gguf, type GgufValue } from '../../../src/model/gguf/types.js';
import { layoutTensors, rawGguf, type RawGguf } from './raw-gguf.js';

export const FIXTURE_NAME = 'fixture.gguf';

/** Tokens: a few byte-level pieces, their merges, and chat control tokens. */
const TOKENS = ['a', 'b', 'c', 'Ġ', 'ab', 'abc', 'Ġa', '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '[PAD11]'];
const TYPES = [1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 4, 5];
const MERGES = ['a b', 'ab c', 'Ġ a'];

export function fixtureKvs(): [string, GgufValue][] {
  return [
    ['general.architecture', gguf.string('qwen3')],
    ['general.alignment', gguf.u32(32)],
    ['qwen3.block_count', gguf.u32(1)],
    ['qwen3.context_length', gguf.u32(64)],
    ['qwen3.embedding_length', gguf.u32(24)],
    ['qwen3.feed_forward_length', gguf.u32(40)],
    ['qwen3.attention.head_count', gguf.u32(3)],
    ['qwen3.attention.head_count_kv', gguf.u32(1)],
    ['qwen3.attention.key_length', gguf.u32(8)],
    ['qwen3.attention.value_length', gguf.u32(8)],
    ['qwen3.rope.freq_base', gguf.f32(1e6)],
    ['qwen3.attention.layer_norm_rms_epsilon', gguf.f32(1e-6)],
    ['tokenizer.ggml.model', gguf.string('gpt2')],
    ['tokenizer.ggml.pre', gguf.string('qwen2')],
    ['tokenizer.ggml.tokens', gguf.strings(TOKENS)],
    ['tokenizer.ggml.token_type', gguf.i32s(TYPES)],
    ['tokenizer.ggml.merges', gguf.strings(MERGES)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(9)],
    ['tokenizer.ggml.padding_token_id', gguf.u32(7)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(false)],
    ['tokenizer.chat_template', gguf.string("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")],
  ];
}

export function fixtureSpec(): RawGguf {
  const { tensors, dataBytes } = layoutTensors([
    { name: 'token_embd.weight', type: 'BF16', shape: [12, 24] },
    { name: 'blk.0.attn_q.weight', type: 'Q8_0', shape: [3, 64] },
    { name: 'blk.0.ffn_down.weight', type: 'Q4_K', shape: [2, 256] },
    { name: 'output_norm.weight', type: 'F32', shape: [24] },
  ]);
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + 11) & 0xff;
  return { kvs: fixtureKvs(), tensors, data };
}

export function fixtureBytes(): Uint8Array {
  return rawGguf(fixtureSpec());
}
