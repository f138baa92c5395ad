// The engine's TokenConstraint hook on the tiny model (CPU): masks hold in batched decoding next to
// unconstrained requests (whose outputs do not change), a slow asynchronous mask does not stall the
// other rows, accept()/isTerminated() drive the finish, and every way a request ends disposes its
// constraint exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { maskAllows, maskOf, type TokenConstraint } from '../../src/engine/constraint.js';
import type { Model } from '../../src/engine/model.js';
import { Device } from '../../src/runtime/index.js';
import { collect, kvBytesFor, loadTiny, randomTokens, rng, VOCAB, waitIdle, writeTinyModel } from './fixture.js';

/** Allows `tokens` at every step; terminates after `limit` accepted tokens (if given). */
class AllowList implements TokenConstraint {
  readonly accepted: number[] = [];
  disposed = 0;
  readonly mask: Int32Array;
  constructor(
    tokens: number[],
    readonly limit = Infinity,
    /** Delay each mask by this promise factory (undefined: synchronous masks). */
    readonly delay?: () => Promise<void>,
  ) {
    this.mask = maskOf(VOCAB, tokens);
  }
  nextMask(): Int32Array | Promise<Int32Array> {
    if (!this.delay) return this.mask;
    return this.delay().then(() => this.mask);
  }
  accept(token: number): boolean {
    this.accepted.push(token);
    return maskAllows(this.mask, token);
  }
  isTerminated(): boolean {
    return this.accepted.length >= this.limit;
  }
  dispose(): void {
    this.disposed++;
  }
}

/** A gate: wait() resolves once open() is called. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, wait: () => opened };
}

const random = rng(14);
const PROMPTS = Array.from({ length: 6 }, (_, i) => randomTokens(random, 5 + 7 * i));
const ALLOWED = [
  [1, 2, 3, 77, 150, 299],
  Array.from({ length: 40 }, (_, i) => 100 + 3 * i),
  [42],
];

describe('TokenConstraint in the engine (CPU)', () => {
  let dir: string;
  let device: Device;
  let model: Model;
  let digits: number[];

  beforeAll(async () => {
    dir = writeTinyModel();
    device = Device.open('cpu', { threads: 1 });
    model = await loadTiny(dir, device, { prefixCaching: false });
    digits = Array.from('0123456789', (d) => model.tokenizer.encode(d, { addSpecialTokens: false })[0]);
  });
  afterAll(() => {
    model?.dispose();
    device?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const seeded = (i: number) => ({ temperature: 1, seed: 100 + i, maxTokens: 12, ignoreEos: true });

  it('masks hold in batched decoding; unconstrained neighbours get the tokens they get alone', async () => {
    const alone = [];
    for (let i = 0; i < 3; i++) alone.push(await collect(model.generate(PROMPTS[i], seeded(i))));
    const constrainedAlone = [];
    for (let i = 0; i < 3; i++)
      constrainedAlone.push(await collect(model.generate(PROMPTS[3 + i], seeded(3 + i), { constraint: new AllowList(ALLOWED[i]) })));

    const constraints = ALLOWED.map((a) => new AllowList(a));
    const together = await Promise.all([
      ...PROMPTS.slice(0, 3).map((p, i) => collect(model.generate(p, seeded(i)))),
      ...PROMPTS.slice(3).map((p, i) => collect(model.generate(p, seeded(3 + i), { constraint: constraints[i] }))),
    ]);
    for (let i = 0; i < 3; i++) {
      expect(together[i].tokenIds, `unconstrained request ${i}`).toEqual(alone[i].tokenIds);
      const c = together[3 + i];
      expect(c.tokenIds, `constrained request ${i}`).toEqual(constrainedAlone[i].tokenIds);
      expect(c.tokenIds).toHaveLength(12);
      for (const t of c.tokenIds) expect(ALLOWED[i], `constrained request ${i} drew ${t}`).toContain(t);
      expect(constraints[i].accepted).toEqual(c.tokenIds);
      expect(constraints[i].disposed).toBe(1);
    }
    // The allow-lists change what is drawn (otherwise this test would prove nothing).
    expect(together[3].tokenIds).not.toEqual((await collect(model.generate(PROMPTS[3], seeded(3)))).tokenIds);
    expect(together[5].tokenIds.every((t) => t === 42)).toBe(true);
  });

  it('a pending asynchronous mask does not stall the other rows; the late request still gets its own tokens', async () => {
    const reference = await collect(model.generate(PROMPTS[4], seeded(4), { constraint: new AllowList(ALLOWED[1]) }));
    const g = gate();
    // The first mask waits for the gate; later ones arrive a few milliseconds after being asked.
    let asked = 0;
    const slow = new AllowList(ALLOWED[1], Infinity, () => (asked++ === 0 ? g.wait() : new Promise((r) => setTimeout(r, 3))));
    const late = collect(model.generate(PROMPTS[4], seeded(4), { constraint: slow }));
    const others = await Promise.all([0, 1].map((i) => collect(model.generate(PROMPTS[i], { ...seeded(i), maxTokens: 20 }))));
    for (const o of others) expect(o.tokenIds).toHaveLength(20);
    expect(slow.accepted).toEqual([]); // nothing sampled for it while its mask was pending
    g.open();
    const out = await late;
    expect(out.tokenIds).toEqual(reference.tokenIds);
    expect(out.finishReason).toBe('length');
    expect(slow.disposed).toBe(1);
    await waitIdle(model);
  });

  it('accept() sees every token and isTerminated() ends the request like an EOS', async () => {
    const c = new AllowList(digits, 5);
    const out = await collect(model.generate(PROMPTS[2], { temperature: 0.8, seed: 3, maxTokens: 50 }, { constraint: c }));
    expect(out.finishReason).toBe('stop');
    expect(out.tokenIds).toHaveLength(5);
    expect(out.text).toMatch(/^[0-9]{5}$/);
    expect(c.accepted).toEqual(out.tokenIds);
    expect(c.disposed).toBe(1);
  });

  it('min_tokens bans the stop tokens inside a constraint’s mask, and yields to a mask of stop tokens only', async () => {
    const stop = digits.slice(0, 5);
    // Digits allowed; the first five are stop tokens, banned for the first 4 tokens.
    const c = new AllowList(digits);
    const out = await collect(model.generate(PROMPTS[2], { temperature: 2, seed: 9, maxTokens: 40, stopTokenIds: stop, minTokens: 4 }, { constraint: c }));
    expect(out.tokenIds.length).toBeGreaterThanOrEqual(4);
    for (const t of out.tokenIds.slice(0, 4)) expect(digits.slice(5)).toContain(t);
    if (out.finishReason === 'stop') expect(stop).toContain(out.tokenIds.at(-1));
    // A constraint that allows only stop tokens wins (a complete grammar allowing only its end).
    const only = new AllowList(stop);
    const forced = await collect(model.generate(PROMPTS[2], { temperature: 1, seed: 9, maxTokens: 10, stopTokenIds: stop, minTokens: 4 }, { constraint: only }));
    expect(forced.tokenIds).toHaveLength(4); // no stop before minTokens: the first three are text
    expect(forced.finishReason).toBe('stop');
    expect(forced.text).toMatch(/^[0-4]{3}$/);
  });

  it('a rejected token, a failing mask or a mask that allows nothing ends only that request, with an error', async () => {
    const rejecting = new AllowList(digits);
    rejecting.accept = (t) => (rejecting.accepted.push(t), rejecting.accepted.length < 3);
    const throwing: TokenConstraint = { ...new AllowList([5]), nextMask: () => Promise.reject(new Error('grammar worker died')), accept: () => true, isTerminated: () => false, dispose: () => {} };
    const empty = new AllowList([]);
    const neighbour = collect(model.generate(PROMPTS[0], seeded(0)));
    await expect(collect(model.generate(PROMPTS[1], seeded(1), { constraint: rejecting }))).rejects.toThrow(/rejected the sampled token/);
    await expect(collect(model.generate(PROMPTS[2], seeded(2), { constraint: throwing }))).rejects.toThrow(/grammar worker died/);
    await expect(collect(model.generate(PROMPTS[3], seeded(3), { constraint: empty }))).rejects.toThrow(/constraint allows no token/);
    expect((await neighbour).tokenIds).toHaveLength(12);
    expect(rejecting.disposed).toBe(1);
    expect(empty.disposed).toBe(1);
    await waitIdle(model);
  });

  it('aborts and refusals dispose the constraint: mid-generation, before submission, while waiting for a mask, a refused submit', async () => {
    const running = new AllowList(ALLOWED[1]);
    const controller = new AbortController();
    const out = await collect(model.generate(PROMPTS[0], { ...seeded(0), maxTokens: 200 }, { constraint: running, signal: controller.signal }), (n) => {
      if (n === 3) controller.abort();
    });
    expect(out.finishReason).toBe('cancelled');
    expect(running.disposed).toBe(1);

    const early = new AllowList([1]);
    const aborted = AbortSignal.abort();
    expect((await collect(model.generate(PROMPTS[0], seeded(0), { constraint: early, signal: aborted }))).finishReason).toBe('cancelled');
    expect(early.disposed).toBe(1);

    const never = new AllowList([1], Infinity, () => new Promise<void>(() => {}));
    const waiting = new AbortController();
    const stream = collect(model.generate(PROMPTS[1], seeded(1), { constraint: never, signal: waiting.signal }));
    await new Promise((r) => setTimeout(r, 50));
    waiting.abort();
    expect((await stream).finishReason).toBe('cancelled');
    expect(never.disposed).toBe(1);
    await waitIdle(model);

    const refused = new AllowList([1]);
    expect(() => model.generate([], seeded(0), { constraint: refused })).toThrow(/the prompt is empty/);
    expect(refused.disposed).toBe(1);
  });

  it('a request that waits for its mask while holding KV blocks lets the queue move once the mask arrives or it is aborted', async () => {
    // 4 blocks of 16 tokens: the waiting request (40 + 5 tokens, 3 blocks) fits only once the
    // constrained one (30 + 10 tokens) has finished or left.
    const small = await loadTiny(dir, device, { prefixCaching: false, kvCacheMemory: kvBytesFor(64) });
    try {
      const holder = randomTokens(random, 30);
      const queued = randomTokens(random, 40);
      const queuedAlone = await collect(small.generate(queued, { ...seeded(1), maxTokens: 5 }));
      for (const end of ['mask arrives', 'abort'] as const) {
        const g = gate();
        const c = new AllowList(ALLOWED[0], Infinity, () => g.wait());
        const controller = new AbortController();
        const first = collect(small.generate(holder, { ...seeded(0), maxTokens: 10 }, { constraint: c, signal: controller.signal }));
        await new Promise((r) => setTimeout(r, 20)); // its prefill ran; it now waits for its mask
        const second = collect(small.generate(queued, { ...seeded(1), maxTokens: 5 }));
        await new Promise((r) => setTimeout(r, 50));
        expect(small.stats().engine.waiting, end).toBe(1);
        if (end === 'abort') controller.abort();
        else g.open();
        const [a, b] = await Promise.all([first, second]);
        expect(a.finishReason, end).toBe(end === 'abort' ? 'cancelled' : 'length');
        expect(b.tokenIds, end).toEqual(queuedAlone.tokenIds);
        expect(c.disposed, end).toBe(1);
      }
      await waitIdle(small);
    } finally {
      small.dispose();
    }
  });
});
