import { it } from 'vitest';
import { Device } from '../../src/runtime/index.js';
import { collect, loadTiny, randomTokens, rng, writeTinyModel } from './fixture.js';
it('explore', async () => {
  const dir = writeTinyModel();
  const device = Device.open('cpu', { threads: 1 });
  const model = await loadTiny(dir, device, { maxNumBatchedTokens: 64, prefixCaching: false });
  const r = rng(1);
  const prompts = (process.env.SMALL ? [2, 1, 3] : [5, 17, 33, 70, 1, 9, 130, 41, 3, 12, 50, 2]).map((n) => randomTokens(r, n));
  const o = { temperature: 0, maxTokens: 40, ignoreEos: true, logprobs: true };
  const seq = [];
  for (const p of prompts) seq.push(await collect(model.generate(p, o)));
  const conc = await Promise.all(prompts.map((p) => collect(model.generate(p, o))));
  let maxd = 0, nd = 0, n = 0;
  for (let i = 0; i < prompts.length; i++) for (let j = 0; j < 40 && j < seq[i].logprobs.length; j++) { const d = Math.abs(seq[i].logprobs[j].logprob - conc[i].logprobs[j].logprob); n++; if (d > 0) nd++; maxd = Math.max(maxd, d); }
  console.log('logprob diffs', nd, '/', n, 'max', maxd, 'tokens equal', seq.every((s, i) => s.tokenIds.join() === conc[i].tokenIds.join()));
  model.dispose(); device.dispose();
});
