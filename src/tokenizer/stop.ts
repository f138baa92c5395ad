// Stop strings over a stream of text deltas. A stop string may span deltas and is never emitted, so
// text that could still be the start of one is held back until the next delta settles it. The result
// does not depend on how the text was cut into deltas: the stop that completes first in the text wins
// (earliest end; among stops ending at the same place, the one starting earliest), which is what
// checking after every single character would find.

export interface StopResult {
  /** Text safe to emit now. */
  text: string;
  /** The stop string that ended the stream (not part of `text`), or null. */
  stop: string | null;
}

export class StopMatcher {
  private readonly stops: string[];
  private readonly includeStop: boolean;
  /** A suffix of the stream so far that is a proper prefix of some stop string. */
  private held = '';
  private stopped = false;

  /**
   * Empty stop strings are ignored (they would match before any text). includeStop: the matched stop
   * string ends the emitted text instead of being dropped (vLLM's include_stop_str_in_output).
   */
  constructor(stops: readonly string[], options: { includeStop?: boolean } = {}) {
    this.stops = [...new Set(stops.filter((s) => s.length > 0))];
    this.includeStop = options.includeStop ?? false;
  }

  /** True once a stop string has matched; the stream is then over. */
  get done(): boolean {
    return this.stopped;
  }

  push(delta: string): StopResult {
    if (this.stopped) throw new Error('StopMatcher: push after a stop string matched');
    const text = this.held + delta;
    const match = this.earliestMatch(text);
    if (match !== null) {
      this.stopped = true;
      this.held = '';
      return { text: text.slice(0, match.start + (this.includeStop ? match.stop.length : 0)), stop: match.stop };
    }
    const holdFrom = this.partialMatchStart(text);
    this.held = text.slice(holdFrom);
    return { text: text.slice(0, holdFrom), stop: null };
  }

  /** Text that may not end the stream (before vLLM's min_tokens): emitted with what was held, unmatched. */
  pass(delta: string): string {
    if (this.stopped) throw new Error('StopMatcher: pass after a stop string matched');
    const text = this.held + delta;
    this.held = '';
    return text;
  }

  /** The stream ended without a stop: the held text was not a stop after all. */
  flush(): string {
    const text = this.held;
    this.held = '';
    return text;
  }

  private earliestMatch(text: string): { start: number; stop: string } | null {
    let best: { start: number; end: number; stop: string } | null = null;
    for (const stop of this.stops) {
      const start = text.indexOf(stop);
      if (start < 0) continue;
      const end = start + stop.length;
      if (best === null || end < best.end || (end === best.end && start < best.start)) best = { start, end, stop };
    }
    return best;
  }

  /**
   * Where the longest suffix of `text` that is a proper prefix of a stop string begins (text.length
   * when there is none). Text before it can never become part of a stop, whatever follows.
   */
  private partialMatchStart(text: string): number {
    let start = text.length;
    for (const stop of this.stops) {
      for (let len = Math.min(stop.length - 1, text.length); len > text.length - start; len--) {
        if (text.endsWith(stop.slice(0, len))) {
          start = text.length - len;
          break;
        }
      }
    }
    return start;
  }
}
