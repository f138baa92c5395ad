// Rate limits use fixed one-minute windows aligned to the clock (12:00:00–12:00:59.999, …): one counter
// row per key and window, updated inside the admission transaction that also counts the key's running
// requests, so replicas sharing a database never admit more than the limits allow together. A fixed
// window lets a burst of up to twice the limit straddle a window edge; in exchange each admission is
// one row lock and one upsert, and every replica computes the same reset time.
//
// Tokens per minute counts what a request may use: its prompt tokens plus each choice's max_tokens (the
// room left in the context when absent), reserved at admission and settled to the tokens actually used
// when it ends, as OpenAI estimates with max_tokens. A request is refused when its reservation does not
// fit in what is left of the window.
import type { Admission, RateLimits, RateWindowState } from './types.js';

export const WINDOW_MS = 60_000;

export function windowStart(now: number): number {
  return Math.floor(now / WINDOW_MS) * WINDOW_MS;
}

export function hasWindowLimits(limits: RateLimits): boolean {
  return limits.rpm !== null || limits.tpm !== null;
}

/**
 * The refusal, if any, for a request reserving `reservedTokens` when the key's window holds `used` and
 * `running` of its requests are generating now.
 */
export function exceededLimit(
  limits: RateLimits,
  used: { requests: number; tokens: number },
  running: number,
  reservedTokens: number,
): Extract<Admission, { admitted: false }>['exceeded'] | null {
  if (limits.maxConcurrent !== null && running >= limits.maxConcurrent) return 'concurrent';
  if (limits.rpm !== null && used.requests + 1 > limits.rpm) return 'requests';
  if (limits.tpm !== null && used.tokens + reservedTokens > limits.tpm) return 'tokens';
  return null;
}

export function windowState(now: number, requests: number, tokens: number): RateWindowState {
  return { requests, tokens, resetAt: windowStart(now) + WINDOW_MS };
}
