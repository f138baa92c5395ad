// `npm run bench -- <kernels> [options]`: Paralon's benchmarks. Results go to bench/results/.
import { benchKernels } from './kernels.js';

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = {
  kernels: benchKernels,
};

if (!command || !commands[command]) {
  console.error(`usage: npm run bench -- <${Object.keys(commands).join('|')}> [options]`);
  process.exit(2);
}
await commands[command](rest);
