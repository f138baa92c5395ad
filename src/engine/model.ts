// The library's model handle: a checkpoint of a registered architecture on a device, its tokenizer and chat template, a
// paged KV cache and the engine that batches every generation running on it.
import path from 'node:path';
import { Device, type CpuPrecision, type DeviceName } from '../runtime/index.js';
import { existsSync } from 'node:fs';
import { CausalLM, ROW_LOGITS_CHUNK, type CausalLMLoadOptions, type ModelConfig, type ModelTask } from '../model/index.js';
import { defaultModelId, findGgufFile, openGgufModel } from '../model/gguf/index.js';
import { KV_CACHE_DTYPES, type KvCachePool, type KvCacheDType } from '../kv/pool.js';
import { KvBlockManager, type KvBlockStats } from '../kv/block-manager.js';
import { IncrementalDetokenizer, StopMatcher, Tokenizer } from '../tokenizer/index.js';
import { GrammarPool } from '../grammar/index.js';
import { Embedder, type EmbedOptions, type EmbedResult } from './embeddings.js';
import { Engine, RequestError, type EngineStats, type TextHooks, type TextOutput } from './engine.js';
import type { TokenConstraint } from './constraint.js';
import { chatEvents, prepareChat, prepareCompletion, type PreparedChat } from './chat.js';
import type { OutputOptions } from './output-format.js';
import type {
  ChatEvent,
  ChatMessage,
  ChatTemplateOptions,
  GenerateCallOptions,
  GenerationEvent,
  ResponseFormat,
  SamplingOptions,
} from './types.js';

export interface LoadModelOptions {
  /** 'auto' (default): the first CUDA device, else the CPU. */
  device?: DeviceName | 'auto' | Device;
  /** CPU threads (default: one per core). */
  threads?: number;
  /**
   * CPU matmul precision (see DeviceOptions.precision): 'exact' (default) or 'fast' (bf16 activations and
   * AVX512-BF16 dot products for bf16 weights, int8 activations and integer dot products for quantized
   * weights up to 16 rows; exact where the CPU lacks them: check model.device.precision).
   */
  cpuPrecision?: CpuPrecision;
  /** The model's id (default: the directory name, lower-cased; a GGUF's file name without split and quantization suffixes). */
  id?: string;
  /** Prompt + completion tokens of one request at most (default: the model's, capped by the KV cache). */
  maxModelLen?: number;
  /**
   * Replaces config.json's rope_scaling (Hugging Face names, as vLLM's --rope-scaling), e.g.
   * `{ rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 }` for Qwen3's 131,072-token
   * context; null removes the checkpoint's own scaling.
   */
  ropeScaling?: Record<string, unknown> | null;
  /** Bytes of KV cache (default: 1 GiB on the CPU, 4 GiB on CUDA). */
  kvCacheMemory?: number;
  /**
   * Element type of the KV cache (vLLM's --kv-cache-dtype): 'auto' (default) is the checkpoint's float
   * dtype (f32, f16 or bf16); 'fp8' is e4m3 with per-tensor scales: the checkpoint's k_scale/v_scale
   * per layer when it has them, else 1 (vLLM's default): a quarter of f32's memory, 3 mantissa bits.
   */
  kvCacheDType?: KvCacheDType | 'auto';
  /** Sequences decoded together at most (default 64). */
  maxNumSeqs?: number;
  /** Tokens computed per step at most; long prompts are prefilled in chunks of this size (default 512). */
  maxNumBatchedTokens?: number;
  /** Reuse the KV blocks of shared prompt prefixes (default true). */
  prefixCaching?: boolean;
  /** Requests waiting for admission at most before new ones are refused (default: unlimited). */
  maxWaiting?: number;
  /** Grammar worker threads for tools and response_format (default 2; started on first use). */
  grammarWorkers?: number;
  /** A tool or response_format grammar compiling longer is refused (default 10,000 ms). */
  grammarCompileTimeoutMs?: number;
  /** Loading progress in bytes of weights. */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  /**
   * 'generate' (text) or 'embed' (Qwen3-Embedding-style embeddings, no LM head). Default: 'embed' for a
   * sentence-transformers checkpoint (modules.json beside config.json), else 'generate'.
   */
  task?: ModelTask;
}

/** What `model.tokenize` takes: a text (optionally with special tokens) or chat messages (through the template). */
export type TokenizeInput = { prompt: string; addSpecialTokens?: boolean } | ({ messages: readonly ChatMessage[] } & ChatTemplateOptions);

export interface ModelStats {
  engine: EngineStats;
  kv: KvBlockStats;
}

export type ChatOptions = SamplingOptions & ChatTemplateOptions & OutputOptions;

export type CompleteOptions = SamplingOptions & { responseFormat?: ResponseFormat };

export class Model {
  readonly id: string;
  readonly dir: string;
  readonly device: Device;
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  /** Prompt + completion tokens of one request at most. */
  readonly contextLength: number;
  /** Tokens the KV cache holds, all requests together. */
  readonly kvCacheTokens: number;
  /** The KV cache's element type. */
  readonly kvCacheDType: KvCacheDType;
  /** What the model was loaded for: generation or embeddings. */
  readonly task: ModelTask;
  readonly #lm: CausalLM;
  readonly #kv: KvCachePool;
  readonly #blocks: KvBlockManager;
  readonly #engine: Engine;
  readonly #embedder: Embedder | undefined;
  readonly #ownsDevice: boolean;
  readonly #eosTokenIds: number[];
  readonly #grammarOptions: { workers?: number; compileTimeoutMs?: number };
  #grammars: GrammarPool | null = null;

  private constructor(
    dir: string,
    id: string,
    device: Device,
    ownsDevice: boolean,
    lm: CausalLM,
    tokenizer: Tokenizer,
    kv: KvCachePool,
    options: LoadModelOptions,
  ) {
    this.dir = dir;
    this.id = id;
    this.device = device;
    this.#ownsDevice = ownsDevice;
    this.#lm = lm;
    this.task = lm.task;
    this.config = lm.config;
    this.tokenizer = tokenizer;
    this.#kv = kv;
    this.kvCacheTokens = kv.maxTokens;
    this.kvCacheDType = kv.dtype;
    this.contextLength = Math.min(options.maxModelLen ?? lm.config.maxPositionEmbeddings, lm.config.maxPositionEmbeddings, kv.maxTokens);
    this.#blocks = new KvBlockManager(kv.numBlocks, kv.blockSize, { prefixCaching: options.prefixCaching ?? true });
    const g = lm.generation;
    const eos = new Set([...g.eosTokenIds, ...(tokenizer.eosTokenId !== null ? [tokenizer.eosTokenId] : [])]);
    this.#eosTokenIds = [...eos];
    this.#grammarOptions = { workers: options.grammarWorkers, compileTimeoutMs: options.grammarCompileTimeoutMs };
    // Checked now, so a bad value fails the load rather than the first request using a grammar.
    if (options.grammarWorkers !== undefined && !(Number.isInteger(options.grammarWorkers) && options.grammarWorkers >= 1))
      throw new Error('grammarWorkers must be a positive integer');
    if (options.grammarCompileTimeoutMs !== undefined && !(options.grammarCompileTimeoutMs > 0))
      throw new Error('grammarCompileTimeoutMs must be > 0');
    this.#engine = new Engine(
      {
        vocabSize: lm.config.vocabSize,
        forward: (seqs, options) =>
          lm.forward(seqs.map((s) => ({ tokens: s.tokens, numCached: s.start, blockTable: s.blockTable })), kv, { keepHidden: options?.keepHidden }),
        rows: { maxRowLogits: ROW_LOGITS_CHUNK, rowLogits: (rows) => lm.rowLogits(rows) },
      },
      this.#blocks,
      textHooks(tokenizer),
      {
        maxNumSeqs: lm.maxSeqs,
        maxNumBatchedTokens: lm.maxBatchTokens,
        maxModelLen: this.contextLength,
        eosTokenIds: [...eos],
        defaults: { temperature: g.temperature, topP: g.topP, topK: g.topK, minP: g.minP, repetitionPenalty: g.repetitionPenalty },
        maxWaiting: options.maxWaiting,
      },
    );
    if (this.task === 'embed') {
      const end = tokenizer.tokenToId('<|endoftext|>') ?? tokenizer.eosTokenId;
      if (end === null || end === undefined) throw new Error(`${dir}: the tokenizer has no <|endoftext|> or eos token to end embedding inputs with`);
      this.#embedder = new Embedder(lm, kv, this.#blocks, end, this.contextLength);
    }
  }

  /**
   * Loads a model of a registered architecture: a Hugging Face checkpoint directory (config.json,
   * tokenizer files, safetensors), a GGUF file (or split set), or a directory holding one GGUF.
   */
  static async load(dir: string, options: LoadModelOptions = {}): Promise<Model> {
    const resolved = path.resolve(dir);
    const ownsDevice = !(options.device instanceof Device);
    const device = options.device instanceof Device ? options.device : Device.open(options.device ?? 'auto', { threads: options.threads, precision: options.cpuPrecision });
    try {
      const ggufFile = findGgufFile(resolved);
      const maxNumBatchedTokens = options.maxNumBatchedTokens ?? 512;
      const maxNumSeqs = options.maxNumSeqs ?? 64;
      if (!Number.isInteger(maxNumSeqs) || maxNumSeqs < 1) throw new Error('maxNumSeqs must be a positive integer');
      if (!Number.isInteger(maxNumBatchedTokens) || maxNumBatchedTokens < maxNumSeqs)
        throw new Error('maxNumBatchedTokens must be an integer ≥ maxNumSeqs (every running sequence decodes one token per step)');
      const task = options.task ?? (existsSync(path.join(resolved, 'modules.json')) ? 'embed' : 'generate');
      const lmOptions = {
        maxBatchTokens: maxNumBatchedTokens,
        maxSeqs: maxNumSeqs,
        onProgress: options.onProgress,
        task,
        overrides: options.ropeScaling !== undefined ? { ropeScaling: options.ropeScaling } : {},
      };
      const { lm, tokenizer } = ggufFile ? await loadGguf(device, ggufFile, lmOptions) : {
        tokenizer: await Tokenizer.fromDirectory(resolved),
        lm: await CausalLM.load(resolved, device, lmOptions),
      };
      let kv: KvCachePool;
      try {
        const bytes = options.kvCacheMemory ?? (device.hostMemory ? 2 ** 30 : 4 * 2 ** 30);
        kv = lm.createKvCache({ maxBytes: bytes, dtype: resolveKvCacheDType(options.kvCacheDType, lm.config) });
      } catch (e) {
        lm.dispose();
        throw e;
      }
      const id = options.id ?? defaultModelId(ggufFile ?? resolved);
      return new Model(resolved, id, device, ownsDevice, lm, tokenizer, kv, options);
    } catch (e) {
      if (ownsDevice) device.dispose();
      throw e;
    }
  }

  /** The chat template's prompt text for `messages`. */
  renderChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    return this.tokenizer.encodeChat(messages, options).prompt;
  }

  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.tokenizer.encodeChat(messages, options).ids;
  }

  /** Generates from prompt token ids: text deltas, then one `done` with the finish reason and usage. */
  generate(prompt: readonly number[], options: SamplingOptions = {}, call: GenerateCallOptions = {}): AsyncIterable<GenerationEvent> {
    if (this.task !== 'generate') {
      call.constraint?.dispose();
      throw new RequestError(`${this.id} is an embedding model (loaded with task "embed"); it does not generate text`, 'model');
    }
    // The engine owns the constraint from here: it disposes it also when it refuses the request.
    return this.#engine.submit(prompt, options, call);
  }

  /** Token ids of a text (special tokens added unless `addSpecialTokens: false`) or of chat messages rendered by the template. */
  tokenize(input: TokenizeInput): number[] {
    if ('messages' in input) {
      const { messages, ...template } = input;
      return this.encodeChat(messages, template);
    }
    return this.tokenizer.encode(input.prompt, { addSpecialTokens: input.addSpecialTokens ?? true });
  }

  /** The text of token ids (special tokens included); ids outside the vocabulary are an error naming them. */
  detokenize(ids: readonly number[]): string {
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize)
        throw new RequestError(`token id ${id} is outside the vocabulary of ${this.config.vocabSize}`, 'tokens');
    return this.tokenizer.decode(ids.filter((id) => id < this.tokenizer.vocabSize));
  }

  /**
   * Embeddings of texts or token-id lists (an embedding model only: task "embed"): last-token pooling
   * after the end-of-text token, truncated to `dimensions`, L2-normalised.
   */
  embed(inputs: readonly (string | readonly number[])[], options: EmbedOptions = {}): Promise<EmbedResult> {
    if (!this.#embedder)
      return Promise.reject(new RequestError(`${this.id} is a generative model; embeddings need an embedding model (task "embed")`, 'model'));
    const ids = inputs.map((x) => (typeof x === 'string' ? this.tokenizer.encode(x, { addSpecialTokens: true }) : x));
    try {
      return this.#embedder.embed(ids, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A chat turn: the messages rendered by the model's own chat template, then generated. With
   * `tools`, tool calls come out as `tool_call` events (never as text); `toolChoice` 'required' or a
   * named function and `responseFormat` are enforced by a grammar. Bad tools or schemas throw
   * RequestError before anything is queued.
   */
  async *chat(messages: readonly ChatMessage[], options: ChatOptions = {}, call: GenerateCallOptions = {}): AsyncGenerator<ChatEvent> {
    const { enableThinking, addGenerationPrompt, tools, toolChoice, parallelToolCalls, responseFormat, ...sampling } = options;
    const prepared = await this.prepareChat(messages, { enableThinking, addGenerationPrompt, tools, toolChoice, parallelToolCalls, responseFormat });
    const constraint = await withCallConstraint(await prepared.constraint(), call);
    yield* chatEvents(this.generate(prepared.promptTokens, sampling, { ...call, constraint }), prepared.parseToolCalls);
  }

  /** Checks and renders a chat and compiles its output grammar, ready to generate (the server's first half of chat). */
  prepareChat(messages: readonly ChatMessage[], options: ChatTemplateOptions & OutputOptions = {}): Promise<PreparedChat> {
    return prepareChat(this.#chatContext(), messages, options);
  }

  /** A raw text completion (no template); `responseFormat` is enforced by a grammar. */
  async *complete(prompt: string, options: CompleteOptions = {}, call: GenerateCallOptions = {}): AsyncGenerator<GenerationEvent> {
    const { responseFormat, ...sampling } = options;
    const constraint = await withCallConstraint(await (await this.prepareCompletion(responseFormat))(), call);
    yield* this.generate(this.tokenizer.encode(prompt, { addSpecialTokens: false }), sampling, { ...call, constraint });
  }

  /** The constraint factory for a completion's response_format (checked and compiled now). */
  prepareCompletion(responseFormat: ResponseFormat | undefined): ReturnType<typeof prepareCompletion> {
    return prepareCompletion(this.#chatContext(), { responseFormat });
  }

  /** The grammar workers (started on first use: each loads the vocabulary, ~0.3 s). */
  get grammars(): GrammarPool {
    this.#grammars ??= new GrammarPool({
      vocab: this.tokenizer.encodedVocab(),
      logitsWidth: this.config.vocabSize,
      stopTokenIds: this.#eosTokenIds,
      workers: this.#grammarOptions.workers,
      compileTimeoutMs: this.#grammarOptions.compileTimeoutMs,
    });
    return this.#grammars;
  }

  #chatContext() {
    return { tokenizer: this.tokenizer, logitsWidth: this.config.vocabSize, grammars: () => this.grammars };
  }

  stats(): ModelStats {
    return { engine: this.#engine.stats(), kv: this.#blocks.stats() };
  }

  /** True when no request is running or waiting. */
  get idle(): boolean {
    return this.#engine.idle;
  }

  dispose(): void {
    this.#grammars?.close();
    this.#kv.dispose();
    this.#lm.dispose();
    if (this.#ownsDevice) this.device.dispose();
  }
}

/** The caller's own constraint, or the one tools / responseFormat need; both at once is refused. */
async function withCallConstraint(needed: TokenConstraint | null, call: GenerateCallOptions): Promise<TokenConstraint | undefined> {
  if (needed === null) return call.constraint;
  if (call.constraint !== undefined) {
    needed.dispose();
    call.constraint.dispose();
    throw new RequestError('a constraint of your own cannot be combined with tools or responseFormat, which bring theirs', 'constraint');
  }
  return needed;
}

/** Loads a model: `const model = await loadModel(dir, { device: 'cuda:0' })`. */
export function loadModel(dir: string, options: LoadModelOptions = {}): Promise<Model> {
  return Model.load(dir, options);
}

/** The KV cache dtype a load option asks for; 'auto' follows the checkpoint's float dtype. */
function resolveKvCacheDType(option: KvCacheDType | 'auto' | undefined, config: ModelConfig): KvCacheDType {
  if (option === undefined || option === 'auto') return config.dtype;
  if (!KV_CACHE_DTYPES.includes(option)) throw new Error(`kvCacheDType must be auto, ${KV_CACHE_DTYPES.join(', ')} (got ${String(option)})`);
  return option;
}

/** A GGUF's tokenizer (from its metadata) and weights (mapped in place on cpu). */
async function loadGguf(device: Device, file: string, options: CausalLMLoadOptions): Promise<{ lm: CausalLM; tokenizer: Tokenizer }> {
  const gguf = openGgufModel(device, file);
  try {
    const tokenizer = new Tokenizer(gguf.tokenizer.tokenizerJson, gguf.tokenizer.tokenizerConfig);
    const lm = await CausalLM.fromCheckpoint(device, gguf.arch, gguf.config, gguf.generation, gguf.checkpoint, options);
    return { lm, tokenizer };
  } finally {
    gguf.checkpoint.close();
  }
}

/** The tokenizer side of the engine. Ids past the tokenizer's vocabulary (embedding padding) are empty. */
function textHooks(tokenizer: Tokenizer): TextHooks {
  const empty = new Uint8Array(0);
  const source = {
    tokenBytes: (id: number) => (id < tokenizer.vocabSize ? tokenizer.tokenBytes(id) : empty),
    isSpecialToken: (id: number) => id < tokenizer.vocabSize && tokenizer.isSpecialToken(id),
  };
  return {
    createOutput({ stop, includeStop, skipSpecialTokens }): TextOutput {
      const detok = new IncrementalDetokenizer(source, { skipSpecialTokens });
      const stops = new StopMatcher(stop, { includeStop });
      return {
        push(ids, matchStops = true) {
          let text = '';
          for (const id of ids) text += detok.push(id);
          if (!matchStops) return { text: stops.pass(text), stopped: false };
          const r = stops.push(text);
          return { text: r.text, stopped: r.stop !== null };
        },
        flush() {
          const tail = stops.push(detok.flush());
          return tail.stop !== null ? tail.text : tail.text + stops.flush();
        },
      };
    },
    tokenInfo(id) {
      if (id >= tokenizer.vocabSize) return { token: '', bytes: [] };
      return { token: tokenizer.tokenText(id), bytes: Array.from(tokenizer.tokenBytes(id)) };
    },
  };
}
