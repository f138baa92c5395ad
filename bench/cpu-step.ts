// `npm run bench -- cpu-step [--model-shape 0.6b] [--threads N] [--contexts 8,512] [--steps N]
// [--generations N] [--modes eager,graph]`: where one batch-1 decode step's time goes on a device (the CPU by default),
// measured with timers around the library's own calls, one process, A/B interleaved:
//
// - step: what the engine does per token — forward (queue the ops), greedy sample, await the token.
// - queued back to back: `steps` forwards queued without waiting, then one synchronize: the device's
//   time per step with no host round trip (the kernels plus the pool's per-op barriers).
// - forward() call: the JavaScript side of queueing one step (metadata, argument checks, N-API).
// - sample: greedy sampling of a step's logits alone, with and without 20 top logprobs.
// - round trip: an empty synchronize (stream wake-up + completion back on the event loop).
// Each for the decode step queued op by op (eager) and replayed as a graph, after a short and after a
// long prompt. Then `generations` decodes after a long prompt, one after another as an engine would
// place them in a large pool (each on blocks the previous ones never touched), to show whether
// decode slows from one generation to the next.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Device, ops, type Tensor } from '../src/runtime/index.js';
import { CausalLM, type SequenceChunk } from '../src/model/step.js';
import type { KvCachePool } from '../src/kv/pool.js';
import { cachedCheckpoint, shapeSpec } from './checkpoints.js';
import { markdownTable, runInfo, saveResults, type Row } from './results.js';
import { modelShapes } from './shapes.js';

const BLOCK = 16;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A prompt of `n` ordinary token ids (contents do not matter for speed). */
const prompt = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104_729) % 150_000);

interface Decoder {
  model: CausalLM;
  kv: KvCachePool;
  table: number[];
  pos: number;
  next: number;
}

/** Prefills `promptTokens` tokens into the blocks `table` and returns a decoder positioned after them. */
async function start(model: CausalLM, kv: KvCachePool, table: number[], promptTokens: number, seed: number): Promise<Decoder> {
  const logits = model.forward([{ tokens: prompt(promptTokens, seed), numCached: 0, blockTable: table }], kv);
  const r = await ops.sample(logits, [{ temperature: 0 }]);
  return { model, kv, table, pos: promptTokens, next: r.tokens[0] };
}

const chunk = (d: Decoder): SequenceChunk[] => [{ tokens: [d.next], numCached: d.pos, blockTable: d.table }];

/** One engine-like step: forward, greedy sample, await the token. Returns [step ms, forward() call ms]. */
async function step(d: Decoder): Promise<[number, number]> {
  const t0 = performance.now();
  const logits = d.model.forward(chunk(d), d.kv);
  const t1 = performance.now();
  const r = await ops.sample(logits, [{ temperature: 0 }]);
  d.next = r.tokens[0];
  d.pos++;
  return [performance.now() - t0, t1 - t0];
}

/** `n` forwards queued back to back, then one synchronize: device ms per step. */
async function queued(d: Decoder, n: number): Promise<number> {
  await d.model.device.synchronize();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    d.model.forward(chunk(d), d.kv);
    d.pos++;
  }
  await d.model.device.synchronize();
  return (performance.now() - t0) / n;
}

async function sampleMs(device: Device, logits: Tensor<'f32'>, numTop: number, n: number): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    await device.synchronize();
    const t0 = performance.now();
    await ops.sample(logits, [{ temperature: 0 }], { numTop });
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

async function roundTripMs(device: Device, n: number): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await device.synchronize();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

export async function benchCpuStep(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'model-shape': { type: 'string', default: '0.6b' },
      device: { type: 'string', default: 'cpu' },
      threads: { type: 'string', default: String(Math.min(2, os.cpus().length)) },
      contexts: { type: 'string', default: '8,512' },
      steps: { type: 'string', default: '16' },
      generations: { type: 'string', default: '4' },
      'generation-tokens': { type: 'string', default: '16' },
      modes: { type: 'string', default: 'eager,graph' },
    },
  });
  const shape = modelShapes[values['model-shape']!];
  if (!shape) throw new Error(`--model-shape: one of ${Object.keys(modelShapes).join(', ')}`);
  const threads = Number(values.threads);
  const steps = Number(values.steps);
  const generations = Number(values.generations);
  const genTokens = Number(values['generation-tokens']);
  const contexts = values.contexts!.split(',').map(Number);
  for (const [k, v] of Object.entries({ threads, steps, generations, genTokens }))
    if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
  if (contexts.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('--contexts: positive integers separated by commas');

  const dir = cachedCheckpoint(`e2e-qwen3-${values['model-shape']}-bf16`, shapeSpec(shape, 'bf16'));
  const deviceName = values.device!;
  const device = deviceName === 'cpu' ? Device.open('cpu', { threads }) : Device.open(deviceName as 'cuda');
  const load = (graphs: boolean) => CausalLM.load(dir, device, { maxSeqs: 1, maxBatchTokens: 512, graphs });
  const wanted = values.modes!.split(',');
  const modes: [string, CausalLM][] = [];
  if (wanted.includes('eager')) modes.push(['eager', await load(false)]);
  if (wanted.includes('graph') && device.supportsGraphs) modes.push(['graph', await load(true)]);
  if (modes.length === 0) throw new Error('--modes: eager, graph (where the device records graphs) or both');
  const maxContext = Math.max(...contexts) + 2 * steps + 2;
  const blocksPerSeq = Math.ceil(maxContext / BLOCK);
  const rows: Row[] = [];
  const rt = await roundTripMs(device, 50);
  console.error(`${device.description}; empty synchronize round trip ${rt.toFixed(3)} ms`);
  for (const context of contexts) {
    for (const [mode, model] of modes) {
      const kv = model.createKvCache({ blockSize: BLOCK, numBlocks: blocksPerSeq, dtype: 'bf16' });
      const table = Array.from({ length: blocksPerSeq }, (_, j) => j);
      const d = await start(model, kv, table, context, 1);
      await step(d); // warm-up (records the graph)
      const timed: [number, number][] = [];
      for (let i = 0; i < steps; i++) timed.push(await step(d));
      const back = await queued(d, steps);
      const logits = model.forward(chunk(d), kv);
      const greedy = await sampleMs(device, logits, 0, 10);
      const top20 = await sampleMs(device, logits, 20, 10);
      logits.dispose();
      kv.dispose();
      const stepMs = median(timed.map((t) => t[0]));
      const row: Row = {
        context, mode, 'step ms': stepMs, 'tok/s': 1000 / stepMs, 'queued back to back ms': back,
        'forward() call ms': median(timed.map((t) => t[1])), 'sample ms (greedy)': greedy, 'sample ms (20 top logprobs)': top20,
        'round trip ms': rt, 'step − (queued + sample) ms': stepMs - back - greedy,
      };
      rows.push(row);
      console.error(`  context ${context}, ${mode}: ${JSON.stringify(row)}`);
    }
  }

  // Generations after a long prompt, each on fresh blocks of one large pool (least recently freed
  // first, as the engine's block manager hands them out).
  const long = Math.max(...contexts);
  const genBlocks = Math.ceil((long + genTokens + 2) / BLOCK);
  const genRows: Row[] = [];
  const [mode, model] = modes[modes.length - 1];
  const kv = model.createKvCache({ blockSize: BLOCK, numBlocks: genBlocks * generations, dtype: 'bf16' });
  for (let g = 0; g < generations; g++) {
    const table = Array.from({ length: genBlocks }, (_, j) => g * genBlocks + j);
    const t0 = performance.now();
    const d = await start(model, kv, table, long, 100 + g);
    const prefillMs = performance.now() - t0;
    const ts: number[] = [];
    for (let i = 0; i < genTokens; i++) ts.push((await step(d))[0]);
    genRows.push({ generation: g + 1, mode, prompt: long, 'prefill ms': prefillMs, 'decode step ms (median)': median(ts), 'decode tok/s': 1000 / median(ts) });
    console.error(`  generation ${g + 1}: ${JSON.stringify(genRows[genRows.length - 1])}`);
  }
  kv.dispose();
  for (const [, m] of modes) m.dispose();

  const load1 = os.loadavg().map((x) => x.toFixed(2)).join(', ');
  const info = runInfo('cpu-step', device.description);
  device.dispose();
  const notes =
    `Batch-1 decode of a ${shape.name}-shaped random bf16 checkpoint, bf16 KV cache, ${steps} timed steps per row (medians); ` +
    `load average at the end: ${load1}. "queued back to back" is the device's own time per step (no host round trip); ` +
    '"step − (queued + sample)" is what the host adds per step (forward() call, wake-ups, completion, await).';
  const appendix = `\n## Generations one after another (fresh blocks each time, ${genTokens} decoded tokens each)\n\n` + markdownTable(genRows);
  const name = `cpu-step-${values['model-shape']}${deviceName === 'cpu' ? '' : '-' + deviceName.replace(':', '')}`;
  for (const p of saveResults(name, info, { threads, steps, loadAverage: load1, generations: genRows }, rows, notes, appendix)) console.error(`wrote ${p}`);
}
