// A server process is a replica: it heartbeats into the store, and every replica sweeps the store for
// `running` usage rows whose replica stopped heartbeating (killed, crashed, its host gone) and marks them
// `interrupted`, keeping their prompt tokens. A replica restarting under the same id (--replica-id, e.g.
// a StatefulSet pod name) marks its previous life's rows at once; any other dead replica's rows are
// marked within `timeoutMs` by whichever replica sweeps next. Heartbeats come every timeoutMs / 3.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Store } from './store/types.js';

/** A replica whose heartbeat is older than this is dead (default). */
export const DEFAULT_REPLICA_TIMEOUT_MS = 30_000;

/** Host name, process id and a random suffix: unique per process unless --replica-id names one. */
export function defaultReplicaId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export class ReplicaHeartbeat {
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    readonly id: string,
    private readonly timeoutMs: number,
    private readonly logError: (error: unknown, message: string) => void,
  ) {}

  /** Registers the replica (interrupting its earlier life's rows), sweeps once, then beats periodically. */
  async start(): Promise<void> {
    const now = Date.now();
    await this.store.replicas.heartbeat(this.id, now, true);
    await this.store.replicas.sweep(now - this.timeoutMs, now);
    this.#timer = setInterval(() => {
      this.#beating = this.#beat().catch((error: unknown) => this.logError(error, 'replica heartbeat failed'));
    }, Math.max(100, Math.floor(this.timeoutMs / 3)));
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    const now = Date.now();
    await this.store.replicas.heartbeat(this.id, now, false);
    await this.store.replicas.sweep(now - this.timeoutMs, now);
  }

  /** Stops beating; waits for a beat in progress (the store closes next). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#beating;
  }
}
