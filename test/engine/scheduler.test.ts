// Scheduler: each step's plan respects the token budget and the sequence limit, admits first come
// first served without overtaking, chunks long prompts, and preempts the newest running request when
// KV blocks run out. The model is simulated: after a plan runs, a request whose computed count caught
// up with its tokens gets one new token.
import { describe, expect, it } from 'vitest';
import { KvBlockManager } from '../../src/kv/block-manager.js';
import { Scheduler, type SchedulableRequest, type StepPlan } from '../../src/engine/scheduler.js';

const BS = 4;

class FakeRequest implements SchedulableRequest {
  readonly tokens: number[];
  numComputed = 0;
  numPreemptions = 0;
  readonly blockIds: number[] = [];
  readonly blockHashes: string[] = [];
  constructor(
    readonly id: string,
    prompt: number[],
  ) {
    this.tokens = [...prompt];
  }
}

function prompt(n: number, base = 0): number[] {
  return Array.from({ length: n }, (_, i) => base + i);
}

/** Commits the plan and gives each request that reached its last token one more token. */
function run(scheduler: Scheduler<FakeRequest>, plan: StepPlan<FakeRequest>): void {
  scheduler.commit(plan);
  for (const { request } of plan.sequences) if (request.numComputed === request.tokens.length) request.tokens.push(7);
}

function summary(plan: StepPlan<FakeRequest>) {
  return plan.sequences.map((s) => [s.request.id, s.start, s.numNew]);
}

describe('Scheduler', () => {
  it('fills the token budget: running requests first, then waiting ones, chunking the last admitted', () => {
    const kv = new KvBlockManager(64, BS);
    const s = new Scheduler<FakeRequest>(kv, { maxNumSeqs: 8, maxNumBatchedTokens: 16 });
    const [a, b, c] = [new FakeRequest('a', prompt(10)), new FakeRequest('b', prompt(10, 100)), new FakeRequest('c', prompt(5, 200))];
    s.add(a);
    s.add(b);
    s.add(c);
    let plan = s.schedule();
    expect(summary(plan)).toEqual([['a', 0, 10], ['b', 0, 6]]);
    expect(plan.numTokens).toBe(16);
    expect(s.running).toEqual([a, b]);
    expect(s.waiting).toEqual([c]);
    expect(b.blockIds).toHaveLength(2); // blocks for the chunk only
    run(s, plan);
    expect(a.tokens).toHaveLength(11); // a's prompt is done: it has its first output token
    expect(b.tokens).toHaveLength(10);

    plan = s.schedule();
    expect(summary(plan)).toEqual([['a', 10, 1], ['b', 6, 4], ['c', 0, 5]]);
    expect(plan.numTokens).toBe(10);
    run(s, plan);
    plan = s.schedule();
    expect(summary(plan)).toEqual([['a', 11, 1], ['b', 10, 1], ['c', 5, 1]]);
  });

  it('caps the running sequences at maxNumSeqs', () => {
    const kv = new KvBlockManager(64, BS);
    const s = new Scheduler<FakeRequest>(kv, { maxNumSeqs: 2, maxNumBatchedTokens: 100 });
    const reqs = [0, 1, 2].map((i) => new FakeRequest(`r${i}`, prompt(3, 10 * i)));
    reqs.forEach((r) => s.add(r));
    const plan = s.schedule();
    expect(summary(plan)).toEqual([['r0', 0, 3], ['r1', 0, 3]]);
    expect(s.waiting).toEqual([reqs[2]]);
    run(s, plan);
    s.remove(reqs[0]);
    expect(summary(s.schedule())).toEqual([['r1', 3, 1], ['r2', 0, 3]]);
  });

  it('admits first come first served: a head that does not fit blocks later requests', () => {
    const kv = new KvBlockManager(6, BS);
    const s = new Scheduler<FakeRequest>(kv, { maxNumSeqs: 8, maxNumBatchedTokens: 100 });
    const holder = new FakeRequest('holder', prompt(12)); // 3 blocks, then 4 once it decodes
    s.add(holder);
    run(s, s.schedule());
    const big = new FakeRequest('big', prompt(13, 100)); // 4 blocks: does not fit next to holder
    const small = new FakeRequest('small', prompt(2, 200)); // 1 block: would fit
    s.add(big);
    s.add(small);
    const plan = s.schedule();
    expect(summary(plan)).toEqual([['holder', 12, 1]]);
    expect(s.waiting).toEqual([big, small]);
    expect(big.blockIds).toEqual([]);
    run(s, plan);
    s.remove(holder);
    expect(kv.stats().usedBlocks).toBe(0);
    expect(summary(s.schedule())).toEqual([['big', 0, 13], ['small', 0, 2]]);
  });

  it('preempts the newest running request when blocks run out, frees its blocks and requeues it first', () => {
    const kv = new KvBlockManager(6, BS);
    const s = new Scheduler<FakeRequest>(kv, { maxNumSeqs: 8, maxNumBatchedTokens: 100 });
    const reqs = [0, 1, 2].map((i) => new FakeRequest(`r${i}`, prompt(8, 100 * i))); // 2 blocks each: pool full
    reqs.forEach((r) => s.add(r));
    run(s, s.schedule());
    expect(kv.numFreeBlocks).toBe(0);
    const late = new FakeRequest('late', prompt(1, 900));
    s.add(late);

    // Every request's 9th token needs a 3rd block: r2 (newest) goes, r0 and r1 get its blocks.
    const plan = s.schedule();
    expect(plan.preempted).toEqual([reqs[2]]);
    expect(summary(plan)).toEqual([['r0', 8, 1], ['r1', 8, 1]]);
    expect(reqs[2]).toMatchObject({ numComputed: 0, numPreemptions: 1, blockIds: [], blockHashes: [] });
    expect(s.running).toEqual([reqs[0], reqs[1]]);
    // The victim is first in line again, ahead of older waiting requests; nothing is admitted in a
    // step that preempted.
    expect(s.waiting).toEqual([reqs[2], late]);
    expect(kv.stats().usedBlocks).toBe(6);
    run(s, plan);

    // Once memory frees up it is recomputed from scratch: its prompt and its output so far.
    s.remove(reqs[0]);
    const next = s.schedule();
    expect(summary(next)).toEqual([['r1', 9, 1], ['r2', 0, 9]]);
  });

  it('preempts the request being scheduled when it is itself the newest', () => {
    const kv = new KvBlockManager(5, BS);
    const s = new Scheduler<FakeRequest>(kv, { maxNumSeqs: 8, maxNumBatchedTokens: 100 });
    const old = new FakeRequest('old', prompt(11)); // 3 blocks, room for a 12th token
    const young = new FakeRequest('young', prompt(8, 100)); // 2 blocks, full
    s.add(old);
    s.add(young);
    run(s, s.schedule());
    expect(kv.numFreeBlocks).toBe(0);
    // old's 12th token fits in its 3rd block; young's 9th needs a block nobody can give but itself.
    const plan = s.schedule();
    expect(plan.preempted).toEqual([young]);
    expect(summary(plan)).toEqual([['old', 11, 1]]);
    expect(s.running).toEqual([old]);
    expect(kv.numFreeBlocks).toBe(2);
  });

  it('gives claimed prefix blocks back when the head of the queue does not fit', () => {
    // A finished request left 2 cached blocks; a running request holds the rest of the pool. The
    // waiting head shares the cached prefix but cannot be admitted. It must not sit on the cached
    // blocks while it waits: the running request needs them to keep decoding.
    const kv = new KvBlockManager(8, BS);
    const s = new Scheduler<FakeRequest>(kv, { maxNumSeqs: 8, maxNumBatchedTokens: 100 });
    const shared = prompt(8, 500);
    const first = new FakeRequest('first', [...shared, 1]);
    s.add(first);
    const p1 = s.schedule();
    run(s, p1);
    s.remove(first); // its 2 full blocks stay cached
    const runner = new FakeRequest('runner', prompt(22)); // 6 blocks, 24 tokens fit before a 7th is needed
    s.add(runner);
    run(s, s.schedule());
    const head = new FakeRequest('head', [...shared, ...prompt(10, 900)]); // 5 blocks, 2 of them cached
    s.add(head);
    let plan = s.schedule();
    expect(summary(plan)).toEqual([['runner', 22, 1]]);
    expect(head.blockIds).toEqual([]);
    expect(kv.stats().usedBlocks).toBe(6);
    run(s, plan);
    for (let i = 0; i < 3; i++) {
      plan = s.schedule(); // runner grows to a 7th block: the cached ones are free to take
      expect(plan.preempted).toEqual([]);
      expect(summary(plan)).toEqual([['runner', 23 + i, 1]]);
      run(s, plan);
    }
    s.remove(runner);
    plan = s.schedule();
    expect(summary(plan)).toEqual([['head', 4, 14]]); // its first block is still cached
    // Statistics count admissions, not the attempts made while the head waited.
    expect(kv.stats()).toMatchObject({ prefixQueries: 3, prefixQueryTokens: 9 + 22 + 18, prefixHitTokens: 4 });
  });

  it('reuses cached prefix blocks on admission and computes only the rest', () => {
    const kv = new KvBlockManager(16, BS);
    const s = new Scheduler<FakeRequest>(kv, { maxNumSeqs: 8, maxNumBatchedTokens: 100 });
    const shared = prompt(9, 300);
    const a = new FakeRequest('a', [...shared, 1, 2]);
    s.add(a);
    run(s, s.schedule());
    const b = new FakeRequest('b', [...shared, 3, 4, 5]);
    s.add(b);
    const plan = s.schedule();
    expect(summary(plan)).toEqual([['a', 11, 1], ['b', 8, 4]]);
    expect(b.blockIds.slice(0, 2)).toEqual(a.blockIds.slice(0, 2));
  });

  it('removes a request from wherever it is and frees its blocks', () => {
    const kv = new KvBlockManager(8, BS);
    const s = new Scheduler<FakeRequest>(kv, { maxNumSeqs: 1, maxNumBatchedTokens: 100 });
    const a = new FakeRequest('a', prompt(5));
    const b = new FakeRequest('b', prompt(5, 50));
    s.add(a);
    s.add(b);
    run(s, s.schedule());
    s.remove(b);
    s.remove(a);
    expect(s.hasWork).toBe(false);
    expect(kv.stats().usedBlocks).toBe(0);
  });

  it('rejects limits below one', () => {
    const kv = new KvBlockManager(8, BS);
    expect(() => new Scheduler(kv, { maxNumSeqs: 0, maxNumBatchedTokens: 8 })).toThrow(/limits/);
    expect(() => new Scheduler(kv, { maxNumSeqs: 1, maxNumBatchedTokens: 0 })).toThrow(/limits/);
  });
});
