// The sample op's token mask and logit bias on every device, against the float64 reference: awkward
// vocabularies (not multiples of 32, so the last mask word is partial), greedy and seeded draws,
// masks mixed with unmasked rows, bias with penalties on the same token, raw logprobs, and the errors
// for a mask that allows nothing and for bad bias lists. Results come back poisoned (−2 / NaN) from
// the addon unless the backend writes them.
import { describe, expect, it } from 'vitest';
import { ops, type Device, type SampleResult, type SamplingRow } from '../../src/runtime/index.js';
import { Rng } from '../reference/random.js';
import { allowedRef, drawRef, keptMask, logSoftmax, scaledValues } from '../reference/sampling.js';
import { device, devicesUnderTest } from './devices.js';

const NEAR_TIE = 1e-4;
const LOGPROB_TOL = 2e-5;

function sample(dev: Device, logits: Float32Array[], rows: SamplingRow[], numTop = 0): Promise<SampleResult> {
  const vocab = logits[0].length;
  const flat = new Float32Array(logits.length * vocab);
  logits.forEach((row, i) => flat.set(row, i * vocab));
  return ops.sample(dev.tensor(flat, [logits.length, vocab]), rows, { numTop });
}

/** A bitmask over `vocab` tokens allowing exactly `tokens` (written independently of src/). */
function maskOf(vocab: number, tokens: Iterable<number>): Int32Array {
  const m = new Int32Array(Math.ceil(vocab / 32));
  for (const t of tokens) m[Math.floor(t / 32)] |= 1 << (t % 32);
  return m;
}

/** About `fraction` of the tokens, always including `always`. */
function randomAllowed(rng: Rng, vocab: number, fraction: number, always: number[] = []): number[] {
  const set = new Set(always);
  for (let t = 0; t < vocab; t++) if (rng.uniform(0, 1) < fraction) set.add(t);
  return [...set].sort((a, b) => a - b);
}

function expectPredicted(token: number, logits: ArrayLike<number>, row: SamplingRow, what: string) {
  if (!allowedRef(row, token)) throw new Error(`${what}: drew token ${token}, which the mask bans`);
  const ref = drawRef(logits, row);
  if (token === ref.token) return;
  if (ref.margin < NEAR_TIE && token === ref.runnerUp) return;
  throw new Error(`${what}: drew ${token}, the reference predicts ${ref.token} (margin ${ref.margin})`);
}

for (const dut of devicesUnderTest()) {
  describe.skipIf(dut.skip)(`sample: token mask and logit bias [${dut.label}]`, () => {
    const dev = () => device(dut.name);
    const tag = `[${dut.name}]`;
    const calls = dut.name === 'cuda-sim' ? 3 : 12;

    it(`greedy picks the best allowed token; unmasked rows in the same batch are untouched ${tag}`, async () => {
      const rng = new Rng('mask greedy');
      const vocab = 77; // 3 words, the last holding 13 tokens
      const logits = Array.from({ length: 6 }, () => rng.normals(vocab, 2));
      const rows: SamplingRow[] = [
        { temperature: 0, allowedMask: maskOf(vocab, randomAllowed(rng, vocab, 0.3)) },
        { temperature: 0 },
        { temperature: 0, allowedMask: maskOf(vocab, [76]) }, // only the last token, in the partial word
        { temperature: 0, allowedMask: maskOf(vocab, [5, 64, 70]) },
        { temperature: 0, topK: 1, allowedMask: maskOf(vocab, randomAllowed(rng, vocab, 0.5)) },
        { temperature: 0 },
      ];
      const res = await sample(dev(), logits, rows);
      rows.forEach((row, r) => {
        const ref = drawRef(logits[r], row).token;
        expect(res.tokens[r], `row ${r}`).toBe(ref);
        expect(allowedRef(row, res.tokens[r])).toBe(true);
      });
      expect(res.tokens[2]).toBe(76);
    });

    it(`seeded draws with masks, bias and filters follow the reference and never leave the mask ${tag}`, async () => {
      const rng = new Rng('mask draws');
      const vocab = 203; // 7 words, the last holding 11 tokens
      for (let call = 0; call < calls; call++) {
        const logits = Array.from({ length: 8 }, () => rng.normals(vocab, 1.5));
        const rows: SamplingRow[] = logits.map((_, i) => {
          const row: SamplingRow = {
            temperature: 0.6 + 0.15 * i,
            topK: i % 3 === 0 ? 9 : 0,
            topP: i % 2 ? 0.85 : 1,
            minP: i === 5 ? 0.05 : 0,
            seed: 4242 + call,
            offset: call * 8 + i,
          };
          if (i % 4 !== 3) row.allowedMask = maskOf(vocab, randomAllowed(rng, vocab, 0.2 + 0.1 * (i % 3), [200 + (i % 3)]));
          if (i % 2 === 0) {
            const tokens = rng.permutation(vocab).slice(0, 6);
            row.biasTokens = Int32Array.from(tokens);
            row.biasValues = Array.from(tokens, () => rng.uniform(-3, 3));
          }
          return row;
        });
        const res = await sample(dev(), logits, rows);
        res.tokens.forEach((t, i) => expectPredicted(t, logits[i], rows[i], `call ${call} row ${i}`));
      }
    });

    it(`a +100 bias forces a token, a −100 bias bans the greedy one; logprobs stay those of the raw logits ${tag}`, async () => {
      const rng = new Rng('bias');
      const vocab = 1001;
      const logits = Array.from({ length: 4 }, () => rng.normals(vocab, 2));
      const best = logits.map((l) => l.indexOf(Math.max(...l)));
      const rows: SamplingRow[] = [
        { temperature: 0, biasTokens: Int32Array.of(999), biasValues: [100] },
        { temperature: 0, biasTokens: Int32Array.of(best[1]), biasValues: [-100] },
        { temperature: 1, seed: 9, biasTokens: Int32Array.of(3, 700), biasValues: [-100, 100] },
        // Bias, mask and penalties on one row; the chosen token is biased and penalised.
        {
          temperature: 0, repetitionPenalty: 1.3, frequencyPenalty: 0.5,
          penaltyTokens: Int32Array.of(10, 11), penaltyCounts: Int32Array.of(1, 0),
          biasTokens: Int32Array.of(10, 12), biasValues: [40, 35], allowedMask: maskOf(vocab, [10, 11, 12, 13]),
        },
      ];
      const res = await sample(dev(), logits, rows, 3);
      expect(res.tokens[0]).toBe(999);
      expect(res.tokens[1]).not.toBe(best[1]);
      expect(res.tokens[1]).toBe(drawRef(logits[1], rows[1]).token);
      expect(res.tokens[2]).toBe(700);
      expect(res.tokens[3]).toBe(drawRef(logits[3], rows[3]).token);
      logits.forEach((l, r) => {
        const lsm = logSoftmax(l);
        expect(Math.abs(res.logprobs[r] - lsm[res.tokens[r]]), `row ${r} logprob`).toBeLessThan(LOGPROB_TOL);
        // Top alternatives are those of the raw logits too: the banned greedy token is still first.
        expect(res.topTokens[r * 3], `row ${r} top token`).toBe(best[r]);
      });
    });

    it(`a mask allowing tokens whose logits are all −∞ still yields an allowed token ${tag}`, async () => {
      const vocab = 45;
      const logits = new Float32Array(vocab).map((_, i) => (i === 40 || i === 41 ? -Infinity : i / 10));
      const rows: SamplingRow[] = [
        { temperature: 0, allowedMask: maskOf(vocab, [40, 41]) },
        { temperature: 0.8, seed: 1, allowedMask: maskOf(vocab, [41, 40]) },
      ];
      const res = await sample(dev(), [logits, logits], rows);
      for (const t of res.tokens) expect([40, 41]).toContain(t);
    });

    it(`the kept set of a masked row is the reference's (only allowed tokens are ever drawn) ${tag}`, async () => {
      const rng = new Rng('kept');
      const vocab = 70;
      const logits = rng.normals(vocab, 1);
      const allowed = [1, 2, 33, 34, 35, 64, 69];
      const row: SamplingRow = { temperature: 1.5, topK: 5, allowedMask: maskOf(vocab, allowed) };
      const kept = keptMask(scaledValues(logits, row), row);
      expect(kept.flatMap((k, t) => (k ? [t] : [])).every((t) => allowed.includes(t))).toBe(true);
      const rows = Array.from({ length: 24 }, (_, i) => ({ ...row, seed: 5, offset: i }));
      const res = await sample(dev(), rows.map(() => logits), rows);
      res.tokens.forEach((t, i) => {
        expect(kept[t], `row ${i} drew ${t}`).toBe(true);
        expectPredicted(t, logits, rows[i], `row ${i}`);
      });
    });

    const rejected = async (f: () => Promise<unknown>, pattern: RegExp) => {
      let error: unknown;
      try {
        await f();
      } catch (e) {
        error = e;
      }
      expect(String(error)).toMatch(pattern);
    };
    const logits = (rows: number, vocab: number) => dev().tensor(new Float32Array(rows * vocab).fill(0.5), [rows, vocab]);

    it(`refuses a mask that allows nothing, naming the row ${tag}`, async () => {
      await rejected(() => ops.sample(logits(2, 40), [{ temperature: 0 }, { temperature: 0, allowedMask: new Int32Array(2) }]),
        /sample: the token mask of row 1 allows no token/);
      // Bits past the vocabulary (40 tokens: word 1 holds tokens 32..39) do not count.
      await rejected(() => ops.sample(logits(1, 40), [{ temperature: 0, allowedMask: Int32Array.of(0, ~0xff) }]),
        /sample: the token mask of row 0 allows no token/);
      await rejected(() => ops.sample(logits(1, 40), [{ temperature: 0, allowedMask: new Int32Array(1) }]),
        /sample: the allowedMask of row 0 has 1 words; ceil\(vocab \/ 32\) = 2/);
    });

    it(`refuses bias tokens outside the vocabulary, repeated tokens and non-finite biases ${tag}`, async () => {
      await rejected(() => ops.sample(logits(1, 40), [{ temperature: 0, biasTokens: Int32Array.of(3, 40), biasValues: [1, 1] }]),
        /sample: biasTokens\[1\] = 40 is outside \[0, 40\)/);
      await rejected(() => ops.sample(logits(1, 40), [{ temperature: 0, biasTokens: Int32Array.of(-1), biasValues: [1] }]),
        /sample: biasTokens\[0\] = -1 is outside \[0, 40\)/);
      await rejected(() => ops.sample(logits(2, 40), [{ temperature: 0 }, { temperature: 0, biasTokens: Int32Array.of(7, 7), biasValues: [1, 2] }]),
        /sample: biasTokens lists token 7 twice in row 1/);
      await rejected(() => ops.sample(logits(1, 40), [{ temperature: 0, biasTokens: Int32Array.of(7), biasValues: [NaN] }]),
        /sample: biasValues\[0\] must be a finite number/);
      await rejected(() => ops.sample(logits(1, 40), [{ temperature: 0, biasTokens: Int32Array.of(7), biasValues: [] }]),
        /sample: biasTokens and biasValues differ in length \(row 0\)/);
    });
  });
}
