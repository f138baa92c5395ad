// The charts of one stored result file (bench/results/*.json): which charts it gives and their SVG.
// Pure functions of the JSON, so the same results always render to the same bytes. Files from GPU
// runs (kernels-cuda0-*.json, torch-baseline.json) have the same schema and render the same way.
import type { Row } from './results.js';
import { formatValue, groupedBarChart, horizontalBarChart, lineChart, type HBar } from './svg.js';

/** The fields every result file has (bench/results.ts), and its rows. */
export interface ResultFile {
  bench: string;
  date: string;
  commit: string;
  device: string;
  cpu?: string;
  cores?: number;
  rows: Row[];
  [key: string]: unknown;
}

export interface Chart {
  /** File name under bench/results/charts/. */
  file: string;
  title: string;
  /** The result file it was drawn from. */
  source: string;
  svg: string;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function provenance(r: ResultFile): string {
  const machine = r.cpu ? ` · ${r.cpu}${r.cores ? ` (${r.cores} cores)` : ''}` : '';
  return `${r.device}${machine} · ${r.date.slice(0, 10)} · commit ${r.commit}`;
}

const stem = (source: string) => source.replace(/\.json$/, '');

/** kernels-*.json: % of the measured ceiling per row; GFLOP/s of the rows without a ceiling. */
export function kernelCharts(source: string, r: ResultFile): Chart[] {
  const ceiling = r.ceiling as { name?: string; gbps?: number } | undefined;
  const shape = (r.shape as { name?: string } | undefined)?.name ?? '';
  const group = (op: string) => op.replace(/ bf16$/, '');
  const label = (row: Row) => `${String(row.op).replace(/^matmul /, '').replace(/ bf16( cache)?$/, '')} · ${row.shape}`;
  const charts: Chart[] = [];
  const bounded = r.rows.filter((row) => isNum(row['% ceiling']));
  if (bounded.length) {
    const title = `Kernels vs the memory ceiling — ${shape} shapes`;
    const bars: HBar[] = bounded.map((row) => ({
      label: label(row),
      value: row['% ceiling'] as number,
      group: group(String(row.op)),
      valueLabel: `${formatValue(row['% ceiling'] as number)} %${isNum(row['GB/s']) ? `  (${formatValue(row['GB/s'])} GB/s)` : ''}`,
    }));
    charts.push({
      file: `${stem(source)}-ceiling.svg`,
      title,
      source,
      svg: horizontalBarChart({
        title,
        subtitle: [provenance(r), `Ceiling: ${ceiling?.name ?? 'measured bandwidth'}${isNum(ceiling?.gbps) ? ` = ${formatValue(ceiling.gbps)} GB/s` : ''}, measured in the same run.`, 'Bytes counted: weights (matmul), K and V (attention), in + out (rmsnorm). Above 100 %: the data sat in cache, or the ceiling test read low.'],
        xLabel: '% of the measured memory ceiling',
        bars,
        reference: { value: 100, label: '100 %' },
      }),
    });
  }
  const compute = r.rows.filter((row) => !isNum(row['% ceiling']) && isNum(row['GFLOP/s']));
  if (compute.length) {
    const title = `Compute-bound kernels — ${shape} shapes`;
    charts.push({
      file: `${stem(source)}-gflops.svg`,
      title,
      source,
      svg: horizontalBarChart({
        title,
        subtitle: [provenance(r), 'Prefill-sized matmuls (bf16 weights, f32 activations): achieved GFLOP/s; no compute ceiling is measured.'],
        xLabel: 'GFLOP/s',
        bars: compute.map((row) => ({ label: label(row), value: row['GFLOP/s'] as number, group: group(String(row.op)) })),
      }),
    });
  }
  return charts;
}

/** server-*.json: output tok/s and latency percentiles against concurrency. */
export function serverCharts(source: string, r: ResultFile): Chart[] {
  const rows = r.rows.filter((row) => isNum(row.concurrency) && row.concurrency > 0);
  if (!rows.length) return [];
  const opts = r.options as { maxTokens?: number; model?: string | null } | undefined;
  const model = opts?.model ? `the model in ${opts.model.split('/').filter(Boolean).pop()}` : 'the demo model (small random-weight Qwen3, hidden 256, 4 layers)';
  const sub = [
    provenance(r),
    `Streaming chat requests on loopback to ${model}${opts?.maxTokens ? `, ${opts.maxTokens} output tokens each` : ''}; errors: ${rows.reduce((s, row) => s + (Number(row.errors) || 0), 0)}.`,
  ];
  const series = (name: string, col: string) => ({ name, points: rows.filter((row) => isNum(row[col])).map((row) => ({ x: row.concurrency as number, y: row[col] as number })) });
  const t1 = 'Server throughput vs concurrency';
  const t2 = 'Server latency vs concurrency';
  return [
    {
      file: `${stem(source)}-throughput.svg`,
      title: t1,
      source,
      svg: lineChart({ title: t1, subtitle: sub, xLabel: 'concurrent streaming requests', yLabel: 'output tok/s (all requests)', xScale: 'log2', series: [series('output tok/s', 'output tok/s')], labelPoints: true }),
    },
    {
      file: `${stem(source)}-latency.svg`,
      title: t2,
      source,
      svg: lineChart({
        title: t2,
        subtitle: sub,
        xLabel: 'concurrent streaming requests',
        yLabel: 'milliseconds',
        xScale: 'log2',
        series: [series('TTFT p50', 'TTFT p50 ms'), series('TTFT p99', 'TTFT p99 ms'), series('ITL p50', 'ITL p50 ms'), series('ITL p99', 'ITL p99 ms')],
      }),
    },
  ];
}

/** e2e-*.json: Paralon vs llama.cpp prefill and decode at batch 1, and batched decode when present. */
export function e2eCharts(source: string, r: ResultFile): Chart[] {
  const shape = (r.shape as { name?: string } | undefined)?.name ?? '';
  const engines = r.rows.filter((row) => !String(row.engine).includes(' / '));
  const ratios = r.rows.filter((row) => String(row.engine).includes(' / '));
  const charts: Chart[] = [];
  if (engines.length) {
    const title = `End to end, batch 1 — Paralon vs llama.cpp, ${shape}-shaped`;
    const ratioNotes = (col: string) => [ratios.map((row) => `${String(row.engine).replace(/^Paralon \/ /, 'Paralon ÷ ')}: ${formatValue(row[col] as number)}×`)];
    const panel = (name: string, col: string, category: string) => ({
      title: name,
      axisLabel: 'tok/s',
      categories: [category],
      values: engines.map((row) => [isNum(row[col]) ? row[col] : null]),
      notes: ratioNotes(col),
    });
    charts.push({
      file: `${stem(source)}.svg`,
      title,
      source,
      svg: groupedBarChart({
        title,
        subtitle: [provenance(r), `Same random bf16 weights in both engines, ${r.threads ?? '?'} threads each, median of ${r.reps ?? '?'} repetitions.`],
        series: engines.map((row) => String(row.engine)),
        panels: [panel('Prefill', 'prefill tok/s', `${r.promptTokens ?? '?'}-token prompt`), panel('Decode', 'decode tok/s', `${r.decodeTokens ?? '?'} tokens`)],
      }),
    });
  }
  const batched = r.batched as { rows?: Row[]; promptTokens?: number; decodeTokens?: number } | undefined;
  const brows = batched?.rows?.filter((row) => isNum(row.batch)) ?? [];
  if (brows.length) {
    const cols = Object.keys(brows[0]);
    const seriesCols = cols.filter((c) => c.endsWith(' tok/s'));
    const ratioCols = cols.filter((c) => c.includes(' / '));
    const title = `Batched decode — Paralon vs llama.cpp, ${shape}-shaped`;
    const peerOnly = seriesCols.length === 1 ? ' (no peer figures in this run)' : '';
    charts.push({
      file: `${stem(source)}-batched.svg`,
      title,
      source,
      svg: groupedBarChart({
        title,
        subtitle: [
          provenance(r),
          `B generations started together, ${batched?.promptTokens ?? '?'}-token prompts, ${batched?.decodeTokens ?? '?'} tokens each; aggregate tok/s while all B decode${peerOnly}.`,
        ],
        series: seriesCols.map((c) => c.replace(/ tok\/s$/, '')),
        panels: [
          {
            title: 'Aggregate decode',
            axisLabel: 'tok/s (all sequences)',
            categories: brows.map((row) => `B = ${row.batch}`),
            values: seriesCols.map((c) => brows.map((row) => (isNum(row[c]) ? row[c] : null))),
            notes: brows.map((row) => ratioCols.filter((c) => isNum(row[c])).map((c) => `${c.replace(/^Paralon \/ /, 'Paralon ÷ ')}: ${formatValue(row[c] as number)}×`)),
          },
        ],
      }),
    });
  }
  return charts;
}

/** decode-steps-*.json (gpu:check): decode tok/s per batch size, CUDA graph vs op by op, per model shape. */
export function decodeStepCharts(source: string, r: ResultFile): Chart[] {
  const models = [...new Set(r.rows.map((row) => String(row.model)))];
  if (!models.length) return [];
  const title = 'Decode steps — CUDA graph vs op by op';
  return [{
    file: `${stem(source)}.svg`,
    title,
    source,
    svg: groupedBarChart({
      title,
      subtitle: [provenance(r), 'Greedy decode after a prompt per sequence; aggregate tok/s; notes: steps/s as % of the memory roofline (graph).'],
      series: ['graph', 'eager'],
      panels: models.map((m) => {
        const rows = r.rows.filter((row) => row.model === m);
        return {
          title: m,
          axisLabel: 'tok/s (all sequences)',
          categories: rows.map((row) => `B = ${row.batch}`),
          values: ['graph tok/s', 'eager tok/s'].map((c) => rows.map((row) => (isNum(row[c]) ? row[c] : null))),
          notes: rows.map((row) => (isNum(row['% roofline (steps/s)']) ? [`${formatValue(row['% roofline (steps/s)'])} % of roofline`] : [])),
        };
      }),
    }),
  }];
}

/** crosscheck.json: the largest next-token probability difference per prompt against the tolerance. */
export function crosscheckCharts(source: string, r: ResultFile): Chart[] {
  const rows = r.rows.filter((row) => row.check === 'generation' && isNum(row['max Δp top-20']));
  if (!rows.length) return [];
  const tolerance = isNum(r.tolerance) ? r.tolerance : undefined;
  const title = 'Cross-check vs llama.cpp — next-token probabilities';
  return [
    {
      file: `${stem(source)}.svg`,
      title,
      source,
      svg: horizontalBarChart({
        title,
        subtitle: [provenance(r), `Max |p_Paralon − p_llama.cpp| over the top-20 next tokens, f32 weights and KV on both sides; ${r.failures ?? '?'} failures.`],
        xLabel: 'max Δp over the top-20 tokens',
        bars: rows.map((row) => ({ label: `${row.checkpoint ? `${row.checkpoint}: ` : ''}${row.case} (${row.tokens} tokens)`, value: row['max Δp top-20'] as number, valueLabel: String(Number((row['max Δp top-20'] as number).toPrecision(2))) })),
        reference: tolerance !== undefined ? { value: tolerance, label: `tolerance ${tolerance}` } : undefined,
      }),
    },
  ];
}

/** torch-baseline.json with kernels-cuda*.json: Paralon's speed relative to PyTorch on the same shapes. */
export function torchCharts(source: string, torch: ResultFile, kernels: ResultFile[]): Chart[] {
  const bars: HBar[] = [];
  for (const t of torch.rows) {
    const shapeKey = String(t.shape).split(' ')[0]; // '0.6b' or '8b'
    const k = kernels.find((f) => ((f.shape as { name?: string } | undefined)?.name ?? '').toLowerCase() === `qwen3-${shapeKey}`);
    if (!k || !isNum(t.us)) continue;
    const rest = String(t.shape).slice(shapeKey.length + 1);
    const matmul = /^torch matmul bf16 (\w+)$/.exec(String(t.op));
    const ours = matmul
      ? k.rows.find((row) => row.op === `matmul ${matmul[1]} bf16` && row.shape === rest)
      : String(t.op).startsWith('torch sdpa decode')
        ? k.rows.find((row) => String(row.op).startsWith('attention decode') && String(row.shape).startsWith(`${rest.split(' ')[0]} `))
        : undefined;
    if (!ours || !isNum(ours.us)) continue;
    bars.push({ label: `${shapeKey} ${String(t.op).replace(/^torch /, '')} · ${rest}`, value: t.us / ours.us, group: matmul ? 'matmul' : 'attention', valueLabel: `${formatValue(t.us / ours.us)}×` });
  }
  if (!bars.length) return [];
  const title = 'Paralon vs PyTorch on the GPU — same shapes';
  return [
    {
      file: `${stem(source)}-vs-paralon.svg`,
      title,
      source,
      svg: horizontalBarChart({
        title,
        subtitle: [provenance(torch), 'PyTorch time ÷ Paralon time per op (above 1: Paralon is faster). PyTorch: cuBLAS matmul and SDPA, timed with CUDA events.'],
        xLabel: 'speed relative to PyTorch',
        bars,
        reference: { value: 1, label: 'parity' },
      }),
    },
  ];
}
