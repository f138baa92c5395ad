// Writes a benchmark run to bench/results/: JSON with the machine, device, versions, git commit and
// every figure, plus a Markdown table of the same rows.
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

export interface RunInfo {
  bench: string;
  date: string;
  commit: string;
  node: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  device: string;
}

export function runInfo(bench: string, device: string): RunInfo {
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync('git status --porcelain', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    if (dirty) commit += '+dirty';
  } catch {
    // not a git checkout (e.g. a GPU machine given a copied tree)
  }
  return {
    bench,
    date: new Date().toISOString(),
    commit,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    device,
  };
}

export type Row = Record<string, string | number>;

export function markdownTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const cols = Object.keys(rows[0]);
  const fmt = (v: string | number | undefined) => (typeof v === 'number' ? formatNumber(v) : (v ?? ''));
  return [
    `| ${cols.join(' | ')} |`,
    `| ${cols.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${cols.map((c) => fmt(r[c])).join(' | ')} |`),
  ].join('\n') + '\n';
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/** Saves `<name>.json` and `<name>.md` under bench/results/ and returns their paths. */
export function saveResults(name: string, info: RunInfo, extra: Record<string, unknown>, rows: readonly Row[], notes = ''): string[] {
  mkdirSync(resultsDir, { recursive: true });
  const json = path.join(resultsDir, `${name}.json`);
  const md = path.join(resultsDir, `${name}.md`);
  writeFileSync(json, JSON.stringify({ ...info, ...extra, rows }, null, 2) + '\n');
  const header = `# ${info.bench} — ${info.device}\n\n${info.date}, commit ${info.commit}, Node ${info.node}, ${info.cpu} (${info.cores} cores, ${info.memoryGiB} GiB)\n\n`;
  writeFileSync(md, header + (notes ? notes + '\n\n' : '') + markdownTable(rows));
  return [json, md];
}
