// The GGUF v3 container (llama.cpp's model file): a writer and a header reader. Nothing here knows
// about Qwen3; bench/peers/gguf-writer.ts decides what goes in.
//
// Layout, all little-endian:
//   "GGUF" u32 version=3, u64 tensor count, u64 metadata count
//   metadata × n: string key, u32 value type, value   (string = u64 byte length + UTF-8 bytes;
//                 array = u32 item type, u64 count, items)
//   tensor info × n: string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml type,
//                 u64 offset of the data from the start of the data section
//   padding to `general.alignment` (32), then each tensor's data, each start aligned the same way.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const VERSION = 3;
export const GGUF_ALIGNMENT = 32;

/** gguf_type: the metadata value types. */
const ValueType = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
type ScalarKind = Exclude<keyof typeof ValueType, 'array'>;
const KIND_OF_TYPE = Object.fromEntries(Object.entries(ValueType).map(([k, v]) => [v, k])) as Record<number, keyof typeof ValueType>;

/** ggml_type ids of the element types written here. */
export const GgmlType = { F32: 0, F16: 1, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GgmlType;
const GGML_TYPE_NAME = Object.fromEntries(Object.entries(GgmlType).map(([k, v]) => [v, k])) as Record<number, GgmlTypeName>;
export const ggmlTypeBytes: Record<GgmlTypeName, number> = { F32: 4, F16: 2, BF16: 2 };

export type GgufScalar =
  | { kind: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { kind: 'u64' | 'i64'; value: bigint }
  | { kind: 'bool'; value: boolean }
  | { kind: 'string'; value: string };
export type GgufValue = GgufScalar | { kind: 'array'; itemKind: ScalarKind; values: GgufScalar['value'][] };

// Typed constructors for metadata values.
export const gguf = {
  u32: (value: number): GgufValue => ({ kind: 'u32', value }),
  f32: (value: number): GgufValue => ({ kind: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ kind: 'bool', value }),
  string: (value: string): GgufValue => ({ kind: 'string', value }),
  strings: (values: string[]): GgufValue => ({ kind: 'array', itemKind: 'string', values }),
  i32s: (values: number[]): GgufValue => ({ kind: 'array', itemKind: 'i32', values }),
};

export interface GgufTensorToWrite {
  name: string;
  type: GgmlTypeName;
  /** Row-major shape as PyTorch/safetensors write it ([out, in] for a linear layer); GGUF stores it reversed. */
  shape: readonly number[];
  /** The raw little-endian elements, made when the writer reaches this tensor. */
  data: () => ArrayBufferView;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function alignUp(n: number, alignment = GGUF_ALIGNMENT): number {
  return Math.ceil(n / alignment) * alignment;
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

/**
 * Writes a GGUF v3 file: metadata in the given order, then the tensors in the given order, each
 * tensor's data produced (and dropped) one at a time so a multi-GB model never sits in memory.
 */
export function writeGguf(file: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorToWrite[]): void {
  const header = new ByteSink();
  header.u32(MAGIC);
  header.u32(VERSION);
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
    header.u32(GgmlType[t.type]);
    header.u64(offset);
    offset = alignUp(offset + elementCount(t.shape) * ggmlTypeBytes[t.type], alignment);
  }
  header.padTo(alignment);

  const fd = openSync(file, 'w');
  try {
    writeAll(fd, header.bytes());
    const zeros = new Uint8Array(alignment);
    for (const t of tensors) {
      const data = t.data();
      const expected = elementCount(t.shape) * ggmlTypeBytes[t.type];
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
  if (v === undefined) return GGUF_ALIGNMENT;
  if (v.kind !== 'u32' || v.value <= 0 || v.value % 8 !== 0) throw new Error('general.alignment must be a u32 multiple of 8');
  return v.value;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

export interface GgufTensorInfo {
  name: string;
  type: GgmlTypeName;
  /** Row-major (PyTorch order): the reverse of the file's ne[]. */
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** Where the data section starts. */
  dataOffset: number;
  fileSize: number;
}

/** Reads and checks a GGUF file's header: metadata, tensor infos, and that every tensor's data lies inside the file. */
export function readGgufHeader(file: string): GgufHeader {
  const fd = openSync(file, 'r');
  try {
    const src = new FileCursor(fd, file);
    if (src.u32() !== MAGIC) throw new Error(`${file}: not a GGUF file (bad magic)`);
    const version = src.u32();
    if (version !== VERSION) throw new Error(`${file}: GGUF version ${version}; this reader knows version 3`);
    const numTensors = src.count('tensor count');
    const numKv = src.count('metadata count');
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < numKv; i++) {
      const key = src.string();
      if (metadata.has(key)) throw new Error(`${file}: metadata key ${key} appears twice`);
      const kind = src.kind();
      if (kind === 'array') {
        const itemKind = src.kind();
        if (itemKind === 'array') throw new Error(`${file}: ${key}: nested arrays are not read here`);
        const n = src.count(`${key} length`);
        const values: GgufScalar['value'][] = [];
        for (let j = 0; j < n; j++) values.push(src.scalar(itemKind));
        metadata.set(key, { kind: 'array', itemKind, values });
      } else {
        metadata.set(key, { kind, value: src.scalar(kind) } as GgufScalar);
      }
    }
    const alignment = alignmentOf(metadata);
    const infos: { name: string; type: GgmlTypeName; shape: number[]; offset: number }[] = [];
    for (let i = 0; i < numTensors; i++) {
      const name = src.string();
      const nDims = src.u32();
      if (nDims < 1 || nDims > 4) throw new Error(`${file}: tensor ${name}: ${nDims} dimensions`);
      const ne: number[] = [];
      for (let d = 0; d < nDims; d++) ne.push(src.count(`${name} ne[${d}]`));
      const typeId = src.u32();
      const type = GGML_TYPE_NAME[typeId];
      if (type === undefined) throw new Error(`${file}: tensor ${name}: ggml type ${typeId} is not one this reader knows`);
      const offset = src.count(`${name} offset`);
      if (offset % alignment !== 0) throw new Error(`${file}: tensor ${name}: offset ${offset} is not ${alignment}-aligned`);
      infos.push({ name, type, shape: ne.reverse(), offset });
    }
    const dataOffset = alignUp(src.position, alignment);
    const fileSize = src.fileSize;
    const tensors = infos.map(({ offset, ...t }) => {
      const byteLength = elementCount(t.shape) * ggmlTypeBytes[t.type];
      const fileOffset = dataOffset + offset;
      if (fileOffset + byteLength > fileSize) throw new Error(`${file}: tensor ${t.name}: data runs past the end of the file`);
      return { ...t, fileOffset, byteLength };
    });
    return { version, metadata, tensors, dataOffset, fileSize };
  } finally {
    closeSync(fd);
  }
}

/** Sequential little-endian reads from a file through a 1 MiB window. */
class FileCursor {
  readonly fileSize: number;
  position = 0;
  #window = Buffer.alloc(1 << 20);
  #windowStart = 0;
  #windowLength = 0;

  constructor(
    private readonly fd: number,
    private readonly file: string,
  ) {
    this.fileSize = fstatSync(fd).size;
  }

  #take(n: number): Buffer {
    if (this.position + n > this.fileSize) throw new Error(`${this.file}: truncated header (read past the end at byte ${this.position})`);
    if (this.position < this.#windowStart || this.position + n > this.#windowStart + this.#windowLength) {
      if (n > this.#window.length) this.#window = Buffer.alloc(n);
      this.#windowStart = this.position;
      this.#windowLength = readSync(this.fd, this.#window, 0, this.#window.length, this.position);
    }
    const at = this.position - this.#windowStart;
    this.position += n;
    return this.#window.subarray(at, at + n);
  }

  u32(): number {
    return this.#take(4).readUInt32LE(0);
  }

  /** A u64 used as a count, size or offset: must fit a JS number. */
  count(what: string): number {
    const v = this.#take(8).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${this.file}: ${what} is ${v}, too large`);
    return Number(v);
  }

  string(): string {
    const n = this.count('string length');
    return this.#take(n).toString('utf8');
  }

  kind(): keyof typeof ValueType {
    const id = this.u32();
    const kind = KIND_OF_TYPE[id];
    if (kind === undefined) throw new Error(`${this.file}: unknown metadata value type ${id}`);
    return kind;
  }

  scalar(kind: ScalarKind): GgufScalar['value'] {
    switch (kind) {
      case 'u8': return this.#take(1).readUInt8(0);
      case 'i8': return this.#take(1).readInt8(0);
      case 'u16': return this.#take(2).readUInt16LE(0);
      case 'i16': return this.#take(2).readInt16LE(0);
      case 'u32': return this.#take(4).readUInt32LE(0);
      case 'i32': return this.#take(4).readInt32LE(0);
      case 'f32': return this.#take(4).readFloatLE(0);
      case 'f64': return this.#take(8).readDoubleLE(0);
      case 'u64': return this.#take(8).readBigUInt64LE(0);
      case 'i64': return this.#take(8).readBigInt64LE(0);
      case 'bool': return this.#take(1).readUInt8(0) !== 0;
      case 'string': return this.string();
    }
  }
}
