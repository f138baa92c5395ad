// Continuous batching (vLLM v1's scheduler in spirit): there are no prefill and decode phases — each
// step, every scheduled request computes some of its tokens so that its computed count catches up
// with its token count (prompt + output). Running requests go first (a decode is one token, a
// prefill continues in chunks), then waiting requests are admitted first-come first-served while the
// step's token budget and the sequence limit allow. When KV blocks run out, the newest running
// request is preempted: its blocks are freed and it is recomputed later. A blocked request (waiting
// for its token mask) is skipped until it is unblocked.
import type { BlockOwner, KvBlockManager } from '../kv/block-manager.js';

export interface SchedulerConfig {
  /** Sequences in one step at most. */
  maxNumSeqs: number;
  /** Tokens computed in one step at most (prefill chunking). */
  maxNumBatchedTokens: number;
}

/** What the scheduler needs to know of a request. */
export interface SchedulableRequest extends BlockOwner {
  readonly id: string;
  /** Prompt and output tokens so far. */
  readonly tokens: number[];
  /** Tokens already in the KV cache. */
  numComputed: number;
  /** Times this request was preempted. */
  numPreemptions: number;
  /** Not schedulable for now (waiting for its token mask); it keeps its place and its blocks. */
  readonly blocked?: boolean;
  /** False: computes its prompt from the first token even when a prefix is cached (it scores those rows). */
  readonly reusesPrefix?: boolean;
}

export interface ScheduledSequence<R extends SchedulableRequest> {
  request: R;
  /** Position of the first new token (= tokens already cached). */
  start: number;
  /** Tokens computed this step: tokens[start, start + numNew). */
  numNew: number;
}

export interface StepPlan<R extends SchedulableRequest> {
  sequences: ScheduledSequence<R>[];
  /** Requests moved back to waiting in this step (their blocks were freed). */
  preempted: R[];
  numTokens: number;
}

export class Scheduler<R extends SchedulableRequest> {
  readonly waiting: R[] = [];
  readonly running: R[] = [];
  readonly #kv: KvBlockManager;
  readonly #config: SchedulerConfig;

  constructor(kv: KvBlockManager, config: SchedulerConfig) {
    if (config.maxNumSeqs < 1 || config.maxNumBatchedTokens < 1) throw new Error('Scheduler: limits must be ≥ 1');
    this.#kv = kv;
    this.#config = config;
  }

  add(request: R): void {
    this.waiting.push(request);
  }

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  /** Removes a request wherever it is and frees its blocks. */
  remove(request: R): void {
    for (const queue of [this.waiting, this.running]) {
      const i = queue.indexOf(request);
      if (i >= 0) queue.splice(i, 1);
    }
    this.#kv.free(request);
  }

  schedule(): StepPlan<R> {
    const plan: StepPlan<R> = { sequences: [], preempted: [], numTokens: 0 };
    let budget = this.#config.maxNumBatchedTokens;

    // Running requests, oldest first.
    for (let i = 0; i < this.running.length && budget > 0; ) {
      const req = this.running[i];
      const numNew = Math.min(req.tokens.length - req.numComputed, budget);
      if (numNew <= 0 || req.blocked) {
        i++;
        continue;
      }
      let fits = this.#kv.allocate(req, req.numComputed + numNew);
      while (!fits) {
        const victim = this.running[this.running.length - 1];
        budget += this.#preempt(victim, plan);
        if (victim === req) break;
        fits = this.#kv.allocate(req, req.numComputed + numNew);
      }
      if (!fits) continue; // req itself was preempted; running[i] is now the next one
      plan.sequences.push({ request: req, start: req.numComputed, numNew });
      plan.numTokens += numNew;
      budget -= numNew;
      i++;
    }

    // Waiting requests, first come first served; no overtaking if the head does not fit. Waiting
    // requests hold no blocks: a head that does not fit gives its claimed prefix back (it stays
    // cached), or it would starve the running requests of the very blocks they need to finish.
    // Claiming never makes a request harder to fit, and a request alone always fits (the engine
    // checks prompt + max_tokens against the pool), so the queue cannot wedge.
    while (this.waiting.length > 0 && budget > 0 && this.running.length < this.#config.maxNumSeqs) {
      if (plan.preempted.length > 0) break; // memory is short: do not admit in the step that preempted
      const req = this.waiting[0];
      if (req.blocked) break; // first come first served: the head waits for its mask
      const numCached = req.reusesPrefix === false ? 0 : this.#kv.claimCachedPrefix(req, req.tokens);
      const numNew = Math.min(req.tokens.length - numCached, budget);
      if (!this.#kv.allocate(req, numCached + numNew)) {
        this.#kv.free(req);
        break;
      }
      this.#kv.recordPrefixQuery(req.tokens.length, numCached);
      req.numComputed = numCached;
      this.waiting.shift();
      this.running.push(req);
      plan.sequences.push({ request: req, start: req.numComputed, numNew });
      plan.numTokens += numNew;
      budget -= numNew;
    }
    return plan;
  }

  /** Bookkeeping after the model ran a plan: computed counts advance, full blocks become cacheable. */
  commit(plan: StepPlan<R>): void {
    for (const { request, numNew } of plan.sequences) {
      request.numComputed += numNew;
      this.#kv.commitFullBlocks(request, request.tokens, request.numComputed);
    }
  }

  /** Returns the tokens the victim had in this step's plan (given back to the budget). */
  #preempt(victim: R, plan: StepPlan<R>): number {
    this.running.splice(this.running.indexOf(victim), 1);
    this.#kv.free(victim);
    victim.numComputed = 0;
    victim.numPreemptions++;
    this.waiting.unshift(victim);
    plan.preempted.push(victim);
    // A victim already placed in this step's plan must leave it.
    const j = plan.sequences.findIndex((s) => s.request === victim);
    if (j < 0) return 0;
    const removed = plan.sequences[j].numNew;
    plan.numTokens -= removed;
    plan.sequences.splice(j, 1);
    return removed;
  }
}
