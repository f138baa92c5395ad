// Writes safetensors files, single or sharded the way Hugging Face does (model-0000N-of-0000M.safetensors
// + model.safetensors.index.json). Tensor data may be produced lazily, one tensor at a time, so large
// random checkpoints are written without holding them in memory.
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { INDEX_FILE, SINGLE_FILE } from './safetensors.js';

/** safetensors dtype names; the reader accepts BF16, F16 and F32, the others exist to write bad files in tests. */
export type SafetensorsDType = 'BF16' | 'F16' | 'F32' | 'F64' | 'I32' | 'I64' | 'U8';

const ELEMENT_BYTES: Record<SafetensorsDType, number> = { BF16: 2, F16: 2, F32: 4, F64: 8, I32: 4, I64: 8, U8: 1 };

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** Raw little-endian elements (e.g. Float32Array, or Uint16Array of bf16 bits), or a function making them. */
  data: ArrayBufferView | (() => ArrayBufferView);
}

function byteLengthOf(t: TensorToWrite): number {
  return t.shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[t.dtype];
}

/** Writes one safetensors file; `metadata` goes to "__metadata__" (string values only, as the format says). */
export function writeSafetensors(file: string, tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name in header) throw new Error(`writeSafetensors: ${t.name} is listed twice`);
    const bytes = byteLengthOf(t);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // The data starts 8-byte aligned: the header is padded with spaces, as the reference writer does.
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));

  const fd = openSync(file, 'w');
  try {
    writeSync(fd, length);
    writeSync(fd, json);
    for (const t of tensors) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      if (data.byteLength !== byteLengthOf(t))
        throw new Error(`writeSafetensors: ${t.name}: ${data.byteLength} bytes of data for ${t.dtype}[${t.shape.join(', ')}] (${byteLengthOf(t)} bytes)`);
      writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

/**
 * Writes a checkpoint's tensors into `dir`: model.safetensors when numShards is 1, else numShards files
 * of about equal size (tensors kept whole and in order) plus model.safetensors.index.json.
 * Returns the file names written.
 */
export function writeCheckpointTensors(dir: string, tensors: readonly TensorToWrite[], numShards = 1): string[] {
  if (!Number.isInteger(numShards) || numShards < 1 || numShards > tensors.length)
    throw new Error(`writeCheckpointTensors: numShards must be an integer in [1, ${tensors.length}]`);
  const metadata = { format: 'pt' };
  if (numShards === 1) {
    rmSync(path.join(dir, INDEX_FILE), { force: true }); // a stale index would shadow the new file
    writeSafetensors(path.join(dir, SINGLE_FILE), tensors, metadata);
    return [SINGLE_FILE];
  }
  const total = tensors.reduce((a, t) => a + byteLengthOf(t), 0);
  const shards: TensorToWrite[][] = Array.from({ length: numShards }, () => []);
  let s = 0;
  let written = 0;
  tensors.forEach((t, i) => {
    // Move to the next shard once this one holds its share of the bytes, or when every later shard
    // needs one of the tensors left.
    const tensorsLeft = tensors.length - i;
    const shardsAfter = numShards - 1 - s;
    if (shards[s].length > 0 && (written >= ((s + 1) * total) / numShards || tensorsLeft <= shardsAfter)) s++;
    shards[s].push(t);
    written += byteLengthOf(t);
  });
  const pad = (n: number) => String(n).padStart(5, '0');
  const names = shards.map((_, s) => `model-${pad(s + 1)}-of-${pad(numShards)}.safetensors`);
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, s) => {
    writeSafetensors(path.join(dir, names[s]), shard, metadata);
    for (const t of shard) weightMap[t.name] = names[s];
  });
  writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
  return names;
}
