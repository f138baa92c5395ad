// Writes GGUF v3 files (see types.ts for the layout): metadata in the given order, then the tensors
// in the given order, each tensor's data produced (and dropped) one at a time so that a multi-GB model
// never sits in memory.
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  GGML_TYPES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  ValueType,
  alignUp,
  ggmlTensorBytes,
  type GgmlTypeName,
  type GgufScalar,
  type GgufValue,
  type ScalarKind,
} from './types.js';

export interface GgufTensorToWrite {
  name: string;
  type: GgmlTypeName;
  /** Row-major shape as PyTorch/safetensors write it ([out, in] for a linear layer); GGUF stores it reversed. */
  shape: readonly number[];
  /** The raw little-endian elements (or ggml blocks), made when the writer reaches this tensor. */
  data: () => ArrayBufferView;
}

/** Serializes header fields into one growing buffer. */
class ByteSink {
  #buf = Buffer.alloc(1 << 20);
  length = 0;

  #reserve(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.#buf.length * 2, this.length + n));
    this.#buf.copy(bigger, 0, 0, this.length);
    this.#buf = bigger;
  }

  u32(v: number): void {
    this.#reserve(4);
    this.length = this.#buf.writeUInt32LE(v, this.length);
  }

  u64(v: number | bigint): void {
    this.#reserve(8);
    this.length = this.#buf.writeBigUInt64LE(BigInt(v), this.length);
  }

  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    this.#reserve(n);
    this.length += this.#buf.write(s, this.length, 'utf8');
  }

  scalar(kind: ScalarKind, v: GgufScalar['value']): void {
    this.#reserve(8);
    const b = this.#buf;
    const at = this.length;
    switch (kind) {
      case 'u8': this.length = b.writeUInt8(v as number, at); break;
      case 'i8': this.length = b.writeInt8(v as number, at); break;
      case 'u16': this.length = b.writeUInt16LE(v as number, at); break;
      case 'i16': this.length = b.writeInt16LE(v as number, at); break;
      case 'u32': this.length = b.writeUInt32LE(v as number, at); break;
      case 'i32': this.length = b.writeInt32LE(v as number, at); break;
      case 'f32': this.length = b.writeFloatLE(v as number, at); break;
      case 'f64': this.length = b.writeDoubleLE(v as number, at); break;
      case 'u64': this.length = b.writeBigUInt64LE(v as bigint, at); break;
      case 'i64': this.length = b.writeBigInt64LE(v as bigint, at); break;
      case 'bool': this.length = b.writeUInt8(v ? 1 : 0, at); break;
      case 'string': this.string(v as string); break;
    }
  }

  padTo(alignment: number): void {
    const n = alignUp(this.length, alignment) - this.length;
    this.#reserve(n);
    this.#buf.fill(0, this.length, this.length + n);
    this.length += n;
  }

  bytes(): Buffer {
    return this.#buf.subarray(0, this.length);
  }
}

function tensorBytes(t: GgufTensorToWrite): number {
  if (t.shape.length < 1) throw new Error(`writeGguf: tensor ${t.name} has no dimensions`);
  const bytes = ggmlTensorBytes(t.type, t.shape);
  if (typeof bytes === 'string') throw new Error(`writeGguf: ${t.name}: ${bytes}`);
  return bytes;
}

/** Writes a GGUF v3 file. */
export function writeGguf(file: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorToWrite[]): void {
  const header = new ByteSink();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  header.u64(metadata.size);
  for (const [key, value] of metadata) {
    header.string(key);
    header.u32(ValueType[value.kind]);
    if (value.kind === 'array') {
      header.u32(ValueType[value.itemKind]);
      header.u64(value.values.length);
      for (const item of value.values) header.scalar(value.itemKind, item);
    } else {
      header.scalar(value.kind, value.value);
    }
  }
  const alignment = alignmentOf(metadata);
  const names = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`writeGguf: tensor ${t.name} is listed twice`);
    names.add(t.name);
    header.string(t.name);
    header.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) header.u64(t.shape[d]);
    header.u32(GGML_TYPES[t.type].id);
    header.u64(offset);
    offset = alignUp(offset + tensorBytes(t), alignment);
  }
  header.padTo(alignment);

  const fd = openSync(file, 'w');
  try {
    writeAll(fd, header.bytes());
    const zeros = new Uint8Array(alignment);
    for (const t of tensors) {
      const data = t.data();
      const expected = tensorBytes(t);
      if (data.byteLength !== expected)
        throw new Error(`writeGguf: ${t.name}: ${data.byteLength} bytes of data for ${t.type}[${t.shape.join(', ')}] (${expected} bytes)`);
      writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      writeAll(fd, zeros.subarray(0, alignUp(expected, alignment) - expected));
    }
  } finally {
    closeSync(fd);
  }
}

function alignmentOf(metadata: ReadonlyMap<string, GgufValue>): number {
  const v = metadata.get('general.alignment');
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.kind !== 'u32' || v.value < 8 || (v.value & (v.value - 1)) !== 0) throw new Error('writeGguf: general.alignment must be a u32 power of two ≥ 8');
  return v.value;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}
