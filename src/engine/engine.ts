// The engine: requests in, token streams out. One loop runs steps while there is work: the scheduler
// plans the batch, the model runs one forward pass over it, ops.sample draws one token per sequence on
// the device, and each finished row's token goes through its request's output (detokenizer, stops).
// A request may carry a TokenConstraint: its mask for the next token is asked for while the device
// runs the step's forward pass, and applied at sampling. A row whose mask is still pending when the
// device is done is sampled unmasked, its token discarded and its step not committed (the decode is
// recomputed later, writing the same KV); it then sits out the steps until its mask arrives, so a
// slow mask never holds back the other rows of the batch.
// A request may ask for its prompt's logprobs (prompt-logprobs.ts): steps running its prompt rows keep
// their hidden states, and those rows are scored in chunks after the step's sampling.
import { randomInt } from 'node:crypto';
import { ops, type Tensor } from '../runtime/index.js';
import type { KvBlockManager } from '../kv/block-manager.js';
import { maskWords, type TokenConstraint } from './constraint.js';
import { EventQueue } from './event-queue.js';
import { deviceRow, SAMPLING_FALLBACKS, usesPenalties, type SamplingOptions, type SamplingParams } from './sampling-params.js';
import { Scheduler, type ScheduledSequence, type StepPlan } from './scheduler.js';
import { MAX_PROMPT_LOGPROBS, PromptLogprobs, rowsToScore, scoreRows, type RowLogitsModel, type ScoringRequest } from './prompt-logprobs.js';
import type { FinishReason, GenerateCallOptions, GenerationEvent, TokenLogprob } from './types.js';

/** One sequence of a forward step: tokens at positions start … start + tokens.length − 1. */
export interface ForwardSequence {
  tokens: number[];
  start: number;
  blockTable: readonly number[];
}

/**
 * What the engine needs of a model: one step over a batch, returning last-token logits [n, vocab];
 * for prompt logprobs, a step that keeps its hidden states and the logits of rows of it.
 */
export interface StepModel {
  readonly vocabSize: number;
  forward(sequences: ForwardSequence[], options?: { keepHidden?: boolean }): Tensor;
  /** Absent: the model cannot score prompts (requests with promptLogprobs are refused). */
  readonly rows?: RowLogitsModel;
}

/** Text side of a request's output (detokenizer + stop strings), made per request. */
export interface TextOutput {
  /**
   * Appends generated tokens; returns the text now safe to show and whether a stop string ended it.
   * matchStops false: the text may not end generation yet (before minTokens) and is not matched.
   */
  push(tokenIds: number[], matchStops?: boolean): { text: string; stopped: boolean };
  /** Text held back at the end (an incomplete stop-string prefix). */
  flush(): string;
}

export interface TextOutputOptions {
  stop: readonly string[];
  /** The matched stop string stays at the end of the text. */
  includeStop: boolean;
  skipSpecialTokens: boolean;
}

export interface TextHooks {
  createOutput(options: TextOutputOptions): TextOutput;
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

/** A constrained request's mask for the token at position `forTokens` (its token count when asked). */
interface MaskTicket {
  forTokens: number;
  ready: boolean;
  value: Int32Array | null;
  /** Settles when the mask is ready or has failed. */
  settled: Promise<unknown>;
}

class Request implements ScoringRequest {
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
  /** Set by an asynchronous failure (a constraint's mask); the request ends with it between steps. */
  failure: Error | null = null;
  /** The logit bias as the sample op's sparse lists (null: none). */
  readonly bias: { tokens: Int32Array; values: Float64Array } | null;
  /** Until minTokens are generated: the allowed-token mask without the tokens that would end it (null: none to ban). */
  readonly minTokensMask: Int32Array | null;
  mask: MaskTicket | null = null;
  /** Waiting for its mask after a step that had to go on without it: the scheduler skips it. */
  blocked = false;
  /** Removes the AbortSignal listener, so a long-lived signal does not keep finished requests alive. */
  detach: () => void = () => {};
  readonly promptLogprobs: PromptLogprobs | null;
  /** Whether the prompt logprobs went out with an event already. */
  promptLogprobsSent = false;

  constructor(
    readonly id: string,
    prompt: readonly number[],
    readonly options: SamplingParams,
    readonly output: TextOutput,
    readonly constraint: TokenConstraint | null,
    /** EOS (unless ignoreEos) and stopTokenIds. */
    readonly stopTokens: ReadonlySet<number>,
    vocab: number,
  ) {
    this.tokens = [...prompt];
    this.minTokensMask = options.minTokens > 0 && stopTokens.size > 0 ? banMask(vocab, stopTokens) : null;
    this.numPromptTokens = prompt.length;
    if (options.repetitionPenalty !== 1) for (const t of prompt) if (!this.counts.has(t)) this.counts.set(t, 0);
    this.bias = options.logitBias.size > 0
      ? { tokens: Int32Array.from(options.logitBias.keys()), values: Float64Array.from(options.logitBias.values()) }
      : null;
    this.promptLogprobs = options.promptLogprobs !== null ? new PromptLogprobs(prompt, options.promptLogprobs) : null;
  }

  /** A cached prefix would skip rows this request still has to score (row 0 scores token 1). */
  get reusesPrefix(): boolean {
    return this.promptLogprobs?.complete ?? true;
  }

  /** The constraint's mask for the next token, when it is ready (null: unconstrained). */
  get readyMask(): Int32Array | null {
    return this.mask?.ready && this.mask.forTokens === this.tokens.length ? this.mask.value : null;
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
  /** The loop stopped because every request it could run waits for its mask; a kick resumes it. */
  #parked = false;
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
  /** The engine owns `call.constraint` from here on: it is disposed however the request ends, a refusal included. */
  submit(prompt: readonly number[], options: SamplingOptions = {}, call: GenerateCallOptions = {}): AsyncIterable<GenerationEvent> {
    let resolved: SamplingParams;
    try {
      resolved = this.#resolve(prompt, options);
      const waiting = this.#scheduler.waiting.length;
      if (this.#config.maxWaiting !== undefined && waiting >= this.#config.maxWaiting) throw new EngineBusyError();
    } catch (error) {
      call.constraint?.dispose();
      throw error;
    }
    const output = this.#text.createOutput({
      stop: resolved.stop,
      includeStop: resolved.includeStopStrInOutput,
      skipSpecialTokens: resolved.skipSpecialTokens,
    });
    const stopTokens = new Set([...(resolved.ignoreEos ? [] : this.#config.eosTokenIds), ...resolved.stopTokenIds]);
    const req = new Request(`req-${nextRequestId++}`, prompt, resolved, output, call.constraint ?? null, stopTokens, this.#model.vocabSize);
    if (call.signal?.aborted) {
      req.finished = true;
      req.constraint?.dispose();
      req.events.push({ type: 'done', finishReason: 'cancelled', usage: this.#usage(req) });
      req.events.end();
      return req.events;
    }
    const cancel = () => {
      req.cancelled = true;
      if (this.#looping) return;
      this.#reap();
      if (this.#scheduler.hasWork) this.#kick(); // a parked loop: the freed blocks may let the queue move
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

  #resolve(prompt: readonly number[], o: SamplingOptions): SamplingParams {
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
    const promptLogprobs = o.promptLogprobs ?? null;
    if (promptLogprobs !== null) {
      if (!Number.isInteger(promptLogprobs) || promptLogprobs < 0 || promptLogprobs > MAX_PROMPT_LOGPROBS)
        throw new RequestError(`prompt_logprobs must be an integer in [0, ${MAX_PROMPT_LOGPROBS}]`, 'prompt_logprobs');
      if (!this.#model.rows) throw new RequestError('this model cannot compute prompt logprobs', 'prompt_logprobs');
    }
    // max_tokens 0 only scores the prompt: without prompt logprobs it would compute nothing anyone sees.
    const minTokens = promptLogprobs !== null ? 0 : 1;
    if (!Number.isInteger(maxTokens) || maxTokens < minTokens)
      throw new RequestError(
        minTokens === 0 ? 'max_tokens must be a non-negative integer' : 'max_tokens must be a positive integer (0 only with prompt logprobs)',
        'max_tokens',
      );
    if (prompt.length + Math.max(maxTokens, 1) > this.#config.maxModelLen)
      throw new RequestError(
        `this model's maximum context length is ${this.#config.maxModelLen} tokens; the prompt (${prompt.length}) plus max_tokens (${maxTokens}) exceeds it`,
        'max_tokens',
      );
    if (this.#kv.blocksFor(prompt.length + Math.max(maxTokens, 1)) > this.#kv.numBlocks)
      throw new RequestError(
        `the prompt (${prompt.length}) plus max_tokens (${maxTokens}) needs more KV cache than this server has (${this.#kv.numBlocks * this.#kv.blockSize} tokens)`,
        'max_tokens',
      );
    const pick = <K extends keyof SamplingOptions>(k: K, fallback: NonNullable<SamplingOptions[K]>) =>
      (o[k] ?? d[k] ?? fallback) as NonNullable<SamplingOptions[K]>;
    const f = SAMPLING_FALLBACKS;
    const r: SamplingParams = {
      temperature: pick('temperature', f.temperature),
      topP: pick('topP', f.topP),
      topK: pick('topK', f.topK),
      minP: pick('minP', f.minP),
      presencePenalty: pick('presencePenalty', f.presencePenalty),
      frequencyPenalty: pick('frequencyPenalty', f.frequencyPenalty),
      repetitionPenalty: pick('repetitionPenalty', f.repetitionPenalty),
      seed: o.seed ?? randomInt(0, 2 ** 47),
      logitBias: this.#logitBias(o.logitBias),
      maxTokens,
      stop: o.stop ?? [],
      stopTokenIds: o.stopTokenIds ?? [],
      ignoreEos: o.ignoreEos ?? false,
      minTokens: o.minTokens ?? 0,
      includeStopStrInOutput: o.includeStopStrInOutput ?? false,
      skipSpecialTokens: o.skipSpecialTokens ?? true,
      logprobs: o.logprobs ?? false,
      topLogprobs: o.topLogprobs ?? 0,
      promptLogprobs,
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
    for (const t of r.stopTokenIds)
      check(Number.isInteger(t) && t >= 0 && t < vocab, `stop_token_ids: token ${t} is outside the vocabulary (0…${vocab - 1})`, 'stop_token_ids');
    check(Number.isInteger(r.minTokens) && r.minTokens >= 0, 'min_tokens must be a non-negative integer', 'min_tokens');
    check(r.minTokens <= maxTokens, `min_tokens (${r.minTokens}) must not exceed max_tokens (${maxTokens})`, 'min_tokens');
    check(Number.isInteger(r.topLogprobs) && r.topLogprobs >= 0 && r.topLogprobs <= 20, 'top_logprobs must be in [0, 20]', 'top_logprobs');
    return r;
  }

  /** { tokenId: bias } checked against the vocabulary and OpenAI's −100…100. */
  #logitBias(bias: Readonly<Record<number, number>> | undefined): Map<number, number> {
    const out = new Map<number, number>();
    const vocab = this.#model.vocabSize;
    for (const [key, value] of Object.entries(bias ?? {})) {
      const id = Number(key);
      if (!/^\d+$/.test(key) || id >= vocab)
        throw new RequestError(`logit_bias token id ${key} is outside the vocabulary (0…${vocab - 1})`, 'logit_bias');
      if (typeof value !== 'number' || !(value >= -100 && value <= 100))
        throw new RequestError(`logit_bias value ${value} for token ${key} is outside −100…100`, 'logit_bias');
      out.set(id, value);
    }
    return out;
  }

  #kick(): void {
    this.#parked = false;
    if (this.#looping) return;
    this.#looping = true;
    // The loop starts on a later tick so that requests submitted together share the first step.
    setImmediate(() => {
      this.#loop().finally(() => {
        this.#looping = false;
        if (this.#scheduler.hasWork && !this.#parked) this.#kick();
      });
    });
  }

  async #loop(): Promise<void> {
    while (this.#scheduler.hasWork) {
      this.#reap();
      const plan = this.#scheduler.schedule();
      this.#stats.preemptions += plan.preempted.length;
      if (plan.sequences.length === 0) {
        // Nothing could be scheduled: requests were all reaped, some wait for their masks (whose
        // arrival kicks the loop again), or the head of the queue cannot fit.
        if ([...this.#scheduler.running, ...this.#scheduler.waiting].some((r) => r.blocked)) {
          this.#parked = true;
          break;
        }
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
    const scored = rowsToScore(plan.sequences);
    const logits = this.#model.forward(
      plan.sequences.map(({ request, start, numNew }) => ({
        tokens: request.tokens.slice(start, start + numNew),
        start,
        blockTable: request.blockIds,
      })),
      { keepHidden: scored.length > 0 },
    );
    const deferred = await this.#awaitMasks(plan, logits);
    const numTop = Math.max(0, ...plan.sequences.map((s) => (s.request.options.logprobs ? s.request.options.topLogprobs : 0)));
    const result = await ops.sample(logits, plan.sequences.map((s) => this.#samplingRow(s.request)), { numTop });
    // Before the next forward overwrites the hidden states (rows of a deferred request are kept too).
    if (scored.length > 0) await scoreRows(this.#model.rows!, scored, (id) => this.#text.tokenInfo(id));
    const committed = deferred.size === 0 ? plan : { ...plan, sequences: plan.sequences.filter((s) => !deferred.has(s.request)) };
    this.#scheduler.commit(committed);
    this.#stats.steps++;
    this.#stats.computedTokens += committed.sequences.reduce((n, s) => n + s.numNew, 0);
    plan.sequences.forEach(({ request }, i) => {
      // A prefill chunk that has not reached the end of the prompt produces no token yet; a deferred
      // row's token was drawn without its mask and is discarded.
      if (request.finished || request.cancelled || request.failure || deferred.has(request)) return;
      if (request.numComputed < request.tokens.length) return;
      if (request.options.maxTokens === 0) {
        this.#finish(request, 'length'); // a prompt-scoring request: its token is not wanted
        return;
      }
      const top = result.topTokens.subarray(i * numTop, i * numTop + request.options.topLogprobs);
      const topLp = result.topLogprobs.subarray(i * numTop, i * numTop + request.options.topLogprobs);
      this.#append(request, result.tokens[i], result.logprobs[i], top, topLp);
    });
  }

  /**
   * Asks the constraints of the rows that sample this step for their masks (the forward pass is
   * already queued, so this overlaps it) and waits for them until the device is done. Returns the
   * rows whose masks are still pending: they sit out this step.
   */
  async #awaitMasks(plan: StepPlan<Request>, logits: Tensor): Promise<Set<Request>> {
    const pending: MaskTicket[] = [];
    for (const s of plan.sequences) {
      const req = s.request;
      if (!req.constraint || !producesToken(s)) continue;
      if (req.mask?.forTokens !== req.tokens.length) this.#askMask(req);
      if (req.mask && !req.mask.ready) pending.push(req.mask);
    }
    if (pending.length === 0) return new Set();
    await Promise.race([Promise.all(pending.map((m) => m.settled)), logits.device.synchronize()]);
    const deferred = new Set<Request>();
    for (const s of plan.sequences) {
      const req = s.request;
      if (!req.constraint || !producesToken(s) || req.failure || (req.mask?.ready ?? false)) continue;
      deferred.add(req);
      req.blocked = true;
    }
    return deferred;
  }

  /** Asks req's constraint for the mask of its next token; a promise settles in the background. */
  #askMask(req: Request): void {
    const forTokens = req.tokens.length;
    let result: ReturnType<TokenConstraint['nextMask']>;
    try {
      result = req.constraint!.nextMask();
    } catch (error) {
      this.#failLater(req, error);
      return;
    }
    if (result === null || result instanceof Int32Array) {
      const ticket: MaskTicket = { forTokens, ready: false, value: null, settled: Promise.resolve() };
      req.mask = ticket;
      this.#maskArrived(req, ticket, result);
      return;
    }
    const ticket: MaskTicket = { forTokens, ready: false, value: null, settled: Promise.resolve() };
    ticket.settled = Promise.resolve(result).then(
      (value) => this.#maskArrived(req, ticket, value),
      (error) => this.#failLater(req, error),
    );
    req.mask = ticket;
  }

  /** Records a mask; a malformed one ends only its own request (the op would refuse the whole batch). */
  #maskArrived(req: Request, ticket: MaskTicket, value: Int32Array | null): void {
    if (req.finished || req.mask !== ticket) return;
    const vocab = this.#model.vocabSize;
    if (value !== null) {
      if (!(value instanceof Int32Array) || value.length !== maskWords(vocab)) {
        this.#failLater(req, new Error(`the request's constraint returned a token mask that is not an Int32Array of ceil(vocab / 32) = ${maskWords(vocab)} words`));
        return;
      }
      if (!allowsSomeToken(value, vocab)) {
        this.#failLater(req, new Error("the request's constraint allows no token"));
        return;
      }
    }
    ticket.value = value;
    ticket.ready = true;
    if (req.blocked) {
      req.blocked = false;
      this.#kick();
    }
  }

  /** Ends a request with `error` between steps (it may be in the step running now). */
  #failLater(req: Request, error: unknown): void {
    if (req.finished || req.failure) return;
    req.failure = error instanceof Error ? error : new Error(String(error));
    req.blocked = false;
    this.#kick(); // the loop ends it at its next step
  }

  #samplingRow(req: Request): ops.SamplingRow {
    const o = req.options;
    const row = deviceRow(o, req.numOutput, req.bias);
    if (req.counts.size > 0 && usesPenalties(o)) {
      row.penaltyTokens = Int32Array.from(req.counts.keys());
      row.penaltyCounts = Int32Array.from(req.counts.values());
    }
    const mask = this.#allowedMask(req);
    if (mask) row.allowedMask = mask;
    return row;
  }

  /** The constraint's mask, and before minTokens the ban on tokens that would end the request. */
  #allowedMask(req: Request): Int32Array | null {
    const constraint = req.readyMask;
    const ban = req.numOutput < req.options.minTokens ? req.minTokensMask : null;
    if (ban === null) return constraint;
    if (constraint === null) return ban;
    const both = constraint.map((word, i) => word & ban[i]);
    // A grammar that allows only an end token (it is complete) wins over min_tokens.
    return allowsSomeToken(both, this.#model.vocabSize) ? both : constraint;
  }

  #append(req: Request, token: number, logprob: number, top: Int32Array, topLp: Float32Array): void {
    req.tokens.push(token);
    req.unsentTokenIds.push(token);
    const o = req.options;
    if (usesPenalties(o)) req.counts.set(token, (req.counts.get(token) ?? 0) + 1);
    if (req.constraint && !this.#constraintAccepts(req, token)) return;
    // Before minTokens nothing may end the request: end tokens were masked, stop strings go unmatched.
    const mayStop = req.numOutput >= o.minTokens;
    const endToken = mayStop && req.stopTokens.has(token);
    const { text, stopped } = endToken && !o.includeStopStrInOutput ? { text: '', stopped: false } : req.output.push([token], mayStop);
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
    if (endToken || stopped || req.constraint?.isTerminated()) finish = 'stop';
    else if (req.numOutput >= o.maxTokens || req.tokens.length >= this.#config.maxModelLen) finish = 'length';
    const tail = finish !== null && !stopped ? req.output.flush() : '';
    // Every generated token (EOS and stop-string tokens included) is in exactly one delta's tokenIds:
    // the first one after it whose text is released, or the last one.
    if (text || tail || logprobs || finish)
      req.events.push({ type: 'delta', text: text + tail, tokenIds: req.unsentTokenIds.splice(0), logprobs, ...this.#promptLogprobsOnce(req) });
    if (finish) this.#finish(req, finish);
  }

  /** Advances req's constraint past `token`; a rejection (or a throw) ends the request with an error. */
  #constraintAccepts(req: Request, token: number): boolean {
    let ok: boolean;
    try {
      ok = req.constraint!.accept(token);
    } catch (error) {
      this.#fail(req, error);
      return false;
    }
    if (!ok) this.#fail(req, new Error(`the request's constraint rejected the sampled token ${token}`));
    return ok;
  }

  #usage(req: Request) {
    const completion = req.numOutput;
    return { promptTokens: req.numPromptTokens, completionTokens: completion, totalTokens: req.numPromptTokens + completion };
  }

  #finish(req: Request, reason: FinishReason): void {
    if (req.finished) return;
    req.finished = true;
    req.detach();
    req.constraint?.dispose();
    this.#scheduler.remove(req);
    req.events.push({ type: 'done', finishReason: reason, usage: this.#usage(req), ...this.#promptLogprobsOnce(req) });
    req.events.end();
  }

  /** The request's prompt logprobs, once complete, for its first event that can carry them. */
  #promptLogprobsOnce(req: Request): Pick<Extract<GenerationEvent, { type: 'done' }>, 'promptLogprobs'> {
    if (!req.promptLogprobs?.complete || req.promptLogprobsSent) return {};
    req.promptLogprobsSent = true;
    return { promptLogprobs: req.promptLogprobs.entries };
  }

  #fail(req: Request, error: unknown): void {
    if (req.finished) return;
    req.finished = true;
    req.detach();
    req.constraint?.dispose();
    this.#scheduler.remove(req);
    req.events.end(error instanceof Error ? error : new Error(String(error)));
  }

  /** Cancelled and failed requests leave the batch between steps; their blocks return to the pool. */
  #reap(): void {
    for (const queue of [this.#scheduler.running, this.#scheduler.waiting])
      for (const req of [...queue]) {
        if (req.cancelled) this.#finish(req, 'cancelled');
        else if (req.failure) this.#fail(req, req.failure);
      }
  }
}

/** Whether this step brings the sequence to its last token, so that a token is sampled for it. */
function producesToken(s: ScheduledSequence<Request>): boolean {
  return s.start + s.numNew >= s.request.tokens.length;
}

/** An allowed-token mask over `vocab` with every token allowed but `banned`. */
function banMask(vocab: number, banned: ReadonlySet<number>): Int32Array {
  const mask = new Int32Array(maskWords(vocab)).fill(-1);
  for (const t of banned) if (t < vocab) mask[t >> 5] &= ~(1 << (t & 31));
  return mask;
}

/** Whether `mask` allows some token below `vocab` (bits past it are ignored, as the op does). */
function allowsSomeToken(mask: Int32Array, vocab: number): boolean {
  const full = vocab >> 5;
  for (let w = 0; w < full; w++) if (mask[w] !== 0) return true;
  const rest = vocab & 31;
  return rest > 0 && (mask[full] & ((1 << rest) - 1)) !== 0;
}
