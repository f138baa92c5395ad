// `npm run bench -- soak [--requests N] [--concurrency C] [--seconds S]`: two replicas sharing one
// throwaway PostgreSQL behind nginx (test/server/fleet-harness.ts), all on loopback, under N requests
// (default 10,000; stops early after S seconds) with random endpoints, streaming on and off, n, stop
// strings, max_tokens and client aborts (mid-prefill and mid-stream); replica 2 is restarted (SIGTERM,
// drain, start) when 40 % of the requests (or of the time budget) have been sent. Afterwards: every replica's /metrics must show 0 KV
// blocks in use and 0 running requests; every completed request's usage row must equal the usage its
// client received (matched by response id), every aborted one's row must hold at least the tokens its
// client saw, and no row may be missing, running or interrupted. Reports requests/s, outcomes by
// class and p50/p99 latencies in bench/results/soak.{json,md}; exits 1 when a check fails.
import { rmSync } from 'node:fs';
import { writeDemoModel } from '../src/index.js';
import { openStore } from '../src/server/store/open.js';
import type { UsageRecord } from '../src/server/store/types.js';
import { DEMO_MODEL_ID, tempDir } from '../test/server/fixture.js';
import { metricValue, nginxUnavailable, Replica, startNginx } from '../test/server/fleet-harness.js';
import { postgresUnavailable, startPostgres } from '../test/server/postgres-cluster.js';
import { checkQuiet, runInfo, saveResults, type Row } from './results.js';

interface Options {
  requests: number;
  concurrency: number;
  seconds: number;
  seed: number;
}

function parse(argv: string[]): Options {
  const o: Options = { requests: 10_000, concurrency: 16, seconds: 600, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => Number(argv[++i]);
    if (a === '--requests') o.requests = v();
    else if (a === '--concurrency') o.concurrency = v();
    else if (a === '--seconds') o.seconds = v();
    else if (a === '--seed') o.seed = v();
    else throw new Error(`bench soak: unknown option ${a}`);
  }
  for (const [k, x] of Object.entries(o)) if (!Number.isInteger(x) || x < 1) throw new Error(`bench soak: --${k} must be a positive integer`);
  return o;
}

/** mulberry32: a small seeded generator, so a run's request mix is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Abort = { kind: 'none' } | { kind: 'prefill'; afterMs: number } | { kind: 'stream'; afterEvents: number };
type Outcome = 'completed' | 'aborted' | 'http-429' | 'http-4xx' | 'http-5xx' | 'network';

interface Result {
  outcome: Outcome;
  /** Response id without its prefix, when the client saw one. */
  id: string | null;
  stream: boolean;
  usage: { prompt_tokens: number; completion_tokens: number } | null;
  /** Content events (streams) the client received: a lower bound of the tokens generated. */
  events: number;
  ms: number;
}

function randomRequest(random: () => number, i: number) {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
  const chat = random() < 0.8;
  const stream = random() < 0.5;
  const body: Record<string, unknown> = {
    model: DEMO_MODEL_ID,
    max_tokens: 1 + Math.floor(random() * 24),
    n: pick([1, 1, 1, 2, 3]),
    temperature: pick([0, 0.7, 1]),
    ignore_eos: random() < 0.5,
    ...(random() < 0.25 ? { stop: pick([['e'], [' the', '.'], ['a', 'o', '\n']]) } : {}),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
  const text = `Soak request ${i}: ${'tell me something '.repeat(1 + Math.floor(random() * 6))}`;
  if (chat) body.messages = [{ role: 'user', content: text }];
  else body.prompt = text;
  const r = random();
  const abort: Abort = r < 0.1 ? { kind: 'prefill', afterMs: Math.floor(random() * 5) } : r < 0.2 && stream ? { kind: 'stream', afterEvents: 1 + Math.floor(random() * 4) } : { kind: 'none' };
  return { path: chat ? '/v1/chat/completions' : '/v1/completions', body, stream, abort };
}

async function send(base: string, key: string, req: ReturnType<typeof randomRequest>): Promise<Result> {
  const t0 = performance.now();
  const controller = new AbortController();
  const result: Result = { outcome: 'completed', id: null, stream: req.stream, usage: null, events: 0, ms: 0 };
  const timer = req.abort.kind === 'prefill' ? setTimeout(() => controller.abort(), req.abort.afterMs) : undefined;
  try {
    const res = await fetch(base + req.path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(req.body),
      signal: controller.signal,
    });
    if (!res.ok) {
      await res.text();
      result.outcome = res.status === 429 ? 'http-429' : res.status >= 500 ? 'http-5xx' : 'http-4xx';
      return result;
    }
    if (!req.stream) {
      const body = (await res.json()) as { id: string; usage: Result['usage'] };
      result.id = body.id.replace(/^(chat)?cmpl-/, '');
      result.usage = body.usage;
      return result;
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
        const chunk = JSON.parse(event.slice(6)) as { id?: string; error?: unknown; usage?: Result['usage']; choices?: { delta?: { content?: string }; text?: string }[] };
        if (chunk.error) throw new Error(`stream error: ${JSON.stringify(chunk.error)}`);
        result.id ??= chunk.id?.replace(/^(chat)?cmpl-/, '') ?? null;
        if (chunk.usage) result.usage = chunk.usage;
        if (chunk.choices?.some((c) => c.delta?.content || c.text)) result.events++;
        if (req.abort.kind === 'stream' && result.events >= req.abort.afterEvents && !result.usage) {
          controller.abort();
          await reader.cancel().catch(() => {});
          result.outcome = 'aborted';
          return result;
        }
      }
    }
    if (!result.usage) throw new Error('the stream ended without usage');
    return result;
  } catch (error) {
    result.outcome = controller.signal.aborted ? 'aborted' : 'network';
    if (result.outcome === 'network') console.error(`request failed: ${error instanceof Error ? error.message : String(error)}`);
    return result;
  } finally {
    clearTimeout(timer);
    result.ms = performance.now() - t0;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return check();
}

export async function benchSoak(argv: string[]): Promise<void> {
  const o = parse(argv);
  const missing = postgresUnavailable() ?? nginxUnavailable();
  if (missing) throw new Error(`bench soak needs PostgreSQL and nginx: ${missing}`);
  const modelDir = tempDir('soak-model');
  writeDemoModel(modelDir);
  const cluster = await startPostgres();
  const databaseUrl = await cluster.createDatabase();
  const replicas = ['soak-1', 'soak-2'].map((replicaId) => new Replica({ databaseUrl, modelDir, modelId: DEMO_MODEL_ID, replicaId, replicaTimeout: 5 }));
  const store = await openStore({ dataDir: modelDir, databaseUrl });
  const cleanup = async () => {
    for (const r of replicas) await r.kill9();
    await store.close();
    await cluster.stop();
    rmSync(modelDir, { recursive: true, force: true });
  };
  try {
    for (const r of replicas) await r.start();
    const nginx = await startNginx(replicas.map((r) => r.port));
    const { key, info } = await store.keys.create('soak');
    await checkQuiet();

    const random = rng(o.seed);
    const results: Result[] = [];
    const restartAt = Math.floor(o.requests * 0.4);
    let next = 0;
    let restart: Promise<void> | null = null;
    let restartedAt = -1;
    const t0 = performance.now();
    const deadline = Date.now() + o.seconds * 1000;
    const restartBy = Date.now() + o.seconds * 400;
    console.error(`soak: ${o.requests} requests, concurrency ${o.concurrency}, at most ${o.seconds} s`);
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (next < o.requests && Date.now() < deadline) {
          const i = next++;
          // At 40 % of the requests, or of the time budget when that comes first.
          if (restart === null && (i >= restartAt || Date.now() > restartBy))
            restart = (async () => {
              restartedAt = i;
              console.error(`soak: restarting replica 2 at request ${i}`);
              await replicas[1].stop();
              await replicas[1].start();
              console.error('soak: replica 2 is back');
            })();
          results.push(await send(nginx.url, key, randomRequest(random, i)));
          if (results.length % 500 === 0) console.error(`soak: ${results.length} done`);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    if (restart) await restart;

    // Every row settled, every replica idle.
    const settled = await waitUntil(async () => (await store.usage.recent(1000)).every((r) => r.state !== 'running'), 30_000);
    const idle = await waitUntil(async () => {
      const texts = await Promise.all(replicas.map((r) => r.metrics()));
      return texts.every((t) => metricValue(t, 'paralon_kv_blocks_used') === 0 && metricValue(t, 'paralon_requests_running') === 0);
    }, 30_000);
    const metrics = await Promise.all(replicas.map(async (r) => {
      const t = await r.metrics();
      return { kvBlocksUsed: metricValue(t, 'paralon_kv_blocks_used'), running: metricValue(t, 'paralon_requests_running') };
    }));

    const rows: UsageRecord[] = (await store.usage.recent(o.requests * 2)).filter((r) => r.keyId === info.id);
    const byId = new Map(rows.map((r) => [r.requestId, r]));
    const seen = new Set<string>();
    let completedMismatch = 0;
    let completedMissing = 0;
    let abortedShort = 0;
    let clientPrompt = 0;
    let clientCompletion = 0;
    for (const r of results) {
      if (r.id) seen.add(r.id);
      const row = r.id ? byId.get(r.id) : undefined;
      if (r.outcome === 'completed') {
        clientPrompt += r.usage!.prompt_tokens;
        clientCompletion += r.usage!.completion_tokens;
        if (!row) completedMissing++;
        else if (row.promptTokens !== r.usage!.prompt_tokens || row.completionTokens !== r.usage!.completion_tokens || row.finishReason === 'cancelled')
          completedMismatch++;
      } else if (r.outcome === 'aborted' && r.id && (!row || row.completionTokens < r.events)) abortedShort++;
    }
    const abortedUnseen = results.filter((r) => r.outcome === 'aborted' && !r.id).length;
    const unmatchedRows = rows.filter((r) => !seen.has(r.requestId)).length;
    const badState = rows.filter((r) => r.state !== 'completed').length;
    const ledger = await (await fetch(`${nginx.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } })).json();
    const rowSum = rows.reduce((s, r) => s + r.promptTokens + r.completionTokens, 0);
    await nginx.stop();

    const count = (outcome: Outcome) => results.filter((r) => r.outcome === outcome).length;
    const completed = results.filter((r) => r.outcome === 'completed');
    const checks = {
      settled,
      idle,
      'completed rows missing': completedMissing,
      'completed rows differing from the client usage': completedMismatch,
      'aborted rows with fewer tokens than the client saw': abortedShort,
      'rows no client saw (≤ aborts before any byte)': `${unmatchedRows} ≤ ${abortedUnseen}`,
      'rows running or interrupted': badState,
      '/v1/usage total = sum of rows': ledger.total.total_tokens === rowSum,
    };
    const failed =
      restartedAt < 0 ||
      !settled || !idle || completedMissing + completedMismatch + abortedShort + badState > 0 || unmatchedRows > abortedUnseen || ledger.total.total_tokens !== rowSum ||
      count('network') + count('http-5xx') + count('http-4xx') + count('http-429') > 0;
    const table: Row[] = (['completed', 'aborted', 'http-429', 'http-4xx', 'http-5xx', 'network'] as const).map((outcome) => ({ outcome, requests: count(outcome) }));
    const latency = (xs: Result[]) => ({ p50: Math.round(percentile(xs.map((r) => r.ms), 50)), p99: Math.round(percentile(xs.map((r) => r.ms), 99)) });
    const summary = {
      replicaRestartedAtRequest: restartedAt,
      requestsSent: results.length,
      requestsPlanned: o.requests,
      concurrency: o.concurrency,
      seconds: Math.round(seconds * 10) / 10,
      requestsPerSecond: Math.round((results.length / seconds) * 10) / 10,
      latencyMsCompleted: latency(completed),
      latencyMsCompletedStreaming: latency(completed.filter((r) => r.stream)),
      latencyMsCompletedNonStreaming: latency(completed.filter((r) => !r.stream)),
      ledgerTokens: { prompt: ledger.total.prompt_tokens, completion: ledger.total.completion_tokens, rows: rows.length },
      completedClientTokens: { prompt: clientPrompt, completion: clientCompletion },
      replicaMetricsAfter: metrics,
      checks,
      passed: !failed,
    };
    const notes = [
      `${results.length} of ${o.requests} requests in ${summary.seconds} s (${summary.requestsPerSecond} req/s) at concurrency ${o.concurrency}, two replicas (CPU, demo model, 1 thread each) + nginx + PostgreSQL on loopback; ${restartedAt >= 0 ? `replica 2 restarted (SIGTERM, drain, start) at request ${restartedAt}` : 'replica 2 was NOT restarted'}.`,
      `Latency of completed requests: p50 ${summary.latencyMsCompleted.p50} ms, p99 ${summary.latencyMsCompleted.p99} ms (streaming p50/p99 ${summary.latencyMsCompletedStreaming.p50}/${summary.latencyMsCompletedStreaming.p99} ms, non-streaming ${summary.latencyMsCompletedNonStreaming.p50}/${summary.latencyMsCompletedNonStreaming.p99} ms).`,
      `After the run: ${metrics.map((m, i) => `replica ${i + 1}: ${m.kvBlocksUsed} KV blocks used, ${m.running} running`).join('; ')}.`,
      `Checks: ${Object.entries(checks).map(([k, v]) => `${k}: ${v}`).join('; ')}. ${failed ? 'FAILED' : 'All passed.'}`,
    ].join('\n\n');
    console.log(notes);
    for (const f of saveResults('soak', runInfo('soak', 'cpu (2 replicas)'), summary, table, notes)) console.error(`wrote ${f}`);
    if (failed) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
