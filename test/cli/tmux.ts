// A pseudo-terminal for CLI tests: a detached tmux session on a private socket, driven with send-keys
// and read with capture-pane. Without tmux the tests that need it are skipped with one line naming
// `apt-get install tmux` (CI=true, as .ci/run sets, makes its absence a failure).
import { execFileSync, spawnSync } from 'node:child_process';
import { expect } from 'vitest';

export const HAS_TMUX = spawnSync('tmux', ['-V']).status === 0;
export const REQUIRE_TMUX = process.env.CI === 'true';

export class TmuxSession {
  readonly #socket = `paralon-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  #started = false;

  /** Runs `command` (a shell line) in a 200×50 terminal; "EXIT=<code>" is printed when it ends. */
  start(command: string, cwd: string, env: Record<string, string> = {}): void {
    const exports = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ');
    const line = `cd ${shellQuote(cwd)} && ${exports ? `env ${exports} ` : ''}${command}; echo "EXIT=$?"; sleep 600`;
    this.#tmux('new-session', '-d', '-s', 'test', '-x', '200', '-y', '50', line);
    this.#started = true;
  }

  /** tmux key names: 'Enter', 'C-c', 'C-d', or literal text (sent with -l). */
  send(...keys: string[]): void {
    for (const key of keys) {
      if (/^(Enter|C-[a-z])$/.test(key)) this.#tmux('send-keys', '-t', 'test', key);
      else this.#tmux('send-keys', '-t', 'test', '-l', key);
    }
  }

  /** The whole scrollback, joined lines (the pane wraps long output). */
  screen(): string {
    return this.#tmux('capture-pane', '-p', '-J', '-S', '-10000', '-t', 'test');
  }

  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.screen().match(pattern);
      if (m) return m;
      if (Date.now() > deadline) expect.fail(`timed out waiting for ${pattern}; the terminal shows:\n${this.screen()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async exitCode(timeoutMs = 30_000): Promise<number> {
    return Number((await this.waitFor(/EXIT=(\d+)/, timeoutMs))[1]);
  }

  stop(): void {
    if (this.#started) spawnSync('tmux', ['-L', this.#socket, 'kill-server']);
    this.#started = false;
  }

  #tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.#socket, ...args], { encoding: 'utf8' });
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
