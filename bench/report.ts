// `npm run bench -- report`: SVG charts from the stored results in bench/results/*.json, written to
// bench/results/charts/ with a README.md that lists them. Every result file present is drawn (absent
// ones are skipped; one that cannot be read is reported and skipped); charts of results that are gone
// are removed. Nothing here reads the clock: re-running on the same results changes no file.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crosscheckCharts, decodeStepCharts, e2eCharts, kernelCharts, serverCharts, torchCharts, type Chart, type ResultFile } from './report-charts.js';
import { resultsDir } from './results.js';

/** Reads a result file; null (with a warning) when it is not one. */
function readResult(file: string): ResultFile | null {
  try {
    const r = JSON.parse(readFileSync(path.join(resultsDir, file), 'utf8')) as ResultFile;
    if (typeof r !== 'object' || r === null || !Array.isArray(r.rows)) throw new Error('no rows');
    return { ...r, date: String(r.date ?? ''), commit: String(r.commit ?? '?'), device: String(r.device ?? '?'), bench: String(r.bench ?? '') };
  } catch (e) {
    console.error(`report: skipping ${file}: ${(e as Error).message}`);
    return null;
  }
}

/** Every chart of the given result files, in a fixed order (by kind, then file name). */
export function renderCharts(files: readonly string[], read: (file: string) => ResultFile | null = readResult): { charts: Chart[]; summaries: string[] } {
  const charts: Chart[] = [];
  const summaries: string[] = [];
  const loaded = new Map<string, ResultFile>();
  for (const f of [...files].sort()) {
    const r = read(f);
    if (r) loaded.set(f, r);
  }
  const draw = (f: string, fn: () => Chart[]) => {
    try {
      charts.push(...fn());
    } catch (e) {
      console.error(`report: no chart from ${f}: ${(e as Error).message}`);
    }
  };
  for (const [f, r] of loaded) {
    if (f.startsWith('kernels-')) draw(f, () => kernelCharts(f, r));
    else if (f.startsWith('server-')) draw(f, () => serverCharts(f, r));
    else if (f.startsWith('e2e-')) draw(f, () => e2eCharts(f, r));
    else if (f.startsWith('crosscheck')) draw(f, () => crosscheckCharts(f, r));
    else if (f.startsWith('decode-steps-')) draw(f, () => decodeStepCharts(f, r));
    else if (f === 'torch-baseline.json') {
      const gpuKernels = [...loaded].filter(([k]) => k.startsWith('kernels-cuda')).map(([, v]) => v);
      draw(f, () => torchCharts(f, r, gpuKernels));
    } else if (f.startsWith('gpu-check-')) {
      const failed = r.rows.filter((row) => row.status !== undefined && row.status !== 'pass').length;
      summaries.push(`- \`${f}\` (${r.device}, ${r.date.slice(0, 10)}, commit ${r.commit}): ${r.rows.length} op cases, ${failed} failed.`);
    }
  }
  // Kernels first, then end to end, serving, correctness and GPU peers; file order within a kind.
  const rank = (c: Chart) => ['kernels-', 'decode-steps-', 'e2e-', 'server-', 'crosscheck', 'torch-'].findIndex((p) => c.source.startsWith(p));
  return { charts: charts.map((c, i) => ({ c, i })).sort((a, b) => rank(a.c) - rank(b.c) || a.i - b.i).map(({ c }) => c), summaries };
}

function index(charts: readonly Chart[], summaries: readonly string[], read: (file: string) => ResultFile | null): string {
  const out = [
    '# Benchmark charts',
    '',
    'Rendered by `npm run bench -- report` from the result files in `bench/results/` (each chart names its',
    'source, device, date and commit). Re-render after any bench run; the charts change only when results do.',
    '',
  ];
  if (charts.length === 0) out.push('No results to chart yet.', '');
  for (const c of charts) {
    const r = read(c.source);
    out.push(`## ${c.title}`, '', `From \`${c.source}\`${r ? ` — ${r.device}, ${r.date.slice(0, 10)}, commit ${r.commit}` : ''}.`, '', `![${c.title}](${c.file})`, '');
  }
  if (summaries.length) out.push('## Other results (no chart)', '', ...summaries, '');
  return out.join('\n');
}

export async function benchReport(argv: string[]): Promise<void> {
  if (argv.length) throw new Error(`bench report: no options expected, got ${argv.join(' ')}`);
  const chartsDir = path.join(resultsDir, 'charts');
  const files = existsSync(resultsDir) ? readdirSync(resultsDir).filter((f) => f.endsWith('.json')) : [];
  const cache = new Map<string, ResultFile | null>();
  const read = (f: string) => {
    if (!cache.has(f)) cache.set(f, readResult(f));
    return cache.get(f)!;
  };
  const { charts, summaries } = renderCharts(files, read);
  mkdirSync(chartsDir, { recursive: true });
  const written = new Set(charts.map((c) => c.file));
  for (const old of readdirSync(chartsDir)) if (old.endsWith('.svg') && !written.has(old)) rmSync(path.join(chartsDir, old));
  for (const c of charts) {
    writeFileSync(path.join(chartsDir, c.file), c.svg);
    console.error(`wrote ${path.relative(process.cwd(), path.join(chartsDir, c.file))}  (${c.title})`);
  }
  writeFileSync(path.join(chartsDir, 'README.md'), index(charts, summaries, read));
  console.log(`${charts.length} charts from ${files.length} result files in ${path.relative(process.cwd(), chartsDir) || '.'}`);
}
