// Per-key rate limits on the wire, as OpenAI sends them: x-ratelimit-{limit,remaining,reset}-{requests,
// tokens} on every generation response of a key with limits, and 429 `rate_limit_exceeded` when a
// limit is reached. Headers appear for the limits a key has (an unlimited key gets none).
import { ApiError } from './errors.js';
import type { Admission, RateLimits, RateWindowState } from './store/types.js';

export function rateLimitHeaders(limits: RateLimits, window: RateWindowState, now: number): Record<string, string> {
  const headers: Record<string, string> = {};
  const reset = duration(Math.max(0, window.resetAt - now));
  if (limits.rpm !== null) {
    headers['x-ratelimit-limit-requests'] = String(limits.rpm);
    headers['x-ratelimit-remaining-requests'] = String(Math.max(0, limits.rpm - window.requests));
    headers['x-ratelimit-reset-requests'] = reset;
  }
  if (limits.tpm !== null) {
    headers['x-ratelimit-limit-tokens'] = String(limits.tpm);
    headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, limits.tpm - window.tokens));
    headers['x-ratelimit-reset-tokens'] = reset;
  }
  return headers;
}

/** OpenAI's 429 for a refused admission, carrying the headers and a Retry-After for the window's end. */
export function rateLimited(refusal: Extract<Admission, { admitted: false }>, limits: RateLimits, now: number): ApiError {
  const message =
    refusal.exceeded === 'concurrent'
      ? `Rate limit reached: at most ${limits.maxConcurrent} concurrent requests for this API key. Retry when one finishes.`
      : refusal.exceeded === 'requests'
        ? `Rate limit reached for requests per minute (RPM): limit ${limits.rpm}, used ${refusal.window.requests}. Retry after ${duration(refusal.window.resetAt - now)}.`
        : `Rate limit reached for tokens per minute (TPM): limit ${limits.tpm}, used ${refusal.window.tokens}; this request needs more than is left. Retry after ${duration(refusal.window.resetAt - now)}.`;
  const headers = rateLimitHeaders(limits, refusal.window, now);
  if (refusal.exceeded !== 'concurrent') headers['retry-after'] = String(Math.max(1, Math.ceil((refusal.window.resetAt - now) / 1000)));
  return new ApiError(429, message, 'rate_limit_error', null, 'rate_limit_exceeded', headers);
}

/** A duration as OpenAI writes it: "250ms", "12.5s", "1m0s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms - minutes * 60_000) / 10) / 100;
  return minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
}
