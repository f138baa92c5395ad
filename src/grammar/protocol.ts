// Messages between a GrammarPool (main thread) and its worker threads. Every request carries an id
// the reply echoes; masks travel as transferred buffers.
import type { GrammarFormat } from './format.js';

export interface WorkerInit {
  /** Token strings in id order as tokenizer.json spells them (byte-level alphabet; added tokens verbatim). */
  vocab: string[];
  /** Logits width (≥ vocab.length): ids past the vocabulary are never allowed. */
  logitsWidth: number;
  stopTokenIds: number[];
}

export type WorkerRequest =
  | { op: 'compile'; id: number; format: GrammarFormat }
  | { op: 'release'; id: number; grammar: number }
  | { op: 'matcher'; id: number; grammar: number }
  | { op: 'accept'; id: number; matcher: number; token: number }
  | { op: 'dispose'; id: number; matcher: number };

/** The next-token state after creating a matcher or accepting a token. */
export interface MaskState {
  mask: Int32Array;
  /** Only stop tokens may follow: the constrained output is complete. */
  complete: boolean;
}

export type WorkerReply =
  | { id: number; ok: true; grammar?: number; matcher?: number; accepted?: boolean; state?: MaskState }
  | { id: number; ok: false; error: string }
  | { id: -1; ok: true; ready: true };
