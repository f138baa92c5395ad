// Hostile GGUF files: each broken field gives an error naming the file (and the key or tensor), never a
// crash, a hang, a huge allocation or a read outside the file. Parsed from memory (bufferSource) and,
// for a few, through the addon's memory mapping as loading does.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../../src/runtime/index.js';
import {
  GgufCheckpoint,
  GgufMetadata,
  GgufWeights,
  bufferSource,
  gguf,
  parseGgufHeader,
  qwen3ConfigFromGguf,
  tokenizerFromGguf,
  type GgufValue,
} from '../../../src/model/gguf/index.js';
import { FIXTURE_NAME, fixtureBytes, fixtureKvs, fixtureSpec } from './fixture.js';
import { layoutTensors, rawGguf, type RawGguf } from './raw-gguf.js';

const parse = (bytes: Uint8Array) => parseGgufHeader(bufferSource(bytes), FIXTURE_NAME);
const build = (edit: (spec: RawGguf) => void) => {
  const spec = fixtureSpec();
  edit(spec);
  return rawGguf(spec);
};
const withKv = (key: string, value: GgufValue | undefined) =>
  build((s) => {
    s.kvs = s.kvs.filter(([k]) => k !== key);
    if (value) s.kvs.push([key, value]);
  });
const metaOf = (bytes: Uint8Array) => new GgufMetadata(parse(bytes).metadata, FIXTURE_NAME);
const configOf = (meta: GgufMetadata) => qwen3ConfigFromGguf(meta, { vocabSize: 12, tied: true, dtype: 'bf16', eosTokenIds: [9] });

describe('GGUF header: the valid fixture', () => {
  it('parses, with shapes reversed to row-major and data offsets inside the file', () => {
    const bytes = fixtureBytes();
    const h = parse(bytes);
    expect(h.tensors.map((t) => [t.name, t.type, t.shape])).toEqual([
      ['token_embd.weight', 'BF16', [12, 24]],
      ['blk.0.attn_q.weight', 'Q8_0', [3, 64]],
      ['blk.0.ffn_down.weight', 'Q4_K', [2, 256]],
      ['output_norm.weight', 'F32', [24]],
    ]);
    expect(h.tensors.map((t) => t.byteLength)).toEqual([12 * 24 * 2, 3 * 2 * 34, 2 * 144, 24 * 4]);
    for (const t of h.tensors) {
      expect(t.fileOffset % 32).toBe(0);
      expect(t.fileOffset + t.byteLength).toBeLessThanOrEqual(bytes.length);
    }
    expect(configOf(new GgufMetadata(h.metadata, FIXTURE_NAME))).toMatchObject({ hiddenSize: 24, numHeads: 3, numKvHeads: 1, headDim: 8, ropeTheta: 1e6 });
  });
});

describe('GGUF header: hostile fields', () => {
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['empty file', () => new Uint8Array(0), /^fixture\.gguf: not a GGUF file \(bad magic\)/],
    ['wrong magic', () => build((s) => (s.magic = 0x46554746)), /^fixture\.gguf: not a GGUF file/],
    ['version 2', () => build((s) => (s.version = 2)), /^fixture\.gguf: GGUF version 2/],
    ['version 4', () => build((s) => (s.version = 4)), /^fixture\.gguf: GGUF version 4/],
    ['tensor count 2^63', () => build((s) => (s.tensorCount = 2n ** 63n)), /^fixture\.gguf: tensor count 9223372036854775808 is more than/],
    ['tensor count 2^64 - 1', () => build((s) => (s.tensorCount = 2n ** 64n - 1n)), /^fixture\.gguf: tensor count \d+ is more than/],
    ['metadata count 2^63 - 1', () => build((s) => (s.kvCount = 2n ** 63n - 1n)), /^fixture\.gguf: metadata count \d+ is more than/],
    ['metadata count one too many', () => build((s) => (s.kvCount = BigInt(s.kvs.length + 1))), /^fixture\.gguf: .*(truncated|unknown metadata value type|runs past the end)/],
    ['tensor count one too many', () => build((s) => (s.tensorCount = BigInt(s.tensors.length + 1))), /^fixture\.gguf: /],
    ['array length 2^62', () => {
      const bytes = Buffer.from(fixtureBytes());
      // tokenizer.ggml.tokens' count follows its key, value type and item type.
      const at = bytes.indexOf('tokenizer.ggml.tokens') + 'tokenizer.ggml.tokens'.length + 8;
      bytes.writeBigUInt64LE(2n ** 62n, at);
      return bytes;
    }, /^fixture\.gguf: tokenizer\.ggml\.tokens: array length 4611686018427387904 is more than/],
    ['array length 2^25 (the file holding it)', () => {
      const withFlags = build((s) => s.kvs.push(['x.flags', { kind: 'array', itemKind: 'u8', values: [1] }]));
      const bytes = Buffer.concat([Buffer.from(withFlags), Buffer.alloc(2 ** 25)]);
      bytes.writeBigUInt64LE(2n ** 25n, bytes.indexOf('x.flags') + 'x.flags'.length + 8);
      return bytes;
    }, /^fixture\.gguf: x\.flags: array length 33554432 is implausible/],
    ['string length 2^64 - 1', () => {
      const bytes = Buffer.from(fixtureBytes());
      const at = bytes.indexOf('general.architecture') + 'general.architecture'.length + 4;
      bytes.writeBigUInt64LE(2n ** 64n - 1n, at);
      return bytes;
    }, /^fixture\.gguf: general\.architecture: string length 18446744073709551615 runs past the end/],
    ['key length past the end', () => {
      const bytes = Buffer.from(fixtureBytes());
      bytes.writeBigUInt64LE(BigInt(bytes.length), 24);
      return bytes;
    }, /^fixture\.gguf: metadata key #0: string length \d+ runs past the end/],
    ['unknown value type', () => {
      const bytes = Buffer.from(fixtureBytes());
      bytes.writeUInt32LE(13, bytes.indexOf('general.architecture') + 'general.architecture'.length);
      return bytes;
    }, /^fixture\.gguf: general\.architecture: unknown metadata value type 13/],
    ['nested array', () => withKv('x.nested', { kind: 'array', itemKind: 'array' as never, values: [] }), /^fixture\.gguf: x\.nested: arrays of arrays/],
    ['duplicate key', () => build((s) => s.kvs.push(['qwen3.block_count', gguf.u32(2)])), /^fixture\.gguf: metadata key qwen3\.block_count appears twice/],
    ['invalid UTF-8 key', () => {
      const bytes = Buffer.from(fixtureBytes());
      bytes[bytes.indexOf('general.architecture')] = 0xff;
      return bytes;
    }, /^fixture\.gguf: metadata key #0: a string that is not valid UTF-8/],
    ['alignment 0', () => withKv('general.alignment', gguf.u32(0)), /^fixture\.gguf: general\.alignment must be a u32 power of two/],
    ['alignment 48', () => withKv('general.alignment', gguf.u32(48)), /^fixture\.gguf: general\.alignment must be a u32 power of two/],
    ['alignment as a string', () => withKv('general.alignment', gguf.string('32')), /^fixture\.gguf: general\.alignment must be a u32/],
    ['5 dimensions', () => build((s) => (s.tensors[0].ne = [24n, 12n, 1n, 1n, 1n])), /^fixture\.gguf: tensor token_embd\.weight: 5 dimensions/],
    ['0 dimensions', () => build((s) => (s.tensors[0].ne = [])), /^fixture\.gguf: tensor token_embd\.weight: 0 dimensions/],
    ['a zero dimension', () => build((s) => (s.tensors[0].ne = [24n, 0n])), /^fixture\.gguf: tensor token_embd\.weight: dimension ne\[1\] = 0/],
    ['a dimension of 2^63', () => build((s) => (s.tensors[0].ne = [24n, 2n ** 63n])), /^fixture\.gguf: tensor token_embd\.weight: dimension ne\[1\] = 9223372036854775808 is out of range/],
    ['dims whose product overflows', () => build((s) => (s.tensors[0].ne = [2n ** 26n, 2n ** 26n, 2n ** 26n])), /^fixture\.gguf: tensor token_embd\.weight: BF16\[.*\] is too large \(size overflows\)/],
    ['unknown tensor type', () => build((s) => (s.tensors[1].type = 31)), /^fixture\.gguf: tensor blk\.0\.attn_q\.weight: unknown ggml type 31/],
    ['rows not whole blocks', () => build((s) => (s.tensors[1].ne = [48n, 4n])), /^fixture\.gguf: tensor blk\.0\.attn_q\.weight: rows of 48 values do not divide into Q8_0 blocks of 32/],
    ['misaligned offset', () => build((s) => (s.tensors[3].offset += 4n)), /^fixture\.gguf: tensor output_norm\.weight: data offset \d+ is not 32-byte aligned/],
    ['offset past the data section', () => build((s) => (s.tensors[3].offset = 1n << 40n)), /^fixture\.gguf: tensor output_norm\.weight: .* runs past the end of the file/],
    ['offset 2^64 - 32', () => build((s) => (s.tensors[3].offset = 2n ** 64n - 32n)), /^fixture\.gguf: tensor output_norm\.weight: data offset \d+ is outside the data section/],
    ['extent past the end', () => build((s) => (s.tensors[3].ne = [240n])), /^fixture\.gguf: tensor output_norm\.weight: F32\[240\] at data offset \d+ runs past the end of the file/],
    ['overlapping tensors', () => build((s) => (s.tensors[2].offset = s.tensors[1].offset)), /^fixture\.gguf: tensor blk\.0\.(attn_q|ffn_down)\.weight: its data overlaps tensor blk\.0\.(attn_q|ffn_down)\.weight/],
    ['duplicate tensor', () => build((s) => (s.tensors[2].name = s.tensors[1].name)), /^fixture\.gguf: tensor blk\.0\.attn_q\.weight: listed twice/],
    ['tensor name length 2^40', () => {
      const bytes = Buffer.from(fixtureBytes());
      bytes.writeBigUInt64LE(2n ** 40n, bytes.indexOf('token_embd.weight') - 8);
      return bytes;
    }, /^fixture\.gguf: tensor name #0: string length 1099511627776 runs past the end/],
  ];
  for (const [what, make, error] of cases) {
    it(what, () => {
      expect(() => parse(make())).toThrow(error);
    });
  }

  it('every truncation of the file fails cleanly (or, inside trailing padding, parses)', () => {
    const bytes = fixtureBytes();
    const full = parse(bytes);
    const lastByte = Math.max(...full.tensors.map((t) => t.fileOffset + t.byteLength));
    for (let n = 0; n < bytes.length; n++) {
      const cut = bytes.subarray(0, n);
      if (n >= lastByte) {
        expect(parse(cut).tensors).toHaveLength(full.tensors.length);
        continue;
      }
      expect(() => parse(cut), `truncated to ${n} bytes`).toThrow(/^fixture\.gguf: (not a GGUF file|truncated|.* runs past the end|.* \(truncated or corrupt\))/);
    }
  });
});

describe('GGUF metadata: qwen3 hyper-parameters', () => {
  const cases: [string, GgufValue | undefined, RegExp][] = [
    ['qwen3.block_count', undefined, /^fixture\.gguf: missing metadata key qwen3\.block_count/],
    ['qwen3.embedding_length', gguf.string('24'), /^fixture\.gguf: qwen3\.embedding_length must be an integer \(got string 24\)/],
    ['qwen3.embedding_length', gguf.u32(0), /^fixture\.gguf: qwen3\.embedding_length must be an integer ≥ 1/],
    ['qwen3.attention.head_count_kv', gguf.u32(2), /must be a multiple of qwen3\.attention\.head_count_kv/],
    ['qwen3.attention.key_length', gguf.u32(7), /one even head width/],
    ['qwen3.attention.value_length', gguf.u32(16), /one even head width/],
    ['qwen3.attention.layer_norm_rms_epsilon', gguf.f32(Number.NaN), /layer_norm_rms_epsilon must be a finite float > 0/],
    ['qwen3.attention.layer_norm_rms_epsilon', undefined, /missing metadata key qwen3\.attention\.layer_norm_rms_epsilon/],
    ['qwen3.feed_forward_length', gguf.i32s([40, 48]), /qwen3\.feed_forward_length differs between layers/],
    ['qwen3.rope.scaling.type', gguf.string('longrope'), /qwen3\.rope\.scaling\.type "longrope" with factor 0: Paralon runs the default RoPE and "yarn"/],
    ['qwen3.rope.scaling.type', gguf.string('yarn'), /qwen3\.rope\.scaling\.factor must be ≥ 1 for yarn \(got 0\)/],
    ['qwen3.vocab_size', gguf.u32(13), /qwen3\.vocab_size is 13, token_embd\.weight has 12 rows/],
  ];
  for (const [key, value, error] of cases) {
    it(`${key} = ${value === undefined ? 'missing' : JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`, () => {
      expect(() => configOf(metaOf(withKv(key, value)))).toThrow(error);
    });
  }
  it('takes per-layer arrays when every layer agrees', () => {
    expect(configOf(metaOf(withKv('qwen3.feed_forward_length', gguf.i32s([40])))).intermediateSize).toBe(40);
  });
});

describe('GGUF metadata: the tokenizer', () => {
  const cases: [string, GgufValue | undefined, RegExp][] = [
    ['tokenizer.ggml.model', gguf.string('llama'), /^fixture\.gguf: tokenizer\.ggml\.model is "llama"; only "gpt2"/],
    ['tokenizer.ggml.model', undefined, /^fixture\.gguf: missing metadata key tokenizer\.ggml\.model/],
    ['tokenizer.ggml.pre', gguf.string('llama-bpe'), /^fixture\.gguf: tokenizer\.ggml\.pre is "llama-bpe"; supported: qwen2/],
    ['tokenizer.ggml.tokens', gguf.i32s([1, 2]), /^fixture\.gguf: tokenizer\.ggml\.tokens must be an array of strings/],
    ['tokenizer.ggml.token_type', gguf.i32s([1, 1, 1]), /^fixture\.gguf: tokenizer\.ggml\.token_type has 3 entries, tokenizer\.ggml\.tokens has 12/],
    ['tokenizer.ggml.token_type', gguf.i32s([1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 4, 6]), /tokenizer\.ggml\.token_type\[11\] is 6/],
    ['tokenizer.ggml.scores', { kind: 'array', itemKind: 'f32', values: [0, 0] }, /tokenizer\.ggml\.scores must be an array of 12 entries/],
    ['tokenizer.ggml.merges', gguf.strings(['a b', 'abq']), /tokenizer\.ggml\.merges\[1\] "abq" is not two vocabulary tokens/],
    ['tokenizer.ggml.merges', gguf.strings(['a zz']), /tokenizer\.ggml\.merges\[0\] "a zz" is not two vocabulary tokens/],
    ['tokenizer.ggml.eos_token_id', gguf.u32(12), /^fixture\.gguf: tokenizer\.ggml\.eos_token_id 12 is not a token \(the vocabulary has 12 ids\)/],
    ['tokenizer.ggml.eos_token_id', gguf.u32(11), /tokenizer\.ggml\.eos_token_id 11 is not a token/],
    ['tokenizer.ggml.bos_token_id', { kind: 'i32', value: -1 }, /tokenizer\.ggml\.bos_token_id must be an integer ≥ 0/],
    ['tokenizer.ggml.add_bos_token', gguf.bool(true), /add_bos_token is true but tokenizer\.ggml\.bos_token_id is missing/],
    ['tokenizer.chat_template', gguf.u32(1), /tokenizer\.chat_template must be a string/],
  ];
  for (const [key, value, error] of cases) {
    it(`${key} = ${value === undefined ? 'missing' : JSON.stringify(value)}`, () => {
      expect(() => tokenizerFromGguf(metaOf(withKv(key, value)))).toThrow(error);
    });
  }
  it('rejects a token listed twice', () => {
    const tokens = fixtureKvs().find(([k]) => k === 'tokenizer.ggml.tokens')![1] as { values: string[] };
    const dup = [...tokens.values];
    dup[5] = 'ab';
    expect(() => tokenizerFromGguf(metaOf(withKv('tokenizer.ggml.tokens', gguf.strings(dup))))).toThrow(/"ab" is both token 4 and token 5/);
  });
});

describe('GGUF files through the memory mapping', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'paralon-gguf-hostile-'));
  let device: Device;
  beforeAll(() => {
    device = Device.open('cpu', { threads: 1 });
  });
  afterAll(() => {
    device.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it('maps a valid file and makes tensors in place; hostile files fail naming the file', () => {
    const good = path.join(root, 'model.gguf');
    writeFileSync(good, fixtureBytes());
    const ckpt = GgufCheckpoint.open(device, good);
    expect(ckpt.names).toHaveLength(4);
    const norm = ckpt.tensor(ckpt.get('output_norm.weight')!, 'f32');
    expect(norm.shape).toEqual([24]);
    norm.dispose();
    ckpt.close();

    const truncated = path.join(root, 'truncated.gguf');
    writeFileSync(truncated, fixtureBytes().subarray(0, 700));
    expect(() => GgufCheckpoint.open(device, truncated)).toThrow(/^truncated\.gguf: .*truncated/);
    const empty = path.join(root, 'empty.gguf');
    writeFileSync(empty, new Uint8Array(0));
    expect(() => GgufCheckpoint.open(device, empty)).toThrow(/^empty\.gguf: not a GGUF file/);
  });

  it('refuses tensors whose data is not 16-byte aligned (a file with general.alignment 2) and types it cannot run', () => {
    const spec = fixtureSpec();
    const { tensors, dataBytes } = layoutTensors(
      [{ name: 'token_embd.weight', type: 'F16', shape: [12, 3] }, { name: 'output_norm.weight', type: 'F32', shape: [24] }],
      2,
    );
    const kvs = spec.kvs.map(([k, v]): [string, GgufValue] => [k, k === 'general.alignment' ? gguf.u32(2) : v]);
    const file = path.join(root, 'align2.gguf');
    writeFileSync(file, rawGguf({ kvs, tensors, alignment: 2, data: new Uint8Array(dataBytes) }));
    const ckpt = GgufCheckpoint.open(device, file);
    expect(() => new GgufWeights(ckpt)).toThrow(/^align2\.gguf: tensor (token_embd|output_norm)\.weight: data at byte \d+ is not 16-byte aligned/);
    ckpt.close();
    const q4_0 = path.join(root, 'q.gguf');
    writeFileSync(q4_0, build((s) => (s.tensors[1].type = 2))); // Q4_0: a valid ggml type Paralon does not run
    const q = GgufCheckpoint.open(device, q4_0);
    expect(() => new GgufWeights(q)).toThrow(/^q\.gguf: tensor blk\.0\.attn_q\.weight: element type Q4_0 is not one Paralon runs/);
    q.close();
  });

  it('reads split sets in order and checks their split keys', () => {
    const spec = fixtureSpec();
    const [first, second] = [spec.tensors.slice(0, 2), spec.tensors.slice(2)];
    const base = second[0].offset;
    const split = (i: number, count: number, kvs: RawGguf['kvs'], tensors: RawGguf['tensors']) =>
      rawGguf({
        kvs: [...kvs, ['split.no', gguf.u16(i)], ['split.count', gguf.u16(count)], ['split.tensors.count', gguf.i32(spec.tensors.length)]],
        tensors,
        data: spec.data,
      });
    const partTwo = second.map((t) => ({ ...t, offset: t.offset - base }));
    writeFileSync(path.join(root, 'm-00001-of-00002.gguf'), split(0, 2, spec.kvs, first));
    writeFileSync(path.join(root, 'm-00002-of-00002.gguf'), split(1, 2, [], partTwo));
    const ckpt = GgufCheckpoint.open(device, path.join(root, 'm-00002-of-00002.gguf'));
    expect(ckpt.files).toEqual(['m-00001-of-00002.gguf', 'm-00002-of-00002.gguf']);
    expect(ckpt.names.sort()).toEqual(spec.tensors.map((t) => t.name).sort());
    expect(ckpt.get('output_norm.weight')!.file).toBe('m-00002-of-00002.gguf');
    expect(ckpt.metadata.string('general.architecture')).toBe('qwen3');
    ckpt.close();

    writeFileSync(path.join(root, 'w-00001-of-00002.gguf'), split(0, 2, spec.kvs, first));
    writeFileSync(path.join(root, 'w-00002-of-00002.gguf'), split(0, 2, [], partTwo));
    expect(() => GgufCheckpoint.open(device, path.join(root, 'w-00001-of-00002.gguf'))).toThrow(
      /^w-00002-of-00002\.gguf: split\.no is 0, expected 1 from the file name/,
    );
    writeFileSync(path.join(root, 'x-00001-of-00003.gguf'), split(0, 3, spec.kvs, first));
    expect(() => GgufCheckpoint.open(device, path.join(root, 'x-00001-of-00003.gguf'))).toThrow(/^x-00002-of-00003\.gguf: missing split file/);
    writeFileSync(path.join(root, 'd-00001-of-00002.gguf'), split(0, 2, spec.kvs, first));
    writeFileSync(path.join(root, 'd-00002-of-00002.gguf'), split(1, 2, [], first));
    expect(() => GgufCheckpoint.open(device, path.join(root, 'd-00001-of-00002.gguf'))).toThrow(
      /^d-00002-of-00002\.gguf: tensor token_embd\.weight: also stored in d-00001-of-00002\.gguf/,
    );
  });
});
