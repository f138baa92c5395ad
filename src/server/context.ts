// What the route plugins share: the served model (once loaded), the stores, metrics and the tracker of
// in-flight generations. Built once per server by app.ts.
import type { ChatMessage, ChatTemplateOptions, GenerateCallOptions, GenerationEvent, SamplingOptions } from '../engine/types.js';
import type { ModelStats, TokenizeInput } from '../engine/model.js';
import type { EmbedOptions, EmbedResult } from '../engine/embeddings.js';
import type { ModelTask } from '../model/index.js';
import type { GenerationTracker } from './generation.js';
import type { KeyStore } from './key-store.js';
import type { ServerMetrics } from './metrics.js';
import type { UsageStore } from './usage-store.js';
import { ApiError, modelLoading, modelNotFound } from './errors.js';

/** What the server needs of a loaded model (src/index.ts's Model provides it). */
export interface ServedModel {
  readonly contextLength: number;
  /** 'generate' serves chat and completions; 'embed' serves embeddings. */
  readonly task: ModelTask;
  readonly tokenizer: {
    encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
    decode(ids: readonly number[]): string;
    tokenText(id: number): string;
  };
  tokenize(input: TokenizeInput): number[];
  detokenize(ids: readonly number[]): string;
  embed(inputs: readonly (string | readonly number[])[], options?: EmbedOptions): Promise<EmbedResult>;
  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
  generate(promptTokens: number[], options: SamplingOptions, call: GenerateCallOptions): AsyncIterable<GenerationEvent>;
  stats(): ModelStats;
}

export class ServerContext {
  /** Unix seconds: the `created` of the model object. */
  readonly createdAt = Math.floor(Date.now() / 1000);
  #model: ServedModel | null = null;
  #loadError: unknown = null;

  constructor(
    /** The id clients name in `model`. */
    readonly modelId: string,
    readonly keys: KeyStore,
    readonly usage: UsageStore,
    readonly metrics: ServerMetrics,
    readonly tracker: GenerationTracker,
    /** Keys were required at start (some existed): they stay required even if all are revoked later. */
    private readonly keysRequiredAtStart: boolean,
  ) {}

  setModel(model: ServedModel): void {
    this.#model = model;
  }

  setLoadError(error: unknown): void {
    this.#loadError = error;
  }

  get state(): 'loading' | 'ready' | 'failed' {
    return this.#model ? 'ready' : this.#loadError ? 'failed' : 'loading';
  }

  get loadedModel(): ServedModel | null {
    return this.#model;
  }

  /** The model a request names, once loaded: 404 for another name, 503 while loading. */
  modelFor(requested: string): ServedModel {
    if (requested !== this.modelId) throw modelNotFound(requested);
    if (this.#model) return this.#model;
    if (this.#loadError) throw new ApiError(503, 'the model failed to load', 'server_error', null, 'model_unavailable');
    throw modelLoading();
  }

  /** With keys, every /v1 request needs one; a key created while the server runs takes effect at once. */
  keysRequired(): boolean {
    return this.keysRequiredAtStart || this.keys.hasActiveKeys();
  }
}
