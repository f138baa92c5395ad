// llama.cpp as a peer, through node-llama-cpp 3.21.1 on the CPU. node-llama-cpp is never a dependency
// of Paralon: the first bench run that needs it installs it (~700 MB of prebuilt binaries) into
// bench/.cache/peers, a package of its own, and loads it from there by path.
//
// Only the small part of node-llama-cpp's API the benches use is typed here (structurally), so
// Paralon type-checks without it installed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const NODE_LLAMA_CPP_VERSION = '3.21.1';
export const peersDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '.cache', 'peers');

type Token = number;

interface NodeLlamaCpp {
  getLlama(options: { gpu: false; build: 'never'; logLevel: string; maxThreads: number }): Promise<Llama>;
}
interface Llama {
  readonly buildType: string;
  readonly cpuMathCores: number;
  loadModel(options: { modelPath: string; gpuLayers: number; useMmap: boolean }): Promise<LlamaModel>;
  dispose(): Promise<void>;
}
interface LlamaModel {
  tokenize(text: string, specialTokens?: boolean): Token[];
  detokenize(tokens: readonly Token[], specialTokens?: boolean): string;
  createContext(options: {
    sequences: number;
    contextSize: number;
    batchSize: number;
    threads: { ideal: number; min: number };
    flashAttention: boolean | 'auto';
    experimentalKvCacheKeyType: string;
    experimentalKvCacheValueType: string;
  }): Promise<LlamaContext>;
  dispose(): Promise<void>;
}
interface LlamaContext {
  getSequence(): LlamaContextSequence;
  dispose(): Promise<void>;
}
interface LlamaContextSequence {
  clearHistory(): Promise<void>;
  evaluate(tokens: Token[], options: { temperature: number; yieldEogToken: boolean }): AsyncGenerator<Token, void, void | Token | Token[]>;
  controlledEvaluate(
    input: (Token | [Token, { generateNext: { token: boolean; probabilities: boolean } }])[],
  ): Promise<({ next: { token?: Token | null; probabilities?: Map<Token, number> } } | undefined)[]>;
}

/** Installs node-llama-cpp into bench/.cache/peers unless the pinned version is there already. */
export function ensureNodeLlamaCpp(): string {
  const pkg = path.join(peersDir, 'node_modules', 'node-llama-cpp', 'package.json');
  const installed = existsSync(pkg) ? (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version : null;
  if (installed === NODE_LLAMA_CPP_VERSION) return path.dirname(pkg);
  mkdirSync(peersDir, { recursive: true });
  const manifest = path.join(peersDir, 'package.json');
  if (!existsSync(manifest))
    writeFileSync(
      manifest,
      JSON.stringify({ name: 'paralon-bench-peers', private: true, description: 'Peers for Paralon benchmarks, installed on demand; never a Paralon dependency', type: 'module' }, null, 2) + '\n',
    );
  console.error(`installing node-llama-cpp@${NODE_LLAMA_CPP_VERSION} into ${peersDir} (once; ~700 MB)…`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--save-exact', `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`], { cwd: peersDir, stdio: ['ignore', 'inherit', 'inherit'] });
  return path.dirname(pkg);
}

export interface LlamaCppOptions {
  threads: number;
  /** Tokens of context per sequence. */
  contextSize: number;
  /**
   * Sequences in the context (default 1). node-llama-cpp evaluates the pending tokens of all of them
   * in one llama_decode batch, so generations running on several sequences at once are batched.
   */
  sequences?: number;
  /** Tokens per llama_decode call (the prefill chunk). */
  batchSize: number;
  /** KV cache element type: F32 for the accuracy cross-check, F16 (llama.cpp's default) for speed. */
  kvCacheType: 'F32' | 'F16';
  /** 'auto' (node-llama-cpp's default): on where llama.cpp supports it. */
  flashAttention: boolean | 'auto';
}

/** One GGUF model in llama.cpp with a context of one sequence (or `sequences`). */
export class LlamaCppPeer {
  private readonly sequence: LlamaContextSequence;

  private constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequences: LlamaContextSequence[],
    readonly description: string,
  ) {
    this.sequence = sequences[0];
  }

  static async open(ggufFile: string, options: LlamaCppOptions): Promise<LlamaCppPeer> {
    const dir = ensureNodeLlamaCpp();
    const lib = (await import(pathToFileURL(path.join(dir, 'dist', 'index.js')).href)) as NodeLlamaCpp;
    const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: options.threads });
    try {
      const model = await llama.loadModel({ modelPath: ggufFile, gpuLayers: 0, useMmap: true });
      const sequences = options.sequences ?? 1;
      const context = await model.createContext({
        sequences,
        contextSize: options.contextSize,
        batchSize: options.batchSize,
        threads: { ideal: options.threads, min: options.threads },
        flashAttention: options.flashAttention,
        experimentalKvCacheKeyType: options.kvCacheType,
        experimentalKvCacheValueType: options.kvCacheType,
      });
      const description =
        `llama.cpp via node-llama-cpp ${NODE_LLAMA_CPP_VERSION} (${llama.buildType} build, CPU, ${options.threads} threads, ` +
        `KV ${options.kvCacheType}, flash attention ${options.flashAttention === 'auto' ? 'auto' : options.flashAttention ? 'on' : 'off'}` +
        `${sequences > 1 ? `, ${sequences} sequences` : ''})`;
      return new LlamaCppPeer(llama, model, context, Array.from({ length: sequences }, () => context.getSequence()), description);
    } catch (e) {
      await llama.dispose();
      throw e;
    }
  }

  /** Token ids of `text`, special tokens in the text parsed as such (as Hugging Face tokenizers do). */
  tokenize(text: string): number[] {
    return this.model.tokenize(text, true);
  }

  detokenize(tokens: readonly number[]): string {
    return this.model.detokenize(tokens, true);
  }

  /** The next-token distribution after `prompt` (evaluated from an empty cache), sorted by probability. */
  async nextTokenProbabilities(prompt: readonly number[]): Promise<Map<number, number>> {
    await this.sequence.clearHistory();
    const input: Parameters<LlamaContextSequence['controlledEvaluate']>[0] = [...prompt.slice(0, -1)];
    input.push([prompt[prompt.length - 1], { generateNext: { token: false, probabilities: true } }]);
    const out = await this.sequence.controlledEvaluate(input);
    const probabilities = out[prompt.length - 1]?.next.probabilities;
    if (!probabilities) throw new Error('llama.cpp returned no probabilities');
    return probabilities;
  }

  /**
   * Greedy generation after `prompt` from an empty cache, through end-of-generation tokens. `onToken`
   * sees each token with the time it arrived (performance.now()).
   */
  async greedy(prompt: readonly number[], count: number, onToken?: (token: number, at: number) => void): Promise<number[]> {
    await this.sequence.clearHistory();
    const out: number[] = [];
    for await (const token of this.sequence.evaluate([...prompt], { temperature: 0, yieldEogToken: true })) {
      onToken?.(token, performance.now());
      out.push(token);
      if (out.length === count) break;
    }
    return out;
  }

  /**
   * Greedy generation of `count` tokens after each prompt, all at once, one prompt per sequence (from
   * empty caches): node-llama-cpp batches the sequences' tokens into shared llama_decode calls.
   * `onToken` sees each token with its sequence and arrival time (performance.now()).
   */
  async greedyParallel(prompts: readonly (readonly number[])[], count: number, onToken?: (sequence: number, token: number, at: number) => void): Promise<number[][]> {
    if (prompts.length > this.sequences.length) throw new Error(`greedyParallel: ${prompts.length} prompts, but the context has ${this.sequences.length} sequences`);
    await Promise.all(prompts.map((_, i) => this.sequences[i].clearHistory()));
    return Promise.all(
      prompts.map(async (prompt, i) => {
        const out: number[] = [];
        for await (const token of this.sequences[i].evaluate([...prompt], { temperature: 0, yieldEogToken: true })) {
          onToken?.(i, token, performance.now());
          out.push(token);
          if (out.length === count) break;
        }
        return out;
      }),
    );
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
