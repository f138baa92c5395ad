// Sampling on every device: greedy, the filters' kept sets, the distribution of seeded draws,
// determinism of (seed, offset), penalties, logprobs, a full Qwen-sized vocabulary, and agreement
// of the same seeded draw across devices (Philox is shared: native/philox.h).
import { describe, expect, it } from 'vitest';
import { ops, type Device, type SampleResult, type SamplingRow } from '../../src/runtime/index.js';
import { philoxUniformF32 } from '../reference/philox.js';
import { Rng } from '../reference/random.js';
import { argmax, drawRef, filteredProbs, keptMask, logSoftmax, scaledValues } from '../reference/sampling.js';
import { chiSquare, chiSquareCritical } from '../reference/stats.js';
import { device, devicesUnderTest } from './devices.js';

/** A seeded draw may legitimately differ from the float64 prediction only when two Gumbel scores tie in f32. */
const NEAR_TIE = 1e-4;
/** Logprobs are f32 log_softmax: absolute error of a few ulps of values around −10. */
const LOGPROB_TOL = 2e-5;

function sample(dev: Device, logits: Float32Array[], rows: SamplingRow[], numTop = 0): Promise<SampleResult> {
  const vocab = logits[0].length;
  const flat = new Float32Array(logits.length * vocab);
  logits.forEach((row, i) => flat.set(row, i * vocab));
  return ops.sample(dev.tensor(flat, [logits.length, vocab]), rows, { numTop });
}

/** Logits with well separated values (no accidental ties or knife-edge thresholds). */
function spreadLogits(rng: Rng, vocab: number, spread = 6): Float32Array {
  const perm = rng.permutation(vocab);
  return Float32Array.from(perm, (p) => (p / vocab) * spread - spread / 2 + rng.uniform(0, 0.3 * spread / vocab));
}

/** Asserts a draw is the token Gumbel-max predicts (or its f32 near-tie runner-up). */
function expectPredicted(token: number, logits: ArrayLike<number>, row: SamplingRow, what: string) {
  const ref = drawRef(logits, row);
  if (token === ref.token) return;
  if (ref.margin < NEAR_TIE && token === ref.runnerUp) return;
  throw new Error(`${what}: drew ${token}, Gumbel-max with Philox noise predicts ${ref.token} (margin ${ref.margin})`);
}

const FILTERS: [string, SamplingRow][] = [
  ['topK=5', { temperature: 1, topK: 5 }],
  ['T=0.7,topP=0.6', { temperature: 0.7, topP: 0.6 }],
  ['T=1.3,minP=0.1', { temperature: 1.3, minP: 0.1 }],
  ['T=0.9,topK=12,topP=0.8,minP=0.05', { temperature: 0.9, topK: 12, topP: 0.8, minP: 0.05 }],
  ['T=2,topP=0.3', { temperature: 2, topP: 0.3 }],
];

for (const dut of devicesUnderTest()) {
  describe.skipIf(dut.skip)(`sampling [${dut.label}]`, () => {
    const dev = () => device(dut.name);
    const tag = `[${dut.name}]`;
    // The simulator runs a row's 1024-thread block fiber by fiber (about 25 ms a row on this
    // machine), so it gets fewer draws; the statistics stay valid (≥ 39 expected per category).
    const sim = dut.name === 'cuda-sim';
    const filterCalls = sim ? 8 : 30;
    const distributionCalls = sim ? 50 : 200;

    it(`greedy is argmax with ties to the lowest index ${tag}`, async () => {
      const rng = new Rng('greedy');
      const rows = [spreadLogits(rng, 101), spreadLogits(rng, 101), rng.normals(101), rng.normals(101)];
      rows[2][40] = rows[2][71] = 9; // tie for the maximum
      rows[3].fill(-2.5); // all tied: token 0
      const res = await sample(dev(), rows, rows.map((_, i) => ({ temperature: 0, seed: 7, offset: i, topK: 3 })));
      expect(Array.from(res.tokens)).toEqual([argmax(rows[0]), argmax(rows[1]), 40, 0]);
    });

    for (const [label, params] of FILTERS) {
      it(`${label} never draws an excluded token and draws Gumbel-max's token (${filterCalls * 16} draws) ${tag}`, async () => {
        const rng = new Rng(label);
        const logits = spreadLogits(rng, 53, 8);
        const kept = keptMask(scaledValues(logits, params), params);
        const seen = new Set<number>();
        for (let call = 0; call < filterCalls; call++) {
          const rows = Array.from({ length: 16 }, (_, i) => ({ ...params, seed: 0x1234567890 + call, offset: i * 1000 + call }));
          const res = await sample(dev(), rows.map(() => logits), rows);
          res.tokens.forEach((t, i) => {
            if (!kept[t]) throw new Error(`drew token ${t}, which ${label} excludes (kept: ${kept.flatMap((k, j) => (k ? [j] : []))})`);
            expectPredicted(t, logits, rows[i], `call ${call} row ${i}`);
            seen.add(t);
          });
        }
        // The kept sets are small enough that these draws reach more than one token.
        expect(seen.size).toBeGreaterThan(1);
      });
    }

    it(`ties at the top-k and top-p thresholds are all kept ${tag}`, async () => {
      // Tokens 10, 20, 30 tie for the largest value: topK = 1 and topP = 0.1 must keep all three.
      const logits = new Float32Array(40).map((_, i) => -1 - i / 40);
      logits[10] = logits[20] = logits[30] = 3;
      for (const params of [{ temperature: 1, topK: 1 }, { temperature: 1, topP: 0.1 }] as SamplingRow[]) {
        const counts = new Map<number, number>();
        const rows = Array.from({ length: 120 }, (_, i) => ({ ...params, seed: 99, offset: i }));
        const res = await sample(dev(), rows.map(() => logits), rows);
        res.tokens.forEach((t) => counts.set(t, (counts.get(t) ?? 0) + 1));
        expect([...counts.keys()].sort((a, b) => a - b)).toEqual([10, 20, 30]);
      }
    });

    it(`${distributionCalls * 20} seeded draws follow the filtered softmax (chi-square, false-alarm rate 1e-6) ${tag}`, async () => {
      const logits = Float32Array.from([1.2, -0.4, 0.9, 2.1, -3, 0.3, 1.7, -1.1, 0.05, 1.45]);
      const params: SamplingRow = { temperature: 0.8, topK: 7, topP: 0.95 };
      const probs = filteredProbs(logits, params);
      const counts = new Float64Array(logits.length);
      const rowsPerCall = 20;
      for (let call = 0; call < distributionCalls; call++) {
        const rows = Array.from({ length: rowsPerCall }, (_, i) => ({ ...params, seed: 2024, offset: call * rowsPerCall + i }));
        const res = await sample(dev(), rows.map(() => logits), rows);
        res.tokens.forEach((t) => counts[t]++);
      }
      probs.forEach((p, i) => {
        if (p === 0) expect(counts[i], `excluded token ${i}`).toBe(0);
      });
      const { statistic, df } = chiSquare(counts, probs);
      expect(statistic, `chi-square ${statistic.toFixed(2)} with ${df} df; counts ${Array.from(counts)}`).toBeLessThan(
        chiSquareCritical(df),
      );
    });

    it(`the same seed and offset give the same token; other offsets and seeds differ ${tag}`, async () => {
      const flat = new Float32Array(1000).fill(1.5);
      const rows = (seed: number) => Array.from({ length: 64 }, (_, i) => ({ temperature: 1, seed, offset: i }));
      const a = await sample(dev(), rows(5).map(() => flat), rows(5));
      const b = await sample(dev(), rows(5).map(() => flat), rows(5));
      const c = await sample(dev(), rows(6).map(() => flat), rows(6));
      expect(Array.from(b.tokens)).toEqual(Array.from(a.tokens));
      // 64 uniform draws over 1000 tokens: about 62 distinct values expected; fewer than 50 means
      // the offset (or seed) does not reach the noise.
      expect(new Set(a.tokens).size).toBeGreaterThan(50);
      const same = a.tokens.filter((t, i) => t === c.tokens[i]).length;
      expect(same).toBeLessThan(6);
      a.tokens.forEach((t, i) => expectPredicted(t, flat, rows(5)[i], `offset ${i}`));
    });

    it(`penalties change logits as specified (greedy choices flip) ${tag}`, async () => {
      // Token 3 leads, token 7 is the runner-up; every other token is below −0.5.
      const lead = (l3: number, l7: number) => {
        const l = new Float32Array(16).map((_, i) => -1 + i / 40);
        l[3] = l3;
        l[7] = l7;
        return l;
      };
      const on3 = (count: number) => ({ penaltyTokens: Int32Array.of(3), penaltyCounts: Int32Array.of(count) });
      const cases: [string, Float32Array, SamplingRow, number][] = [
        ['repetition 1.2 on a prompt token: 5/1.2 = 4.17 < 4.5', lead(5, 4.5), { temperature: 0, repetitionPenalty: 1.2, ...on3(0) }, 7],
        ['repetition 1.05: 5/1.05 = 4.76 > 4.5', lead(5, 4.5), { temperature: 0, repetitionPenalty: 1.05, ...on3(0) }, 3],
        ['repetition multiplies a negative logit: −0.2 · 3 = −0.6 < −0.45', lead(-0.2, -0.45), { temperature: 0, repetitionPenalty: 3, ...on3(0) }, 7],
        ['presence 0.6 on an output token: 4.4 < 4.5', lead(5, 4.5), { temperature: 0, presencePenalty: 0.6, ...on3(1) }, 7],
        ['presence ignores prompt-only tokens', lead(5, 4.5), { temperature: 0, presencePenalty: 0.6, ...on3(0) }, 3],
        ['frequency 0.2 × 3 occurrences: 4.4 < 4.5', lead(5, 4.5), { temperature: 0, frequencyPenalty: 0.2, ...on3(3) }, 7],
        ['frequency 0.2 × 2 occurrences: 4.6 > 4.5', lead(5, 4.5), { temperature: 0, frequencyPenalty: 0.2, ...on3(2) }, 3],
        // vLLM's order: repetition first (5/1.25 = 4), then frequency: 3.9 < 3.91. Frequency first
        // would give (5 − 0.1)/1.25 = 3.92 > 3.91.
        ['repetition before frequency and presence', lead(5, 3.91), { temperature: 0, repetitionPenalty: 1.25, frequencyPenalty: 0.1, ...on3(1) }, 7],
        ['penalties also apply before a seeded draw (T = 0.01)', lead(5, 4.5), { temperature: 0.01, seed: 3, frequencyPenalty: 1, ...on3(1) }, 7],
      ];
      const res = await sample(dev(), cases.map(([, l]) => l), cases.map(([, , p]) => p));
      cases.forEach(([what, logits, params, token], i) => {
        expect(argmax(scaledValues(logits, params)), `reference for ${what}`).toBe(token);
        expect(argmax(logits), `without penalties: ${what}`).toBe(3);
        expect(res.tokens[i], what).toBe(token);
      });
    });

    it(`penalised seeded draws follow the reference, rows kept apart ${tag}`, async () => {
      const rng = new Rng('penalised draws');
      const logits = Array.from({ length: 6 }, () => spreadLogits(rng, 300, 5));
      const rows: SamplingRow[] = logits.map((_, i) => ({
        temperature: 0.6 + 0.2 * i,
        topK: i % 2 ? 40 : 0,
        presencePenalty: 0.5 * (i % 3),
        frequencyPenalty: 0.3,
        repetitionPenalty: 1 + 0.1 * i,
        seed: 77 + i,
        offset: 3 * i,
        penaltyTokens: Int32Array.from({ length: 5 + i }, () => rng.int(0, 300)).filter((t, j, a) => a.indexOf(t) === j),
      }));
      rows.forEach((r) => (r.penaltyCounts = Int32Array.from(r.penaltyTokens!, (_, j) => j % 3)));
      const res = await sample(dev(), logits, rows);
      res.tokens.forEach((t, i) => expectPredicted(t, logits[i], rows[i], `row ${i}`));
    });

    it(`logprobs and top-20 are the log_softmax of the raw logits ${tag}`, async () => {
      const rng = new Rng('logprobs');
      const logits = [rng.normals(1000, 3), spreadLogits(rng, 1000, 20), rng.normals(1000, 0.5)];
      const rows: SamplingRow[] = [
        { temperature: 0.7, seed: 1, presencePenalty: 2, penaltyTokens: Int32Array.of(argmax(logits[0])), penaltyCounts: Int32Array.of(1) },
        { temperature: 0 },
        { temperature: 1.5, topK: 3, seed: 2, repetitionPenalty: 1.3, penaltyTokens: Int32Array.of(1, 2, 3), penaltyCounts: Int32Array.of(0, 1, 2) },
      ];
      const numTop = 20;
      const res = await sample(dev(), logits, rows, numTop);
      logits.forEach((l, r) => {
        const lsm = logSoftmax(l);
        expect(Math.abs(res.logprobs[r] - lsm[res.tokens[r]]), `row ${r} logprob`).toBeLessThan(LOGPROB_TOL);
        const order = Array.from(lsm.keys()).sort((a, b) => lsm[b] - lsm[a] || a - b).slice(0, numTop);
        expect(Array.from(res.topTokens.subarray(r * numTop, (r + 1) * numTop)), `row ${r} top tokens`).toEqual(order);
        order.forEach((t, j) =>
          expect(Math.abs(res.topLogprobs[r * numTop + j] - lsm[t]), `row ${r} top ${j}`).toBeLessThan(LOGPROB_TOL));
        expectPredicted(res.tokens[r], l, rows[r], `row ${r}`);
      });
    });

    it(`targets get their raw logprob and rank (ties, a penalised row, rows without one) ${tag}`, async () => {
      const rng = new Rng('targets');
      const vocab = 997;
      const logits = [rng.normals(vocab, 3), spreadLogits(rng, vocab, 20), rng.normals(vocab, 1), rng.normals(vocab, 2)];
      logits[2][10] = logits[2][500] = logits[2][900] = 7; // a three-way tie for the top
      const top0 = argmax(logits[0]);
      const rows: SamplingRow[] = [
        { temperature: 0, presencePenalty: 5, penaltyTokens: Int32Array.of(top0), penaltyCounts: Int32Array.of(1) },
        { temperature: 0.8, seed: 3, biasTokens: Int32Array.of(4), biasValues: [50] },
        { temperature: 0 },
        { temperature: 0 },
      ];
      const targets = Int32Array.of(top0, 4, 500, -1);
      const flat = new Float32Array(logits.length * vocab);
      logits.forEach((row, i) => flat.set(row, i * vocab));
      const poison = () => dev().tensor(flat, [logits.length, vocab]);
      const res = await ops.sample(poison(), rows, { numTop: 5, targets });
      for (let r = 0; r < 3; r++) {
        const l = logits[r];
        const t = targets[r];
        const lsm = logSoftmax(l);
        expect(Math.abs(res.targetLogprobs[r] - lsm[t]), `row ${r} logprob`).toBeLessThan(LOGPROB_TOL);
        expect(res.targetRanks[r], `row ${r} rank`).toBe(1 + Array.from(l).filter((v) => v > l[t]).length);
      }
      expect(res.targetRanks[2]).toBe(1); // tied with the maximum: rank 1, as vLLM counts
      expect(res.targetRanks[3]).toBe(0);
      expect(Number.isNaN(res.targetLogprobs[3])).toBe(true);
      expect(res.tokens[1]).toBe(4); // the draw still sees the bias
      // Without targets, nothing is scored.
      const plain = await ops.sample(poison(), rows, { numTop: 0 });
      expect(plain.targetLogprobs.length + plain.targetRanks.length).toBe(0);
      await expect(Promise.resolve().then(() => ops.sample(poison(), rows, { targets: Int32Array.of(1, 2) }))).rejects.toThrow(/targets/);
      await expect(Promise.resolve().then(() => ops.sample(poison(), rows, { targets: Int32Array.of(1, 2, 3, vocab) }))).rejects.toThrow(/targets/);
    });

    it(`a 151,936-wide vocabulary row works (draw, logprob, top-20) ${tag}`, async () => {
      const rng = new Rng('qwen vocab');
      const vocab = 151_936;
      const logits = [rng.normals(vocab, 3), rng.normals(vocab, 3)];
      logits[1][vocab - 1] = 25; // the very last token dominates the second row
      const rows: SamplingRow[] = [
        { temperature: 0.9, topK: 50, topP: 0.9, seed: 31337, offset: 12 },
        { temperature: 1, seed: 4, offset: 0, minP: 0.001 },
      ];
      const res = await sample(dev(), logits, rows, 20);
      expectPredicted(res.tokens[0], logits[0], rows[0], 'row 0');
      expect(res.tokens[1]).toBe(vocab - 1);
      logits.forEach((l, r) => {
        const lsm = logSoftmax(l);
        expect(Math.abs(res.logprobs[r] - lsm[res.tokens[r]])).toBeLessThan(LOGPROB_TOL);
        expect(res.topTokens[r * 20]).toBe(argmax(l));
        expect(Math.abs(res.topLogprobs[r * 20] - lsm[argmax(l)])).toBeLessThan(LOGPROB_TOL);
      });
    });

    it(`the largest Philox uniform does not turn into infinite Gumbel noise ${tag}`, async () => {
      // For (seed 1234, offset 9049226) token 7 gets Philox's largest output. With 24 bits the uniform
      // (2^24 − 1 + 0.5)·2^−24 rounded to exactly 1.0 in f32, −log(−log u) was +∞ and the draw picked
      // token 7 whatever its probability (here e^−40); with 23 bits it is 1 − 2^−24.
      expect(philoxUniformF32(1234, 9049226, 7)).toBe(1 - 2 ** -24);
      const logits = Float32Array.from([0.1, 0.3, 0.2, 0, 0.25, 0.15, 0.05, -40]);
      const res = await sample(dev(), [logits], [{ temperature: 1, seed: 1234, offset: 9049226 }]);
      expect(res.tokens[0]).not.toBe(7);
    });

    if (dut.name !== 'cpu') {
      it(`the same seeded draws give the same tokens as the cpu ${tag}`, async () => {
        const rng = new Rng('cross device');
        const logits = Array.from({ length: 24 }, (_, i) => (i % 2 ? spreadLogits(rng, 2000, 10) : rng.normals(2000, 2)));
        const rows: SamplingRow[] = logits.map((_, i) => ({
          ...FILTERS[i % FILTERS.length][1],
          temperature: i % 7 === 0 ? 0 : 0.5 + (i % 4) * 0.3,
          seed: 1000 + i,
          offset: i * 17,
        }));
        const here = await sample(dev(), logits, rows, 5);
        const cpu = await sample(device('cpu'), logits, rows, 5);
        here.tokens.forEach((t, i) => {
          if (t !== cpu.tokens[i] && drawRef(logits[i], rows[i]).margin >= NEAR_TIE)
            throw new Error(`row ${i}: ${dut.name} drew ${t}, cpu drew ${cpu.tokens[i]}`);
        });
        expect(Array.from(here.topTokens)).toEqual(Array.from(cpu.topTokens));
      });
    }
  });
}
