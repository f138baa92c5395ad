// `npx tsx bench/cpu-decode-step.ts [--batches 1,16] [--steps 16] [--prompt 8] [--reps 3] [--unfused-only] [--out FILE.json]`
// CPU decode steps of a Qwen3-0.6B-shaped random bf16 checkpoint through CausalLM.forward + greedy sampling,
// with the MLP's gate/up matmul carrying the SwiGLU epilogue ("fused", where the addon has it) and as split
// matmul + swiglu ("unfused", the model's fallback, forced by answering supports('matmulSwiglu') with
// false), the variants interleaved over repetitions in one process. Reports wall-clock tok/s and the
// process's CPU-seconds per step (steadier than wall time on a shared machine). To compare addons, run
// it under each, back to back: PARALON_ADDON=/path/to/old/paralon.node npx tsx bench/cpu-decode-step.ts --unfused-only
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Device, ops, type DType, type OpName } from '../src/runtime/index.js';
import { CausalLM, type SequenceChunk } from '../src/model/step.js';
import { randomCheckpoint } from '../src/model/random-checkpoint.js';
import { shapeSpec } from './checkpoints.js';
import { modelShapes } from './shapes.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const batches = opt('--batches', '1,16').split(',').map(Number);
const steps = Number(opt('--steps', '16'));
const promptTokens = Number(opt('--prompt', '8'));
const reps = Number(opt('--reps', '3'));
const outFile = args.includes('--out') ? opt('--out', '') : undefined;
const shape = modelShapes['0.6b'];

// "unfused": the device says it lacks the epilogue, so swigluMlp takes matmul [gate, up] + swiglu.
const nativeSupports = Device.prototype.supports;
let fuse = true;
Device.prototype.supports = function (op: OpName, dtype?: DType) {
  if (op === 'matmulSwiglu' && !fuse) return false;
  return nativeSupports.call(this, op, dtype);
};
const variants = args.includes('--unfused-only') ? ['unfused'] : ['fused', 'unfused'];

const dir = mkdtempSync(path.join(os.tmpdir(), 'paralon-cpu-step-'));
const device = Device.open('cpu');
const rows: Record<string, string | number>[] = [];
try {
  console.error('writing a Qwen3-0.6B-shaped random bf16 checkpoint…');
  randomCheckpoint({ dir, ...shapeSpec(shape, 'bf16'), eosTokenIds: [shape.vocab - 1] });
  const maxSeqs = Math.max(...batches);
  const models: Record<string, CausalLM> = {};
  for (const v of variants) models[v] = await CausalLM.load(dir, device, { maxSeqs, maxBatchTokens: Math.max(512, maxSeqs), graphs: false });
  const blockSize = 16;
  const blocksPerSeq = Math.ceil((promptTokens + steps + 2) / blockSize);
  for (const B of batches) {
    const results: Record<string, { tokPerS: number[]; cpuMsPerStep: number[] }> = {};
    for (let rep = 0; rep < reps; rep++) {
      for (const v of variants) {
        fuse = v === 'fused';
        const model = models[v];
        const kv = model.createKvCache({ blockSize, numBlocks: B * blocksPerSeq, dtype: 'bf16' });
        const tables = Array.from({ length: B }, (_, s) => Array.from({ length: blocksPerSeq }, (_, j) => s * blocksPerSeq + j));
        for (let s = 0; s < B; s++)
          model.forward([{ tokens: Array.from({ length: promptTokens }, (_, i) => (i * 7919 + s) % shape.vocab), numCached: 0, blockTable: tables[s] }], kv);
        let next = Array.from({ length: B }, (_, s) => s + 1);
        const step = async (t: number) => {
          const batch: SequenceChunk[] = next.map((tok, s) => ({ tokens: [tok], numCached: promptTokens + t, blockTable: tables[s] }));
          const r = await ops.sample(model.forward(batch, kv), batch.map(() => ({ temperature: 0 })));
          next = Array.from(r.tokens);
        };
        await step(0);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for (let t = 1; t <= steps; t++) await step(t);
        const wall = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(c0);
        kv.dispose();
        (results[v] ??= { tokPerS: [], cpuMsPerStep: [] }).tokPerS.push((B * steps) / wall);
        results[v].cpuMsPerStep.push((cpu.user + cpu.system) / 1000 / steps);
        console.error(`B=${B} ${v} rep ${rep}: ${((B * steps) / wall).toFixed(2)} tok/s, ${((cpu.user + cpu.system) / 1000 / steps).toFixed(1)} CPU-ms/step`);
      }
    }
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    for (const v of variants)
      rows.push({ batch: B, variant: v, 'tok/s (median)': median(results[v].tokPerS), 'CPU-ms per step (median)': median(results[v].cpuMsPerStep) });
  }
  for (const m of Object.values(models)) m.dispose();
} finally {
  device.dispose();
  rmSync(dir, { recursive: true, force: true });
}
const info = { date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.cpus().length, addon: process.env.PARALON_ADDON ?? 'build/Release', loadavg: os.loadavg(), promptTokens, steps, reps };
console.log(JSON.stringify({ info, rows }, null, 2));
if (outFile) writeFileSync(outFile, JSON.stringify({ info, rows }, null, 2));
