// Writes a benchmark run to bench/results/: JSON with the machine, device, versions, git commit and
// every figure, plus a Markdown table of the same rows.
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * bench/results/, or $PARALON_BENCH_RESULTS: the GPU check runs bundled into .gpu/gpu-check.mjs, where
 * this file's own location would put results under .gpu/ (bench/gpu-run.sh points it at $OUT/results).
 */
export const resultsDir = process.env.PARALON_BENCH_RESULTS || path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

let busyAtStart: number | null = null;
let runStart: { cpu: { busy: number; total: number }; own: number } | null = null;

/** All cores' busy and total time so far, in USER_HZ ticks (Linux /proc/stat; null elsewhere). */
function cpuTimes(): { busy: number; total: number } | null {
  if (!existsSync('/proc/stat')) return null;
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return { busy: total - f[3] - f[4], total };
}

/** This process's CPU time so far (all its threads: Node, the addon's pool, llama.cpp's), in ticks. */
function ownTicks(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 10_000; // µs → USER_HZ ticks (100 per second on Linux)
}

/**
 * Measures, for one second before a bench starts, how busy the machine's cores are (Linux), warns on
 * stderr when other work is using more than a fifth of the CPU, and starts counting the CPU time
 * other processes take during the run. Both go into runInfo.
 */
export async function checkQuiet(): Promise<void> {
  const a = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return;
  busyAtStart = (b.busy - a.busy) / (b.total - a.total);
  runStart = { cpu: b, own: ownTicks() };
  if (busyAtStart > 0.2)
    console.error(`note: the CPU was ${(100 * busyAtStart).toFixed(0)} % busy with other work as the bench started — CPU figures will be low`);
}

/** Share of all cores' time that other processes used since checkQuiet (null: not measured). */
function otherCpuSinceStart(): number | null {
  const now = cpuTimes();
  if (!runStart || !now || now.total === runStart.cpu.total) return null;
  const other = now.busy - runStart.cpu.busy - (ownTicks() - runStart.own);
  return Math.max(0, other / (now.total - runStart.cpu.total));
}

export interface RunInfo {
  bench: string;
  date: string;
  commit: string;
  node: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  device: string;
  /** Share of all cores busy with other work in the second before the bench started (null: not measured). */
  cpuBusyAtStart: number | null;
  /** Share of all cores' time other processes used while the bench ran (null: not measured). */
  otherCpuDuringRun: number | null;
}

export function runInfo(bench: string, device: string): RunInfo {
  const other = otherCpuSinceStart();
  if (other !== null && other > 0.1)
    console.error(`note: other processes used ${(100 * other).toFixed(0)} % of the CPU while the bench ran — CPU figures are disturbed`);
  // $PARALON_BENCH_COMMIT: the commit a copied tree was packed from (bench/gpu-pack.sh records it).
  return { ...machineInfo(bench, device), commit: process.env.PARALON_BENCH_COMMIT || gitCommit(), otherCpuDuringRun: other === null ? null : Math.round(other * 1000) / 1000 };
}

function gitCommit(): string {
  try {
    const commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    // Stored results are not code: a run after another bench's run is still on a clean commit.
    const dirty = execSync("git status --porcelain -- . ':(exclude)bench/results'", { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${commit}+dirty` : commit;
  } catch {
    return 'unknown'; // not a git checkout (e.g. a GPU machine given a copied tree)
  }
}

function machineInfo(bench: string, device: string): RunInfo {
  return {
    bench,
    date: new Date().toISOString(),
    commit: 'unknown',
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    device,
    cpuBusyAtStart: busyAtStart === null ? null : Math.round(busyAtStart * 1000) / 1000,
    otherCpuDuringRun: null,
  };
}

/** ', other processes: 3 % of the CPU at the start, 1 % during the run' (empty when not measured). */
function cpuNote(info: RunInfo): string {
  const pct = (x: number | null) => (x === null ? '?' : `${(100 * x).toFixed(0)} %`);
  if (info.cpuBusyAtStart === null && info.otherCpuDuringRun === null) return '';
  return `; other processes: ${pct(info.cpuBusyAtStart)} of the CPU at the start, ${pct(info.otherCpuDuringRun)} during the run`;
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

/**
 * Saves `<name>.json` and `<name>.md` under bench/results/ and returns their paths. `appendix`: more
 * Markdown after the table (further sections of the same run).
 */
export function saveResults(name: string, info: RunInfo, extra: Record<string, unknown>, rows: readonly Row[], notes = '', appendix = ''): string[] {
  mkdirSync(resultsDir, { recursive: true });
  const json = path.join(resultsDir, `${name}.json`);
  const md = path.join(resultsDir, `${name}.md`);
  writeFileSync(json, JSON.stringify({ ...info, ...extra, rows }, null, 2) + '\n');
  const header = `# ${info.bench} — ${info.device}\n\n${info.date}, commit ${info.commit}, Node ${info.node}, ${info.cpu} (${info.cores} cores, ${info.memoryGiB} GiB)${cpuNote(info)}\n\n`;
  writeFileSync(md, header + (notes ? notes + '\n\n' : '') + markdownTable(rows) + appendix);
  return [json, md];
}
