// Parses a GGUF v3 header from any byte source (a memory-mapped file, a Buffer). A GGUF is untrusted
// input: every count, length, dimension and offset is checked against what the file can hold before
// anything is allocated or read, and every error names the file (and the key or tensor). Tensor data
// is never read here: tensors come back as byte ranges of the file, checked to lie inside the data
// section, aligned and not overlapping.
import {
  GGML_TYPE_OF_ID,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_VERSION,
  VALUE_KIND_OF_ID,
  VALUE_MIN_BYTES,
  alignUp,
  ggmlTensorBytes,
  type GgmlTypeName,
  type GgufScalar,
  type GgufValue,
  type ScalarKind,
  type ValueKind,
} from './types.js';

/** Random-access bytes: `read` returns exactly `length` bytes at `offset` (the caller checks bounds). */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
}

/** A byte source over bytes already in memory (tests, fuzzing). */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) };
}

export interface GgufTensorInfo {
  name: string;
  type: GgmlTypeName;
  /** Row-major (PyTorch order, outermost first): the reverse of the file's ne[]. */
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface GgufHeader {
  /** The file's name as errors show it. */
  file: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Where the data section starts. */
  dataOffset: number;
  fileSize: number;
}

/** A metadata key or tensor name longer than this is not a real file's (the longest are < 100 bytes). */
const MAX_NAME_BYTES = 65_536;
/**
 * More metadata array items than this are refused before any is read: real arrays (vocabularies,
 * merges) hold under a million, and a corrupt count inside a multi-GB file could otherwise pass the
 * bytes-left check and make the JS heap allocate gigabytes.
 */
const MAX_ARRAY_ITEMS = 1 << 24;
/** Likewise for a string value (the longest real ones, chat templates, are tens of KB; V8 strings end near 512 MB). */
const MAX_STRING_BYTES = 1 << 24;
/** Smallest tensor info on the wire: empty name (8), n_dims (4), one ne (8), type (4), offset (8). */
const MIN_TENSOR_INFO_BYTES = 32;
/** Smallest metadata entry: empty key (8), value type (4), a one-byte value. */
const MIN_KV_BYTES = 13;

/** Parses and validates the header of the GGUF in `source`; `file` names it in errors. */
export function parseGgufHeader(source: ByteSource, file: string): GgufHeader {
  const src = new Cursor(source, file);
  if (source.size < 4 || src.u32('magic') !== GGUF_MAGIC) throw new Error(`${file}: not a GGUF file (bad magic)`);
  const version = src.u32('version');
  if (version !== GGUF_VERSION) throw new Error(`${file}: GGUF version ${version}; this reader knows version ${GGUF_VERSION}`);
  const numTensors = src.count('tensor count', MIN_TENSOR_INFO_BYTES);
  const numKv = src.count('metadata count', MIN_KV_BYTES);

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < numKv; i++) {
    const key = src.string(`metadata key #${i}`, MAX_NAME_BYTES);
    if (metadata.has(key)) throw new Error(`${file}: metadata key ${key} appears twice`);
    const kind = src.kind(key);
    if (kind === 'array') {
      const itemKind = src.kind(key);
      if (itemKind === 'array') throw new Error(`${file}: ${key}: arrays of arrays are not supported`);
      const n = src.count(`${key}: array length`, VALUE_MIN_BYTES[itemKind]);
      if (n > MAX_ARRAY_ITEMS) throw new Error(`${file}: ${key}: array length ${n} is implausible (over ${MAX_ARRAY_ITEMS})`);
      const values: GgufScalar['value'][] = new Array(n);
      for (let j = 0; j < n; j++) values[j] = src.scalar(itemKind, key);
      metadata.set(key, { kind: 'array', itemKind, values });
    } else {
      metadata.set(key, { kind, value: src.scalar(kind, key) } as GgufScalar);
    }
  }
  const alignment = readAlignment(metadata, file);

  const infos: { name: string; type: GgmlTypeName; shape: number[]; offset: number; byteLength: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < numTensors; i++) {
    const name = src.string(`tensor name #${i}`, MAX_NAME_BYTES);
    const where = `${file}: tensor ${name}`;
    if (names.has(name)) throw new Error(`${where}: listed twice`);
    names.add(name);
    const nDims = src.u32(`${name}: n_dims`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) throw new Error(`${where}: ${nDims} dimensions (1 to ${GGUF_MAX_DIMS})`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = src.u64(`${name}: ne[${d}]`);
      if (n < 1n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${where}: dimension ne[${d}] = ${n} is out of range`);
      ne.push(Number(n));
    }
    const typeId = src.u32(`${name}: type`);
    const type = GGML_TYPE_OF_ID[typeId];
    if (type === undefined) throw new Error(`${where}: unknown ggml type ${typeId}`);
    const shape = ne.reverse();
    const byteLength = ggmlTensorBytes(type, shape);
    if (typeof byteLength === 'string') throw new Error(`${where}: ${byteLength}`);
    const offset = src.u64(`${name}: offset`);
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${where}: data offset ${offset} is outside the data section`);
    if (Number(offset) % alignment !== 0) throw new Error(`${where}: data offset ${offset} is not ${alignment}-byte aligned`);
    infos.push({ name, type, shape, offset: Number(offset), byteLength });
  }

  const dataOffset = alignUp(src.position, alignment);
  const dataSize = source.size - dataOffset;
  if (numTensors > 0 && dataSize < 0) throw new Error(`${file}: truncated (the file ends before the data section)`);
  const tensors = infos.map(({ offset, ...t }) => {
    if (offset + t.byteLength > dataSize)
      throw new Error(
        `${file}: tensor ${t.name}: ${t.type}[${t.shape.join(', ')}] at data offset ${offset} runs past the end of the file ` +
          `(${t.byteLength} bytes, ${Math.max(0, dataSize - offset)} left): truncated?`,
      );
    return { ...t, fileOffset: dataOffset + offset };
  });
  checkNoOverlap(tensors, file);
  return { file, version, metadata, tensors, alignment, dataOffset, fileSize: source.size };
}

function readAlignment(metadata: Map<string, GgufValue>, file: string): number {
  const v = metadata.get('general.alignment');
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  // llama.cpp: a u32 power of two.
  if (v.kind !== 'u32' || v.value === 0 || (v.value & (v.value - 1)) !== 0)
    throw new Error(`${file}: general.alignment must be a u32 power of two (got ${v.kind} ${v.kind === 'array' ? '[…]' : String(v.value)})`);
  return v.value;
}

function checkNoOverlap(tensors: readonly GgufTensorInfo[], file: string): void {
  const sorted = [...tensors].sort((a, b) => a.fileOffset - b.fileOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].fileOffset < prev.fileOffset + prev.byteLength)
      throw new Error(`${file}: tensor ${sorted[i].name}: its data overlaps tensor ${prev.name}`);
  }
}

/** Sequential little-endian reads through a window of the source; reads past the end fail naming what was read. */
class Cursor {
  position = 0;
  readonly #source: ByteSource;
  readonly #file: string;
  #window: Buffer = Buffer.alloc(0);
  #view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  #windowStart = 0;
  readonly #utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(source: ByteSource, file: string) {
    this.#source = source;
    this.#file = file;
  }

  /** Makes [position, position + n) readable in the window; returns its start within the window. */
  #take(n: number, what: string): number {
    if (n > this.#source.size - this.position)
      throw new Error(`${this.#file}: truncated: ${what} runs past the end of the file (byte ${this.position} + ${n}, size ${this.#source.size})`);
    let at = this.position - this.#windowStart;
    if (at < 0 || at + n > this.#window.length) {
      const length = Math.min(Math.max(n, 1 << 20), this.#source.size - this.position);
      const bytes = this.#source.read(this.position, length);
      this.#window = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.#windowStart = this.position;
      at = 0;
    }
    this.position += n;
    return at;
  }

  u32(what: string): number {
    const at = this.#take(4, what);
    return this.#view.getUint32(at, true);
  }

  u64(what: string): bigint {
    const at = this.#take(8, what);
    return this.#view.getBigUint64(at, true);
  }

  /** A u64 count of items each at least `minItemBytes` long: must fit in what is left of the file. */
  count(what: string, minItemBytes: number): number {
    const n = this.u64(what);
    const left = this.#source.size - this.position;
    if (n > BigInt(Math.floor(left / minItemBytes)))
      throw new Error(`${this.#file}: ${what} ${n} is more than the ${left} bytes left in the file can hold (truncated or corrupt)`);
    return Number(n);
  }

  string(what: string, maxBytes = MAX_STRING_BYTES): string {
    // The length as two u32 halves: no BigInt on the hot path (a vocabulary is ~300k strings).
    const lengthAt = this.#take(8, what);
    const lo = this.#view.getUint32(lengthAt, true);
    const hi = this.#view.getUint32(lengthAt + 4, true);
    const left = this.#source.size - this.position;
    if (hi !== 0 || lo > left || lo > maxBytes) {
      const n = BigInt(hi) * 2n ** 32n + BigInt(lo);
      if (n > BigInt(left)) throw new Error(`${this.#file}: ${what}: string length ${n} runs past the end of the file`);
      throw new Error(`${this.#file}: ${what}: string length ${n} is implausible (over ${maxBytes})`);
    }
    const len = lo;
    const at = this.#take(len, what);
    // Buffer's decoder is several times faster on the ~300k short strings of a vocabulary, but it
    // replaces invalid sequences with U+FFFD: only strings that contain one are decoded again strictly.
    const text = this.#window.toString('utf8', at, at + len);
    if (text.includes('\uFFFD')) {
      try {
        this.#utf8.decode(this.#window.subarray(at, at + len));
      } catch {
        throw new Error(`${this.#file}: ${what}: a string that is not valid UTF-8`);
      }
    }
    return text;
  }

  kind(key: string): ValueKind {
    const id = this.u32(`${key}: value type`);
    const kind = VALUE_KIND_OF_ID[id];
    if (kind === undefined) throw new Error(`${this.#file}: ${key}: unknown metadata value type ${id}`);
    return kind;
  }

  scalar(kind: ScalarKind, key: string): GgufScalar['value'] {
    if (kind === 'string') return this.string(key);
    const at = this.#take(VALUE_MIN_BYTES[kind], key);
    const v = this.#view;
    switch (kind) {
      case 'u8': return v.getUint8(at);
      case 'i8': return v.getInt8(at);
      case 'bool': return v.getUint8(at) !== 0;
      case 'u16': return v.getUint16(at, true);
      case 'i16': return v.getInt16(at, true);
      case 'u32': return v.getUint32(at, true);
      case 'i32': return v.getInt32(at, true);
      case 'f32': return v.getFloat32(at, true);
      case 'f64': return v.getFloat64(at, true);
      case 'u64': return v.getBigUint64(at, true);
      case 'i64': return v.getBigInt64(at, true);
    }
  }
}
