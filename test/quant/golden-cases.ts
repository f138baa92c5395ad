// The inputs of the ggml golden vectors (test/quant/fixtures/ggml-golden.json): rows of 256 f32 values,
// random and adversarial. Written to the fixture with the bytes ggml produced from them, so the test
// does not depend on this generator staying the same; bench/quant-golden.ts regenerates the fixture.
import { Rng } from '../reference/random.js';

export interface GoldenInput {
  name: string;
  values: Float32Array;
}

const ROW = 256;

function row(fill: (i: number) => number): Float32Array {
  return Float32Array.from({ length: ROW }, (_, i) => fill(i));
}

export function goldenInputs(): GoldenInput[] {
  const rng = new Rng('ggml-golden');
  return [
    { name: 'normal', values: row(() => rng.normal()) },
    { name: 'normal ×0.02 (weights-like)', values: row(() => 0.02 * rng.normal()) },
    { name: 'uniform positive', values: row(() => rng.uniform(0.5, 3)) },
    { name: 'uniform negative', values: row(() => -rng.uniform(0.1, 7)) },
    { name: 'all zero', values: row(() => 0) },
    { name: 'one spike in zeros', values: row((i) => (i === 77 ? -3.25 : 0)) },
    { name: 'constant', values: row(() => 1.5) },
    { name: 'outliers', values: row((i) => (i % 37 === 5 ? 40 * rng.normal() : rng.normal())) },
    { name: 'huge (near f16 range)', values: row(() => 8000 * rng.normal()) },
    { name: 'tiny (f16 subnormal scales)', values: row(() => 1e-6 * rng.normal()) },
    { name: 'below ggml epsilon', values: row(() => 1e-17 * rng.normal()) },
    { name: 'mixed magnitudes per 32', values: row((i) => 10 ** ((i >> 5) - 4) * rng.normal()) },
    { name: 'sparse', values: row(() => (rng.uniform() < 0.1 ? rng.normal() : 0)) },
    { name: 'ties at half steps', values: row((i) => ((i % 16) - 7.5) / 8) },
  ];
}
