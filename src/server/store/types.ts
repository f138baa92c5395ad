// What the server keeps in its database, behind one interface with two implementations: SQLite under
// --data-dir (embedded, one host) and PostgreSQL (--database postgres://…, shared by every replica).
// Every method is async because PostgreSQL is; the SQLite store answers synchronously inside them.

/** Per-key rate limits; null means unlimited. */
export interface RateLimits {
  /** Requests per minute (fixed one-minute windows, see rate-window.ts). */
  rpm: number | null;
  /** Tokens per minute: prompt tokens plus the completion tokens a request may generate, reserved at admission. */
  tpm: number | null;
  /** Generation requests of this key running at once, across every replica. */
  maxConcurrent: number | null;
}

export const NO_LIMITS: RateLimits = { rpm: null, tpm: null, maxConcurrent: null };

export interface ApiKeyInfo {
  id: string;
  name: string;
  /** Recognisable but useless form of the key: prefix and last 4 characters. */
  hint: string;
  createdAt: Date;
  revokedAt: Date | null;
  limits: RateLimits;
}

/** An active key a request presented. */
export interface VerifiedKey {
  id: string;
  limits: RateLimits;
}

export interface KeyStore {
  /** Creates a key; the returned `key` is shown once and cannot be recovered later. */
  create(name: string, limits?: Partial<RateLimits>): Promise<{ key: string; info: ApiKeyInfo }>;
  list(): Promise<ApiKeyInfo[]>;
  /** Revokes the active keys with this id or name; returns how many. */
  revoke(idOrName: string): Promise<number>;
  /** Changes the given limits (null: unlimited) of the active keys with this id or name; returns how many. */
  setLimits(idOrName: string, limits: Partial<RateLimits>): Promise<number>;
  hasActiveKeys(): Promise<boolean>;
  /** The active key `presented` is, or null. */
  verify(presented: string): Promise<VerifiedKey | null>;
}

/** How a completed request ended (one value per request: the worst of its choices). */
export type MeteredFinish = 'stop' | 'length' | 'cancelled' | 'error';

/**
 * running: admitted, generating; completed: ended (finish reason set); interrupted: its replica died
 * before it ended (prompt tokens metered, completion tokens unknown, counted as 0).
 */
export type UsageState = 'running' | 'completed' | 'interrupted';

export interface UsageRecord {
  /** The response's id without its prefix (chatcmpl-…, cmpl-…): clients can match their rows. */
  requestId: string;
  keyId: string | null;
  model: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  startedAt: number;
  finishedAt: number | null;
  state: UsageState;
  finishReason: MeteredFinish | null;
  replicaId: string;
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

export interface AdmissionRequest {
  /** The response's id without its prefix. */
  requestId: string;
  keyId: string | null;
  /** The key's limits as verified for this request. */
  limits: RateLimits;
  model: string;
  endpoint: string;
  promptTokens: number;
  /** What counts against tokens-per-minute now: prompt tokens plus every choice's max completion tokens. */
  reservedTokens: number;
  replicaId: string;
  now: number;
}

/** The key's one-minute window after this request (or at its refusal). */
export interface RateWindowState {
  requests: number;
  tokens: number;
  /** ms since the epoch at which the window ends. */
  resetAt: number;
}

export type Admission =
  | { admitted: true; rowId: number; window: RateWindowState }
  | { admitted: false; exceeded: 'requests' | 'tokens' | 'concurrent'; window: RateWindowState };

export interface Completion {
  /** Replaces the row's prompt tokens when they were unknown at admission (embeddings). */
  promptTokens?: number;
  completionTokens: number;
  finishedAt: number;
  finishReason: MeteredFinish;
}

export interface UsageLedger {
  /**
   * Checks the key's limits and, when they allow, writes the request's row (state running, completion
   * tokens 0) and counts it in the key's window, atomically across replicas.
   */
  admit(request: AdmissionRequest): Promise<Admission>;
  /** Writes the outcome (durably) and settles the window's reserved tokens to the ones used. */
  complete(rowId: number, completion: Completion): Promise<void>;
  /** The engine refused the request after admission: its row and its share of the window go. */
  withdraw(rowId: number): Promise<void>;
  /** Totals per UTC day and model for one key (null: requests made without a key), from `since` on. */
  dailyForKey(keyId: string | null, since?: number): Promise<DailyUsage[]>;
  /** Totals per UTC day, key and model, from `since` on. */
  daily(since?: number): Promise<DailyUsage[]>;
  /** The last `limit` rows, newest first. */
  recent(limit: number): Promise<UsageRecord[]>;
}

export interface ReplicaRegistry {
  /**
   * Records that replica `id` is alive now. With `starting`, its rows still running are from an earlier
   * process of the same id that died, and become interrupted at once.
   */
  heartbeat(id: string, now: number, starting: boolean): Promise<void>;
  /** Marks interrupted the running rows of replicas silent since `staleBefore`; returns how many. */
  sweep(staleBefore: number, now: number): Promise<number>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly keys: KeyStore;
  readonly usage: UsageLedger;
  readonly replicas: ReplicaRegistry;
  close(): Promise<void>;
}

/** The store cannot be opened or used as configured (unreachable, newer schema, bad URL): a message for the operator. */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}
