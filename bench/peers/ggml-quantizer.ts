// llama.cpp's own reference quantizers (node-llama-cpp 3.21.1's libggml-base.so through
// bench/peers/ggml-quant-shim.c) as a `quantize` for exportQwen3Gguf: the bench's quantized GGUF files
// are then made by llama.cpp's code, so both engines read bytes llama.cpp wrote. Paralon's own
// quantizers (src/quant) produce the same bytes (test/quant's golden vectors; bench/crosscheck-quant.ts
// checks it again on fresh blocks) but run in TypeScript at about 0.05-0.2 M values/s for the K types.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { QuantDType } from '../../src/runtime/dtype.js';
import { ensureNodeLlamaCpp, peersDir } from './llamacpp.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export function libggmlBase(): string {
  ensureNodeLlamaCpp();
  return path.join(peersDir, 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64', 'libggml-base.so');
}

export interface GgmlShim {
  /** The shim's binary (see ggml-quant-shim.c for its two forms). */
  binary: string;
  lib: string;
  quantize(values: Float32Array, dtype: QuantDType): Uint8Array;
  dispose(): void;
}

/** Compiles the shim into a temp dir; dispose() removes it. */
export function ggmlShim(lib = libggmlBase()): GgmlShim {
  const dir = mkdtempSync(path.join(tmpdir(), 'paralon-ggml-shim-'));
  const binary = path.join(dir, 'shim');
  execFileSync('cc', ['-O1', '-o', binary, path.join(here, 'ggml-quant-shim.c'), '-ldl'], { stdio: 'inherit' });
  return {
    binary,
    lib,
    quantize(values, dtype) {
      const input = path.join(dir, 'in.f32');
      const output = path.join(dir, 'out.q');
      writeChunked(input, values);
      execFileSync(binary, [lib, '--quantize', dtype, input, output], { stdio: 'inherit' });
      const q = readFileSync(output);
      return new Uint8Array(q.buffer, q.byteOffset, q.byteLength);
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Writes `values` in pieces: one write call takes at most 2 GiB (an 8B model's 151,936 × 4096 f32 embedding is 2.5 GB). */
function writeChunked(file: string, values: Float32Array): void {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const fd = openSync(file, 'w');
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, Math.min(1 << 30, bytes.length - at));
  } finally {
    closeSync(fd);
  }
}
