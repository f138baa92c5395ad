// Usage metering: one row per generation request, written when it ends (finished, cut short by the
// client, or failed), holding exactly the token counts of the `usage` block the client got or would
// have got. Each insert is its own durable commit (synchronous=FULL, see database.ts).
import type { Db } from './database.js';

export type MeteredFinish = 'stop' | 'length' | 'cancelled' | 'error';

export interface UsageRecord {
  keyId: string | null;
  model: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  startedAt: number;
  finishedAt: number;
  finishReason: MeteredFinish;
}

export interface DailyUsage {
  /** UTC day, YYYY-MM-DD. */
  date: string;
  keyId: string | null;
  model: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

interface UsageRow {
  key_id: string | null;
  model: string;
  endpoint: string;
  prompt_tokens: number;
  completion_tokens: number;
  started_at: number;
  finished_at: number;
  finish_reason: MeteredFinish;
}

interface DailyRow {
  date: string;
  key_id: string | null;
  model: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
}

const DAILY_COLUMNS = `date(started_at / 1000, 'unixepoch') AS date, key_id, model, COUNT(*) AS requests,
  SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens`;

export class UsageStore {
  readonly #insert;
  readonly #dailyForKey;
  readonly #dailyAll;
  readonly #recent;

  constructor(db: Db) {
    this.#insert = db.prepare(
      `INSERT INTO usage (key_id, model, endpoint, prompt_tokens, completion_tokens, started_at, finished_at, finish_reason)
       VALUES (@keyId, @model, @endpoint, @promptTokens, @completionTokens, @startedAt, @finishedAt, @finishReason)`,
    );
    // `key_id IS ?` matches NULL too: the open server's requests are metered under no key.
    this.#dailyForKey = db.prepare(
      `SELECT ${DAILY_COLUMNS} FROM usage WHERE key_id IS ? AND started_at >= ? GROUP BY date, model ORDER BY date, model`,
    );
    this.#dailyAll = db.prepare(
      `SELECT ${DAILY_COLUMNS} FROM usage WHERE started_at >= ? GROUP BY date, key_id, model ORDER BY date, key_id, model`,
    );
    this.#recent = db.prepare(
      `SELECT key_id, model, endpoint, prompt_tokens, completion_tokens, started_at, finished_at, finish_reason
       FROM usage ORDER BY id DESC LIMIT ?`,
    );
  }

  record(row: UsageRecord): void {
    this.#insert.run(row);
  }

  /** Totals per UTC day and model for one key (null: requests made without a key), from `since` on. */
  dailyForKey(keyId: string | null, since = 0): DailyUsage[] {
    return (this.#dailyForKey.all(keyId, since) as DailyRow[]).map(toDaily);
  }

  /** Totals per UTC day, key and model, from `since` on. */
  daily(since = 0): DailyUsage[] {
    return (this.#dailyAll.all(since) as DailyRow[]).map(toDaily);
  }

  /** The last `limit` rows, newest first. */
  recent(limit: number): UsageRecord[] {
    return (this.#recent.all(limit) as UsageRow[]).map((r) => ({
      keyId: r.key_id,
      model: r.model,
      endpoint: r.endpoint,
      promptTokens: r.prompt_tokens,
      completionTokens: r.completion_tokens,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      finishReason: r.finish_reason,
    }));
  }
}

function toDaily(r: DailyRow): DailyUsage {
  return {
    date: r.date,
    keyId: r.key_id,
    model: r.model,
    requests: r.requests,
    promptTokens: r.prompt_tokens,
    completionTokens: r.completion_tokens,
  };
}
