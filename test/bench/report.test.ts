// `bench report` on stored results: each kind of result file gives its charts (valid SVG), result
// files from GPU runs with the same schema render too, unreadable or unknown files are skipped, and
// the batched-decode window counts only the steps in which every sequence decodes.
import { describe, expect, it } from 'vitest';
import { batchWindow } from '../../bench/e2e-batched.js';
import { renderCharts } from '../../bench/report.js';
import type { ResultFile } from '../../bench/report-charts.js';
import { checkXml } from './xml.js';

const info = { date: '2026-11-25T19:42:35.432Z', commit: 'abc1234', cpu: 'AMD EPYC', cores: 2 };

const fixtures: Record<string, ResultFile> = {
  'kernels-cuda0-qwen3-8b.json': {
    ...info,
    bench: 'kernels',
    device: 'NVIDIA H100 80GB HBM3 (cuda:0)',
    ceiling: { name: 'device-to-device copy (read + write)', gbps: 2900 },
    shape: { name: 'Qwen3-8B' },
    rows: [
      { op: 'matmul q_proj bf16', shape: 'M=1 N=4096 K=4096', us: 14.2, 'GB/s': 2363, 'GFLOP/s': 2363, '% ceiling': 81.5 },
      { op: 'matmul q_proj bf16', shape: 'M=512 N=4096 K=4096', us: 40, 'GB/s': 1000, 'GFLOP/s': 430000, '% ceiling': '' },
      { op: 'attention decode bf16 cache', shape: 'ctx=4096 heads=32/8 d=128', us: 8, 'GB/s': 2100, 'GFLOP/s': '', '% ceiling': 72.4 },
      { op: 'sample top-k 50, top-p 0.9', shape: 'rows=1 vocab=151936', us: 30, 'GB/s': '', 'GFLOP/s': '', '% ceiling': '' },
    ],
  },
  'torch-baseline.json': {
    ...info,
    bench: 'torch baseline',
    device: 'NVIDIA H100 80GB HBM3 (torch 2.5.1)',
    rows: [
      { op: 'torch matmul bf16 q_proj', shape: '8b M=1 N=4096 K=4096', us: 15.6, 'GB/s': 2150, 'TFLOP/s': 0.002 },
      { op: 'torch sdpa decode bf16', shape: '8b ctx=4096 heads=32', us: 12, 'GB/s': 1400, 'TFLOP/s': '' },
      { op: 'torch matmul bf16 lm_head', shape: '0.6b M=1 N=151936 K=1024', us: 120, 'GB/s': 2500, 'TFLOP/s': 0.002 },
    ],
  },
  'e2e-0.6b.json': {
    ...info,
    bench: 'e2e',
    device: 'cpu',
    shape: { name: 'Qwen3-0.6B' },
    threads: 2,
    reps: 3,
    promptTokens: 512,
    decodeTokens: 32,
    rows: [
      { engine: 'Paralon (cpu, bf16 weights, bf16 KV)', 'prefill tok/s': 115.4, 'decode tok/s': 12.86 },
      { engine: 'llama.cpp (F16 GGUF, F16 KV)', 'prefill tok/s': 55.8, 'decode tok/s': 12.86 },
      { engine: 'Paralon / llama.cpp F16', 'prefill tok/s': 2.07, 'decode tok/s': 1 },
    ],
    batched: {
      promptTokens: 128,
      decodeTokens: 32,
      rows: [
        { batch: 1, 'Paralon tok/s': 12, 'llama.cpp F16 tok/s': 12.5, 'Paralon / llama.cpp F16': 0.96, 'Paralon vs its B=1': 1 },
        { batch: 4, 'Paralon tok/s': 30, 'llama.cpp F16 tok/s': 25, 'Paralon / llama.cpp F16': 1.2, 'Paralon vs its B=1': 2.5 },
      ],
    },
  },
  'server-cuda0.json': {
    ...info,
    bench: 'server',
    device: 'NVIDIA H100 80GB HBM3 (cuda:0)',
    options: { maxTokens: 32, model: null },
    rows: [1, 4, 16, 64].map((c) => ({ concurrency: c, requests: 2 * c, errors: 0, 'req/s': c, 'output tok/s': 30 * c, 'TTFT p50 ms': 5, 'TTFT p99 ms': 9, 'ITL p50 ms': 2, 'ITL p99 ms': NaN })),
  },
  'decode-steps-cuda0.json': {
    ...info,
    bench: 'decode steps',
    device: 'cuda:0',
    rows: [1, 8].map((b) => ({ model: 'Qwen3-0.6B bf16', batch: b, context: '512+64', 'graph tok/s': 900 * b, 'eager tok/s': 400 * b, 'graph / eager': 2.25, 'steps/s (graph)': 900, '% roofline (steps/s)': 37.5, 'graph vs eager logits': 1e-6 })),
  },
  'gpu-check-ops-cuda0.json': { ...info, bench: 'gpu-check ops', device: 'NVIDIA H100', rows: [{ op: 'matmul', status: 'pass' }, { op: 'attention', status: 'FAIL (tolerance 0.01)' }] },
};

const read = (f: string) => fixtures[f] ?? null;

describe('bench report', () => {
  it('charts every kind of result, GPU files included, and summarises gpu-check', () => {
    const { charts, summaries } = renderCharts([...Object.keys(fixtures), 'missing.json'], read);
    expect(charts.map((c) => c.file)).toEqual([
      'kernels-cuda0-qwen3-8b-ceiling.svg',
      'kernels-cuda0-qwen3-8b-gflops.svg',
      'decode-steps-cuda0.svg',
      'e2e-0.6b.svg',
      'e2e-0.6b-batched.svg',
      'server-cuda0-throughput.svg',
      'server-cuda0-latency.svg',
      'torch-baseline-vs-paralon.svg',
    ]);
    for (const c of charts) {
      expect(checkXml(c.svg)[0]).toBe('svg');
      expect(c.svg).not.toMatch(/NaN|Infinity|undefined/);
    }
    expect(summaries).toEqual(['- `gpu-check-ops-cuda0.json` (NVIDIA H100, 2026-11-25, commit abc1234): 2 op cases, 1 failed.']);
    const byFile = Object.fromEntries(charts.map((c) => [c.file, c.svg]));
    // 8b rows matched to the 8b kernels file: 15.6 / 14.2 and 12 / 8; the 0.6b row has no kernels file.
    expect(byFile['torch-baseline-vs-paralon.svg']).toContain('>1.10×<');
    expect(byFile['torch-baseline-vs-paralon.svg']).toContain('>1.50×<');
    expect(byFile['torch-baseline-vs-paralon.svg']).not.toContain('lm_head');
    expect(byFile['e2e-0.6b-batched.svg']).toContain('Paralon ÷ llama.cpp F16: 1.20×');
    expect(byFile['kernels-cuda0-qwen3-8b-ceiling.svg']).toContain('81.5 %');
    expect(byFile['decode-steps-cuda0.svg']).toContain('37.5 % of roofline');
  });

  it('skips what it cannot read, and draws nothing from rows it does not know', () => {
    const { charts } = renderCharts(['e2e-8b.json', 'kernels-cpu-x.json'], (f) => (f === 'kernels-cpu-x.json' ? { ...info, bench: 'kernels', device: 'cpu', rows: [{ op: 'x' }] } : null));
    expect(charts).toEqual([]);
  });

  it('renders the same bytes twice', () => {
    const a = renderCharts(Object.keys(fixtures), read).charts.map((c) => c.svg);
    const b = renderCharts(Object.keys(fixtures), read).charts.map((c) => c.svg);
    expect(a).toEqual(b);
  });
});

describe('batched decode window', () => {
  it('is the batch-1 figure at B = 1', () => {
    const w = batchWindow(0, 100, [[1000, 1100, 1200, 1300, 1400]]);
    expect(w.decodeTokPerS).toBeCloseTo(4 / 0.4, 9);
    expect(w.prefillTokPerS).toBeCloseTo(100, 9);
    expect(w.windowTokens).toBe(4);
  });

  it('counts only the steps in which every sequence decodes', () => {
    // Lockstep steps every 100 ms (tokens of one step arrive within 1 ms); sequence 0 starts decoding
    // two steps before sequence 1 (whose prompt was prefilled later) and finishes two steps earlier.
    const steps = (from: number, n: number, jitter: number) => Array.from({ length: n }, (_, i) => 1000 + 100 * (from + i) + jitter);
    const s0 = steps(0, 6, 0); // steps 0…5
    const s1 = steps(2, 6, 0.5); // steps 2…7
    const w = batchWindow(0, 10, [s0, s1]);
    // Window: step 2 (s1's first token) to step 5 (s0's last): 3 steps × 2 sequences.
    expect(w.windowTokens).toBe(6);
    expect(w.windowSeconds).toBeCloseTo(0.3 - 0.0005, 9);
    expect(w.decodeTokPerS).toBeCloseTo(6 / 0.2995, 6);
  });

  it('refuses a run in which the sequences never all decode at once', () => {
    expect(() => batchWindow(0, 10, [[1000, 1100], [1200, 1300]])).toThrow(/--decode-tokens/);
  });
});
