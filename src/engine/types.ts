// The generation contract between the engine (src/engine), the library API (src/index.ts) and the
// server (src/server). Plain data only.
import type { TokenConstraint } from './constraint.js';


export type { SamplingOptions, SamplingParams } from './sampling-params.js';

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
  /** Restricts the tokens this request may sample (a grammar, a tool-call format, a ban list). */
  constraint?: TokenConstraint;
}
