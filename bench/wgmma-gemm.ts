// The Hopper wgmma + TMA GEMM (native/cuda/matmul_wgmma.cu) against the mma.sync path at prefill
// shapes, for gpu:check: both forced in turn (native/cuda/variants.h), outputs compared with each other
// everywhere and with float64 on sampled rows, TFLOP/s of each (and of PyTorch's cuBLAS matmul at the
// same shape when the torch baseline ran). On a GPU without sm_90a support the wgmma path is refused
// and the rows say so. On cuda-sim: small awkward shapes, checks only, nothing timed.
// Standalone: `npm run bench -- wgmma [--device cuda:0|cuda-sim]`.
import { Device, ops } from '../src/runtime/index.js';
import { addon } from '../src/runtime/native.js';
import { compare, TOLERANCE } from '../test/reference/compare.js';
import { Rng } from '../test/reference/random.js';
import { storedAs } from '../test/reference/rounding.js';
import { markdownTable, runInfo, saveResults, type Row } from './results.js';
import { modelShapes, projections } from './shapes.js';
import { timeLaunches } from './timing.js';

const MMA = 1;
const WGMMA = 3;
const SAMPLED_ROWS = 8;

/** float64 reference of rows `rows` of x · wᵀ. */
function sampledRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number[], N: number, K: number): Float64Array {
  const out = new Float64Array(rows.length * N);
  rows.forEach((m, i) => {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      out[i * N + n] = s;
    }
  });
  return out;
}

export async function benchWgmma(deviceName: string, torchRows: Row[] = []): Promise<{ rows: Row[]; failures: number }> {
  const device = Device.open(deviceName as 'cuda');
  const simulated = device.name === 'cuda-sim';
  const cases: [string, number, number, number][] = simulated
    ? [['awkward', 200, 300, 136], ['awkward', 131, 129, 520]]
    : ['0.6b', '8b'].flatMap((s) =>
        projections(modelShapes[s]).filter(([p]) => ['q_proj', 'gate_proj', 'down_proj'].includes(p))
          .flatMap(([p, N, K]) => [512, 4096].map((M): [string, number, number, number] => [`${s} ${p}`, M, N, K])));
  const rows: Row[] = [];
  let failures = 0;
  try {
    for (const [name, M, N, K] of cases) {
      const rng = new Rng(`wgmma bench ${name} ${M}`);
      const x = rng.normals(M * K);
      const w = rng.normals(N * K, 1 / Math.sqrt(K));
      const xt = device.tensor(x, [M, K]);
      const wt = device.tensor(w, [N, K], 'bf16');
      const row: Row = { case: name, shape: `M=${M} N=${N} K=${K}` };
      const out: Float32Array[] = [];
      try {
        for (const [label, matmulPath] of [['mma.sync', MMA], ['wgmma', WGMMA]] as const) {
          addon.setKernelVariants({ matmulPath });
          const y = device.empty([M, N], 'f32');
          const seconds = simulated ? undefined : (await timeLaunches(device, () => ops.matmul(xt, wt, y), { batches: 5 })).seconds;
          if (simulated) ops.matmul(xt, wt, y);
          out.push(await y.read());
          y.dispose();
          row[`${label} TFLOP/s`] = seconds === undefined ? '' : (2 * M * N * K) / seconds / 1e12;
        }
        const sampled = Array.from({ length: SAMPLED_ROWS }, (_, i) => Math.min(M - 1, Math.floor((i * M) / SAMPLED_ROWS) + (i % 3)));
        const ref = sampledRef(x, storedAs(w, 'bf16'), sampled, N, K);
        const pick = (y: Float32Array) => Float32Array.from(sampled.flatMap((m) => Array.from(y.subarray(m * N, (m + 1) * N))));
        const vsRef = compare(pick(out[1]), ref).maxRel;
        const vsMma = compare(out[1], out[0]).maxRel;
        const ok = vsRef <= TOLERANCE.roundedActivations.bf16 && vsMma <= 1e-4; // f32 sums in another order
        const torch = torchRows.find((r) => r.shape === `${name.split(' ')[0]} M=${M} N=${N} K=${K}` && String(r.op).endsWith(name.split(' ')[1] ?? ''));
        Object.assign(row, {
          'torch TFLOP/s': torch ? torch['TFLOP/s'] : '',
          'wgmma / mma.sync': simulated ? '' : Number(row['wgmma TFLOP/s']) / Number(row['mma.sync TFLOP/s']),
          'wgmma rel err vs f64 (sampled rows)': vsRef,
          'wgmma vs mma.sync max rel diff': vsMma,
          status: ok ? 'pass' : 'FAIL',
        });
        if (!ok) failures++;
      } catch (e) {
        const message = (e as Error).message.split('\n')[0];
        const refused = /forced variant 3 cannot run/.test(message);
        Object.assign(row, { status: refused ? `n/a: ${message}` : `ERROR: ${message}` });
        if (!refused) failures++;
      } finally {
        addon.setKernelVariants({});
        xt.dispose();
        wt.dispose();
      }
      rows.push(row);
      console.error(`  ${row.case} ${row.shape}: ${row.status}`);
    }
  } finally {
    device.dispose();
  }
  console.log(markdownTable(rows));
  saveResults(`wgmma-gemm-${deviceName.replace(':', '')}`, runInfo('wgmma gemm', deviceName), {}, rows,
    simulated ? 'Simulator run: checks only, nothing timed.' : 'bf16 W, f32 x (rounded to bf16 on the way, as both paths do); TFLOP/s = 2·M·N·K / median time per call including the x conversion.');
  return { rows, failures };
}

/** The bench command; exit status 1 when a case failed its check. */
export async function runWgmma(argv: string[]): Promise<void> {
  const at = argv.indexOf('--device');
  const { failures } = await benchWgmma(at >= 0 ? argv[at + 1] : 'cuda:0');
  if (failures > 0) process.exitCode = 1;
}
