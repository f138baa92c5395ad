import { it } from 'vitest';
import { Device } from '../../src/runtime/index.js';
import { collect, loadTiny, randomTokens, rng, writeTinyModel } from './fixture.js';
it('explore', async () => {
  const dir = writeTinyModel({ tieWordEmbeddings: process.env.TIE === "1" });
  const device = Device.open('cpu', { threads: Number(process.env.TH ?? 2) });
  const model = await loadTiny(dir, device, { maxNumBatchedTokens: 64 });
  const r = rng(1);
  const prompts = [5, 17, 33, 70, 1, 9, 130, 41].map((n) => randomTokens(r, n));
  let t0 = performance.now();
  const seq = [];
  for (const p of prompts) seq.push(await collect(model.generate(p, { temperature: 0, maxTokens: 40, ignoreEos: true })));
  console.log("seq ms", performance.now() - t0, model.stats().engine.steps);
  t0 = performance.now();
  const conc = await Promise.all(prompts.map((p) => collect(model.generate(p, { temperature: 0, maxTokens: 40, ignoreEos: true }))));
  console.log("conc ms", performance.now() - t0, model.stats().engine.steps);
  for (let i = 0; i < prompts.length; i++) {
    console.log(i, seq[i].tokenIds.length, JSON.stringify(seq[i].text).slice(0, 60), seq[i].tokenIds.slice(0,12).join(" "), seq[i].tokenIds.join(',') === conc[i].tokenIds.join(','), seq[i].text === conc[i].text);
  }
  model.dispose(); device.dispose();
});
