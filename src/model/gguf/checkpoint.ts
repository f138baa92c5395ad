// GGUF checkpoints on a device: one file or a split set (`name-00001-of-0000N.gguf`, llama.cpp's
// gguf-split: every part a complete GGUF carrying split.no / split.count / split.tensors.count, the
// model's metadata in the first). Files are memory-mapped by the addon and only their headers are
// copied into the JS heap; tensors are made from byte ranges of the mapping, in place on host-memory
// devices.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Device, MappedFile, Tensor } from '../../runtime/index.js';
import type { DType } from '../../runtime/dtype.js';
import { GgufMetadata } from './metadata.js';
import { parseGgufHeader, type ByteSource, type GgufHeader, type GgufTensorInfo } from './reader.js';

const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** One tensor of a GGUF checkpoint: where its bytes are and what they are. */
export interface GgufTensorEntry extends GgufTensorInfo {
  /** The file's base name, for messages. */
  file: string;
}

/** Reads a GGUF file's header through plain file reads (no device, no mapping). */
export function readGgufHeader(file: string): GgufHeader {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const source: ByteSource = {
      size,
      read(offset, length) {
        const out = new Uint8Array(length);
        for (let done = 0; done < length;) {
          const n = readSync(fd, out, done, length - done, offset + done);
          if (n === 0) throw new Error(`${file}: the file shrank while being read`);
          done += n;
        }
        return out;
      },
    };
    return parseGgufHeader(source, path.basename(file));
  } finally {
    closeSync(fd);
  }
}

/**
 * The GGUF file a model path names: the file itself, or the one GGUF (or one split set) in a
 * directory. Returns undefined for a Hugging Face directory (one with a config.json) or one without
 * GGUF files.
 */
export function findGgufFile(modelPath: string): string | undefined {
  if (!existsSync(modelPath)) throw new Error(`${modelPath}: no such file or directory`);
  if (!statSync(modelPath).isDirectory()) {
    if (!modelPath.endsWith('.gguf')) throw new Error(`${modelPath}: a model file must be a .gguf (or give a checkpoint directory)`);
    return modelPath;
  }
  if (existsSync(path.join(modelPath, 'config.json'))) return undefined;
  const ggufs = readdirSync(modelPath).filter((f) => f.endsWith('.gguf')).sort();
  const sets = new Set(ggufs.map((f) => SPLIT_NAME.exec(f)?.[1] ?? f));
  if (sets.size === 0) return undefined;
  if (sets.size > 1) throw new Error(`${modelPath}: holds ${sets.size} GGUF models (${[...sets].join(', ')}); name the file to load`);
  return path.join(modelPath, ggufs[0]);
}

/** The files of the split set `file` belongs to, in order (just `file` when it is not a split name). */
export function splitFiles(file: string): string[] {
  const m = SPLIT_NAME.exec(path.basename(file));
  if (!m) return [file];
  const count = Number(m[3]);
  if (count < 1 || Number(m[2]) < 1 || Number(m[2]) > count) throw new Error(`${file}: split number ${m[2]} of ${m[3]} is out of range`);
  return Array.from({ length: count }, (_, i) =>
    path.join(path.dirname(file), `${m[1]}-${String(i + 1).padStart(5, '0')}-of-${m[3]}.gguf`),
  );
}

/** The model id a GGUF file gives by default: its name without split and quantization suffixes. */
export function ggufModelId(file: string): string {
  const base = path.basename(file).replace(SPLIT_NAME, '$1').replace(/\.gguf$/, '');
  // Quantization / precision suffixes as published files write them: -Q4_K_M, .q8_0, -BF16, -IQ4_XS, -f16 …
  const stripped = base.replace(/[-._](?:i?q\d(?:_[a-z0-9]+)*|bf16|f16|f32|fp16|fp32)$/i, '');
  return (stripped || base).toLowerCase();
}

/** The model id a model path gives by default: a GGUF's name without its suffixes, else the directory's name, lower-cased. */
export function defaultModelId(modelPath: string): string {
  return modelPath.endsWith('.gguf') ? ggufModelId(modelPath) : path.basename(path.resolve(modelPath)).toLowerCase();
}

export class GgufCheckpoint {
  /** Base names of the files, in split order. */
  readonly files: string[];
  /** The model's metadata (the first split's). */
  readonly metadata: GgufMetadata;
  readonly #mapped: Map<string, MappedFile>;
  readonly #entries: Map<string, GgufTensorEntry>;

  private constructor(files: string[], metadata: GgufMetadata, mapped: Map<string, MappedFile>, entries: Map<string, GgufTensorEntry>) {
    this.files = files;
    this.metadata = metadata;
    this.#mapped = mapped;
    this.#entries = entries;
  }

  /** Maps `file` (and the rest of its split set) on `device` and reads and validates every header. */
  static open(device: Device, file: string): GgufCheckpoint {
    const paths = splitFiles(file);
    const mapped = new Map<string, MappedFile>();
    try {
      const headers: GgufHeader[] = [];
      for (const p of paths) {
        if (!existsSync(p)) throw new Error(`${path.basename(p)}: missing split file (the set ${path.basename(file)} belongs to has ${paths.length})`);
        const m = device.mapFile(p);
        const name = path.basename(p);
        mapped.set(name, m);
        headers.push(parseGgufHeader({ size: m.size, read: (o, l) => m.bytes(o, l) }, name));
      }
      const entries = collectTensors(headers);
      return new GgufCheckpoint([...mapped.keys()], new GgufMetadata(headers[0].metadata, headers[0].file), mapped, entries);
    } catch (e) {
      for (const m of mapped.values()) m.close();
      throw e;
    }
  }

  get names(): string[] {
    return [...this.#entries.keys()];
  }

  get(name: string): GgufTensorEntry | undefined {
    return this.#entries.get(name);
  }

  /** The entry's tensor as runtime `dtype` (its bytes as they are): in place on host-memory devices, else copied in stream order. */
  tensor<D extends DType>(entry: GgufTensorEntry, dtype: D): Tensor<D> {
    const m = this.#mapped.get(entry.file);
    if (!m) throw new Error(`${entry.file}: ${entry.name}: the checkpoint was closed`);
    return m.tensor(entry.fileOffset, dtype, entry.shape);
  }

  /** Drops the file handles; tensors already made keep what they need mapped. */
  close(): void {
    for (const m of this.#mapped.values()) m.close();
    this.#mapped.clear();
  }
}

/** Merges the tensors of a split set, checking the split keys of every part. */
function collectTensors(headers: GgufHeader[]): Map<string, GgufTensorEntry> {
  const entries = new Map<string, GgufTensorEntry>();
  const split = headers.length > 1;
  let declaredTotal: number | undefined;
  headers.forEach((h, i) => {
    const meta = new GgufMetadata(h.metadata, h.file);
    if (split || meta.has('split.count')) {
      const no = meta.uint('split.no');
      const count = meta.uint('split.count', 1);
      if (no !== i) throw new Error(`${h.file}: split.no is ${no}, expected ${i} from the file name`);
      if (count !== headers.length) throw new Error(`${h.file}: split.count is ${count}, but the set has ${headers.length} files`);
      const total = meta.uint('split.tensors.count');
      if (declaredTotal !== undefined && total !== declaredTotal)
        throw new Error(`${h.file}: split.tensors.count is ${total}, the first split says ${declaredTotal}`);
      declaredTotal = total;
    }
    for (const t of h.tensors) {
      const previous = entries.get(t.name);
      if (previous) throw new Error(`${h.file}: tensor ${t.name}: also stored in ${previous.file}`);
      entries.set(t.name, { ...t, file: h.file });
    }
  });
  if (declaredTotal !== undefined && declaredTotal !== entries.size)
    throw new Error(`${headers[0].file}: split.tensors.count is ${declaredTotal}, but the files hold ${entries.size} tensors`);
  return entries;
}
