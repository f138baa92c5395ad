// `npm run bench -- server [--concurrency 1,4,16,64] [--requests N] [--max-tokens N] [--seconds S]`:
// a load generator on loopback against a real server on the demo model (or --model DIR): streaming
// chat requests at fixed concurrency, bounded in count and time, reporting requests/s, aggregate
// output tok/s, time-to-first-token and inter-token latency percentiles, and errors (must be zero).
import { mkdtempSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel, writeDemoModel } from '../src/index.js';
import { createServer } from '../src/server/app.js';
import { runInfo, saveResults, markdownTable, checkQuiet, type Row } from './results.js';

interface Options {
  concurrency: number[];
  requests: number;
  maxTokens: number;
  seconds: number;
  model: string | null;
  device: string;
}

function parse(argv: string[]): Options {
  const o: Options = { concurrency: [1, 4, 16, 64], requests: 0, maxTokens: 32, seconds: 60, model: null, device: 'auto' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--concurrency') o.concurrency = v().split(',').map(Number);
    else if (a === '--requests') o.requests = Number(v());
    else if (a === '--max-tokens') o.maxTokens = Number(v());
    else if (a === '--seconds') o.seconds = Number(v());
    else if (a === '--model') o.model = v();
    else if (a === '--device') o.device = v();
    else throw new Error(`bench server: unknown option ${a}`);
  }
  return o;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface RequestResult {
  ok: boolean;
  ttft: number;
  gaps: number[];
  tokens: number;
}

/** One streaming chat request; times the first content chunk and the gaps between chunks. */
async function streamOnce(url: string, model: string, i: number, maxTokens: number): Promise<RequestResult> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: `Request ${i}: write a short story about a lighthouse.` }],
      max_tokens: maxTokens,
      ignore_eos: true,
      temperature: 0.8,
      seed: i,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok || !res.body) return { ok: false, ttft: NaN, gaps: [], tokens: 0 };
  const decoder = new TextDecoder();
  let buffer = '';
  let last = 0;
  let ttft = NaN;
  const gaps: number[] = [];
  let tokens = 0;
  let done = false;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 2);
      const data = event.replace(/^data: /, '');
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const json = JSON.parse(data);
      if (json.usage) tokens = json.usage.completion_tokens;
      const delta = json.choices?.[0]?.delta;
      if (delta && (delta.content || delta.reasoning_content)) {
        const now = performance.now();
        if (Number.isNaN(ttft)) ttft = now - t0;
        else gaps.push(now - last);
        last = now;
      }
    }
  }
  return { ok: done && tokens > 0, ttft, gaps, tokens };
}

export async function benchServer(argv: string[]): Promise<void> {
  const opt = parse(argv);
  let dir = opt.model;
  if (!dir) {
    dir = path.join(os.tmpdir(), 'paralon-bench-demo-model');
    if (!existsSync(path.join(dir, 'config.json'))) await writeDemoModel(dir);
  }
  await checkQuiet();
  const maxConc = Math.max(...opt.concurrency);
  const model = await loadModel(dir, { device: opt.device as 'auto', maxNumSeqs: Math.max(64, maxConc), maxNumBatchedTokens: 1024, id: 'bench' });
  const app = await createServer({ model, modelId: 'bench', dataDir: mkdtempSync(path.join(os.tmpdir(), 'paralon-bench-data-')) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const url = `http://127.0.0.1:${address.port}/v1/chat/completions`;
  console.log(`server bench: ${model.id} on ${model.device.description}, ${opt.maxTokens} tokens per request`);
  const rows: Row[] = [];
  for (const c of opt.concurrency) {
    const total = opt.requests || Math.max(2 * c, 8);
    const deadline = performance.now() + opt.seconds * 1000;
    let next = 0;
    const results: RequestResult[] = [];
    const t0 = performance.now();
    console.error(`concurrency ${c}: ${total} requests (at most ${opt.seconds} s)…`);
    const ticker = setInterval(() => console.error(`  concurrency ${c}: ${results.length}/${total} requests done, ${((performance.now() - t0) / 1000).toFixed(0)} s`), 5000);
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (next < total && performance.now() < deadline) {
          const i = next++;
          results.push(await streamOnce(url, 'bench', i, opt.maxTokens).catch(() => ({ ok: false, ttft: NaN, gaps: [], tokens: 0 })));
        }
      }),
    ).finally(() => clearInterval(ticker));
    const seconds = (performance.now() - t0) / 1000;
    const ok = results.filter((r) => r.ok);
    const ttft = ok.map((r) => r.ttft).sort((a, b) => a - b);
    const gaps = ok.flatMap((r) => r.gaps).sort((a, b) => a - b);
    const tokens = ok.reduce((s, r) => s + r.tokens, 0);
    const row: Row = {
      concurrency: c,
      requests: results.length,
      errors: results.length - ok.length,
      'req/s': ok.length / seconds,
      'output tok/s': tokens / seconds,
      'TTFT p50 ms': percentile(ttft, 50),
      'TTFT p99 ms': percentile(ttft, 99),
      'ITL p50 ms': percentile(gaps, 50),
      'ITL p99 ms': percentile(gaps, 99),
    };
    rows.push(row);
    console.log(Object.entries(row).map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(2) : v}`).join('  '));
  }
  await app.close();
  model.dispose();
  const base = rows[0]['output tok/s'] as number;
  const notes = `Streaming chat requests over loopback to a real server (${model.id}, ${opt.maxTokens} output tokens each, ignore_eos, temperature 0.8). Aggregate output tok/s relative to concurrency ${opt.concurrency[0]}: ${rows.map((r) => `${r.concurrency}: ${((r['output tok/s'] as number) / base).toFixed(2)}×`).join(', ')}.`;
  const files = saveResults(`server-${model.device.name.replace(':', '')}`, runInfo('server', model.device.description), { options: opt }, rows, notes);
  console.log('\n' + markdownTable(rows) + '\n' + notes);
  console.log(`wrote ${files.join(', ')}`);
  if (rows.some((r) => (r.errors as number) > 0)) process.exitCode = 1;
}
