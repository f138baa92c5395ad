// A TokenConstraint backed by an xgrammar matcher on a worker thread. accept() answers at once from
// the mask the token was sampled under (a sampled token is allowed by construction; the check catches
// an engine that ignored the mask) and sends the token to the worker, which advances the matcher and
// fills the next mask right away: by the time the engine asks for it, it is usually there.
import type { TokenConstraint } from '../engine/constraint.js';
import type { MaskState } from './protocol.js';
import type { GrammarWorker } from './pool.js';

export class GrammarConstraint implements TokenConstraint {
  readonly #worker: GrammarWorker;
  readonly #matcher: number;
  #next: Promise<MaskState>;
  /** The mask of the token being sampled (null: none asked for since the last token). */
  #current: Int32Array | null = null;
  #complete = false;
  #disposed = false;

  constructor(worker: GrammarWorker, matcher: number, initial: MaskState) {
    this.#worker = worker;
    this.#matcher = matcher;
    worker.load++;
    this.#next = Promise.resolve(this.#track(initial));
  }

  nextMask(): Promise<Int32Array> {
    return this.#next.then((state) => (this.#current = state.mask));
  }

  accept(token: number): boolean {
    if (this.#disposed) return false;
    const mask = this.#current;
    if (!Number.isInteger(token) || token < 0) return false;
    // Sampled without asking for the mask: the worker's matcher decides.
    if (mask !== null && (token >> 5 >= mask.length || (mask[token >> 5] & (1 << (token & 31))) === 0)) return false;
    this.#current = null;
    this.#next = this.#worker.call({ op: 'accept', id: this.#worker.nextId(), matcher: this.#matcher, token }).then((reply) => {
      if (!reply.accepted) throw new Error(`the grammar rejected token ${token}`);
      return this.#track(reply.state!);
    });
    // A failure surfaces at the next nextMask(); this keeps it from being reported as unhandled first.
    this.#next.catch(() => {});
    return true;
  }

  isTerminated(): boolean {
    return this.#complete;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#worker.load--;
    if (this.#worker.alive) this.#worker.call({ op: 'dispose', id: this.#worker.nextId(), matcher: this.#matcher }).catch(() => {});
  }

  #track(state: MaskState): MaskState {
    this.#complete = state.complete;
    return state;
  }
}
