// Rows of the stores' tables as both drivers return them (snake_case columns), and their mapping to
// the interface's records: one definition for SQLite and PostgreSQL.
import type { ApiKeyInfo, DailyUsage, RateLimits, UsageRecord } from './types.js';

export interface KeyRow {
  id: string;
  name: string;
  hint: string;
  created_at: number;
  revoked_at: number | null;
  rpm: number | null;
  tpm: number | null;
  max_concurrent: number | null;
}

export const limitsOf = (r: { rpm: number | null; tpm: number | null; max_concurrent: number | null }): RateLimits => ({
  rpm: r.rpm,
  tpm: r.tpm,
  maxConcurrent: r.max_concurrent,
});

export const keyInfoOf = (r: KeyRow): ApiKeyInfo => ({
  id: r.id,
  name: r.name,
  hint: r.hint,
  createdAt: new Date(r.created_at),
  revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
  limits: limitsOf(r),
});

export interface UsageRow {
  request_id: string;
  key_id: string | null;
  model: string;
  endpoint: string;
  prompt_tokens: number;
  completion_tokens: number;
  started_at: number;
  finished_at: number | null;
  state: UsageRecord['state'];
  finish_reason: UsageRecord['finishReason'];
  replica_id: string;
}

export interface DailyRow {
  date: string;
  key_id: string | null;
  model: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export const usageRecordOf = (r: UsageRow): UsageRecord => ({
  requestId: r.request_id,
  keyId: r.key_id,
  model: r.model,
  endpoint: r.endpoint,
  promptTokens: r.prompt_tokens,
  completionTokens: r.completion_tokens,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  state: r.state,
  finishReason: r.finish_reason,
  replicaId: r.replica_id,
});

export const dailyOf = (r: DailyRow): DailyUsage => ({
  date: r.date,
  keyId: r.key_id,
  model: r.model,
  requests: r.requests,
  promptTokens: r.prompt_tokens,
  completionTokens: r.completion_tokens,
});

export const RECENT_COLUMNS =
  'request_id, key_id, model, endpoint, prompt_tokens, completion_tokens, started_at, finished_at, state, finish_reason, replica_id';
