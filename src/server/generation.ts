// One HTTP request's generation: its n choices submitted to the engine, their events merged into one
// stream for the route, and its bookkeeping: metrics, the usage row, cancellation.
//
// The engine side and the HTTP side are decoupled. A pump per choice reads the engine's events to the
// end whatever the client does; the route reads the merged queue. When the client goes away (or the
// server drains past its grace period) the request is aborted, the engine finishes each choice as
// `cancelled` with the tokens generated so far, and the usage row is written from those counts: the
// metered tokens are exactly the generated ones, equal to the usage block the client saw or would have.
import { randomBytes } from 'node:crypto';
import type { TokenConstraint } from '../engine/constraint.js';
import { EventQueue } from '../engine/event-queue.js';
import type { FinishReason, GenerateCallOptions, GenerationEvent, SamplingOptions, Usage } from '../engine/types.js';
import type { ServerMetrics } from './metrics.js';
import type { MeteredFinish, UsageStore } from './usage-store.js';

export interface ChoiceEvent {
  choice: number;
  event: GenerationEvent;
}

/** What generates tokens for a request: the served model. */
export interface GenerationSource {
  generate(promptTokens: number[], options: SamplingOptions, call: GenerateCallOptions): AsyncIterable<GenerationEvent>;
}

export interface GenerationSpec {
  keyId: string | null;
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
  #draining = false;

  constructor(
    private readonly usage: UsageStore,
    private readonly metrics: ServerMetrics,
    private readonly logError: (error: unknown, message: string) => void,
  ) {}

  get size(): number {
    return this.#inFlight.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Submits every choice; throws (and submits nothing) if the engine refuses any of them. */
  start(source: GenerationSource, spec: GenerationSpec): Generation {
    const generation = new Generation(spec, source, this.usage, this.metrics, this.logError, () =>
      this.#inFlight.delete(generation),
    );
    this.#inFlight.add(generation);
    return generation;
  }

  /**
   * Lets in-flight generations finish for up to `graceMs`, then cancels the rest; resolves when every
   * usage row is written.
   */
  async drain(graceMs: number): Promise<void> {
    this.#draining = true;
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
  readonly id = randomBytes(12).toString('base64url');
  /** Unix seconds, the `created` of every object of this response. */
  readonly created = Math.floor(Date.now() / 1000);
  /** The choices' events, merged in arrival order; one consumer. Stopping early aborts the generation. */
  readonly events = new EventQueue<ChoiceEvent>();
  /** Resolves when every choice has ended and the usage row is written. */
  readonly finished: Promise<void>;
  readonly #controller = new AbortController();
  readonly #startedAt = Date.now();
  readonly #started = performance.now();
  readonly #choices: ChoiceState[];
  readonly #promptTokens: number;
  #firstDelta = true;

  constructor(
    readonly spec: GenerationSpec,
    source: GenerationSource,
    private readonly usageStore: UsageStore,
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
    this.finished = Promise.all(streams.map((s, i) => this.#pump(s, i))).then(() => {
      this.events.end();
      try {
        this.#meter();
      } catch (error) {
        this.logError(error, 'writing a usage row failed');
      }
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
      this.abort();
      this.events.end(error);
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

  #meter(): void {
    const usage = this.usage();
    const reasons = this.#choices.map((c) => c.finishReason ?? 'error');
    // One row per request: its worst outcome across choices.
    const finishReason: MeteredFinish = (['error', 'cancelled', 'length', 'stop'] as const).find((r) => reasons.includes(r)) ?? 'stop';
    this.usageStore.record({
      keyId: this.spec.keyId,
      model: this.spec.model,
      endpoint: this.spec.endpoint,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      startedAt: this.#startedAt,
      finishedAt: Date.now(),
      finishReason,
    });
    this.metrics.promptTokens.inc({}, usage.promptTokens);
    this.metrics.generationTokens.inc({}, usage.completionTokens);
    for (const r of reasons) this.metrics.finished.inc({ reason: r });
    this.metrics.requestDuration.observe((performance.now() - this.#started) / 1000);
  }
}
