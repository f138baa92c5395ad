// safetensors checkpoints, single-file (model.safetensors) or sharded (model-0000N-of-0000M.safetensors
// + model.safetensors.index.json). Files are memory-mapped by the addon; only the JSON headers are
// copied into the JS heap. Every header entry is validated (dtype, shape, byte range inside the file)
// before a tensor can be made from it, and every error names the file and the tensor.
//
// File layout: u64 little-endian N, then N bytes of JSON {name: {dtype, shape, data_offsets: [b, e]},
// "__metadata__": {...}}, then the data; offsets are relative to the end of the header.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Device, MappedFile, Tensor } from '../runtime/index.js';
import type { WeightDType } from './config.js';
import type { Checkpoint, TensorEntry } from './weights.js';

export type { TensorEntry };

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** safetensors dtype names of the dtypes Paralon reads. */
const DTYPES: Record<string, WeightDType> = { BF16: 'bf16', F16: 'f16', F32: 'f32' };
const DTYPE_BYTES: Record<WeightDType, number> = { bf16: 2, f16: 2, f32: 4 };
/** A header larger than this is not a real checkpoint's (the largest are a few MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** The open files of a checkpoint and the index of their tensors. */
export class SafetensorsCheckpoint implements Checkpoint {
  readonly dir: string;
  /** Base names of the files, in shard order. */
  readonly files: string[];
  readonly #mapped: Map<string, MappedFile>;
  readonly #entries: Map<string, TensorEntry>;

  private constructor(dir: string, mapped: Map<string, MappedFile>, entries: Map<string, TensorEntry>) {
    this.dir = dir;
    this.files = [...mapped.keys()];
    this.#mapped = mapped;
    this.#entries = entries;
  }

  /**
   * Maps the checkpoint's files in `dir` and reads their headers. Fails on a missing shard, a header
   * that does not parse, an entry whose bytes do not fit its dtype and shape or run past the end of the
   * file, a tensor listed twice, or an index that disagrees with the shards.
   */
  static open(device: Device, dir: string): SafetensorsCheckpoint {
    const indexPath = path.join(dir, INDEX_FILE);
    const singlePath = path.join(dir, SINGLE_FILE);
    let weightMap: Map<string, string> | undefined;
    let fileNames: string[];
    if (existsSync(indexPath)) {
      weightMap = readIndex(indexPath);
      fileNames = [...new Set(weightMap.values())].sort();
    } else if (existsSync(singlePath)) {
      fileNames = [SINGLE_FILE];
    } else {
      throw new Error(`${dir}: no ${SINGLE_FILE} or ${INDEX_FILE} (not a safetensors checkpoint directory)`);
    }

    const mapped = new Map<string, MappedFile>();
    const entries = new Map<string, TensorEntry>();
    try {
      for (const name of fileNames) {
        const file = path.join(dir, name);
        if (!existsSync(file)) {
          const example = weightMap ? [...weightMap].find(([, f]) => f === name)?.[0] : undefined;
          throw new Error(`${name}: missing file (${INDEX_FILE} maps tensors to it, e.g. ${example})`);
        }
        const m = device.mapFile(file);
        mapped.set(name, m);
        for (const entry of readHeader(m, name)) {
          const previous = entries.get(entry.name);
          if (previous) throw new Error(`${name}: ${entry.name}: also stored in ${previous.file}`);
          entries.set(entry.name, entry);
        }
      }
      if (weightMap) {
        for (const [tensor, file] of weightMap) {
          const entry = entries.get(tensor);
          if (!entry) throw new Error(`${file}: missing tensor ${tensor} (listed in ${INDEX_FILE})`);
          if (entry.file !== file) throw new Error(`${entry.file}: ${tensor}: ${INDEX_FILE} says it is in ${file}`);
        }
        for (const entry of entries.values())
          if (!weightMap.has(entry.name)) throw new Error(`${entry.file}: ${entry.name}: not listed in ${INDEX_FILE}`);
      }
    } catch (e) {
      for (const m of mapped.values()) m.close();
      throw e;
    }
    return new SafetensorsCheckpoint(dir, mapped, entries);
  }

  get names(): string[] {
    return [...this.#entries.keys()];
  }

  get(name: string): TensorEntry | undefined {
    return this.#entries.get(name);
  }

  /** Total bytes of tensor data. */
  get totalBytes(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += e.byteLength;
    return n;
  }

  /** The entry's tensor on the mapping's device: in place on host-memory devices, else copied in stream order. */
  tensor(entry: TensorEntry): Tensor {
    const m = this.#mapped.get(entry.file);
    if (!m) throw new Error(`${entry.file}: ${entry.name}: the checkpoint was closed`);
    return m.tensor(entry.byteOffset, entry.dtype, entry.shape);
  }

  /** Drops the file handles; tensors already made keep what they need mapped. */
  close(): void {
    for (const m of this.#mapped.values()) m.close();
    this.#mapped.clear();
  }
}

function readIndex(indexPath: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${INDEX_FILE}: not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap))
    throw new Error(`${INDEX_FILE}: weight_map must be an object of tensor name → file name`);
  const out = new Map<string, string>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || path.basename(file) !== file || !file.endsWith('.safetensors'))
      throw new Error(`${INDEX_FILE}: ${tensor}: "${String(file)}" is not a .safetensors file name in the same directory`);
    out.set(tensor, file);
  }
  if (out.size === 0) throw new Error(`${INDEX_FILE}: weight_map is empty`);
  return out;
}

/** Parses and validates one file's header; entries come back with absolute byte offsets. */
function readHeader(m: MappedFile, file: string): TensorEntry[] {
  if (m.size < 8) throw new Error(`${file}: ${m.size} bytes is too short for a safetensors header: truncated?`);
  const lengthBytes = m.bytes(0, 8);
  const headerLength = Number(new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES) throw new Error(`${file}: header length ${headerLength} is implausible (not a safetensors file?)`);
  if (8 + headerLength > m.size)
    throw new Error(`${file}: the ${headerLength}-byte header runs past the end of the file (size ${m.size}): truncated?`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(m.bytes(8, headerLength)));
  } catch (e) {
    throw new Error(`${file}: the header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new Error(`${file}: the header must be a JSON object`);

  const dataStart = 8 + headerLength;
  const dataSize = m.size - dataStart;
  const entries: TensorEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const where = `${file}: ${name}`;
    const { dtype: dtypeName, shape, data_offsets: offsets } = (raw ?? {}) as Record<string, unknown>;
    const dtype = typeof dtypeName === 'string' ? DTYPES[dtypeName] : undefined;
    if (!dtype) throw new Error(`${where}: dtype ${JSON.stringify(dtypeName)} is not supported (BF16, F16 or F32)`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new Error(`${where}: shape ${JSON.stringify(shape)} is not a list of sizes`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[1] < offsets[0])
      throw new Error(`${where}: data_offsets ${JSON.stringify(offsets)} is not a [begin, end] byte range`);
    const [begin, end] = offsets as number[];
    const byteLength = shape.reduce((a: number, b: number) => a * b, 1) * DTYPE_BYTES[dtype];
    if (end - begin !== byteLength)
      throw new Error(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtypeName}[${shape.join(', ')}] needs ${byteLength}`);
    if (end > dataSize)
      throw new Error(`${where}: data runs past the end of the file (ends at byte ${dataStart + end}, file size ${m.size}): truncated?`);
    entries.push({ name, file, dtype, shape: shape as number[], byteOffset: dataStart + begin, byteLength });
  }
  return entries;
}
