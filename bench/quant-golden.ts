// `npx tsx bench/quant-golden.ts [--lib path/to/libggml-base.so]`: regenerates
// test/quant/fixtures/ggml-golden.json, the golden vectors of the quantization tests, from llama.cpp's
// own reference quantizers and dequantizers (node-llama-cpp 3.21.1's prebuilt libggml-base.so, called
// through bench/peers/ggml-quant-shim.c compiled in a temp dir). The fixture holds the inputs
// (test/quant/golden-cases.ts), ggml's blocks and ggml's dequantized values, all base64.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { quantDTypes } from '../src/runtime/dtype.js';
import { goldenInputs } from '../test/quant/golden-cases.js';
import { libggmlBase } from './peers/ggml-quantizer.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, '..', 'test', 'quant', 'fixtures', 'ggml-golden.json');

const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

const { values: args } = parseArgs({ options: { lib: { type: 'string' } } });
const lib = args.lib ?? libggmlBase();
const dir = mkdtempSync(path.join(tmpdir(), 'paralon-quant-golden-'));
try {
  const shim = path.join(dir, 'shim');
  execFileSync('cc', ['-O1', '-o', shim, path.join(here, 'peers', 'ggml-quant-shim.c'), '-ldl'], { stdio: 'inherit' });
  const inputs = goldenInputs();
  const all = new Float32Array(inputs.length * 256);
  inputs.forEach((c, i) => all.set(c.values, i * 256));
  writeFileSync(path.join(dir, 'in.f32'), all);
  execFileSync(shim, [lib, path.join(dir, 'in.f32'), dir], { stdio: 'inherit' });
  const formats = Object.fromEntries(
    quantDTypes.map((d) => [d, { blocks: b64(readFileSync(path.join(dir, `${d}.q`))), dequantized: b64(readFileSync(path.join(dir, `${d}.f32`))) }]),
  );
  const out = {
    source: 'llama.cpp quantize_row_*_ref / dequantize_row_* from node-llama-cpp 3.21.1 libggml-base.so (bench/quant-golden.ts)',
    rows: inputs.map((c) => c.name),
    values: b64(all),
    formats,
  };
  writeFileSync(fixture, JSON.stringify(out, null, 1) + '\n');
  console.log(`wrote ${fixture}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
