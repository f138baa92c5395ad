// The generation contract between the engine (src/engine), the library API (src/index.ts) and the
// server (src/server). Plain data only.

export interface SamplingOptions {
  /** 0 = greedy. Default: generation_config.json's, else 1. */
  temperature?: number;
  topP?: number;
  /** ≤ 0: off. */
  topK?: number;
  minP?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
  /** Same seed + same prompt + same options → same tokens. Random when absent. */
  seed?: number;
  /** Completion tokens at most (default: until the context is full). */
  maxTokens?: number;
  /** Strings that end generation; never emitted, may span tokens. */
  stop?: string[];
  /** Keep generating past EOS tokens. */
  ignoreEos?: boolean;
  /** Return the chosen token's logprob (and topLogprobs alternatives). */
  logprobs?: boolean;
  topLogprobs?: number;
}

export interface TokenLogprob {
  token: string;
  tokenId: number;
  logprob: number;
  bytes: number[];
  top: { token: string; tokenId: number; logprob: number; bytes: number[] }[];
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

/** What a generation yields: text deltas as they become UTF-8 complete, then exactly one `done`. */
export type GenerationEvent =
  | { type: 'delta'; text: string; tokenIds: number[]; logprobs?: TokenLogprob[] }
  | { type: 'done'; finishReason: FinishReason; usage: Usage };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatTemplateOptions {
  /** Qwen3's thinking switch (default true, as its template does). */
  enableThinking?: boolean;
  /** Default true. */
  addGenerationPrompt?: boolean;
}

export interface GenerateCallOptions {
  signal?: AbortSignal;
}
