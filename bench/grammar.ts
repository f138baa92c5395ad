// `npm run bench -- grammar [--batch 1,16] [--decode-tokens N] [--threads N] [--model DIR]`: the cost of
// grammar-constrained decoding on the CPU with the demo model (Qwen3's 151,936-wide vocabulary), or with
// the Qwen3 checkpoint in DIR (e.g. bench/.cache/e2e-qwen3-0.6b-bf16, which `bench -- e2e` writes).
//   compile: per format, the first compile (cold, on a warm worker) and a repeat (the pool's cache);
//            plus the worker's start (tokenizer info + one-time vocabulary preprocessing).
//   decode:  ms per decode step with B requests, unconstrained vs every request under a JSON-schema
//            grammar kept inside a long string (xgrammar's slowest masks, ~4 ms tails), and the overhead.
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, writeDemoModel, type Model } from '../src/index.js';
import type { GrammarFormat } from '../src/grammar/index.js';
import { planOutput } from '../src/engine/output-format.js';
import { batchWindow } from './e2e-batched.js';
import { checkQuiet, runInfo, saveResults, type Row } from './results.js';

const TOOLS = [
  { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] } }, required: ['city'] } } },
  { type: 'function' as const, function: { name: 'search', parameters: { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'integer' } }, required: ['query'] } } },
];

const SEVEN_FIELDS = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    email: { type: 'string' },
    role: { enum: ['admin', 'user', 'guest'] },
    active: { type: 'boolean' },
    address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } }, required: ['city'] },
    tags: { type: 'array', items: { type: 'string' } },
  },
  required: ['id', 'name', 'role'],
};

/** String length limits are what makes xgrammar compiles slow (each limit unrolls into states). */
const TEN_LIMITED = {
  type: 'object',
  properties: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`field_${i}`, { type: 'string', maxLength: 20 + i }])),
};

/** A string that never closes within the bench: every step fills a mask mid-string. */
const LONG_STRING: GrammarFormat = { type: 'json_schema', json_schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } };

const FORMATS: [string, GrammarFormat][] = [
  ['json_object', planOutput({ responseFormat: { type: 'json_object' } }, 'content').format!],
  ['json_schema, 7 fields nested', planOutput({ responseFormat: { type: 'json_schema', json_schema: { name: 'x', schema: SEVEN_FIELDS } } }, 'content').format!],
  ["tools (2 functions), tool_choice 'required'", planOutput({ tools: TOOLS, toolChoice: 'required' }, 'content').format!],
  ["tools (2 functions), tool_choice 'auto', thinking on", planOutput({ tools: TOOLS, toolChoice: 'auto' }, 'detect').format!],
  ['json_schema, 10 strings with maxLength', planOutput({ responseFormat: { type: 'json_schema', json_schema: { name: 'x', schema: TEN_LIMITED } } }, 'content').format!],
];

export async function benchGrammar(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { batch: { type: 'string', default: '1,16' }, 'decode-tokens': { type: 'string', default: '24' }, threads: { type: 'string' }, model: { type: 'string' } },
  });
  const batches = values.batch.split(',').map(Number);
  const decodeTokens = Number(values['decode-tokens']);
  const demo = values.model === undefined;
  const dir = values.model ?? path.join(os.tmpdir(), `paralon-bench-grammar-${process.pid}`);
  if (demo) writeDemoModel(dir);
  const model = await loadModel(dir, {
    device: 'cpu',
    threads: values.threads ? Number(values.threads) : undefined,
    maxModelLen: 512,
    kvCacheMemory: 256 * 2 ** 20,
    maxNumSeqs: Math.max(...batches),
    grammarWorkers: 2,
    grammarCompileTimeoutMs: 60_000,
  });
  try {
    await checkQuiet();
    const rows: Row[] = [];
    let t = performance.now();
    await model.grammars.compile({ type: 'const_string', value: 'warm-up' });
    rows.push({ measure: 'grammar worker start (tokenizer info, vocabulary preprocessing)', ms: performance.now() - t });
    for (const [name, format] of FORMATS) {
      t = performance.now();
      await model.grammars.compile(format);
      const cold = performance.now() - t;
      t = performance.now();
      await model.grammars.compile(format);
      rows.push({ measure: `compile ${name}: cold`, ms: cold });
      rows.push({ measure: `compile ${name}: cached`, ms: performance.now() - t });
    }
    for (const b of batches) {
      const free = await stepMs(model, b, decodeTokens, false);
      const constrained = await stepMs(model, b, decodeTokens, true);
      rows.push({ measure: `decode step, batch ${b}: unconstrained`, ms: free });
      rows.push({ measure: `decode step, batch ${b}: every request constrained`, ms: constrained });
      rows.push({ measure: `decode step, batch ${b}: overhead %`, ms: (100 * (constrained - free)) / free });
    }
    const info = runInfo('grammar', `cpu (${model.device.name})`);
    const what = demo ? 'Demo model (Qwen3 shapes: hidden 256, 4 layers, vocabulary 151,936)' : `The checkpoint in ${path.basename(dir)} (${model.config.numLayers} layers, hidden ${model.config.hiddenSize})`;
    const files = saveResults(demo ? 'grammar-cpu' : `grammar-cpu-${path.basename(dir)}`, info, { decodeTokens }, rows, `${what}, greedy. Constrained rows: each request under a JSON-schema grammar, decoding inside an unbounded string (every step a full mask fill and upload).`);
    for (const row of rows) console.log(`${String(row.measure).padEnd(72)} ${Number(row.ms).toFixed(2)}`);
    console.log(files.join('\n'));
  } finally {
    model.dispose();
    if (demo) rmSync(dir, { recursive: true, force: true });
  }
}

/** ms per decode step while all B requests decode together (the e2e bench's batch window). */
async function stepMs(model: Model, batch: number, decodeTokens: number, constrained: boolean): Promise<number> {
  const prompt = model.tokenizer.encode('{"text": "', { addSpecialTokens: false });
  const constraints = constrained ? await Promise.all(Array.from({ length: batch }, () => model.grammars.constrain(LONG_STRING))) : [];
  // The constraint expects the output from the object's start: feed it the prompt's tokens first.
  for (const c of constraints)
    for (const t of prompt) {
      await c.nextMask();
      if (!c.accept(t)) throw new Error('the bench prompt does not fit its grammar');
    }
  const arrivals = Array.from({ length: batch }, (): number[] => []);
  const start = performance.now();
  await Promise.all(
    arrivals.map(async (times, i) => {
      const call = constrained ? { constraint: constraints[i] } : {};
      for await (const e of model.generate(prompt, { temperature: 0, maxTokens: 1 + decodeTokens, ignoreEos: true, logprobs: true }, call))
        if (e.type === 'delta') for (let k = 0; k < e.tokenIds.length; k++) times.push(performance.now());
    }),
  );
  const window = batchWindow(start, prompt.length, arrivals);
  return (1000 * batch) / window.decodeTokPerS;
}
