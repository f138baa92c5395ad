// The engine: requests in, token streams out. One loop runs steps while there is work: the scheduler
// plans the batch, the model runs one forward pass over it, ops.sample draws one token per sequence on
// the device, and each finished row's token goes through its request's output (detokenizer, stops).
import { randomInt } from 'node:crypto';
import { ops, type Tensor } from '../runtime/index.js';
import type { KvBlockManager } from '../kv/block-manager.js';
import { EventQueue } from './event-queue.js';
import { Scheduler, type SchedulableRequest, type StepPlan } from './scheduler.js';
import type { FinishReason, GenerateCallOptions, GenerationEvent, SamplingOptions, TokenLogprob } from './types.js';

/** One sequence of a forward step: tokens at positions start … start + tokens.length − 1. */
export interface ForwardSequence {
  tokens: number[];
  start: number;
  blockTable: readonly number[];
}

/** What the engine needs of a model: one step over a batch, returning last-token logits [n, vocab]. */
export interface StepModel {
  readonly vocabSize: number;
  forward(sequences: ForwardSequence[]): Tensor;
}

/** Text side of a request's output (detokenizer + stop strings), made per request. */
export interface TextOutput {
  /** Appends generated tokens; returns the text now safe to show and whether a stop string ended it. */
  push(tokenIds: number[]): { text: string; stopped: boolean };
  /** Text held back at the end (an incomplete stop-string prefix). */
  flush(): string;
}

export interface TextHooks {
  createOutput(stop: readonly string[]): TextOutput;
  tokenInfo(id: number): { token: string; bytes: number[] };
}

export interface EngineConfig {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  /** Prompt + completion tokens of one request at most. */
  maxModelLen: number;
  eosTokenIds: readonly number[];
  /** Defaults for options a request leaves out (from generation_config.json). */
  defaults: SamplingOptions;
  /** Requests waiting for admission at most; more are refused with EngineBusyError. */
  maxWaiting?: number;
}

/** A request the engine can never run (too long, bad parameter): the server answers 400. */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** The queue is full: the server answers 429. */
export class EngineBusyError extends Error {
  constructor(message = 'too many requests are waiting; try again later') {
    super(message);
    this.name = 'EngineBusyError';
  }
}

export interface EngineStats {
  running: number;
  waiting: number;
  steps: number;
  preemptions: number;
  /** Tokens the model computed (prompt and output), across all requests. */
  computedTokens: number;
}

interface ResolvedOptions {
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  seed: number;
  maxTokens: number;
  stop: string[];
  ignoreEos: boolean;
  logprobs: boolean;
  topLogprobs: number;
}

class Request implements SchedulableRequest {
  readonly tokens: number[];
  readonly numPromptTokens: number;
  numComputed = 0;
  numPreemptions = 0;
  readonly blockIds: number[] = [];
  readonly blockHashes: string[] = [];
  readonly events = new EventQueue<GenerationEvent>();
  /** Output occurrences per token (presence/frequency penalties); prompt tokens present with 0. */
  readonly counts = new Map<number, number>();
  /** Generated tokens not yet handed out in a delta (their text is held back: partial UTF-8, stop prefix). */
  readonly unsentTokenIds: number[] = [];
  cancelled = false;
  finished = false;
  /** Removes the AbortSignal listener, so a long-lived signal does not keep finished requests alive. */
  detach: () => void = () => {};

  constructor(
    readonly id: string,
    prompt: readonly number[],
    readonly options: ResolvedOptions,
    readonly output: TextOutput,
  ) {
    this.tokens = [...prompt];
    this.numPromptTokens = prompt.length;
    if (options.repetitionPenalty !== 1) for (const t of prompt) if (!this.counts.has(t)) this.counts.set(t, 0);
  }

  get numOutput(): number {
    return this.tokens.length - this.numPromptTokens;
  }
}

let nextRequestId = 0;

export class Engine {
  readonly #model: StepModel;
  readonly #kv: KvBlockManager;
  readonly #scheduler: Scheduler<Request>;
  readonly #config: EngineConfig;
  readonly #text: TextHooks;
  #looping = false;
  #stats: EngineStats = { running: 0, waiting: 0, steps: 0, preemptions: 0, computedTokens: 0 };

  constructor(model: StepModel, kv: KvBlockManager, text: TextHooks, config: EngineConfig) {
    this.#model = model;
    this.#kv = kv;
    this.#text = text;
    this.#config = config;
    this.#scheduler = new Scheduler<Request>(kv, {
      maxNumSeqs: config.maxNumSeqs,
      maxNumBatchedTokens: config.maxNumBatchedTokens,
    });
  }

  stats(): EngineStats {
    return { ...this.#stats, running: this.#scheduler.running.length, waiting: this.#scheduler.waiting.length };
  }

  get idle(): boolean {
    return !this.#scheduler.hasWork;
  }

  /** Checks a request and queues it; the returned stream yields deltas, then one `done`. */
  submit(prompt: readonly number[], options: SamplingOptions = {}, call: GenerateCallOptions = {}): AsyncIterable<GenerationEvent> {
    const resolved = this.#resolve(prompt, options);
    const waiting = this.#scheduler.waiting.length;
    if (this.#config.maxWaiting !== undefined && waiting >= this.#config.maxWaiting) throw new EngineBusyError();
    const req = new Request(`req-${nextRequestId++}`, prompt, resolved, this.#text.createOutput(resolved.stop));
    if (call.signal?.aborted) {
      req.events.push({ type: 'done', finishReason: 'cancelled', usage: this.#usage(req) });
      req.events.end();
      return req.events;
    }
    const cancel = () => {
      req.cancelled = true;
      if (!this.#looping) this.#reap();
    };
    const signal = call.signal;
    if (signal) {
      signal.addEventListener('abort', cancel, { once: true });
      req.detach = () => signal.removeEventListener('abort', cancel);
    }
    req.events.onCancel = cancel;
    this.#scheduler.add(req);
    this.#kick();
    return req.events;
  }

  #resolve(prompt: readonly number[], o: SamplingOptions): ResolvedOptions {
    const d = this.#config.defaults;
    const vocab = this.#model.vocabSize;
    if (prompt.length === 0) throw new RequestError('the prompt is empty', 'messages');
    for (const t of prompt)
      if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new RequestError(`prompt token ${t} is outside the vocabulary`, 'prompt');
    const room = this.#config.maxModelLen - prompt.length;
    if (room < 1)
      throw new RequestError(
        `this model's maximum context length is ${this.#config.maxModelLen} tokens, but the prompt has ${prompt.length} tokens`,
        'messages',
      );
    const maxTokens = o.maxTokens ?? room;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RequestError('max_tokens must be a positive integer', 'max_tokens');
    if (prompt.length + maxTokens > this.#config.maxModelLen)
      throw new RequestError(
        `this model's maximum context length is ${this.#config.maxModelLen} tokens; the prompt (${prompt.length}) plus max_tokens (${maxTokens}) exceeds it`,
        'max_tokens',
      );
    if (this.#kv.blocksFor(prompt.length + maxTokens) > this.#kv.numBlocks)
      throw new RequestError(
        `the prompt (${prompt.length}) plus max_tokens (${maxTokens}) needs more KV cache than this server has (${this.#kv.numBlocks * this.#kv.blockSize} tokens)`,
        'max_tokens',
      );
    const pick = <K extends keyof SamplingOptions>(k: K, fallback: NonNullable<SamplingOptions[K]>) =>
      (o[k] ?? d[k] ?? fallback) as NonNullable<SamplingOptions[K]>;
    const r: ResolvedOptions = {
      temperature: pick('temperature', 1),
      topP: pick('topP', 1),
      topK: pick('topK', 0),
      minP: pick('minP', 0),
      presencePenalty: pick('presencePenalty', 0),
      frequencyPenalty: pick('frequencyPenalty', 0),
      repetitionPenalty: pick('repetitionPenalty', 1),
      seed: o.seed ?? randomInt(0, 2 ** 47),
      maxTokens,
      stop: o.stop ?? [],
      ignoreEos: o.ignoreEos ?? false,
      logprobs: o.logprobs ?? false,
      topLogprobs: o.topLogprobs ?? 0,
    };
    const check = (ok: boolean, message: string, param: string) => {
      if (!ok) throw new RequestError(message, param);
    };
    check(Number.isFinite(r.temperature) && r.temperature >= 0, 'temperature must be ≥ 0', 'temperature');
    check(r.topP > 0 && r.topP <= 1, 'top_p must be in (0, 1]', 'top_p');
    check(Number.isInteger(r.topK), 'top_k must be an integer', 'top_k');
    check(r.minP >= 0 && r.minP <= 1, 'min_p must be in [0, 1]', 'min_p');
    check(Number.isFinite(r.presencePenalty), 'presence_penalty must be a number', 'presence_penalty');
    check(Number.isFinite(r.frequencyPenalty), 'frequency_penalty must be a number', 'frequency_penalty');
    check(Number.isFinite(r.repetitionPenalty) && r.repetitionPenalty > 0, 'repetition_penalty must be > 0', 'repetition_penalty');
    check(Number.isInteger(r.seed) && r.seed >= 0 && r.seed <= Number.MAX_SAFE_INTEGER, 'seed must be a non-negative integer', 'seed');
    check(Number.isInteger(r.topLogprobs) && r.topLogprobs >= 0 && r.topLogprobs <= 20, 'top_logprobs must be in [0, 20]', 'top_logprobs');
    return r;
  }

  #kick(): void {
    if (this.#looping) return;
    this.#looping = true;
    // The loop starts on a later tick so that requests submitted together share the first step.
    setImmediate(() => {
      this.#loop().finally(() => {
        this.#looping = false;
        if (this.#scheduler.hasWork) this.#kick();
      });
    });
  }

  async #loop(): Promise<void> {
    while (this.#scheduler.hasWork) {
      this.#reap();
      const plan = this.#scheduler.schedule();
      this.#stats.preemptions += plan.preempted.length;
      if (plan.sequences.length === 0) {
        // Nothing could be scheduled: requests were all reaped, or the head of the queue cannot fit.
        const head = this.#scheduler.waiting[0];
        if (head && this.#scheduler.running.length === 0) this.#fail(head, new RequestError('the request does not fit in the KV cache'));
        if (!this.#scheduler.hasWork) break;
        continue;
      }
      try {
        await this.#step(plan);
      } catch (error) {
        for (const { request } of plan.sequences) this.#fail(request, error);
      }
    }
  }

  async #step(plan: StepPlan<Request>): Promise<void> {
    const logits = this.#model.forward(
      plan.sequences.map(({ request, start, numNew }) => ({
        tokens: request.tokens.slice(start, start + numNew),
        start,
        blockTable: request.blockIds,
      })),
    );
    const numTop = Math.max(0, ...plan.sequences.map((s) => (s.request.options.logprobs ? s.request.options.topLogprobs : 0)));
    const result = await ops.sample(logits, plan.sequences.map((s) => this.#samplingRow(s.request)), { numTop });
    this.#scheduler.commit(plan);
    this.#stats.steps++;
    this.#stats.computedTokens += plan.numTokens;
    plan.sequences.forEach(({ request }, i) => {
      // A prefill chunk that has not reached the end of the prompt produces no token yet.
      if (request.finished || request.cancelled || request.numComputed < request.tokens.length) return;
      const top = result.topTokens.subarray(i * numTop, i * numTop + request.options.topLogprobs);
      const topLp = result.topLogprobs.subarray(i * numTop, i * numTop + request.options.topLogprobs);
      this.#append(request, result.tokens[i], result.logprobs[i], top, topLp);
    });
  }

  #samplingRow(req: Request): ops.SamplingRow {
    const o = req.options;
    const row: ops.SamplingRow = {
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      minP: o.minP,
      presencePenalty: o.presencePenalty,
      frequencyPenalty: o.frequencyPenalty,
      repetitionPenalty: o.repetitionPenalty,
      seed: o.seed,
      offset: req.numOutput,
    };
    if (req.counts.size > 0 && (o.presencePenalty !== 0 || o.frequencyPenalty !== 0 || o.repetitionPenalty !== 1)) {
      row.penaltyTokens = Int32Array.from(req.counts.keys());
      row.penaltyCounts = Int32Array.from(req.counts.values());
    }
    return row;
  }

  #append(req: Request, token: number, logprob: number, top: Int32Array, topLp: Float32Array): void {
    req.tokens.push(token);
    req.unsentTokenIds.push(token);
    const o = req.options;
    if (o.presencePenalty !== 0 || o.frequencyPenalty !== 0 || o.repetitionPenalty !== 1)
      req.counts.set(token, (req.counts.get(token) ?? 0) + 1);
    const isEos = !o.ignoreEos && this.#config.eosTokenIds.includes(token);
    const { text, stopped } = isEos ? { text: '', stopped: false } : req.output.push([token]);
    let logprobs: TokenLogprob[] | undefined;
    if (o.logprobs) {
      const info = this.#text.tokenInfo(token);
      logprobs = [
        {
          token: info.token,
          tokenId: token,
          logprob,
          bytes: info.bytes,
          top: Array.from(top, (id, j) => ({ ...this.#text.tokenInfo(id), tokenId: id, logprob: topLp[j] })),
        },
      ];
    }
    let finish: FinishReason | null = null;
    if (isEos || stopped) finish = 'stop';
    else if (req.numOutput >= o.maxTokens || req.tokens.length >= this.#config.maxModelLen) finish = 'length';
    const tail = finish !== null && !stopped ? req.output.flush() : '';
    // Every generated token (EOS and stop-string tokens included) is in exactly one delta's tokenIds:
    // the first one after it whose text is released, or the last one.
    if (text || tail || logprobs || finish)
      req.events.push({ type: 'delta', text: text + tail, tokenIds: req.unsentTokenIds.splice(0), logprobs });
    if (finish) this.#finish(req, finish);
  }

  #usage(req: Request) {
    const completion = req.numOutput;
    return { promptTokens: req.numPromptTokens, completionTokens: completion, totalTokens: req.numPromptTokens + completion };
  }

  #finish(req: Request, reason: FinishReason): void {
    if (req.finished) return;
    req.finished = true;
    req.detach();
    this.#scheduler.remove(req);
    req.events.push({ type: 'done', finishReason: reason, usage: this.#usage(req) });
    req.events.end();
  }

  #fail(req: Request, error: unknown): void {
    if (req.finished) return;
    req.finished = true;
    req.detach();
    this.#scheduler.remove(req);
    req.events.end(error instanceof Error ? error : new Error(String(error)));
  }

  /** Cancelled requests leave the batch between steps; their blocks return to the pool. */
  #reap(): void {
    for (const queue of [this.#scheduler.running, this.#scheduler.waiting])
      for (const req of [...queue]) if (req.cancelled) this.#finish(req, 'cancelled');
  }
}
