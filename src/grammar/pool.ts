// A small pool of grammar worker threads per model. Compiling is cached by the canonical format (a
// repeated schema costs nothing) and bounded in time: a compile past the limit terminates its worker
// (a synchronous WASM call cannot be interrupted otherwise) and fails with GrammarCompileError. A
// compiled grammar lives on the worker that compiled it, and so do the matchers that use it.
import { Worker } from 'node:worker_threads';
import { canonicalKey, type GrammarFormat } from './format.js';
import type { MaskState, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';
import { GrammarConstraint } from './constraint.js';

export interface GrammarPoolOptions extends WorkerInit {
  /** Worker threads (default 2; each holds its own tokenizer info, ~180 MB for Qwen3). */
  workers?: number;
  /** A compile running longer fails (default 10,000 ms). */
  compileTimeoutMs?: number;
  /** Compiled grammars kept, least recently used dropped first (default 128). */
  cacheSize?: number;
}

/** A format the engine cannot enforce: not a valid schema, unsupported, or over the compile time limit. */
export class GrammarCompileError extends Error {
  constructor(
    message: string,
    readonly reason: 'invalid' | 'timeout',
  ) {
    super(message);
    this.name = 'GrammarCompileError';
  }
}

type OkReply = Extract<WorkerReply, { ok: true; id: number }> & { grammar?: number; matcher?: number; accepted?: boolean; state?: MaskState };

/** One worker thread and its in-flight requests. */
export class GrammarWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(r: OkReply): void; reject(e: Error): void }>();
  readonly ready: Promise<void>;
  #nextId = 0;
  #dead: Error | null = null;
  /** Matchers alive here (placement picks the least loaded worker). */
  load = 0;

  constructor(init: WorkerInit) {
    const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
    // Run from source (tests, tsx), the worker registers tsx's loader before importing its entry
    // (Node 20 ignores `--import` hooks for a worker's own entry file).
    this.#worker = entry.pathname.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`, {
          eval: true,
          workerData: init,
        })
      : new Worker(entry, { workerData: init });
    this.#worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      this.#worker.on('message', (reply: WorkerReply) => {
        if (reply.id === -1) return resolve();
        const waiter = this.#pending.get(reply.id);
        if (waiter === undefined) return;
        this.#pending.delete(reply.id);
        if (reply.ok) waiter.resolve(reply as OkReply);
        else waiter.reject(new Error(reply.error));
      });
      const fail = (error: Error) => {
        reject(error);
        this.#fail(error);
      };
      this.#worker.on('error', (e) => fail(new Error(`grammar worker failed: ${e.message}`)));
      this.#worker.on('exit', (code) => fail(new Error(`grammar worker exited (code ${code})`)));
    });
    this.ready.catch(() => {});
  }

  get alive(): boolean {
    return this.#dead === null;
  }

  call(request: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<OkReply> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise<OkReply>((resolve, reject) => {
      this.#pending.set(request.id, { resolve, reject });
      this.#worker.postMessage(request, transfer);
    });
  }

  nextId(): number {
    return this.#nextId++;
  }

  /** Stops the thread; every pending and later call fails with `reason`. */
  terminate(reason: Error): void {
    this.#fail(reason);
    void this.#worker.terminate();
  }

  #fail(error: Error): void {
    if (this.#dead) return;
    this.#dead = error;
    for (const waiter of this.#pending.values()) waiter.reject(error);
    this.#pending.clear();
  }
}

/** A grammar compiled on one worker. */
export interface CompiledGrammar {
  readonly key: string;
  readonly worker: GrammarWorker;
  readonly id: number;
}

export class GrammarPool {
  readonly #init: WorkerInit;
  readonly #workers: (GrammarWorker | null)[];
  readonly #timeoutMs: number;
  readonly #cacheSize: number;
  /** Canonical key → compile (in flight or done); Map order is recency. */
  readonly #cache = new Map<string, Promise<CompiledGrammar>>();
  #closed = false;

  constructor(options: GrammarPoolOptions) {
    const { workers = 2, compileTimeoutMs = 10_000, cacheSize = 128, ...init } = options;
    if (!Number.isInteger(workers) || workers < 1) throw new Error('grammar workers must be a positive integer');
    if (!(compileTimeoutMs > 0)) throw new Error('the grammar compile timeout must be > 0 ms');
    this.#init = init;
    this.#workers = Array.from({ length: workers }, () => null);
    this.#timeoutMs = compileTimeoutMs;
    this.#cacheSize = cacheSize;
  }

  get compileTimeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Compiles (or finds in the cache) a format; GrammarCompileError when it cannot be enforced. */
  compile(format: GrammarFormat): Promise<CompiledGrammar> {
    if (this.#closed) return Promise.reject(new Error('the grammar pool is closed'));
    const key = canonicalKey(format);
    const cached = this.#cache.get(key);
    if (cached) {
      this.#cache.delete(key);
      this.#cache.set(key, cached);
      return cached;
    }
    const compiled = this.#compile(key, format);
    this.#cache.set(key, compiled);
    // A failed compile is not cached (a timeout may pass on a quieter machine).
    compiled.catch(() => this.#cache.get(key) === compiled && this.#cache.delete(key));
    this.#evict();
    return compiled;
  }

  /** A fresh matcher for one request's output. */
  async constraint(grammar: CompiledGrammar): Promise<GrammarConstraint> {
    const reply = await grammar.worker.call({ op: 'matcher', id: grammar.worker.nextId(), grammar: grammar.id });
    return new GrammarConstraint(grammar.worker, reply.matcher!, reply.state!);
  }

  /** Compiles then makes a matcher: what a request needs. */
  async constrain(format: GrammarFormat): Promise<GrammarConstraint> {
    return this.constraint(await this.compile(format));
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#workers) w?.terminate(new Error('the grammar pool is closed'));
    this.#workers.fill(null);
    this.#cache.clear();
  }

  async #compile(key: string, format: GrammarFormat): Promise<CompiledGrammar> {
    const slot = this.#pickSlot();
    const worker = this.#workerAt(slot);
    await worker.ready;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Settled first, so the race reports the timeout rather than the worker's termination.
        reject(new GrammarCompileError(`the grammar took longer than ${this.#timeoutMs} ms to compile`, 'timeout'));
        // The compile blocks its thread and cannot be interrupted: replace the worker. Matchers living
        // there end their requests with an error (rare: compiles go to the least loaded worker).
        worker.terminate(new Error('the grammar worker was restarted: a grammar compile on it exceeded the time limit'));
        if (this.#workers[slot] === worker) this.#workers[slot] = null;
        for (const [k, entry] of this.#cache) void entry.then((g) => g.worker === worker && this.#cache.delete(k), () => {});
      }, this.#timeoutMs);
    });
    try {
      const reply = await Promise.race([worker.call({ op: 'compile', id: worker.nextId(), format }), timedOut]);
      return { key, worker, id: reply.grammar! };
    } catch (error) {
      if (error instanceof GrammarCompileError) throw error;
      throw new GrammarCompileError(error instanceof Error ? error.message : String(error), 'invalid');
    } finally {
      clearTimeout(timer);
    }
  }

  /** The worker slot with the fewest live matchers (a fresh slot counts as empty). */
  #pickSlot(): number {
    let best = 0;
    let bestLoad = Infinity;
    this.#workers.forEach((w, i) => {
      const load = w?.alive ? w.load : 0;
      if (load < bestLoad) [best, bestLoad] = [i, load];
    });
    return best;
  }

  #workerAt(slot: number): GrammarWorker {
    let worker = this.#workers[slot];
    if (worker === null || !worker.alive) {
      worker = new GrammarWorker(this.#init);
      this.#workers[slot] = worker;
    }
    return worker;
  }

  #evict(): void {
    while (this.#cache.size > this.#cacheSize) {
      const [key, oldest] = this.#cache.entries().next().value as [string, Promise<CompiledGrammar>];
      this.#cache.delete(key);
      void oldest.then(
        (g) => g.worker.call({ op: 'release', id: g.worker.nextId(), grammar: g.id }).catch(() => {}),
        () => {},
      );
    }
  }
}
