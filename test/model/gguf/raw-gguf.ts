// A GGUF byte builder for hostile-file tests: every header field is given explicitly (as bigint where
// the format has a u64), so counts, lengths, dimensions and offsets can be anything, including what
// src/model/gguf/writer.ts refuses to write.
import { GGML_TYPES, ValueType, alignUp, type GgmlTypeName, type GgufValue } from '../../../src/model/gguf/types.js';

export interface RawTensor {
  name: string;
  /** ne[] as stored (innermost first). */
  ne: bigint[];
  type: number;
  offset: bigint;
}

export interface RawGguf {
  magic?: number;
  version?: number;
  /** Overrides the stored counts (default: the lengths of kvs and tensors). */
  tensorCount?: bigint;
  kvCount?: bigint;
  kvs: [string, GgufValue][];
  tensors: RawTensor[];
  alignment?: number;
  /** Bytes of the data section. */
  data: Uint8Array;
}

class Sink {
  parts: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  u64(v: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v));
    this.push(b);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(BigInt(b.length));
    this.push(b);
  }
  value(kind: Exclude<GgufValue['kind'], 'array'>, v: unknown): void {
    const b = Buffer.alloc(8);
    switch (kind) {
      case 'u8': b.writeUInt8(v as number); return this.push(b.subarray(0, 1));
      case 'i8': b.writeInt8(v as number); return this.push(b.subarray(0, 1));
      case 'bool': b.writeUInt8(v ? 1 : 0); return this.push(b.subarray(0, 1));
      case 'u16': b.writeUInt16LE(v as number); return this.push(b.subarray(0, 2));
      case 'i16': b.writeInt16LE(v as number); return this.push(b.subarray(0, 2));
      case 'u32': b.writeUInt32LE(v as number); return this.push(b.subarray(0, 4));
      case 'i32': b.writeInt32LE(v as number); return this.push(b.subarray(0, 4));
      case 'f32': b.writeFloatLE(v as number); return this.push(b.subarray(0, 4));
      case 'f64': b.writeDoubleLE(v as number); return this.push(b);
      case 'u64': b.writeBigUInt64LE(v as bigint); return this.push(b);
      case 'i64': b.writeBigInt64LE(v as bigint); return this.push(b);
      case 'string': return this.string(v as string);
    }
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

export function rawGguf(spec: RawGguf): Uint8Array {
  const s = new Sink();
  s.u32(spec.magic ?? 0x46554747);
  s.u32(spec.version ?? 3);
  s.u64(spec.tensorCount ?? BigInt(spec.tensors.length));
  s.u64(spec.kvCount ?? BigInt(spec.kvs.length));
  for (const [key, v] of spec.kvs) {
    s.string(key);
    s.u32(ValueType[v.kind]);
    if (v.kind === 'array') {
      s.u32(ValueType[v.itemKind]);
      s.u64(BigInt(v.values.length));
      for (const x of v.values) s.value(v.itemKind, x);
    } else {
      s.value(v.kind, v.value);
    }
  }
  for (const t of spec.tensors) {
    s.string(t.name);
    s.u32(t.ne.length);
    for (const n of t.ne) s.u64(n);
    s.u32(t.type);
    s.u64(t.offset);
  }
  const pad = alignUp(s.length, spec.alignment ?? 32) - s.length;
  s.push(new Uint8Array(pad));
  s.push(spec.data);
  return s.bytes();
}

/** Tensors laid out back to back (aligned) for `shapes` (row-major, outermost first), with their data size. */
export function layoutTensors(list: { name: string; type: GgmlTypeName; shape: number[] }[], alignment = 32): { tensors: RawTensor[]; dataBytes: number } {
  let offset = 0;
  const tensors = list.map((t) => {
    const { id, blockValues, blockBytes } = GGML_TYPES[t.type];
    const bytes = (t.shape.reduce((a, b) => a * b, 1) / blockValues) * blockBytes;
    const raw: RawTensor = { name: t.name, ne: [...t.shape].reverse().map(BigInt), type: id, offset: BigInt(offset) };
    offset = alignUp(offset + bytes, alignment);
    return raw;
  });
  return { tensors, dataBytes: offset };
}
