// `npm run bench -- <kernels|crosscheck|crosscheck-quant|cpu-step|e2e|e2e-moe|server|soak|grammar|variants|wgmma|report> [options]`: Paralon's
// benchmarks. Results go to bench/results/; `report` draws them as SVG charts in bench/results/charts/.
import { benchCpuStep } from './cpu-step.js';
import { benchCrosscheck } from './crosscheck.js';
import { benchCrosscheckQuant } from './crosscheck-quant.js';
import { runVariants } from './dev/variants.js';
import { benchE2e } from './e2e.js';
import { benchE2eMoe } from './e2e-moe.js';
import { benchGrammar } from './grammar.js';
import { benchKernels } from './kernels.js';
import { benchReport } from './report.js';
import { benchServer } from './server.js';
import { benchSoak } from './soak.js';
import { runWgmma } from './wgmma-gemm.js';

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = {
  kernels: benchKernels,
  crosscheck: benchCrosscheck,
  'crosscheck-quant': benchCrosscheckQuant,
  'cpu-step': benchCpuStep,
  e2e: benchE2e,
  'e2e-moe': benchE2eMoe,
  server: benchServer,
  soak: benchSoak,
  grammar: benchGrammar,
  variants: runVariants,
  wgmma: runWgmma,
  report: benchReport,
};

if (!command || !commands[command]) {
  console.error(`usage: npm run bench -- <${Object.keys(commands).join('|')}> [options]`);
  process.exit(2);
}
await commands[command](rest);
