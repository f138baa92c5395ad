// `npm run bench -- crosscheck [--model-shape small|0.6b] [--threads N]`: Paralon against an
// independent oracle, llama.cpp (node-llama-cpp 3.21.1, installed on demand), on the same random Qwen3
// checkpoint with the real Qwen3 tokenizer, exported to an F32 GGUF:
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
// Exits 1 on any mismatch. Results: bench/results/crosscheck[-<shape>].{json,md}.
import type { Qwen3Config } from '../src/model/qwen3.js';
import { parseArgs } from 'node:util';
import { loadModel, type Model } from '../src/index.js';
import type { ChatMessage, TokenLogprob } from '../src/engine/types.js';
import { cachedCheckpoint, cachedGguf, shapeSpec, type CheckpointSpec } from './checkpoints.js';
import { LlamaCppPeer } from './peers/llamacpp.js';
import { runInfo, saveResults, type Row } from './results.js';
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

export async function benchCrosscheck(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { 'model-shape': { type: 'string', default: 'small' }, threads: { type: 'string', default: '2' } } });
  const shapeName = values['model-shape']!;
  const threads = Number(values.threads);
  let spec: CheckpointSpec;
  if (shapeName === 'small') spec = SMALL;
  else if (modelShapes[shapeName]) spec = shapeSpec(modelShapes[shapeName], 'f32', 11);
  else throw new Error(`--model-shape: small or one of ${Object.keys(modelShapes).join(', ')}`);

  const dir = cachedCheckpoint(`crosscheck-${shapeName}-f32`, spec);
  const gguf = cachedGguf(dir, 'f32');
  const model = await loadModel(dir, { device: 'cpu', threads, kvCacheDType: 'f32', prefixCaching: false, kvCacheMemory: 2 ** 30 });
  const peer = await LlamaCppPeer.open(gguf, { threads, contextSize: 2048, batchSize: 512, kvCacheType: 'F32', flashAttention: false });
  const referee = shapeName === 'small' ? ReferenceQwen3.load(dir) : null;
  const rows: Row[] = [];
  const details: Record<string, unknown>[] = [];
  let failures = 0;
  try {
    console.error(`Paralon: cpu, ${threads} threads, f32 weights, f32 KV cache; ${peer.description}`);
    const prompts = buildPrompts(model);
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
      console.error(`${p.name}: ${p.ids.length} tokens, max |Δp| ${dist.maxAbsDiff.toExponential(2)}, greedy ${diverge === -1 ? 'identical' : `differs at ${diverge}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }

    const tokenizationCases: [string, string][] = [...HARD_STRINGS, ...prompts.map((p): [string, string] => [`prompt: ${p.name}`, model.tokenizer.decode(p.ids)])];
    for (const [name, text] of tokenizationCases) {
      const ours = model.tokenizer.encode(text, { addSpecialTokens: false });
      const theirs = peer.tokenize(text);
      const diverge = firstDifference(ours, theirs);
      if (diverge !== -1) failures++;
      rows.push({ check: 'tokenization', case: name, tokens: ours.length, 'max Δp top-20': '', 'Paralon vs f64': '', 'llama.cpp vs f64': '', 'greedy 64 identical': '', result: diverge === -1 ? 'pass' : `FAIL at token ${diverge}` });
      details.push({ tokenization: name, text, paralon: ours, llamaCpp: theirs, firstDifference: diverge });
    }
  } finally {
    await peer.dispose();
    model.dispose();
  }

  const c = model.config as Qwen3Config;
  const checkpoint = `${shapeName === 'small' ? 'small' : modelShapes[shapeName].name + '-shaped'} random Qwen3 (hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads}/${c.numKvHeads} heads × ${c.headDim}, MLP ${c.intermediateSize}, vocab ${c.vocabSize}, ${c.tieWordEmbeddings ? 'tied' : 'untied'}), f32`;
  const notes =
    `Paralon (cpu, ${threads} threads, f32 weights, f32 KV cache) vs ${peer.description}, on a ${checkpoint} checkpoint with Qwen3's tokenizer, exported to an F32 GGUF.\n` +
    `Pass: every top-${TOP_N} probability within ${PROB_TOLERANCE} of llama.cpp's, ${GREEDY_TOKENS}-token greedy continuations identical, token ids identical. ` +
    `"vs f64": max |p − p_float64| over the top-${TOP_N}, against the float64 reference forward pass (prompts of ≤ ${REFEREE_MAX_TOKENS} tokens on the small checkpoint; informative, not a pass criterion). ` +
    `${failures === 0 ? 'All checks passed.' : `${failures} check(s) FAILED.`}`;
  const name = shapeName === 'small' ? 'crosscheck' : `crosscheck-${shapeName}`;
  const files = saveResults(name, runInfo('crosscheck', 'cpu'), { checkpoint, peer: peer.description, tolerance: PROB_TOLERANCE, failures, details }, rows, notes);
  console.log(notes);
  console.log(files.join('\n'));
  if (failures > 0) process.exitCode = 1;
}
