// Prompt scoring cost: the same prompt prefilled plainly (maxTokens 1) and scored (promptLogprobs, maxTokens 0),
// interleaved in one process, on the demo model (hidden 256, 4 layers, Qwen3's 151,936-token vocabulary) on
// the CPU. Scoring adds an LM-head projection per prompt row (done ROW_LOGITS_CHUNK rows at a time) and the
// sample op's reduction of each row; the demo model's layers are small next to its LM head, so this is close
// to the worst case of the ratio. Run: `npx tsx bench/prompt-logprobs.ts [promptTokens] [reps]`.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel, writeDemoModel, type SamplingOptions } from '../src/index.js';
import { ROW_LOGITS_CHUNK } from '../src/model/index.js';
import { checkQuiet, runInfo, saveResults, type Row } from './results.js';

const promptTokens = Number(process.argv[2] ?? 512);
const reps = Number(process.argv[3] ?? 3);

const dir = mkdtempSync(path.join(os.tmpdir(), 'paralon-bench-score-'));
writeDemoModel(dir);
const model = await loadModel(dir, { device: 'cpu', maxNumBatchedTokens: 512, maxNumSeqs: 8, prefixCaching: false, kvCacheMemory: 2 ** 28 });
const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % 150_000);

async function timed(options: SamplingOptions): Promise<number> {
  const start = performance.now();
  for await (const _ of model.generate(prompt, options));
  return performance.now() - start;
}

const cases: [string, SamplingOptions][] = [
  ['prefill (maxTokens 1)', { maxTokens: 1, temperature: 0 }],
  ['score, promptLogprobs 1 (maxTokens 0)', { maxTokens: 0, promptLogprobs: 1 }],
  ['score, promptLogprobs 20 (maxTokens 0)', { maxTokens: 0, promptLogprobs: 20 }],
];
await timed(cases[0][1]); // warm-up
await checkQuiet();
const times = cases.map(() => [] as number[]);
for (let r = 0; r < reps; r++) for (const [i, [, options]] of cases.entries()) times[i].push(await timed(options));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(times[0]);
const rows: Row[] = cases.map(([name], i) => ({
  case: name,
  'median ms': median(times[i]),
  'ms per prompt token': median(times[i]) / promptTokens,
  'vs prefill': median(times[i]) / base,
}));
const vocab = model.config.vocabSize;
const notes =
  `${promptTokens}-token prompt, ${reps} interleaved reps, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}. ` +
  `Largest logits buffer while scoring: ${ROW_LOGITS_CHUNK} × ${vocab} f32 = ${((ROW_LOGITS_CHUNK * vocab * 4) / 2 ** 20).toFixed(1)} MiB ` +
  `(all rows at once would be ${((promptTokens * vocab * 4) / 2 ** 20).toFixed(0)} MiB).`;
console.log(notes);
console.table(rows);
console.log(saveResults('prompt-logprobs-cpu', runInfo('prompt logprobs', 'cpu'), { promptTokens, reps, times }, rows, notes).join('\n'));
model.dispose();
rmSync(dir, { recursive: true, force: true });
