// The generation contract between the engine (src/engine), the library API (src/index.ts) and the
// server (src/server). Plain data only.
import type { TokenConstraint } from './constraint.js';


export type { SamplingOptions, SamplingParams } from './sampling-params.js';

export interface TokenLogprob {
  token: string;
  tokenId: number;
  logprob: number;
  bytes: number[];
  /** Prompt logprobs only: 1 + the tokens more likely than this one (vLLM's rank). */
  rank?: number;
  /** The most likely tokens at this position, descending (their ranks are 1, 2, …). */
  top: { token: string; tokenId: number; logprob: number; bytes: number[] }[];
}

/**
 * A request's prompt logprobs (`promptLogprobs` option): one entry per prompt token, null for the
 * first (nothing precedes it). They ride on the request's first event, delta or done.
 */
export type PromptLogprobsList = (TokenLogprob | null)[];

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

/** What a generation yields: text deltas as they become UTF-8 complete, then exactly one `done`. */
export type GenerationEvent =
  | { type: 'delta'; text: string; tokenIds: number[]; logprobs?: TokenLogprob[]; promptLogprobs?: PromptLogprobsList }
  | { type: 'done'; finishReason: FinishReason; usage: Usage; promptLogprobs?: PromptLogprobsList };

/** A call the assistant made, as OpenAI spells it (arguments: a JSON object as text). */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; reasoning_content?: string | null; tool_calls?: ToolCall[] }
  /** A tool's result, answering the assistant's call `tool_call_id`. */
  | { role: 'tool'; content: string; tool_call_id: string };

/** A JSON Schema (draft 2020-12 and earlier; what xgrammar can enforce). */
export type JsonSchema = boolean | Record<string, unknown>;

/** A function the model may call (OpenAI's `tools[]` entry). */
export interface Tool {
  type: 'function';
  function: { name: string; description?: string; parameters?: JsonSchema; strict?: boolean | null };
}

/** none: never call; auto: the model decides; required: at least one call; or this one function. */
export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; description?: string; schema?: JsonSchema; strict?: boolean | null } };

export interface ChatTemplateOptions {
  /** Qwen3's thinking switch (default true, as its template does). */
  enableThinking?: boolean;
  /** Default true. */
  addGenerationPrompt?: boolean;
  /** Functions the template describes to the model. */
  tools?: readonly Tool[];
}

export interface GenerateCallOptions {
  signal?: AbortSignal;
  /** Restricts the tokens this request may sample (a grammar, a tool-call format, a ban list). */
  constraint?: TokenConstraint;
}

/** A chat answer's finish: 'tool_calls' when it ended after complete tool calls. */
export type ChatFinishReason = FinishReason | 'tool_calls';

/**
 * model.chat's events: text deltas (tool-call text removed), each tool call once complete, then one
 * `done`. Usage counts every generated token, tool-call tokens included.
 */
export type ChatEvent =
  | Extract<GenerationEvent, { type: 'delta' }>
  | { type: 'tool_call'; index: number; call: ToolCall }
  | { type: 'done'; finishReason: ChatFinishReason; usage: Usage; promptLogprobs?: PromptLogprobsList };
