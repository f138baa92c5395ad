// Quantizer throughput, native (native/cpu/quantize.cc, all cores) vs the TypeScript reference, in
// M values/s on weights-like rows (normal × 0.02), interleaved per repetition (median of 3).
// `npx tsx bench/dev/quantize-speed.ts [--save]` (--save: bench/results/quantize-speed.{md,json}).
import os from 'node:os';
import { quantize, quantizeReference } from '../../src/quant/index.js';
import { quantDTypes } from '../../src/runtime/dtype.js';
import { checkQuiet, runInfo, saveResults, type Row } from '../results.js';

const nativeValues = 1024 * 4096;  // one 4096×1024 matrix
const referenceValues = 64 * 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (f: () => void, n: number) => {
  const t = performance.now();
  f();
  return n / ((performance.now() - t) * 1e3);  // M values/s
};

await checkQuiet();
const load = os.loadavg().map((x) => x.toFixed(2)).join(', ');
const x = Float32Array.from({ length: nativeValues }, (_, i) => 0.02 * Math.sin(i * 12.9898) * Math.cos(i * 0.731));
const rows: Row[] = [];
for (const dtype of quantDTypes) {
  const ts: number[] = [];
  const native: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    ts.push(rate(() => quantizeReference(x.subarray(0, referenceValues), dtype), referenceValues));
    native.push(rate(() => quantize(x, dtype), nativeValues));
  }
  rows.push({ dtype, 'TypeScript M values/s': median(ts), 'native M values/s': median(native), 'native/TS': median(native) / median(ts) });
  console.log(rows.at(-1));
}
const loadEnd = os.loadavg().map((x) => x.toFixed(2)).join(', ');
console.log(`load average at start ${load}, at end ${loadEnd}; native on ${os.availableParallelism()} threads`);
if (process.argv.includes('--save')) {
  const note = `Load average (1/5/15 min) at start ${load}, at end ${loadEnd}. Native uses all ${os.availableParallelism()} hardware threads; TypeScript one. Rerun: \`npx tsx bench/dev/quantize-speed.ts --save\`.\n`;
  console.log(saveResults('quantize-speed', runInfo('quantize speed', 'cpu'), { loadStart: load, loadEnd }, rows, note));
}
