// One HTTP request's generation: its admission (rate limits, the usage row written as `running`), its n
// choices submitted to the engine, their events merged into one stream for the route, and its
// bookkeeping: metrics, the usage row completed, cancellation.
//
// The engine side and the HTTP side are decoupled. A pump per choice reads the engine's events to the
// end whatever the client does; the route reads the merged queue. When the client goes away (or the
// server drains past its grace period) the request is aborted, the engine finishes each choice as
// `cancelled` with the tokens generated so far, and the usage row is completed from those counts: the
// metered tokens are exactly the generated ones, equal to the usage block the client saw or would have.
// The merged queue ends only after the row is committed, so the response's last byte follows it. A
// replica killed mid-generation leaves its row `running`, turned `interrupted` by replica.ts.
import { randomBytes } from 'node:crypto';
import type { TokenConstraint } from '../engine/constraint.js';
import { EventQueue } from '../engine/event-queue.js';
import type { FinishReason, GenerateCallOptions, GenerationEvent, SamplingOptions, Usage } from '../engine/types.js';
import type { ServerMetrics } from './metrics.js';
import { rateLimited } from './rate-limits.js';
import type { MeteredFinish, RateLimits, RateWindowState, UsageLedger } from './store/types.js';

export interface ChoiceEvent {
  choice: number;
  event: GenerationEvent;
}

/** What generates tokens for a request: the served model. */
export interface GenerationSource {
  /** Prompt plus completion tokens at most: a choice without max_tokens may generate up to the rest. */
  readonly contextLength: number;
  generate(promptTokens: number[], options: SamplingOptions, call: GenerateCallOptions): AsyncIterable<GenerationEvent>;
}

export interface GenerationSpec {
  keyId: string | null;
  /** The key's limits (NO_LIMITS without a key). */
  limits: RateLimits;
  model: string;
  endpoint: string;
  /** Distinct prompts (token ids); each counts once in prompt_tokens. */
  prompts: number[][];
  /** Per choice: which prompt, with which options and constraint (owned by the engine once submitted). */
  choices: { prompt: number; options: SamplingOptions; constraint?: TokenConstraint }[];
}

interface ChoiceState {
  finishReason: FinishReason | 'error' | null;
  completionTokens: number;
  lastDeltaAt: number;
}

/** Owns the in-flight generations: starts them, and drains them on shutdown. */
export class GenerationTracker {
  readonly #inFlight = new Set<Generation>();
  /** Admissions under way and one-shot requests running: a drain waits for them too. */
  readonly #admitting = new Set<Promise<unknown>>();
  #draining = false;

  constructor(
    private readonly usage: UsageLedger,
    /** This process's id in the usage rows (see replica.ts). */
    private readonly replicaId: string,
    private readonly metrics: ServerMetrics,
    private readonly logError: (error: unknown, message: string) => void,
  ) {}

  get size(): number {
    return this.#inFlight.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Admits the request against its key's limits (throws the 429 when refused), writes its usage row and
   * submits every choice; throws (and submits nothing, withdrawing the row) if the engine refuses any.
   */
  async start(source: GenerationSource, spec: GenerationSpec): Promise<Generation> {
    return this.#tracked(async () => {
      const promptTokens = spec.prompts.reduce((sum, p) => sum + p.length, 0);
      const maxCompletion = spec.choices.reduce(
        (sum, c) => sum + (c.options.maxTokens ?? Math.max(0, source.contextLength - spec.prompts[c.prompt].length)),
        0,
      );
      const admitted = await this.#admit(spec, promptTokens, promptTokens + maxCompletion);
      let generation: Generation;
      try {
        generation = new Generation(admitted.id, spec, source, admitted.rowId, admitted.window, this.usage, this.metrics, this.logError, () =>
          this.#inFlight.delete(generation),
        );
      } catch (error) {
        await this.#withdraw(admitted.rowId);
        throw error;
      }
      this.#inFlight.add(generation);
      return generation;
    });
  }

  /**
   * A request answered in one piece whose tokens are known only once it ran (embeddings): admitted with
   * nothing reserved, run, and metered with the prompt tokens `run` reports; a drain waits for it.
   */
  async runOnce<T extends { promptTokens: number }>(
    spec: Pick<GenerationSpec, 'keyId' | 'limits' | 'model' | 'endpoint'>,
    run: () => Promise<T>,
  ): Promise<{ result: T; window: RateWindowState }> {
    return this.#tracked(async () => {
      const admitted = await this.#admit(spec, 0, 0);
      let result: T;
      try {
        result = await run();
      } catch (error) {
        await this.#withdraw(admitted.rowId);
        throw error;
      }
      await this.usage.complete(admitted.rowId, { promptTokens: result.promptTokens, completionTokens: 0, finishedAt: Date.now(), finishReason: 'stop' });
      this.metrics.promptTokens.inc({}, result.promptTokens);
      return { result, window: admitted.window };
    });
  }

  async #tracked<T>(work: () => Promise<T>): Promise<T> {
    const promise = work();
    this.#admitting.add(promise);
    try {
      return await promise;
    } finally {
      this.#admitting.delete(promise);
    }
  }

  async #admit(
    spec: Pick<GenerationSpec, 'keyId' | 'limits' | 'model' | 'endpoint'>,
    promptTokens: number,
    reservedTokens: number,
  ): Promise<{ id: string; rowId: number; window: RateWindowState }> {
    const now = Date.now();
    const id = randomBytes(12).toString('base64url');
    const admission = await this.usage.admit({
      requestId: id,
      keyId: spec.keyId,
      limits: spec.limits,
      model: spec.model,
      endpoint: spec.endpoint,
      promptTokens,
      reservedTokens,
      replicaId: this.replicaId,
      now,
    });
    if (!admission.admitted) {
      this.metrics.rateLimited.inc({ limit: admission.exceeded });
      throw rateLimited(admission, spec.limits, now);
    }
    return { id, rowId: admission.rowId, window: admission.window };
  }

  async #withdraw(rowId: number): Promise<void> {
    await this.usage.withdraw(rowId).catch((e: unknown) => this.logError(e, 'withdrawing a usage row failed'));
  }

  /**
   * Lets in-flight generations finish for up to `graceMs`, then cancels the rest; resolves when every
   * usage row is written.
   */
  async drain(graceMs: number): Promise<void> {
    this.#draining = true;
    await Promise.allSettled([...this.#admitting]);
    const all = () => Promise.all([...this.#inFlight].map((g) => g.finished));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([all(), graceOver]);
    clearTimeout(timer);
    for (const g of this.#inFlight) g.abort();
    await all();
  }
}

export class Generation {
  /** Unix seconds, the `created` of every object of this response. */
  readonly created = Math.floor(Date.now() / 1000);
  /** The choices' events, merged in arrival order; one consumer. Stopping early aborts the generation. */
  readonly events = new EventQueue<ChoiceEvent>();
  /** Resolves when every choice has ended and the usage row is written. */
  readonly finished: Promise<void>;
  readonly #controller = new AbortController();
  readonly #started = performance.now();
  readonly #choices: ChoiceState[];
  readonly #promptTokens: number;
  #firstDelta = true;
  /** The first engine fault: the route gets it once the usage row is written. */
  #failure: unknown = null;

  constructor(
    /** The response's id without its prefix; also the usage row's request id. */
    readonly id: string,
    readonly spec: GenerationSpec,
    source: GenerationSource,
    private readonly rowId: number,
    /** The key's rate window as this request was admitted (for the x-ratelimit-* headers). */
    readonly rateWindow: RateWindowState,
    private readonly ledger: UsageLedger,
    private readonly metrics: ServerMetrics,
    private readonly logError: (error: unknown, message: string) => void,
    onFinished: () => void,
  ) {
    this.#promptTokens = spec.prompts.reduce((sum, p) => sum + p.length, 0);
    this.#choices = spec.choices.map(() => ({ finishReason: null, completionTokens: 0, lastDeltaAt: 0 }));
    const streams: AsyncIterable<GenerationEvent>[] = [];
    try {
      for (const c of spec.choices)
        streams.push(source.generate(spec.prompts[c.prompt], c.options, { signal: this.#controller.signal, constraint: c.constraint }));
    } catch (error) {
      // Choices already queued are cancelled before they compute anything; nothing is metered. The
      // refused choice's constraint was disposed by the model; those never submitted are disposed here.
      for (const c of spec.choices.slice(streams.length + 1)) c.constraint?.dispose();
      this.#controller.abort();
      throw error;
    }
    this.events.onCancel = () => this.abort();
    this.finished = Promise.all(streams.map((s, i) => this.#pump(s, i))).then(async () => {
      try {
        await this.#meter();
      } catch (error) {
        // The row stays `running` and is marked interrupted later; the client still gets its answer.
        this.logError(error, 'writing a usage row failed');
      }
      this.events.end(this.#failure);
      onFinished();
    });
  }

  /** Cancels every choice; each still ends with a `done` (finish reason `cancelled`). */
  abort(): void {
    this.#controller.abort();
  }

  /** Prompt and completion tokens so far (final once `finished` resolved). */
  usage(): Usage {
    const completionTokens = this.#choices.reduce((sum, c) => sum + c.completionTokens, 0);
    return { promptTokens: this.#promptTokens, completionTokens, totalTokens: this.#promptTokens + completionTokens };
  }

  async #pump(stream: AsyncIterable<GenerationEvent>, choice: number): Promise<void> {
    const state = this.#choices[choice];
    try {
      for await (const event of stream) {
        if (event.type === 'delta') this.#observeDelta(state, event.tokenIds.length);
        else {
          state.finishReason = event.finishReason;
          state.completionTokens = event.usage.completionTokens;
        }
        this.events.push({ choice, event });
      }
    } catch (error) {
      // An engine fault mid-generation: the client gets an error; what it was sent is metered.
      this.logError(error, 'generation failed');
      state.finishReason = 'error';
      this.#failure ??= error;
      this.abort();
    }
  }

  #observeDelta(state: ChoiceState, numTokens: number): void {
    const now = performance.now();
    state.completionTokens += numTokens;
    if (this.#firstDelta) {
      this.#firstDelta = false;
      this.metrics.timeToFirstToken.observe((now - this.#started) / 1000);
    } else if (state.lastDeltaAt > 0) {
      this.metrics.interTokenLatency.observe((now - state.lastDeltaAt) / 1000);
    }
    state.lastDeltaAt = now;
  }

  async #meter(): Promise<void> {
    const usage = this.usage();
    const reasons = this.#choices.map((c) => c.finishReason ?? 'error');
    // One row per request: its worst outcome across choices.
    const finishReason: MeteredFinish = (['error', 'cancelled', 'length', 'stop'] as const).find((r) => reasons.includes(r)) ?? 'stop';
    this.metrics.promptTokens.inc({}, usage.promptTokens);
    this.metrics.generationTokens.inc({}, usage.completionTokens);
    for (const r of reasons) this.metrics.finished.inc({ reason: r });
    this.metrics.requestDuration.observe((performance.now() - this.#started) / 1000);
    await this.ledger.complete(this.rowId, { completionTokens: usage.completionTokens, finishedAt: Date.now(), finishReason });
  }
}
