// `npm run bench -- crosscheck [--model-shape dense,moe,yarn|0.6b] [--threads N]`: Paralon against an
// independent oracle, llama.cpp (node-llama-cpp 3.21.1, installed on demand), on the same random
// checkpoint with the real Qwen3 tokenizer, exported to an F32 GGUF. The small checkpoints (the
// default runs all three):
//
// - dense: a small Qwen3 (`qwen3`);
// - moe: a small Qwen3-MoE (`qwen3moe`: 16 experts, top-4, norm_topk_prob, experts stacked in the GGUF);
// - yarn: the dense shape with YaRN (factor 4 over an original context of 64 tokens, so every prompt
//   runs past the original context within the 256 positions it reaches; llama.cpp reads the
//   rope.scaling.* keys). Its long prompt is cut to fit the 256 positions.
//
// Checks:
//
// - next-token distributions after each prompt: Paralon's top-20 (logprobs) against llama.cpp's full
//   distribution, every probability within 1e-3, and llama.cpp's top-20 tokens present in Paralon's
//   top-20 unless below its 20th probability (+1e-3);
// - 64-token greedy continuations: identical token ids;
// - tokenization of hard strings (mixed scripts, emoji, code, whitespace runs, special tokens) and of
//   the prompts themselves: identical ids.
//
// Both sides compute in f32 with an f32 KV cache, llama.cpp with flash attention off: its default F16
// cache and flash-attention path round enough to move probabilities by 5e-3 to 2e-2. Prompts avoid the
// plain-vocabulary string "</s>", which llama.cpp treats as a control token, and add no BOS (Qwen3 has
// none). On the small checkpoint, prompts of up to 64 tokens also go to a float64 referee (the plain
// reference forward pass of test/model/reference.ts): when the two engines differ, it says which one
// is off. The referee reports; it does not fail the run.
//
// Exits 1 on any mismatch. Results: bench/results/crosscheck.{json,md} for the small checkpoints (a
// run of some of them replaces their rows and keeps the others'), crosscheck-<shape>.{json,md} else.
import type { Qwen3Config } from '../src/model/qwen3.js';
import type { Qwen3MoeConfig } from '../src/model/qwen3-moe.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, type Model } from '../src/index.js';
import type { ChatMessage, TokenLogprob } from '../src/engine/types.js';
import { cachedCheckpoint, cachedGguf, shapeSpec, type CheckpointSpec } from './checkpoints.js';
import { LlamaCppPeer } from './peers/llamacpp.js';
import { resultsDir, runInfo, saveResults, type Row, type RunInfo } from './results.js';
import { ReferenceQwen3 } from '../test/model/reference.js';
import { modelShapes } from './shapes.js';

const TOP_N = 20;
const PROB_TOLERANCE = 1e-3;
const GREEDY_TOKENS = 64;
/** Longest prompt sent to the float64 referee (it computes every position's logits in plain JS). */
const REFEREE_MAX_TOKENS = 64;

/** A small Qwen3 with Qwen3's vocabulary: head_dim ≠ hidden / heads, GQA 2:1, untied LM head. */
export const SMALL: CheckpointSpec = {
  hiddenSize: 256,
  intermediateSize: 704,
  numLayers: 4,
  numHeads: 8,
  numKvHeads: 4,
  headDim: 48,
  vocabSize: 151_936,
  tieWordEmbeddings: false,
  dtype: 'f32',
  seed: 11,
  eosTokenIds: [151_645, 151_643],
};

/** The small checkpoints, by --model-shape name. */
const SMALL_SPECS: Record<string, CheckpointSpec> = {
  dense: SMALL,
  // Qwen3-30B-A3B's routing shape scaled down: 16 experts, 4 per token, renormalised.
  moe: { ...SMALL, seed: 12, moe: { numExperts: 16, numExpertsPerTok: 4, moeIntermediateSize: 96, normTopkProb: true } },
  yarn: { ...SMALL, seed: 13, ropeScaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 64 } },
};

export interface Prompt {
  name: string;
  ids: number[];
}

/** Strings whose tokenization is easy to get wrong. */
const HARD_STRINGS: [string, string][] = [
  ['ascii', "Hello, world! How's it going? I'm fine; they'll see, we'd say, DON'T."],
  ['mixed scripts', '日本語のテキストと English, 中文标点，한국어 문장, русский текст, العربية, हिन्दी, ελληνικά, עברית'],
  ['emoji', '👋🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 ✨🔥 and 😀😀😀 repeated, ☃ snowman'],
  ['code', 'def f(x: int) -> dict:\n    """Doc."""\n    return {\'a\': [1, 2, 3], "b": x ** 2}  # comment\n\tif (x != 0 && y >= 1) { printf("%d\\n", x); }'],
  ['spaces and newlines', 'a  b   c    d          e\n\n\n\nf \n \n g\t\t h\r\n  \n\n   trailing   '],
  ['leading spaces', '   leading and    inner'],
  ['numbers', '1234567890 3.14159 1,000,000 2024-11-25 0x1F 1e-6 ½ ²'],
  ['accents (precomposed)', 'café naïve résumé Ångström façade'],
  ['special tokens', '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nok<|im_end|><|endoftext|>'],
  ['special tokens inline', 'text<|im_end|>more <tool_call>{"name": "f"}</tool_call> <|fim_prefix|>x<|fim_suffix|>'],
  ['urls and markup', 'https://example.com/a?b=c&d=e#f <div class="x">&amp;</div> **bold** `code` [link](http://x.y)'],
  ['long word', 'supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis'],
];

/** A deterministic text of well over 500 tokens. */
function longText(): string {
  const topics = ['the river', 'a lighthouse', 'the old library', 'mountain weather', 'a small bakery', 'the night train', 'winter gardens', 'the harbour'];
  const verbs = ['describes', 'remembers', 'questions', 'explains', 'imagines', 'measures'];
  const out: string[] = [];
  for (let i = 0; i < 40; i++) {
    const t = topics[i % topics.length];
    const v = verbs[(i * 5) % verbs.length];
    out.push(`Paragraph ${i + 1}: the narrator ${v} ${t}, noting ${i * 7 + 3} details and ${(i * 13) % 17} open questions before moving on.`);
  }
  return out.join('\n');
}

export function buildPrompts(model: Model): Prompt[] {
  const tok = model.tokenizer;
  const chat = (messages: ChatMessage[], enableThinking?: boolean) => model.encodeChat(messages, { enableThinking });
  return [
    { name: 'plain text', ids: tok.encode('The quick brown fox jumps over the lazy dog. Then it', { addSpecialTokens: false }) },
    { name: 'chat: system + user', ids: chat([{ role: 'system', content: 'You are a concise assistant.' }, { role: 'user', content: 'Name three prime numbers.' }]) },
    {
      name: 'chat: multi-turn, thinking off',
      ids: chat(
        [
          { role: 'user', content: 'Translate "bonjour" to English.' },
          { role: 'assistant', content: 'Hello.' },
          { role: 'user', content: 'And "merci" — in 日本語 too? 🙏' },
        ],
        false,
      ),
    },
    { name: 'code', ids: tok.encode('function fib(n) {\n  if (n < 2) return n;\n  return fib(n - 1) +', { addSpecialTokens: false }) },
    { name: 'long (500+ tokens)', ids: tok.encode(longText(), { addSpecialTokens: false }) },
  ];
}

export async function collect(model: Model, ids: number[], maxTokens: number, topLogprobs: number): Promise<{ tokens: number[]; logprobs: TokenLogprob[] }> {
  const tokens: number[] = [];
  const logprobs: TokenLogprob[] = [];
  // logprobs on: every token then comes as its own event, even where its text is not yet whole UTF-8.
  for await (const e of model.generate(ids, { temperature: 0, maxTokens, ignoreEos: true, logprobs: true, topLogprobs })) {
    if (e.type !== 'delta') continue;
    tokens.push(...e.tokenIds);
    logprobs.push(...(e.logprobs ?? []));
  }
  if (tokens.length !== maxTokens) throw new Error(`Paralon generated ${tokens.length} tokens, expected ${maxTokens}`);
  return { tokens, logprobs };
}

interface DistributionCheck {
  maxAbsDiff: number;
  top1Paralon: number;
  top1LlamaCpp: number;
  /** llama.cpp top-20 tokens missing from Paralon's top-20 although clearly above its 20th probability. */
  missing: number[];
  ok: boolean;
}

function compareDistributions(paralonTop: TokenLogprob['top'], llama: Map<number, number>): DistributionCheck {
  let maxAbsDiff = 0;
  for (const t of paralonTop) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(Math.exp(t.logprob) - (llama.get(t.tokenId) ?? 0)));
  const ours = new Set(paralonTop.map((t) => t.tokenId));
  const floor = Math.exp(paralonTop[paralonTop.length - 1].logprob);
  const missing: number[] = [];
  let rank = 0;
  for (const [id, p] of llama) {
    if (rank++ >= TOP_N) break;
    if (!ours.has(id) && p > floor + PROB_TOLERANCE) missing.push(id);
  }
  const top1LlamaCpp = llama.keys().next().value as number;
  return { maxAbsDiff, top1Paralon: paralonTop[0].tokenId, top1LlamaCpp, missing, ok: maxAbsDiff <= PROB_TOLERANCE && missing.length === 0 && paralonTop.length === TOP_N };
}

/** Max |p − p_f64| over Paralon's top-20 tokens, for each engine, against the float64 referee. */
function refereeErrors(referee: ReferenceQwen3, ids: number[], top: { id: number; p: number; llamaCpp: number }[]): { paralon: number; llamaCpp: number } {
  const logits = referee.logits(ids).at(-1)!;
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  let paralon = 0;
  let llamaCpp = 0;
  for (const t of top) {
    const p = Math.exp(logits[t.id] - max) / sum;
    paralon = Math.max(paralon, Math.abs(t.p - p));
    llamaCpp = Math.max(llamaCpp, Math.abs(t.llamaCpp - p));
  }
  return { paralon, llamaCpp };
}

export function firstDifference(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

interface CheckpointRun {
  rows: Row[];
  details: Record<string, unknown>[];
  failures: number;
  description: string;
  peer: string;
  info: RunInfo;
}

/** Runs every check on one checkpoint (`shapeName`: a SMALL_SPECS key or a model shape). */
async function crosscheckOne(shapeName: string, threads: number): Promise<CheckpointRun> {
  const small = SMALL_SPECS[shapeName];
  let spec: CheckpointSpec;
  if (small) spec = small;
  else if (modelShapes[shapeName]) spec = shapeSpec(modelShapes[shapeName], 'f32', 11);
  else throw new Error(`--model-shape: ${Object.keys(SMALL_SPECS).join(', ')} (comma-separated) or one of ${Object.keys(modelShapes).join(', ')}`);

  // 'crosscheck-small-f32' is the dense checkpoint's cache name from before the others existed.
  const dir = cachedCheckpoint(`crosscheck-${shapeName === 'dense' ? 'small' : shapeName}-f32`, spec);
  const gguf = cachedGguf(dir, 'f32');
  const model = await loadModel(dir, { device: 'cpu', threads, kvCacheDType: 'f32', prefixCaching: false, kvCacheMemory: 2 ** 30 });
  const contextSize = Math.min(2048, model.config.maxPositionEmbeddings);
  const peer = await LlamaCppPeer.open(gguf, { threads, contextSize, batchSize: 512, kvCacheType: 'F32', flashAttention: false });
  const referee = small ? ReferenceQwen3.load(dir) : null;
  const rows: Row[] = [];
  const details: Record<string, unknown>[] = [];
  let failures = 0;
  const info = runInfo('crosscheck', 'cpu');
  try {
    console.error(`[${shapeName}] Paralon: cpu, ${threads} threads, f32 weights, f32 KV cache; ${peer.description}`);
    // A prompt longer than the context leaves room for the greedy tokens is cut (the YaRN checkpoint's 256 positions).
    const room = contextSize - GREEDY_TOKENS;
    const prompts = buildPrompts(model).map((p) => (p.ids.length <= room ? p : { name: `${p.name.replace(/ \(.*\)$/, '')} (cut to ${room} tokens)`, ids: p.ids.slice(0, room) }));
    for (const p of prompts) {
      const t0 = performance.now();
      const first = await collect(model, p.ids, 1, TOP_N);
      const llamaProbs = await peer.nextTokenProbabilities(p.ids);
      const dist = compareDistributions(first.logprobs[0].top, llamaProbs);
      const ours = await collect(model, p.ids, GREEDY_TOKENS, 2);
      const theirs = await peer.greedy(p.ids, GREEDY_TOKENS);
      const diverge = firstDifference(ours.tokens, theirs);
      const ok = dist.ok && diverge === -1;
      if (!ok) failures++;
      const top = first.logprobs[0].top.map((t) => ({ id: t.tokenId, p: Math.exp(t.logprob), llamaCpp: llamaProbs.get(t.tokenId) ?? 0 }));
      const vsF64 = referee && p.ids.length <= REFEREE_MAX_TOKENS ? refereeErrors(referee, p.ids, top) : null;
      rows.push({
        checkpoint: shapeName,
        check: 'generation',
        case: p.name,
        tokens: p.ids.length,
        'max Δp top-20': dist.maxAbsDiff,
        'Paralon vs f64': vsF64?.paralon ?? '',
        'llama.cpp vs f64': vsF64?.llamaCpp ?? '',
        'greedy 64 identical': diverge === -1 ? 'yes' : `no (from token ${diverge})`,
        result: ok ? 'pass' : 'FAIL',
      });
      details.push({
        checkpoint: shapeName,
        prompt: p.name,
        promptTokens: p.ids.length,
        distribution: dist,
        paralonTop: top,
        float64Referee: vsF64,
        greedyParalon: ours.tokens,
        greedyLlamaCpp: theirs,
        firstDifference: diverge,
        // At a divergence, Paralon's top-1 minus top-2 probability: a near tie explains a rounding-level flip.
        divergenceMargin: diverge >= 0 && diverge < ours.logprobs.length ? Math.exp(ours.logprobs[diverge].top[0].logprob) - Math.exp(ours.logprobs[diverge].top[1].logprob) : null,
      });
      console.error(`[${shapeName}] ${p.name}: ${p.ids.length} tokens, max |Δp| ${dist.maxAbsDiff.toExponential(2)}, greedy ${diverge === -1 ? 'identical' : `differs at ${diverge}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }

    const tokenizationCases: [string, string][] = [...HARD_STRINGS, ...prompts.map((p): [string, string] => [`prompt: ${p.name}`, model.tokenizer.decode(p.ids)])];
    for (const [name, text] of tokenizationCases) {
      const ours = model.tokenizer.encode(text, { addSpecialTokens: false });
      const theirs = peer.tokenize(text);
      const diverge = firstDifference(ours, theirs);
      if (diverge !== -1) failures++;
      rows.push({ checkpoint: shapeName, check: 'tokenization', case: name, tokens: ours.length, 'max Δp top-20': '', 'Paralon vs f64': '', 'llama.cpp vs f64': '', 'greedy 64 identical': '', result: diverge === -1 ? 'pass' : `FAIL at token ${diverge}` });
      details.push({ checkpoint: shapeName, tokenization: name, text, paralon: ours, llamaCpp: theirs, firstDifference: diverge });
    }
  } finally {
    await peer.dispose();
    model.dispose();
  }

  const c = model.config as Qwen3Config & Partial<Qwen3MoeConfig>;
  const mlp = c.numExperts ? `${c.numExperts} experts × MLP ${c.moeIntermediateSize}, top-${c.numExpertsPerTok}` : `MLP ${c.intermediateSize}`;
  const yarn = c.ropeScaling ? `, YaRN ×${c.ropeScaling.factor} over ${c.ropeScaling.originalMaxPositionEmbeddings} positions` : '';
  const kind = small ? `small random ${c.numExperts ? 'Qwen3-MoE' : 'Qwen3'}` : `${modelShapes[shapeName].name}-shaped random Qwen3`;
  const description = `${kind} (hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads}/${c.numKvHeads} heads × ${c.headDim}, ${mlp}, vocab ${c.vocabSize}, ${c.tieWordEmbeddings ? 'tied' : 'untied'}${yarn}), f32`;
  return { rows, details, failures, description, peer: peer.description, info };
}

/** Rows and details of an earlier run's checkpoints that this run did not redo (rows before the checkpoint column are 'dense'). */
function earlierRuns(file: string, redone: Set<string>) {
  if (!existsSync(file)) return { rows: [] as Row[], details: [] as Record<string, unknown>[], checkpoints: {} as Record<string, unknown> };
  const old = JSON.parse(readFileSync(file, 'utf8')) as { rows: Row[]; details: Record<string, unknown>[]; checkpoints?: Record<string, unknown>; checkpoint?: string; date: string; commit: string };
  const keep = (x: { checkpoint?: unknown }) => !redone.has(String(x.checkpoint ?? 'dense'));
  const checkpoints = old.checkpoints ?? { dense: { description: old.checkpoint, date: old.date, commit: old.commit } };
  return {
    rows: old.rows.filter(keep).map((r) => ({ checkpoint: 'dense', ...r })),
    details: old.details.filter(keep).map((d) => ({ checkpoint: 'dense', ...d })),
    checkpoints: Object.fromEntries(Object.entries(checkpoints).filter(([k]) => !redone.has(k))),
  };
}

export async function benchCrosscheck(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { 'model-shape': { type: 'string', default: Object.keys(SMALL_SPECS).join(',') }, threads: { type: 'string', default: '2' } } });
  const shapes = values['model-shape']!.split(',').map((x) => (x === 'small' ? 'dense' : x));
  const threads = Number(values.threads);
  const allSmall = shapes.every((x) => SMALL_SPECS[x]);
  if (!allSmall && shapes.length > 1) throw new Error('--model-shape: one model shape at a time (the small checkpoints may be combined)');

  const runs = new Map<string, CheckpointRun>();
  for (const shape of shapes) runs.set(shape, await crosscheckOne(shape, threads));
  const name = allSmall ? 'crosscheck' : `crosscheck-${shapes[0]}`;
  const earlier = allSmall ? earlierRuns(path.join(resultsDir, `${name}.json`), new Set(shapes)) : { rows: [], details: [], checkpoints: {} };
  const now = [...runs.values()];
  const rows = [...earlier.rows, ...now.flatMap((r) => r.rows)];
  const details = [...earlier.details, ...now.flatMap((r) => r.details)];
  const checkpoints: Record<string, unknown> = { ...earlier.checkpoints };
  for (const [shape, r] of runs) checkpoints[shape] = { description: r.description, date: r.info.date, commit: r.info.commit, failures: r.failures };
  const failures = now.reduce((a, r) => a + r.failures, 0);
  const describe = Object.entries(checkpoints)
    .map(([k, v]) => { const c = v as { description: string; date: string; commit: string }; return `- ${k}: ${c.description} (run ${c.date}, commit ${c.commit})`; })
    .join('\n');
  const notes =
    `Paralon (cpu, ${threads} threads, f32 weights, f32 KV cache) vs ${now[0].peer}, with Qwen3's tokenizer, each checkpoint exported to an F32 GGUF by Paralon's writer:\n\n${describe}\n\n` +
    `Pass: every top-${TOP_N} probability within ${PROB_TOLERANCE} of llama.cpp's, ${GREEDY_TOKENS}-token greedy continuations identical, token ids identical. ` +
    `"vs f64": max |p − p_float64| over the top-${TOP_N}, against the float64 reference forward pass (prompts of ≤ ${REFEREE_MAX_TOKENS} tokens on the small checkpoints; informative, not a pass criterion). ` +
    `${failures === 0 ? 'All checks of this run passed.' : `${failures} check(s) of this run FAILED.`}`;
  const files = saveResults(name, now[0].info, { checkpoints, peer: now[0].peer, tolerance: PROB_TOLERANCE, failures, details }, rows, notes);
  console.log(notes);
  console.log(files.join('\n'));
  if (failures > 0) process.exitCode = 1;
}
